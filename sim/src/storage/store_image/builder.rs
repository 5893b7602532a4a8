//! How chunks become files: well-formed commit-log records (and rolls to the next file),
//! consume-queue entries pointing at them, mutations of what is there, config files.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rmq_model::message::PROPERTY_CRC32;
use rmq_model::store::checkpoint::{CHECKPOINT_FILE_SIZE, CHECKPOINT_PATH};
use rmq_model::store::consume_queue::{CqEntry, CQ_STORE_UNIT_SIZE};
use rmq_model::store::mapped_file::file_name;
use rmq_model::store::record;
use rmq_model::store::record::{
    blank_marker, masked_crc32, Slot, END_FILE_MIN_BLANK_LENGTH, MESSAGE_MAGIC_CODE_V2,
    SYSFLAG_TRANSACTION_PREPARED,
};
use rmq_model::store::{Host, NewRecord, StoreConfig, ABORT_PATH};

use super::{
    Chunk, Reader, BASE_FILES, CONFIG_PATHS, CONFIG_TEMPLATES, INTERESTING_I32, MAX_FILES,
    MAX_IMAGE_BYTES, MAX_LOG_FILES, MAX_PROBES, MAX_REMEMBERED_RECORDS, PROPERTIES, QUEUE_NAMES,
    STRAY_PATHS, TOPICS,
};

pub(super) struct Builder {
    pub(super) files: BTreeMap<String, Vec<u8>>,
    pub(super) total_bytes: usize,
    pub(super) config: StoreConfig,
    pub(super) base_file: u64,
    /// (file index relative to the first, byte position in it).
    pub(super) cursor: (u64, u64),
    pub(super) next_queue_offset: BTreeMap<(&'static str, i32), i64>,
    /// (physical offset, size) of the records written so far.
    pub(super) records: Vec<(u64, u32)>,
    pub(super) probes: Vec<u64>,
    pub(super) store_timestamp_ms: i64,
}

impl Builder {
    /// An empty image; header byte 0 says where the first commit-log file starts.
    pub(super) fn new(config: StoreConfig, header_0: u8) -> Builder {
        Builder {
            files: BTreeMap::new(),
            total_bytes: 0,
            base_file: BASE_FILES[usize::from((header_0 >> 3) & 0x0F)],
            config,
            cursor: (0, 0),
            next_queue_offset: BTreeMap::new(),
            records: Vec::new(),
            probes: Vec::new(),
            store_timestamp_ms: 1_700_000_000_000,
        }
    }

    pub(super) fn file_size(&self) -> u64 {
        self.config.commit_log_file_size_bytes
    }

    pub(super) fn cq_file_size(&self) -> u64 {
        self.config.consume_queue_entries_per_file * CQ_STORE_UNIT_SIZE
    }

    /// The start offset of commit-log file `index` (relative to the first), if the
    /// offset space holds it.
    pub(super) fn log_start(&self, index: u64) -> Option<u64> {
        self.base_file
            .checked_add(index)?
            .checked_mul(self.file_size())
    }

    pub(super) fn log_path(&self, index: u64) -> Option<String> {
        Some(format!("commitlog/{}", file_name(self.log_start(index)?)))
    }

    /// Replaces a file's content, if the image stays within its bounds and remains a
    /// directory tree a real file system could hold: `MemDisk` would let `a` be a file
    /// and a directory at once, which no disk the store runs on can show it.
    pub(super) fn put(&mut self, path: &str, content: Vec<u8>) {
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
    pub(super) fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) {
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

    pub(super) fn existing_file(&self, selector: u8) -> Option<String> {
        if self.files.is_empty() {
            return None;
        }
        let index = usize::from(selector) % self.files.len();
        self.files.keys().nth(index).cloned()
    }

    pub(super) fn chunk(&mut self, r: &mut Reader<'_>) {
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

    pub(super) fn record(&mut self, r: &mut Reader<'_>) {
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
    pub(super) fn roll(&mut self) {
        let (index, pos) = self.cursor;
        let file_size = self.file_size();
        if pos + END_FILE_MIN_BLANK_LENGTH <= file_size {
            if let Some(path) = self.log_path(index) {
                self.write_at(&path, pos, &blank_marker(file_size - pos));
            }
        }
        self.cursor = (index + 1, 0);
    }

    pub(super) fn mutate(&mut self, r: &mut Reader<'_>) {
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

    pub(super) fn cq_entry(&mut self, r: &mut Reader<'_>) {
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

    pub(super) fn config_file(&mut self, r: &mut Reader<'_>) {
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

/// The length [`encode_record`] produces.
pub(super) fn encoded_len(rec: &NewRecord<'_>, v2: bool, strip_tail: bool) -> usize {
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
