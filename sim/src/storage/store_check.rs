//! Judges a recovered store from the outside: its logical content (for comparing two
//! recoveries) and the invariants every recovered store must satisfy, whatever the
//! disk held before:
//!
//! - (c) every consume-queue entry in `[min, max)` points at a whole, CRC-valid record
//!   of the same topic, queue and queue offset;
//! - (d) queue offsets are dense: each queue's records in the log take exactly the
//!   offsets `min..max`, in log order, one each.

use std::collections::BTreeMap;

use rmq_model::store::record::{self, Slot};
use rmq_model::store::{Disk, MessageStore};

/// A record as the log holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRecord {
    pub physical_offset: u64,
    pub bytes: Vec<u8>,
}

/// What a store holds, independent of how its files are laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSnapshot {
    pub records: Vec<LoggedRecord>,
    /// (topic, queue id) → (min, max, commit-log offset of each entry in `[min, max)`).
    pub queues: BTreeMap<(String, i32), (u64, u64, Vec<u64>)>,
    pub written_offset: u64,
}

/// Walks the log from its first file to the write offset, hopping blank markers.
/// Stops (returning what it has and the reason) at anything that does not verify.
pub fn logged_records(
    store: &MessageStore,
    disk: &dyn Disk,
) -> (Vec<LoggedRecord>, Option<String>) {
    let log = store.commit_log();
    let file_size = log.file_size();
    let mut out = Vec::new();
    let mut offset = log.min_offset();
    while offset < store.written_offset() {
        // Header first, then exactly the record: an unreadable sector elsewhere in the
        // file is none of this record's business.
        let header = match log.read(disk, offset, 8) {
            Ok(Some(b)) => b,
            Ok(None) => return (out, Some(format!("nothing readable at {offset}"))),
            Err(e) => return (out, Some(format!("read at {offset}: {e}"))),
        };
        let total = i32::from_be_bytes(header[..4].try_into().unwrap());
        let magic = u32::from_be_bytes(header[4..8].try_into().unwrap());
        if magic == record::BLANK_MAGIC_CODE {
            offset = (offset / file_size + 1) * file_size;
            continue;
        }
        let bytes = match log.read(disk, offset, u64::try_from(total).unwrap_or(0)) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return (
                    out,
                    Some(format!("record at {offset} claims {total} bytes")),
                )
            }
            Err(e) => return (out, Some(format!("read at {offset}: {e}"))),
        };
        match record::parse(&bytes, log.crc_check_at(offset)) {
            Ok(Slot::Record(v)) => {
                out.push(LoggedRecord {
                    physical_offset: offset,
                    bytes: v.bytes.to_vec(),
                });
                offset += v.total_size as u64;
            }
            Ok(Slot::Blank) => offset = (offset / file_size + 1) * file_size,
            Err(e) => return (out, Some(format!("record at {offset}: {e}"))),
        }
    }
    (out, None)
}

pub fn snapshot(store: &MessageStore, disk: &dyn Disk) -> StoreSnapshot {
    let (records, _) = logged_records(store, disk);
    let mut queues = BTreeMap::new();
    for q in store.queues() {
        let offsets = (q.min_offset()..q.max_offset())
            .map(|o| {
                q.get(disk, o)
                    .ok()
                    .flatten()
                    .map_or(u64::MAX, |e| e.commit_log_offset as u64)
            })
            .collect();
        queues.insert(
            (q.topic().to_string(), q.queue_id()),
            (q.min_offset(), q.max_offset(), offsets),
        );
    }
    StoreSnapshot {
        records,
        queues,
        written_offset: store.written_offset(),
    }
}

/// Checks (c) and (d); the error names the first violation found.
pub fn check_consistency(store: &MessageStore, disk: &dyn Disk) -> Result<(), String> {
    let (records, stopped) = logged_records(store, disk);
    if let Some(reason) = stopped {
        return Err(format!(
            "recovered log does not verify to its end: {reason}"
        ));
    }
    // (d): each queue's dispatched records take min.. in log order.
    let mut next: BTreeMap<(String, i32), u64> = BTreeMap::new();
    for r in &records {
        let Ok(Slot::Record(v)) = record::parse(&r.bytes, record::CrcCheck::Skip) else {
            return Err(format!("record at {} stopped parsing", r.physical_offset));
        };
        if !v.is_dispatched() {
            continue;
        }
        let key = (v.topic.to_string(), v.queue_id);
        let queue = store.queue(v.topic, v.queue_id).ok_or_else(|| {
            format!(
                "record at {} belongs to missing queue {key:?}",
                r.physical_offset
            )
        })?;
        let expected = next.entry(key.clone()).or_insert(queue.min_offset());
        if v.queue_offset != *expected as i64 {
            return Err(format!(
                "record at {} of {key:?} has queue offset {}, expected {}",
                r.physical_offset, v.queue_offset, expected
            ));
        }
        *expected += 1;
    }
    // (c): every served entry is its record; and the queue's max is where the log's
    // records of that queue end.
    for q in store.queues() {
        for o in q.min_offset()..q.max_offset() {
            store
                .get_message(disk, q.topic(), q.queue_id(), o)
                .map_err(|e| format!("{}-{}@{o}: {e}", q.topic(), q.queue_id()))?;
        }
        let key = (q.topic().to_string(), q.queue_id());
        let end = next.get(&key).copied().unwrap_or(q.min_offset());
        if end != q.max_offset() {
            return Err(format!(
                "queue {key:?} has max {} but the log's records end at {end}",
                q.max_offset()
            ));
        }
    }
    Ok(())
}
