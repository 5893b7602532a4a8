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
//! - header 0: bits 0-1 the commit-log file size ([`FILE_SIZES`]), bit 2 unused (it was
//!   an option to accept records without the CRC tail; recovery now reads each file's
//!   format from its records), bits 3-6 where the first commit-log file starts
//!   ([`BASE_FILES`]).
//! - header 1: bits 0-3 consume-queue entries per file (2..=16), bits 4-5 how many records
//!   to append after recovery.
//! - chunk kinds: see [`Chunk`].
//!
//! Here: the input format and the decoder's bounds. `builder.rs` turns chunks into
//! files; `recovery_case.rs` runs recovery on the image and judges it.

use rmq_model::store::config_tables::{CONSUMER_OFFSET_PATH, DELAY_OFFSET_PATH, TOPICS_PATH};
use rmq_model::store::record::{
    BLANK_MAGIC_CODE, MESSAGE_MAGIC_CODE_V1, MESSAGE_MAGIC_CODE_V2, MIN_RECORD_LEN,
};
use rmq_model::store::{MemDisk, StoreConfig};

mod builder;
mod fixture;
mod recovery_case;

use builder::Builder;

pub use builder::encode_record;
pub use fixture::tail_less_store_input;
pub use recovery_case::run_recovery_case;

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
            ..StoreConfig::default()
        };
        let mut b = Builder::new(config, h0);
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use rmq_model::store::record::{self, Slot};
    use rmq_model::store::{recover, Host, NewRecord};

    use super::builder::encoded_len;
    use super::*;
    use crate::storage::store_check;

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
