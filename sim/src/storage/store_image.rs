//! Arbitrary bytes become a small store directory, and recovery runs on it: the
//! `recovery` fuzz target (`fuzz/fuzz_targets/recovery.rs`) and its corpus replay
//! (`tests/fuzz_corpus.rs`) share [`run_recovery_case`].
//!
//! The decoder is built so that a fuzzer reaches deep: besides raw file contents it has
//! chunks that append *well-formed* records (valid CRCs, dense queue offsets, rolling to
//! the next file with the blank marker as the store does), consume-queue entries that
//! point at those records, and mutations of what is already there. Whatever the bytes,
//! decoding is total and bounded: at most [`MAX_IMAGE_BYTES`] of file content in at most
//! [`MAX_FILES`] files, so nothing recovery allocates can be proportional to a length
//! field it has not checked against what is on the disk.
//!
//! Input layout: two header bytes, then chunks `[kind][fields…]` until the input ends.
//!
//! - header 0: bits 0-1 the commit-log file size ([`FILE_SIZES`]), bit 2 accept records
//!   without the CRC tail, bits 3-6 where the first commit-log file starts ([`BASE_FILES`]).
//! - header 1: bits 0-3 consume-queue entries per file (2..=16), bits 4-5 how many records
//!   to append after recovery.
//! - chunk kinds: see [`Chunk`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rmq_model::message::PROPERTY_CRC32;
use rmq_model::store::checkpoint::{CHECKPOINT_FILE_SIZE, CHECKPOINT_PATH};
use rmq_model::store::config_file::ConfigFile;
use rmq_model::store::config_tables::{
    ConsumerOffsetTable, DelayOffsetTable, TopicConfigTable, CONSUMER_OFFSET_PATH,
    DELAY_OFFSET_PATH, TOPICS_PATH,
};
use rmq_model::store::consume_queue::{CqEntry, CQ_STORE_UNIT_SIZE};
use rmq_model::store::mapped_file::file_name;
use rmq_model::store::record::{
    self, blank_marker, masked_crc32, Slot, BLANK_MAGIC_CODE, END_FILE_MIN_BLANK_LENGTH,
    MESSAGE_MAGIC_CODE_V1, MESSAGE_MAGIC_CODE_V2, MIN_RECORD_LEN, SYSFLAG_TRANSACTION_PREPARED,
};
use rmq_model::store::{
    recover, Host, MemDisk, MessageStore, NewRecord, RecoveryReport, StoreConfig, StoreError,
    StoreEvent, StoreState, ABORT_PATH,
};

use crate::storage::store_check::{self, StoreSnapshot};

/// Total bytes of file content an image may hold.
pub const MAX_IMAGE_BYTES: usize = 256 * 1024;
/// Files an image may hold.
pub const MAX_FILES: usize = 64;
/// Commit-log files the record cursor may reach (relative to the first one).
pub const MAX_LOG_FILES: u64 = 16;
/// Commit-log reads probed after recovery, beyond one per recovered record.
pub const MAX_PROBES: usize = 32;
/// Records the decoder remembers (for consume-queue entries and probes that point at them).
const MAX_REMEMBERED_RECORDS: usize = 1024;

pub const FILE_SIZES: [u64; 4] = [512, 1024, 2048, 4096];
/// Where the first commit-log file starts, in files: mostly 0 (a log that holds every
/// record ever written), sometimes a trimmed log, and the edges of the offset space.
pub const BASE_FILES: [u64; 16] = [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1,
    2,
    3,
    7,
    1 << 20,
    1 << 40,
    u64::MAX / 4096 / 2 - 8, // physical offsets are i64: just below their end
    u64::MAX / 512 - 8,      // file names that only a u64 can hold
];
pub const TOPICS: [&str; 4] = ["T", "TopicTest", "%RETRY%g", "SCHEDULE_TOPIC_XXXX"];
const PROPERTIES: [&str; 4] = [
    "",
    "TAGS\u{1}TagA\u{2}",
    "TAGS\u{1}TagB\u{2}KEYS\u{1}k1\u{2}",
    "KEYS\u{1}x",
];
/// Queue directory names, the first four canonical.
const QUEUE_NAMES: [&str; 9] = ["0", "1", "2", "3", "00", "+1", "-1", "x", "2147483647"];
/// Paths that are not what the store expects where it expects them.
const STRAY_PATHS: [&str; 16] = [
    "commitlog/foo",
    "commitlog/0000000000000000000x",
    "commitlog/00000000000000000000.tmp",
    "commitlog/00000000000000000000/inner",
    "consumequeue/bad topic/0/00000000000000000000",
    "consumequeue/T",
    "consumequeue/T/0/junk",
    "consumequeue/T/0/00000000000000000000/x",
    "consumequeue/T/1",
    "consumequeue/%RETRY%g/abc/00000000000000000000",
    "abort/x",
    "checkpoint/x",
    "config",
    "config/topics.json/x",
    "lock",
    "index/00000000000000000000",
];
const CONFIG_PATHS: [&str; 3] = [TOPICS_PATH, CONSUMER_OFFSET_PATH, DELAY_OFFSET_PATH];
const CONFIG_TEMPLATES: [&str; 12] = [
    r#"{"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6,"order":false}},"dataVersion":{"timestamp":1,"counter":2}}"#,
    r#"{"offsetTable":{"T@g":{0:5,1:7}}}"#,
    r#"{"offsetTable":{"T@g":{"0":5}}}"#,
    r#"{"offsetTable":{1:10,2:20}}"#,
    r#"{"offsetTable":{"1":-1}}"#,
    "{",
    "[]",
    "null",
    r#"{"offsetTable":{"T@g":{"x":1}}}"#,
    r#"{"offsetTable":{-:1, - :2}}"#,
    "{ -1 :2,\"\u{e9}\":[1,2],\"s\":\"{0:x}\\\"\"}",
    r#"{"topicConfigTable":{"T":{"readQueueNums":-1,"perm":"x"}},"dataVersion":{"counter":99999999999999999999}}"#,
];
/// Values worth planting in a length or magic field.
const INTERESTING_I32: [i32; 12] = [
    0,
    -1,
    i32::MAX,
    i32::MIN,
    MIN_RECORD_LEN as i32,
    MIN_RECORD_LEN as i32 - 1,
    8,
    512,
    4096,
    MESSAGE_MAGIC_CODE_V1 as i32,
    MESSAGE_MAGIC_CODE_V2 as i32,
    BLANK_MAGIC_CODE as i32,
];

/// The chunk kinds, by `kind byte % 16`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Chunk {
    /// `[file u8][len u16][bytes]`: a commit-log file's whole content.
    LogRaw,
    /// `[topic|props u8][queue u8][flags u8][body len u8][body][qoff i64]?[phys i64]?`:
    /// a well-formed record at the cursor (three kinds map here: it is the common case).
    Record,
    /// The blank end-of-file marker at the cursor; the cursor moves to the next file.
    Roll,
    /// `[file u8][pos u16]`: moves the cursor.
    Seek,
    /// `[file u8][offset u16][mode u8][…]`: damages an existing file.
    Mutate,
    /// `[topic u8][queue u8][file u8][len u16][bytes]`: a consume-queue file's content.
    CqRaw,
    /// `[topic u8][queue u8][queue offset u8][source u8][…]`: one consume-queue entry.
    CqEntry,
    /// `[len u8][bytes]`: the checkpoint (padded to 4 KiB when at least 40 bytes).
    Checkpoint,
    /// `[u8]`: abort marker present (even) or absent (odd).
    Abort,
    /// `[which u8][mode u8][…]`: a config file, its `.bak` or its `.tmp`.
    Config,
    /// `[which u8][len u8][bytes]`: a file where the store expects something else.
    Stray,
    /// `[which u8]`: deletes an existing file.
    Delete,
    /// `[start u64][round u8][len u16][bytes]`: a commit-log file with any name.
    OddLogName,
    /// `[mode u8][…]`: a commit-log offset to read after recovery.
    Probe,
}

impl Chunk {
    fn from_byte(b: u8) -> Chunk {
        match b % 16 {
            0 => Chunk::LogRaw,
            1..=3 => Chunk::Record,
            4 => Chunk::Roll,
            5 => Chunk::Seek,
            6 => Chunk::Mutate,
            7 => Chunk::CqRaw,
            8 => Chunk::CqEntry,
            9 => Chunk::Checkpoint,
            10 => Chunk::Abort,
            11 => Chunk::Config,
            12 => Chunk::Stray,
            13 => Chunk::Delete,
            14 => Chunk::OddLogName,
            _ => Chunk::Probe,
        }
    }
}

/// A total reader: past the end every field reads as zeros and every slice as empty.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        let mut out = 0u64;
        for _ in 0..8 {
            out = (out << 8) | u64::from(self.u8());
        }
        out
    }
    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(len).min(self.data.len());
        self.pos = self.pos.saturating_add(len);
        &self.data[start..end]
    }
}

/// A decoded store directory and what to do with it after recovery.
#[derive(Clone, Debug)]
pub struct StoreImage {
    pub disk: MemDisk,
    pub config: StoreConfig,
    /// Commit-log offsets to read after recovery.
    pub probes: Vec<u64>,
    /// Records to append after recovery (0..=3).
    pub appends: usize,
}

struct Builder {
    files: BTreeMap<String, Vec<u8>>,
    total_bytes: usize,
    config: StoreConfig,
    base_file: u64,
    /// (file index relative to the first, byte position in it).
    cursor: (u64, u64),
    next_queue_offset: BTreeMap<(&'static str, i32), i64>,
    /// (physical offset, size) of the records written so far.
    records: Vec<(u64, u32)>,
    probes: Vec<u64>,
    store_timestamp_ms: i64,
}

impl Builder {
    fn file_size(&self) -> u64 {
        self.config.commit_log_file_size_bytes
    }

    fn cq_file_size(&self) -> u64 {
        self.config.consume_queue_entries_per_file * CQ_STORE_UNIT_SIZE
    }

    /// The start offset of commit-log file `index` (relative to the first), if the
    /// offset space holds it.
    fn log_start(&self, index: u64) -> Option<u64> {
        self.base_file
            .checked_add(index)?
            .checked_mul(self.file_size())
    }

    fn log_path(&self, index: u64) -> Option<String> {
        Some(format!("commitlog/{}", file_name(self.log_start(index)?)))
    }

    /// Replaces a file's content, if the image stays within its bounds and remains a
    /// directory tree a real file system could hold: `MemDisk` would let `a` be a file
    /// and a directory at once, which no disk the store runs on can show it.
    fn put(&mut self, path: &str, content: Vec<u8>) {
        let old = self.files.get(path).map(Vec::len);
        if old.is_none() {
            if self.files.len() >= MAX_FILES {
                return;
            }
            let is_dir_of = |dir: &str, file: &str| {
                file.len() > dir.len()
                    && file.starts_with(dir)
                    && file.as_bytes()[dir.len()] == b'/'
            };
            if self
                .files
                .keys()
                .any(|f| is_dir_of(f, path) || is_dir_of(path, f))
            {
                return;
            }
        }
        let total = self.total_bytes - old.unwrap_or(0) + content.len();
        if total > MAX_IMAGE_BYTES {
            return;
        }
        self.total_bytes = total;
        self.files.insert(path.to_string(), content);
    }

    /// Writes `data` at `offset` of a file (created if absent), within the bounds.
    fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) {
        let mut content = self.files.get(path).cloned().unwrap_or_default();
        let Ok(offset) = usize::try_from(offset) else {
            return;
        };
        let end = offset.saturating_add(data.len());
        if end > MAX_IMAGE_BYTES {
            return;
        }
        if content.len() < end {
            content.resize(end, 0);
        }
        content[offset..end].copy_from_slice(data);
        self.put(path, content);
    }

    fn existing_file(&self, selector: u8) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let index = usize::from(selector) % self.files.len();
        self.files.keys().nth(index).cloned()
    }

    fn chunk(&mut self, r: &mut Reader<'_>) {
        match Chunk::from_byte(r.u8()) {
            Chunk::LogRaw => {
                let index = u64::from(r.u8()) % MAX_LOG_FILES;
                let len = usize::from(r.u16());
                let content = r.bytes(len).to_vec();
                if let Some(path) = self.log_path(index) {
                    self.put(&path, content);
                }
            }
            Chunk::Record => self.record(r),
            Chunk::Roll => self.roll(),
            Chunk::Seek => {
                let index = u64::from(r.u8()) % MAX_LOG_FILES;
                let pos = u64::from(r.u16()) % self.file_size();
                self.cursor = (index, pos);
            }
            Chunk::Mutate => self.mutate(r),
            Chunk::CqRaw => {
                let topic = TOPICS[usize::from(r.u8()) % TOPICS.len()];
                let queue = QUEUE_NAMES[usize::from(r.u8()) % QUEUE_NAMES.len()];
                let start = u64::from(r.u8() % 8) * self.cq_file_size();
                let len = usize::from(r.u16());
                let content = r.bytes(len).to_vec();
                let path = format!("consumequeue/{topic}/{queue}/{}", file_name(start));
                self.put(&path, content);
            }
            Chunk::CqEntry => self.cq_entry(r),
            Chunk::Checkpoint => {
                let len = usize::from(r.u8());
                let mut content = r.bytes(len).to_vec();
                if content.len() >= 40 {
                    content.resize(CHECKPOINT_FILE_SIZE as usize, 0);
                }
                self.put(CHECKPOINT_PATH, content);
            }
            Chunk::Abort => {
                if r.u8() & 1 == 0 {
                    self.put(ABORT_PATH, Vec::new());
                } else if let Some(len) = self.files.remove(ABORT_PATH).map(|c| c.len()) {
                    self.total_bytes -= len;
                }
            }
            Chunk::Config => self.config_file(r),
            Chunk::Stray => {
                let path = STRAY_PATHS[usize::from(r.u8()) % STRAY_PATHS.len()];
                let len = usize::from(r.u8());
                let content = r.bytes(len).to_vec();
                self.put(path, content);
            }
            Chunk::Delete => {
                if let Some(path) = self.existing_file(r.u8()) {
                    let len = self.files.remove(&path).map_or(0, |c| c.len());
                    self.total_bytes -= len;
                }
            }
            Chunk::OddLogName => {
                let mut start = r.u64();
                if r.u8() & 1 == 0 {
                    start -= start % self.file_size();
                }
                let len = usize::from(r.u16());
                let content = r.bytes(len).to_vec();
                self.put(&format!("commitlog/{}", file_name(start)), content);
            }
            Chunk::Probe => {
                let mode = r.u8();
                let probe = if mode & 3 == 0 || self.records.is_empty() {
                    r.u64()
                } else {
                    let (offset, size) = self.records[usize::from(r.u8()) % self.records.len()];
                    match mode % 4 {
                        1 => offset,
                        2 => offset.saturating_add(u64::from(size)),
                        _ => offset.wrapping_add(u64::from(r.u8())),
                    }
                };
                if self.probes.len() < MAX_PROBES {
                    self.probes.push(probe);
                }
            }
        }
    }

    fn record(&mut self, r: &mut Reader<'_>) {
        let topic_props = r.u8();
        let topic = TOPICS[usize::from(topic_props) % TOPICS.len()];
        let properties = PROPERTIES[usize::from(topic_props >> 2) % PROPERTIES.len()];
        let queue_byte = r.u8();
        let queue_id = if queue_byte == 255 {
            i32::MAX
        } else {
            i32::from(queue_byte % 4)
        };
        let flags = r.u8();
        let body_len = usize::from(r.u8());
        let body = r.bytes(body_len);
        let explicit_queue_offset = (flags & 0x01 != 0).then(|| r.u64() as i64);
        let explicit_physical_offset = (flags & 0x02 != 0).then(|| r.u64() as i64);
        // 0: normal, 1: PREPARED, 2: COMMIT, 3: ROLLBACK.
        let sys_flag = i32::from((flags >> 2) & 0x03) * SYSFLAG_TRANSACTION_PREPARED;
        let ipv6 = flags & 0x10 != 0;
        let strip_tail = flags & 0x20 != 0;
        let v2 = flags & 0x40 != 0;
        let roll = flags & 0x80 == 0;

        let host = |port| Host {
            ip: if ipv6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            },
            port,
        };
        let rec = NewRecord {
            topic,
            queue_id,
            flag: 0,
            sys_flag,
            born_timestamp_ms: 1,
            born_host: host(5555),
            store_host: host(10911),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties,
        };
        let len = encoded_len(&rec, v2, strip_tail) as u64;
        let file_size = self.file_size();
        if roll && self.cursor.1 + len + END_FILE_MIN_BLANK_LENGTH > file_size {
            self.roll();
        }
        let (index, pos) = self.cursor;
        if index >= MAX_LOG_FILES {
            return;
        }
        let (Some(start), Some(path)) = (self.log_start(index), self.log_path(index)) else {
            return;
        };
        let physical_offset = start.saturating_add(pos);
        let dispatched = rec.sys_flag & 0x0C != 0x04 && rec.sys_flag & 0x0C != 0x0C;
        let next = self.next_queue_offset.entry((topic, queue_id)).or_insert(0);
        let queue_offset = explicit_queue_offset.unwrap_or(if dispatched { *next } else { 0 });
        if dispatched {
            *next = queue_offset.wrapping_add(1);
        }
        self.store_timestamp_ms += 1;
        let bytes = encode_record(
            &rec,
            queue_offset,
            explicit_physical_offset.unwrap_or(physical_offset as i64),
            self.store_timestamp_ms,
            v2,
            strip_tail,
        );
        debug_assert_eq!(bytes.len() as u64, len);
        self.write_at(&path, pos, &bytes);
        self.cursor.1 += len;
        if self.records.len() < MAX_REMEMBERED_RECORDS {
            self.records.push((physical_offset, len as u32));
        }
    }

    /// Closes the cursor's file with the blank marker and moves to the next one.
    fn roll(&mut self) {
        let (index, pos) = self.cursor;
        let file_size = self.file_size();
        if pos + END_FILE_MIN_BLANK_LENGTH <= file_size {
            if let Some(path) = self.log_path(index) {
                self.write_at(&path, pos, &blank_marker(file_size - pos));
            }
        }
        self.cursor = (index + 1, 0);
    }

    fn mutate(&mut self, r: &mut Reader<'_>) {
        let Some(path) = self.existing_file(r.u8()) else {
            return;
        };
        let mut content = self.files[&path].clone();
        let offset = usize::from(r.u16());
        let at = offset % content.len().max(1);
        match r.u8() % 6 {
            0 => {
                let value = r.u8().max(1);
                if let Some(b) = content.get_mut(at) {
                    *b ^= value;
                }
            }
            1 => {
                let len = usize::from(r.u8());
                let data = r.bytes(len);
                let end = (at + data.len()).min(content.len());
                content[at..end].copy_from_slice(&data[..end - at]);
            }
            2 => content.truncate(offset % (content.len() + 1)),
            3 => {
                let extra = usize::from(r.u16());
                content.resize(content.len() + extra, 0);
            }
            4 => {
                let value = INTERESTING_I32[usize::from(r.u8()) % INTERESTING_I32.len()];
                let end = (at + 4).min(content.len());
                content[at..end].copy_from_slice(&value.to_be_bytes()[..end - at]);
            }
            _ => {
                // A single bit, as bit rot flips it.
                let bit = r.u8();
                if let Some(b) = content.get_mut(at) {
                    *b ^= 1 << (bit % 8);
                }
            }
        }
        self.put(&path, content);
    }

    fn cq_entry(&mut self, r: &mut Reader<'_>) {
        let topic = TOPICS[usize::from(r.u8()) % TOPICS.len()];
        let queue_id = r.u8() % 4;
        let queue_offset = u64::from(r.u8());
        let source = r.u8();
        let entry = if source & 1 == 0 && !self.records.is_empty() {
            let (offset, size) = self.records[usize::from(source / 2) % self.records.len()];
            CqEntry {
                commit_log_offset: offset as i64,
                size: size as i32,
                tags_code: 0,
            }
        } else {
            let bytes = r.bytes(20);
            let mut raw = [0u8; 20];
            raw[..bytes.len()].copy_from_slice(bytes);
            CqEntry::from_bytes(&raw)
        };
        let cq_file_size = self.cq_file_size();
        let byte_offset = queue_offset * CQ_STORE_UNIT_SIZE;
        let start = byte_offset / cq_file_size * cq_file_size;
        let path = format!("consumequeue/{topic}/{queue_id}/{}", file_name(start));
        self.write_at(&path, byte_offset - start, &entry.to_bytes());
    }

    fn config_file(&mut self, r: &mut Reader<'_>) {
        let which = usize::from(r.u8());
        let base = CONFIG_PATHS[which % CONFIG_PATHS.len()];
        let path = match (which / CONFIG_PATHS.len()) % 3 {
            0 => base.to_string(),
            1 => format!("{base}.bak"),
            _ => format!("{base}.tmp"),
        };
        let mode = r.u8();
        let template = CONFIG_TEMPLATES[usize::from(mode >> 2) % CONFIG_TEMPLATES.len()];
        let content = match mode % 4 {
            0 => template.as_bytes().to_vec(),
            1 => {
                let len = usize::from(r.u8());
                let mut c = template.as_bytes().to_vec();
                c.extend_from_slice(r.bytes(len));
                c
            }
            2 => {
                let len = usize::from(r.u16());
                r.bytes(len).to_vec()
            }
            _ => {
                // Deep nesting: the parser must refuse it without exhausting the stack.
                let depth = usize::from(r.u8()) * 8;
                let mut c = "[".repeat(depth).into_bytes();
                c.extend(std::iter::repeat_n(b']', depth));
                c
            }
        };
        self.put(&path, content);
    }
}

impl StoreImage {
    /// Decodes any bytes into a store image. Deterministic and total.
    pub fn decode(data: &[u8]) -> StoreImage {
        let mut r = Reader { data, pos: 0 };
        let h0 = r.u8();
        let h1 = r.u8();
        let config = StoreConfig {
            commit_log_file_size_bytes: FILE_SIZES[usize::from(h0 & 0x03)],
            consume_queue_entries_per_file: 2 + u64::from(h1 & 0x0F) % 15,
            max_message_size_bytes: 4096,
            accept_records_without_crc_tail: h0 & 0x04 != 0,
        };
        let mut b = Builder {
            files: BTreeMap::new(),
            total_bytes: 0,
            base_file: BASE_FILES[usize::from((h0 >> 3) & 0x0F)],
            config,
            cursor: (0, 0),
            next_queue_offset: BTreeMap::new(),
            records: Vec::new(),
            probes: Vec::new(),
            store_timestamp_ms: 1_700_000_000_000,
        };
        // Every chunk consumes at least its kind byte, so this ends.
        while !r.is_empty() {
            b.chunk(&mut r);
        }
        let mut disk = MemDisk::new();
        for (path, content) in b.files {
            disk.insert_file(&path, content);
        }
        StoreImage {
            disk,
            config: b.config,
            probes: b.probes,
            appends: usize::from((h1 >> 4) & 0x03),
        }
    }
}

/// The length [`encode_record`] produces.
fn encoded_len(rec: &NewRecord<'_>, v2: bool, strip_tail: bool) -> usize {
    rec.encoded_len() + usize::from(v2) - if strip_tail { CRC32_TAIL_LEN } else { 0 }
}

const CRC32_TAIL_LEN: usize = record::CRC32_RESERVED_LEN;

/// `NewRecord::encode`, optionally rewritten as a V2 record (two-byte topic length)
/// and/or as a record written with `enabledAppendPropCRC` off (no `__CRC32#` tail).
/// Either way every CRC in it is right.
pub fn encode_record(
    rec: &NewRecord<'_>,
    queue_offset: i64,
    physical_offset: i64,
    store_timestamp_ms: i64,
    v2: bool,
    strip_tail: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    rec.encode(queue_offset, physical_offset, store_timestamp_ms, &mut out);
    if !v2 && !strip_tail {
        return out;
    }
    let Ok(Slot::Record(view)) = record::parse(&out, record::CrcCheck::Strict) else {
        unreachable!("NewRecord::encode produces a valid record");
    };
    let user_properties = view.user_properties().as_bytes();
    let props_at = out.len() - view.properties.len();
    let topic_len_at = props_at - 2 - view.topic.len() - 1;
    let mut rebuilt = out[..topic_len_at].to_vec();
    if v2 {
        rebuilt.extend_from_slice(&(view.topic.len() as i16).to_be_bytes());
        rebuilt[4..8].copy_from_slice(&MESSAGE_MAGIC_CODE_V2.to_be_bytes());
    } else {
        rebuilt.push(view.topic.len() as u8);
    }
    rebuilt.extend_from_slice(view.topic.as_bytes());
    let props_len = user_properties.len() + if strip_tail { 0 } else { CRC32_TAIL_LEN };
    rebuilt.extend_from_slice(&(props_len as i16).to_be_bytes());
    rebuilt.extend_from_slice(user_properties);
    let total = rebuilt.len() + if strip_tail { 0 } else { CRC32_TAIL_LEN };
    rebuilt[..4].copy_from_slice(&(total as i32).to_be_bytes());
    if !strip_tail {
        let mut crc = masked_crc32(&rebuilt);
        rebuilt.extend_from_slice(PROPERTY_CRC32.as_bytes());
        rebuilt.push(1);
        for _ in 0..10 {
            rebuilt.push(b'0' + (crc % 10) as u8);
            crc /= 10;
        }
        rebuilt.push(2);
    }
    debug_assert_eq!(rebuilt.len(), total);
    rebuilt
}

/// Completes every sync the disk was asked for, until none are left. Bounded: each
/// round completes what the store asked for in the previous one, and the store stops
/// asking once nothing is dirty.
fn settle(store: &mut MessageStore, disk: &mut MemDisk) -> Result<Vec<StoreEvent>, String> {
    const MAX_ROUNDS: usize = 64;
    let mut events = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let tickets = disk.take_requested_syncs();
        if tickets.is_empty() {
            return Ok(events);
        }
        for t in tickets {
            events.push(store.on_sync_complete(disk, t, Ok(())));
        }
    }
    Err(format!("syncs still requested after {MAX_ROUNDS} rounds"))
}

/// Recovers and completes the boot syncs; the store must come up `Ready`.
fn boot(
    disk: &mut MemDisk,
    config: &StoreConfig,
    which: &str,
) -> Result<(MessageStore, RecoveryReport), String> {
    let (mut store, report) =
        recover(disk, config.clone()).map_err(|e| format!("{which} recovery failed: {e}"))?;
    let events = settle(&mut store, disk)?;
    if store.state() != StoreState::Ready {
        return Err(format!(
            "{which} recovery left the store {:?} (events {events:?})",
            store.state()
        ));
    }
    store_check::check_consistency(&store, disk)
        .map_err(|e| format!("after the {which} recovery: {e}"))?;
    Ok((store, report))
}

/// Loads the three config files (primary, then backup, then default): whatever they
/// hold, loading answers instead of panicking.
fn load_config_files(disk: &MemDisk) {
    let _ = ConfigFile::new(TOPICS_PATH).load::<TopicConfigTable>(disk);
    let _ = ConfigFile::new(CONSUMER_OFFSET_PATH).load::<ConsumerOffsetTable>(disk);
    let _ = ConfigFile::new(DELAY_OFFSET_PATH).load::<DelayOffsetTable>(disk);
}

/// Reads by commit-log offset: every recovered record is served, and nothing else is
/// (a record recovery cut off must not come back through its message id).
fn check_reads(
    store: &MessageStore,
    disk: &MemDisk,
    snap: &StoreSnapshot,
    probes: impl Iterator<Item = u64>,
) -> Result<(), String> {
    for r in &snap.records {
        let got = store
            .get_by_commit_log_offset(disk, r.physical_offset)
            .map_err(|e| format!("recovered record at {} unreadable: {e}", r.physical_offset))?;
        if got.bytes != r.bytes {
            return Err(format!(
                "record at {} reads back different bytes",
                r.physical_offset
            ));
        }
    }
    for offset in probes {
        if let Ok(got) = store.get_by_commit_log_offset(disk, offset) {
            let kept = snap
                .records
                .iter()
                .any(|r| r.physical_offset == offset && r.bytes == got.bytes);
            if !kept {
                return Err(format!(
                    "commit-log offset {offset} serves a record that is not in the recovered log"
                ));
            }
        }
    }
    Ok(())
}

/// The first difference between two snapshots, for an error message.
fn describe_difference(a: &StoreSnapshot, b: &StoreSnapshot) -> String {
    if a.written_offset != b.written_offset {
        return format!(
            "written offset {} then {}",
            a.written_offset, b.written_offset
        );
    }
    if a.records.len() != b.records.len() {
        return format!("{} records then {}", a.records.len(), b.records.len());
    }
    if let Some((x, y)) = a.records.iter().zip(&b.records).find(|(x, y)| x != y) {
        return format!(
            "record at {} then a different one at {}",
            x.physical_offset, y.physical_offset
        );
    }
    format!("queues {:?} then {:?}", a.queues, b.queues)
}

/// One fuzz case: decode, recover, check (c) and (d), read, recover again (nothing may
/// change), append, recover once more (the appends survive). Err names the violation;
/// a panic anywhere is a finding too.
pub fn run_recovery_case(data: &[u8]) -> Result<(), String> {
    let StoreImage {
        mut disk,
        config,
        probes,
        appends,
    } = StoreImage::decode(data);
    load_config_files(&disk);

    let (store, report) = boot(&mut disk, &config, "first")?;
    let first = store_check::snapshot(&store, &disk);
    let discarded = report.discarded.iter().map(|d| d.physical_offset);
    check_reads(
        &store,
        &disk,
        &first,
        probes.iter().copied().chain(discarded.take(MAX_PROBES)),
    )?;

    // Recovering a recovered store changes nothing.
    let (mut store, _) = boot(&mut disk, &config, "second")?;
    let second = store_check::snapshot(&store, &disk);
    if first != second {
        return Err(format!(
            "recovery is not idempotent: {}",
            describe_difference(&first, &second)
        ));
    }

    // The recovered store takes new records where the log ended, and they survive.
    let mut appended = Vec::new();
    for i in 0..appends {
        let body = [i as u8; 16];
        let rec = NewRecord {
            topic: TOPICS[i % TOPICS.len()],
            queue_id: (i % 2) as i32,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: Host {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 5555,
            },
            store_host: Host {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 10911,
            },
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: PROPERTIES[1],
        };
        let expected_queue_offset = store.max_queue_offset(rec.topic, rec.queue_id);
        let result = match store.append(&mut disk, &rec, 1_800_000_000_000 + i as i64) {
            Ok(result) => result,
            // A log recovered at the very end of the offset space is full: a refusal,
            // not a failure.
            Err(StoreError::LogFull { .. }) => break,
            Err(e) => return Err(format!("append {i} after recovery failed: {e}")),
        };
        if result.queue_offset != Some(expected_queue_offset) {
            return Err(format!(
                "append {i} took queue offset {:?}, expected {expected_queue_offset}",
                result.queue_offset
            ));
        }
        appended.push(result.physical_offset);
    }
    store
        .request_flush(&mut disk)
        .map_err(|e| format!("flush after appends failed: {e}"))?;
    store
        .request_logic_flush(&mut disk)
        .map_err(|e| format!("logic flush after appends failed: {e}"))?;
    settle(&mut store, &mut disk)?;
    store_check::check_consistency(&store, &disk)
        .map_err(|e| format!("after appending to the recovered store: {e}"))?;
    let before = store_check::snapshot(&store, &disk);
    for offset in &appended {
        if !before.records.iter().any(|r| r.physical_offset == *offset) {
            return Err(format!("appended record at {offset} is not in the log"));
        }
    }
    let (store, _) = boot(&mut disk, &config, "third")?;
    let after = store_check::snapshot(&store, &disk);
    if before != after {
        return Err(format!(
            "recovery after appends changed the store: {}",
            describe_difference(&before, &after)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_an_empty_store() {
        let image = StoreImage::decode(&[]);
        assert!(image.disk.files().is_empty());
        assert_eq!(image.config.commit_log_file_size_bytes, 512);
        run_recovery_case(&[]).unwrap();
    }

    #[test]
    fn record_chunks_build_a_log_that_recovers_whole() {
        // 1 KiB files, strict CRC, base 0; ten records of 100-byte bodies roll files.
        let mut input = vec![0x01, 0x02];
        for i in 0..10u8 {
            input.extend_from_slice(&[1, i % 4, i % 3, 0, 100]);
            input.extend(std::iter::repeat_n(i, 100));
        }
        let mut image = StoreImage::decode(&input);
        let logs = image
            .disk
            .files()
            .keys()
            .filter(|p| p.starts_with("commitlog/"))
            .count();
        assert!(logs >= 2, "records roll into a second file");
        let (store, report) = recover(&mut image.disk, image.config.clone()).unwrap();
        assert_eq!(report.records_recovered, 10, "{report:?}");
        assert!(report.cut.is_none());
        store_check::check_consistency(&store, &image.disk).unwrap();
        run_recovery_case(&input).unwrap();
    }

    #[test]
    fn transformed_records_verify() {
        let rec = NewRecord {
            topic: "TopicTest",
            queue_id: 1,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: Host {
                ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
                port: 1,
            },
            store_host: Host {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 2,
            },
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: b"body",
            properties: PROPERTIES[2],
        };
        for (v2, strip) in [(false, false), (true, false), (false, true), (true, true)] {
            let bytes = encode_record(&rec, 7, 0, 3, v2, strip);
            assert_eq!(bytes.len(), encoded_len(&rec, v2, strip));
            let check = if strip {
                record::CrcCheck::TailOrBody
            } else {
                record::CrcCheck::Strict
            };
            let Ok(Slot::Record(view)) = record::parse(&bytes, check) else {
                panic!("v2={v2} strip={strip}: {:?}", record::parse(&bytes, check));
            };
            assert_eq!(view.topic, "TopicTest");
            assert_eq!(view.queue_offset, 7);
            assert_eq!(view.user_properties(), PROPERTIES[2]);
        }
    }
}
