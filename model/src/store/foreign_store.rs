//! A store as another RocketMQ implementation leaves it, built by this project's encoder:
//! records without the `__CRC32#` tail (RocketMQ writes it only with
//! `enabledAppendPropCRC`), consume queues, a RocketMQ 5 checkpoint (a field at 0x28
//! that 4.x does not have) and, after a crash, an `abort` file holding the broker's PID.
//! Tests, the real-disk tests and the recovery fuzzer's corpus use it to check that
//! recovery takes such a store for what it is. The store itself never writes one.

use super::checkpoint::{Checkpoint, CHECKPOINT_FILE_SIZE, CHECKPOINT_PATH};
use super::commit_log::COMMIT_LOG_DIR;
use super::consume_queue::{queue_dir, CqEntry, CQ_STORE_UNIT_SIZE};
use super::disk::{join, Disk, DiskError};
use super::mapped_file::file_name;
use super::message_store::ABORT_PATH;
use super::record::{blank_marker, Host, NewRecord, END_FILE_MIN_BLANK_LENGTH};

/// RocketMQ 5's checkpoint holds a sixth i64 here; 4.x and rocketsim write 40 bytes.
pub const CHECKPOINT_EXTRA_FIELD_AT: u64 = 0x28;
/// What the fixture puts in that field, so a test can see it survive.
pub const CHECKPOINT_EXTRA_FIELD: i64 = 0x0102_0304_0506_0708;
/// First store timestamp; each record is one millisecond later.
pub const FIRST_STORE_TIMESTAMP_MS: i64 = 1_700_000_000_000;
pub const TOPICS: [&str; 2] = ["TopicTest", "%RETRY%please_rename_unique_group_name"];
pub const QUEUES_PER_TOPIC: i32 = 4;

/// What to build.
#[derive(Clone, Debug)]
pub struct ForeignStoreSpec {
    pub commit_log_file_size_bytes: u64,
    pub consume_queue_entries_per_file: u64,
    pub records: usize,
    /// Which commit-log files (by index from the first) carry the `__CRC32#` tail:
    /// bit i for file i. 0 is a store written entirely with the option off.
    pub files_with_crc_tail: u64,
    /// Crashed: the `abort` file holds a PID and the last record is torn (its second
    /// half never reached the disk). Otherwise a clean shutdown.
    pub crashed: bool,
}

/// Where a fixture record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignRecord {
    pub physical_offset: u64,
    pub size: u32,
    pub topic: &'static str,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub with_crc_tail: bool,
}

/// What was built.
#[derive(Clone, Debug)]
pub struct ForeignStore {
    /// Every record written, the torn one included (it is last).
    pub records: Vec<ForeignRecord>,
    /// The torn record's offset, when crashed.
    pub torn_at: Option<u64>,
}

impl ForeignStore {
    /// The records a correct recovery keeps.
    pub fn whole_records(&self) -> &[ForeignRecord] {
        let n = self.records.len() - usize::from(self.torn_at.is_some());
        &self.records[..n]
    }
}

fn host(port: i32) -> Host {
    Host {
        ip: "192.168.0.7".parse().unwrap(),
        port,
    }
}

/// The body of fixture record `i`: its size varies so records straddle sectors.
pub fn body_of(i: usize) -> Vec<u8> {
    let len = 16 + (i * 37) % 300;
    (0..len).map(|j| (i * 31 + j) as u8).collect()
}

/// Properties as a 4.9.8 broker stores them: the trailing U+0002 stripped, CLUSTER added.
fn properties_of(i: usize) -> String {
    format!(
        "UNIQ_KEY\u{1}7F00000100002A9F0000000000{i:06}\u{2}CLUSTER\u{1}DefaultCluster\u{2}TAGS\u{1}Tag{}",
        i % 3
    )
}

/// Writes the store onto `disk` (which should be empty).
pub fn write_foreign_store(
    disk: &mut dyn Disk,
    spec: &ForeignStoreSpec,
) -> Result<ForeignStore, DiskError> {
    let file_size = spec.commit_log_file_size_bytes;
    let cq_file_size = spec.consume_queue_entries_per_file * CQ_STORE_UNIT_SIZE;
    let mut files: Vec<Vec<u8>> = vec![Vec::new()];
    let mut records = Vec::new();
    let mut next_queue_offset = std::collections::BTreeMap::new();
    for i in 0..spec.records {
        let body = body_of(i);
        let props = properties_of(i);
        let topic = TOPICS[i % TOPICS.len()];
        let queue_id = (i / TOPICS.len()) as i32 % QUEUES_PER_TOPIC;
        let rec = NewRecord {
            topic,
            queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: FIRST_STORE_TIMESTAMP_MS - 5,
            born_host: host(52344),
            store_host: host(10911),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: &props,
        };
        let mut index = files.len() - 1;
        let with_tail = |index: usize| index < 64 && spec.files_with_crc_tail & (1 << index) != 0;
        let len = |index: usize| {
            if with_tail(index) {
                rec.encoded_len()
            } else {
                rec.encoded_len_without_crc_tail()
            }
        } as u64;
        let pos = files[index].len() as u64;
        if pos + len(index) + END_FILE_MIN_BLANK_LENGTH > file_size {
            files[index].extend_from_slice(&blank_marker(file_size - pos));
            files.push(Vec::new());
            index += 1;
        }
        let physical_offset = index as u64 * file_size + files[index].len() as u64;
        let queue_offset = next_queue_offset.entry((topic, queue_id)).or_insert(0i64);
        let out = &mut files[index];
        let store_timestamp_ms = FIRST_STORE_TIMESTAMP_MS + i as i64;
        if with_tail(index) {
            rec.encode(
                *queue_offset,
                physical_offset as i64,
                store_timestamp_ms,
                out,
            );
        } else {
            rec.encode_without_crc_tail(
                *queue_offset,
                physical_offset as i64,
                store_timestamp_ms,
                out,
            );
        }
        records.push(ForeignRecord {
            physical_offset,
            size: len(index) as u32,
            topic,
            queue_id,
            queue_offset: *queue_offset,
            with_crc_tail: with_tail(index),
        });
        *queue_offset += 1;
    }
    let mut torn_at = None;
    if spec.crashed {
        if let Some(last) = records.last() {
            let index = (last.physical_offset / file_size) as usize;
            let from = (last.physical_offset % file_size) as usize + last.size as usize / 2;
            files[index][from..].fill(0);
            torn_at = Some(last.physical_offset);
        }
    }
    for (index, mut content) in files.into_iter().enumerate() {
        content.resize(file_size as usize, 0);
        let path = join(COMMIT_LOG_DIR, &file_name(index as u64 * file_size));
        disk.create(&path)?;
        disk.write(&path, 0, &content)?;
    }
    // Every record has its consume-queue entry, the torn one too: RocketMQ's reput had
    // dispatched it from the page cache before the crash.
    for (i, r) in records.iter().enumerate() {
        let dir = queue_dir(r.topic, r.queue_id);
        let at = r.queue_offset as u64 * CQ_STORE_UNIT_SIZE;
        let start = at / cq_file_size * cq_file_size;
        let path = join(&dir, &file_name(start));
        if !disk.exists(&path) {
            disk.create(&path)?;
            disk.set_len(&path, cq_file_size)?;
        }
        let entry = CqEntry {
            commit_log_offset: r.physical_offset as i64,
            size: r.size as i32,
            tags_code: crate::message::tags_code(Some(&format!("Tag{}", i % 3))),
        };
        disk.write(&path, at - start, &entry.to_bytes())?;
    }
    let last_ts = FIRST_STORE_TIMESTAMP_MS + spec.records as i64 - 1;
    let checkpoint = Checkpoint {
        physic_msg_timestamp_ms: last_ts,
        logics_msg_timestamp_ms: last_ts,
        index_msg_timestamp_ms: last_ts,
        master_flushed_offset: 0,
        confirm_phy_offset: 0,
    };
    disk.create(CHECKPOINT_PATH)?;
    disk.set_len(CHECKPOINT_PATH, CHECKPOINT_FILE_SIZE)?;
    disk.write(CHECKPOINT_PATH, 0, &checkpoint.to_bytes())?;
    disk.write(
        CHECKPOINT_PATH,
        CHECKPOINT_EXTRA_FIELD_AT,
        &CHECKPOINT_EXTRA_FIELD.to_be_bytes(),
    )?;
    if spec.crashed {
        disk.create(ABORT_PATH)?;
        disk.write(ABORT_PATH, 0, b"48213\n")?;
    }
    Ok(ForeignStore { records, torn_at })
}
