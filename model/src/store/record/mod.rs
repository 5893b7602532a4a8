//! The commit-log record, byte for byte as RocketMQ lays it out (reference A.2), and the
//! end-of-file blank marker.
//!
//! Integrity: RocketMQ's BODYCRC covers only the body, so a flipped bit in a header
//! (queue offset, topic length, …) would go unnoticed. rocketsim therefore always appends
//! RocketMQ 5.x's reserved `__CRC32#` property (`enabledAppendPropCRC`): its last 20 bytes
//! hold a CRC32 of every byte of the record before them. A record without that tail (one
//! written by a RocketMQ that had the option off) is checked by its body CRC alone
//! ([`CrcCheck::TailOrBody`]), and only if it cannot be a tailed record whose tail was
//! damaged: its properties may not end in something close to a tail (a flipped bit), nor
//! hold NUL bytes (sectors of a torn write that never reached the disk read as zeros).
//! Which check a commit-log file gets is decided per file by recovery
//! (`recovery/scan.rs`).

use std::net::IpAddr;

use crate::message::{
    is_valid_topic, property, NAME_VALUE_SEPARATOR, PROPERTY_CRC32, PROPERTY_SEPARATOR,
    PROPERTY_TAGS,
};

pub const MESSAGE_MAGIC_CODE_V1: u32 = 0xDAA3_20A7;
pub const MESSAGE_MAGIC_CODE_V2: u32 = 0xDAA3_20AB;
pub const BLANK_MAGIC_CODE: u32 = 0xCBD4_3194;
/// A file always keeps room for the 8-byte blank marker (`END_FILE_MIN_BLANK_LENGTH`).
pub const END_FILE_MIN_BLANK_LENGTH: u64 = 8;
/// `__CRC32#` + U+0001 + ten digits + U+0002 (`CommitLog.CRC32_RESERVED_LEN`).
pub const CRC32_RESERVED_LEN: usize = PROPERTY_CRC32.len() + 1 + 10 + 1;
/// Properties are stored behind an i16 length.
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;

pub const SYSFLAG_BORNHOST_V6: i32 = 0x10;
pub const SYSFLAG_STOREHOST_V6: i32 = 0x20;
pub const SYSFLAG_TRANSACTION_MASK: i32 = 0xC;
pub const SYSFLAG_TRANSACTION_PREPARED: i32 = 0x4;
pub const SYSFLAG_TRANSACTION_ROLLBACK: i32 = 0xC;

/// Bytes of a record before its body length: everything up to RECONSUMETIMES and the
/// prepared-transaction offset, for the given host address sizes.
const fn header_len(born_host_len: usize, store_host_len: usize) -> usize {
    4 + 4 + 4 + 4 + 4 + 8 + 8 + 4 + 8 + born_host_len + 8 + store_host_len + 4 + 8
}

/// The smallest well-formed record (IPv4 hosts, no body, one-byte topic, no properties).
pub const MIN_RECORD_LEN: usize = header_len(8, 8) + 4 + 1 + 1 + 2;
const _: () = assert!(MIN_RECORD_LEN > CRC32_RESERVED_LEN);

/// A host as a record stores it: IP bytes then the port as an i32.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub ip: IpAddr,
    pub port: i32,
}

impl Host {
    fn encoded_len(&self) -> usize {
        match self.ip {
            IpAddr::V4(_) => 8,
            IpAddr::V6(_) => 20,
        }
    }

    fn put(&self, out: &mut Vec<u8>) {
        match self.ip {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&self.port.to_be_bytes());
    }
}

/// What the store needs from a producer's message to write a record. The store fills in
/// the queue offset, the physical offset and the store timestamp.
#[derive(Clone, Debug)]
pub struct NewRecord<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: Host,
    pub store_host: Host,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    /// `name\u{1}value\u{2}…`, without `__CRC32#` (the encoder adds it).
    pub properties: &'a str,
}

/// Why a message cannot be written (RocketMQ answers MESSAGE_ILLEGAL or
/// PROPERTIES_SIZE_EXCEEDED for these).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("topic {0:?} is not a valid RocketMQ topic name")]
    BadTopic(String),
    #[error("queue id {0} is negative")]
    BadQueueId(i32),
    #[error("properties are {0} bytes with the CRC tail; the limit is 32767")]
    PropertiesTooLong(usize),
    #[error("properties may not carry {PROPERTY_CRC32}: the store writes it")]
    ReservedProperty,
    #[error("body is {0} bytes, over the limit of {1}")]
    BodyTooLarge(usize, usize),
}

impl NewRecord<'_> {
    fn properties_len(&self) -> usize {
        self.properties.len() + usize::from(self.needs_separator()) + CRC32_RESERVED_LEN
    }

    fn needs_separator(&self) -> bool {
        !self.properties.is_empty() && !self.properties.ends_with(PROPERTY_SEPARATOR)
    }

    /// Checks what the store can check without knowing where the record will go.
    pub fn validate(&self, max_body_bytes: usize) -> Result<(), EncodeError> {
        if !is_valid_topic(self.topic) {
            return Err(EncodeError::BadTopic(self.topic.to_string()));
        }
        if self.queue_id < 0 {
            return Err(EncodeError::BadQueueId(self.queue_id));
        }
        if property(self.properties, PROPERTY_CRC32).is_some() {
            return Err(EncodeError::ReservedProperty);
        }
        if self.properties_len() > MAX_PROPERTIES_LEN {
            return Err(EncodeError::PropertiesTooLong(self.properties_len()));
        }
        if self.body.len() > max_body_bytes {
            return Err(EncodeError::BodyTooLarge(self.body.len(), max_body_bytes));
        }
        Ok(())
    }

    /// The record's TOTALSIZE.
    pub fn encoded_len(&self) -> usize {
        header_len(self.born_host.encoded_len(), self.store_host.encoded_len())
            + 4
            + self.body.len()
            + 1
            + self.topic.len()
            + 2
            + self.properties_len()
    }

    /// Appends the record to `out`. `validate` must have passed.
    pub fn encode(
        &self,
        queue_offset: i64,
        physical_offset: i64,
        store_timestamp_ms: i64,
        out: &mut Vec<u8>,
    ) {
        self.encode_with(queue_offset, physical_offset, store_timestamp_ms, true, out);
    }

    /// TOTALSIZE of [`NewRecord::encode_without_crc_tail`]'s record.
    pub fn encoded_len_without_crc_tail(&self) -> usize {
        self.encoded_len() - usize::from(self.needs_separator()) - CRC32_RESERVED_LEN
    }

    /// The record as a RocketMQ with `enabledAppendPropCRC` off writes it: properties as
    /// given, no `__CRC32#` tail, integrity by BODYCRC only. The store never writes this;
    /// it exists so tests and fixtures can build a store another implementation left.
    pub fn encode_without_crc_tail(
        &self,
        queue_offset: i64,
        physical_offset: i64,
        store_timestamp_ms: i64,
        out: &mut Vec<u8>,
    ) {
        self.encode_with(
            queue_offset,
            physical_offset,
            store_timestamp_ms,
            false,
            out,
        );
    }

    fn encode_with(
        &self,
        queue_offset: i64,
        physical_offset: i64,
        store_timestamp_ms: i64,
        crc_tail: bool,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        let total = if crc_tail {
            self.encoded_len()
        } else {
            self.encoded_len_without_crc_tail()
        };
        let properties_len = total - (self.encoded_len() - self.properties_len());
        let mut sys_flag = self.sys_flag & !(SYSFLAG_BORNHOST_V6 | SYSFLAG_STOREHOST_V6);
        if self.born_host.ip.is_ipv6() {
            sys_flag |= SYSFLAG_BORNHOST_V6;
        }
        if self.store_host.ip.is_ipv6() {
            sys_flag |= SYSFLAG_STOREHOST_V6;
        }
        out.reserve(total);
        out.extend_from_slice(&(total as i32).to_be_bytes());
        out.extend_from_slice(&MESSAGE_MAGIC_CODE_V1.to_be_bytes());
        out.extend_from_slice(&body_crc(self.body).to_be_bytes());
        out.extend_from_slice(&self.queue_id.to_be_bytes());
        out.extend_from_slice(&self.flag.to_be_bytes());
        out.extend_from_slice(&queue_offset.to_be_bytes());
        out.extend_from_slice(&physical_offset.to_be_bytes());
        out.extend_from_slice(&sys_flag.to_be_bytes());
        out.extend_from_slice(&self.born_timestamp_ms.to_be_bytes());
        self.born_host.put(out);
        out.extend_from_slice(&store_timestamp_ms.to_be_bytes());
        self.store_host.put(out);
        out.extend_from_slice(&self.reconsume_times.to_be_bytes());
        out.extend_from_slice(&self.prepared_transaction_offset.to_be_bytes());
        out.extend_from_slice(&(self.body.len() as i32).to_be_bytes());
        out.extend_from_slice(self.body);
        out.push(self.topic.len() as u8);
        out.extend_from_slice(self.topic.as_bytes());
        out.extend_from_slice(&(properties_len as i16).to_be_bytes());
        out.extend_from_slice(self.properties.as_bytes());
        if crc_tail {
            if self.needs_separator() {
                out.push(PROPERTY_SEPARATOR as u8);
            }
            let crc = masked_crc32(&out[start..]);
            put_crc_tail(crc, out);
        }
        debug_assert_eq!(out.len() - start, total);
    }
}

/// CRC32 masked to 31 bits, as RocketMQ's `UtilAll.crc32`.
pub fn masked_crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes) & 0x7FFF_FFFF
}

/// BODYCRC: the masked CRC32 of the body.
pub fn body_crc(body: &[u8]) -> u32 {
    masked_crc32(body)
}

/// Writes `__CRC32#\u{1}dddddddddd\u{2}` with the digits least significant first, as
/// RocketMQ's `MessageDecoder.createCrc32` does.
fn put_crc_tail(mut crc: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(PROPERTY_CRC32.as_bytes());
    out.push(NAME_VALUE_SEPARATOR as u8);
    for _ in 0..10 {
        out.push(b'0' + (crc % 10) as u8);
        crc /= 10;
    }
    out.push(PROPERTY_SEPARATOR as u8);
}

/// Reads the CRC back from a 20-byte tail, or None if these bytes are not a CRC tail.
fn parse_crc_tail(tail: &[u8]) -> Option<u32> {
    let (name, rest) = tail.split_at(PROPERTY_CRC32.len());
    if name != PROPERTY_CRC32.as_bytes()
        || rest[0] != NAME_VALUE_SEPARATOR as u8
        || rest[11] != PROPERTY_SEPARATOR as u8
    {
        return None;
    }
    let mut crc: u64 = 0;
    for &digit in rest[1..11].iter().rev() {
        if !digit.is_ascii_digit() {
            return None;
        }
        crc = crc * 10 + u64::from(digit - b'0');
    }
    u32::try_from(crc).ok()
}

/// Why bytes at a commit-log position are not a whole, valid record. Each is a reason
/// recovery cuts the log there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("only {0} bytes left in the file, too few for a record header")]
    Truncated(usize),
    #[error("unknown magic code {0:#010x}")]
    UnknownMagic(u32),
    #[error("total size {total} is impossible here ({remaining} bytes left in the file)")]
    BadTotalSize { total: i64, remaining: usize },
    #[error("field {field} runs past the record's total size")]
    FieldOverrun { field: &'static str },
    #[error("body length {0} is negative")]
    NegativeBodyLength(i32),
    #[error("topic is not UTF-8")]
    TopicNotUtf8,
    #[error("topic {0:?} is not a valid topic name")]
    BadTopic(String),
    #[error("properties are not UTF-8")]
    PropertiesNotUtf8,
    #[error("fields add up to {computed} bytes but TOTALSIZE says {total}")]
    SizeMismatch { computed: usize, total: usize },
    #[error("CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("no __CRC32# tail in a file whose records carry one")]
    MissingCrcTail,
    #[error("properties end in a damaged __CRC32# tail")]
    DamagedCrcTail,
    #[error("no __CRC32# tail and NUL bytes in the properties: a torn write")]
    ZerosInPropertiesWithoutTail,
    #[error("physical offset field says {field}, the record sits at {actual}")]
    WrongPhysicalOffset { field: i64, actual: u64 },
    #[error("queue id {0} is negative")]
    BadQueueId(i32),
    #[error("queue offset {queue_offset} at commit-log offset {physical_offset}: more records than the log before it can hold")]
    ImplausibleQueueOffset {
        queue_offset: i64,
        physical_offset: u64,
    },
    #[error("queue offset {found} where {expected} was next for {topic}-{queue_id}")]
    QueueOffsetOutOfSequence {
        topic: String,
        queue_id: i32,
        expected: i64,
        found: i64,
    },
}

/// A parsed record borrowing the bytes it was parsed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub total_size: usize,
    pub magic: u32,
    pub body_crc: u32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    pub born_host: Host,
    pub store_timestamp_ms: i64,
    pub store_host: Host,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a str,
    /// The record's bytes, exactly as stored.
    pub bytes: &'a [u8],
}

/// Whether a record with this SYSFLAG reaches a consume queue and takes a queue offset:
/// PREPARED and ROLLBACK transaction records do not (`CommitLog.doAppend`,
/// `ReputMessageService`). The one place append, recovery and reads decide it.
pub fn is_dispatched(sys_flag: i32) -> bool {
    let tx = sys_flag & SYSFLAG_TRANSACTION_MASK;
    tx != SYSFLAG_TRANSACTION_PREPARED && tx != SYSFLAG_TRANSACTION_ROLLBACK
}

/// The consume-queue tag code of a record with these properties (its TAGS hashed).
pub fn dispatch_tags_code(properties: &str) -> i64 {
    crate::message::tags_code(property(properties, PROPERTY_TAGS))
}

impl RecordView<'_> {
    pub fn is_dispatched(&self) -> bool {
        is_dispatched(self.sys_flag)
    }

    pub fn tags_code(&self) -> i64 {
        dispatch_tags_code(self.properties)
    }

    /// Whether the record ends with a `__CRC32#` tail (`parse` verified it unless
    /// told to skip).
    pub fn has_crc_tail(&self) -> bool {
        has_crc_tail(self.properties.as_bytes())
    }

    /// The user properties, without the store's `__CRC32#` tail.
    pub fn user_properties(&self) -> &str {
        if has_crc_tail(self.properties.as_bytes()) {
            &self.properties[..self.properties.len() - CRC32_RESERVED_LEN]
        } else {
            self.properties
        }
    }
}

fn has_crc_tail(props: &[u8]) -> bool {
    crc_tail(props).is_some()
}

/// The CRC stored in the `__CRC32#` tail that ends `props`, if there is one.
fn crc_tail(props: &[u8]) -> Option<u32> {
    let tail_at = props.len().checked_sub(CRC32_RESERVED_LEN)?;
    parse_crc_tail(&props[tail_at..])
}

/// How much of a record's integrity `parse` verifies.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CrcCheck {
    /// Structure only (for reading a header that a scan already verified).
    Skip,
    /// The `__CRC32#` tail must be present and match. rocketsim writes it on every
    /// record, so a record without it is damaged (a flip inside the tail itself must not
    /// downgrade the check to the body CRC).
    Strict,
    /// The tail if present, else the body CRC: for files written by a RocketMQ that had
    /// `enabledAppendPropCRC` off. A tail-less record must not look like a tailed one
    /// whose tail was damaged or torn (see the module doc).
    TailOrBody,
}

/// What sits at a position of a commit-log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slot<'a> {
    Record(RecordView<'a>),
    /// The end-of-file marker: the rest of the file is unused.
    Blank,
}

/// A bounds-checked big-endian cursor over one record.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(RecordError::FieldOverrun { field })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn i32(&mut self, field: &'static str) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4, field)?.try_into().unwrap()))
    }
    fn i64(&mut self, field: &'static str) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8, field)?.try_into().unwrap()))
    }
    fn host(&mut self, v6: bool, field: &'static str) -> Result<Host, RecordError> {
        let ip = if v6 {
            IpAddr::from(<[u8; 16]>::try_from(self.take(16, field)?).unwrap())
        } else {
            IpAddr::from(<[u8; 4]>::try_from(self.take(4, field)?).unwrap())
        };
        Ok(Host {
            ip,
            port: self.i32(field)?,
        })
    }
}

/// Parses what starts at `bytes[0]`, where `bytes` runs to the end of the file.
/// Verifies the structure and the CRC as `crc` says. Never allocates and never trusts
/// a length field before checking it against what is there.
pub fn parse(bytes: &[u8], crc: CrcCheck) -> Result<Slot<'_>, RecordError> {
    if bytes.len() < 8 {
        return Err(RecordError::Truncated(bytes.len()));
    }
    let total = i32::from_be_bytes(bytes[0..4].try_into().unwrap());
    let magic = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
    if magic == BLANK_MAGIC_CODE {
        // The blank's TOTALSIZE is the rest of the file; anything else is not ours.
        if total < 8 || total as usize != bytes.len() {
            return Err(RecordError::BadTotalSize {
                total: total.into(),
                remaining: bytes.len(),
            });
        }
        return Ok(Slot::Blank);
    }
    if magic != MESSAGE_MAGIC_CODE_V1 && magic != MESSAGE_MAGIC_CODE_V2 {
        return Err(RecordError::UnknownMagic(magic));
    }
    if total < MIN_RECORD_LEN as i32 || total as usize > bytes.len() {
        return Err(RecordError::BadTotalSize {
            total: total.into(),
            remaining: bytes.len(),
        });
    }
    let total = total as usize;
    let record = &bytes[..total];
    // Under `Strict` a valid record ends with the CRC tail, so the CRC to compare with
    // it covers `record[..total - 20]`, known as soon as TOTALSIZE is. Computing it now,
    // before the fields are read, walks the record's bytes once from front to back: the
    // header is already in cache and the hardware prefetcher follows the stream. Read
    // after the fields instead, the first touch of the topic (just past the body) is a
    // cache miss and the CRC then goes back to the body; on a recovery scan that cost
    // a third of the time at 4 KiB records. Only the moment of computing moves: the
    // checks and the order in which their errors are reported stay as they were. (For
    // `TailOrBody` a foreign record has no tail, so the CRC is left until the tail is
    // found.)
    let tail_crc =
        (crc == CrcCheck::Strict).then(|| masked_crc32(&record[..total - CRC32_RESERVED_LEN]));
    let mut c = Cursor {
        bytes: record,
        pos: 8,
    };
    let body_crc = c.i32("BODYCRC")? as u32;
    let queue_id = c.i32("QUEUEID")?;
    let flag = c.i32("FLAG")?;
    let queue_offset = c.i64("QUEUEOFFSET")?;
    let physical_offset = c.i64("PHYSICALOFFSET")?;
    let sys_flag = c.i32("SYSFLAG")?;
    let born_timestamp_ms = c.i64("BORNTIMESTAMP")?;
    let born_host = c.host(sys_flag & SYSFLAG_BORNHOST_V6 != 0, "BORNHOST")?;
    let store_timestamp_ms = c.i64("STORETIMESTAMP")?;
    let store_host = c.host(sys_flag & SYSFLAG_STOREHOST_V6 != 0, "STOREHOST")?;
    let reconsume_times = c.i32("RECONSUMETIMES")?;
    let prepared_transaction_offset = c.i64("PREPAREDTRANSACTIONOFFSET")?;
    let body_len = c.i32("BODYLENGTH")?;
    if body_len < 0 {
        return Err(RecordError::NegativeBodyLength(body_len));
    }
    let body = c.take(body_len as usize, "BODY")?;
    let topic_len = if magic == MESSAGE_MAGIC_CODE_V1 {
        usize::from(c.take(1, "TOPICLENGTH")?[0])
    } else {
        let len = i16::from_be_bytes(c.take(2, "TOPICLENGTH")?.try_into().unwrap());
        usize::try_from(len).map_err(|_| RecordError::FieldOverrun {
            field: "TOPICLENGTH",
        })?
    };
    let topic_bytes = c.take(topic_len, "TOPIC")?;
    let props_len = i16::from_be_bytes(c.take(2, "PROPERTIESLENGTH")?.try_into().unwrap());
    let props_len = usize::try_from(props_len).map_err(|_| RecordError::FieldOverrun {
        field: "PROPERTIESLENGTH",
    })?;
    let props_bytes = c.take(props_len, "PROPERTIES")?;
    if c.pos != total {
        return Err(RecordError::SizeMismatch {
            computed: c.pos,
            total,
        });
    }
    if crc != CrcCheck::Skip {
        verify_crc(record, props_bytes, body, body_crc, crc, tail_crc)?;
    }
    // UTF-8 and name checks come after the CRC: a damaged record reports its damage.
    let topic = std::str::from_utf8(topic_bytes).map_err(|_| RecordError::TopicNotUtf8)?;
    let properties =
        std::str::from_utf8(props_bytes).map_err(|_| RecordError::PropertiesNotUtf8)?;
    if !is_valid_topic(topic) {
        return Err(RecordError::BadTopic(topic.to_string()));
    }
    if queue_id < 0 {
        return Err(RecordError::BadQueueId(queue_id));
    }
    Ok(Slot::Record(RecordView {
        total_size: total,
        magic,
        body_crc,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp_ms,
        born_host,
        store_timestamp_ms,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
        bytes: record,
    }))
}

/// The whole-record CRC when the record carries the `__CRC32#` tail, else the body CRC.
/// `tail_crc`, if given, is the masked CRC32 of every byte of `record` before its last
/// 20, computed early (see `parse`).
fn verify_crc(
    record: &[u8],
    props: &[u8],
    body: &[u8],
    stored_body_crc: u32,
    crc: CrcCheck,
    tail_crc: Option<u32>,
) -> Result<(), RecordError> {
    // `props` ends where `record` does (`parse` checked the sizes add up), so its tail
    // is the record's; it is parsed once.
    if let Some(stored) = crc_tail(props) {
        let tail_at = record.len() - CRC32_RESERVED_LEN;
        let computed = tail_crc.unwrap_or_else(|| masked_crc32(&record[..tail_at]));
        if stored != computed {
            return Err(RecordError::CrcMismatch { stored, computed });
        }
        return Ok(());
    }
    if crc == CrcCheck::Strict {
        return Err(RecordError::MissingCrcTail);
    }
    if looks_like_damaged_tail(props) {
        return Err(RecordError::DamagedCrcTail);
    }
    if props.contains(&0) {
        return Err(RecordError::ZerosInPropertiesWithoutTail);
    }
    let computed = body_crc(body);
    if stored_body_crc != computed {
        return Err(RecordError::CrcMismatch {
            stored: stored_body_crc,
            computed,
        });
    }
    Ok(())
}

/// At most this many of a tail's 20 bytes may differ from the `__CRC32#` template for
/// properties to count as a damaged tail rather than no tail. A bit rot flips one byte;
/// a property a producer wrote agrees with the template in a handful of bytes at most.
const DAMAGED_TAIL_MAX_DIFFERENT_BYTES: usize = 6;

/// Whether `props` ends in 20 bytes close to `__CRC32#\u{1}dddddddddd\u{2}` without
/// being one.
fn looks_like_damaged_tail(props: &[u8]) -> bool {
    let Some(tail_at) = props.len().checked_sub(CRC32_RESERVED_LEN) else {
        return false;
    };
    let tail = &props[tail_at..];
    let name = PROPERTY_CRC32.as_bytes();
    let mut different = 0;
    for (i, &b) in tail.iter().enumerate() {
        let expected_ok = match i {
            i if i < name.len() => b == name[i],
            i if i == name.len() => b == NAME_VALUE_SEPARATOR as u8,
            i if i == CRC32_RESERVED_LEN - 1 => b == PROPERTY_SEPARATOR as u8,
            _ => b.is_ascii_digit(),
        };
        different += usize::from(!expected_ok);
    }
    different <= DAMAGED_TAIL_MAX_DIFFERENT_BYTES
}

/// The 8-byte end-of-file marker for a file with `remaining` bytes left.
pub fn blank_marker(remaining: u64) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&(remaining as i32).to_be_bytes());
    out[4..].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
