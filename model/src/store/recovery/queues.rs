//! Consume queues rebuilt to match the verified commit log.

use std::collections::BTreeMap;

use crate::message::is_valid_topic;
use crate::store::consume_queue::{queue_dir, ConsumeQueue, CqEntry, CQ_STORE_UNIT_SIZE};
use crate::store::disk::{join, parent_dir, Disk};
use crate::store::flush::FlushTracker;
use crate::store::mapped_file::{file_name, parse_file_name, MappedFileQueue};
use crate::store::message_store::{StoreConfig, StoreError};

use super::{QueueScan, RecoveryMode, RecoveryReport};

/// Makes every consume queue match the scan: rewrites entries that differ, creates
/// missing files, deletes files and queues the log does not back, zeroes stale tails.
pub(super) fn rebuild_consume_queues(
    disk: &mut dyn Disk,
    scanned: &BTreeMap<String, BTreeMap<i32, QueueScan>>,
    config: &StoreConfig,
    mode: RecoveryMode,
    flush: &mut FlushTracker,
    report: &mut RecoveryReport,
) -> Result<BTreeMap<String, BTreeMap<i32, ConsumeQueue>>, StoreError> {
    const ROOT: &str = "consumequeue";
    let cq_file_size = config.consume_queue_entries_per_file * CQ_STORE_UNIT_SIZE;
    // Queues on disk that the log does not back. Their files go: with no commit-log
    // retention yet, a queue with no record in the log never had one. (When retention
    // deletes old commit-log files, a queue whose records all expired must keep its max
    // offset here rather than restart at 0; that belongs with retention.)
    for topic_entry in disk.list(ROOT)? {
        let topic = topic_entry.name;
        let topic_dir = join(ROOT, &topic);
        if !topic_entry.is_dir || !is_valid_topic(&topic) {
            report.note(format!("{topic_dir}: not a topic directory; ignored"));
            continue;
        }
        for queue_entry in disk.list(&topic_dir)? {
            let queue_dir_path = join(&topic_dir, &queue_entry.name);
            let queue_id = queue_entry.name.parse::<i32>().ok().filter(|q| *q >= 0);
            let Some(queue_id) = queue_id.filter(|_| queue_entry.is_dir) else {
                report.note(format!("{queue_dir_path}: not a queue directory; ignored"));
                continue;
            };
            if scanned.get(&topic).and_then(|q| q.get(&queue_id)).is_some() {
                continue;
            }
            let mut deleted = 0;
            for file in disk.list(&queue_dir_path)? {
                if !file.is_dir && parse_file_name(&file.name).is_some() {
                    disk.delete(&join(&queue_dir_path, &file.name))?;
                    deleted += 1;
                }
            }
            if deleted > 0 {
                report.note(format!(
                    "{queue_dir_path}: no record in the log belongs to this queue; {deleted} files deleted"
                ));
                flush.note_dir_change(&queue_dir_path);
            }
        }
    }

    let mut queues: BTreeMap<String, BTreeMap<i32, ConsumeQueue>> = BTreeMap::new();
    for (topic, by_id) in scanned {
        for (&queue_id, qs) in by_id {
            // Stale entries past a queue's end only come from a crash (a cut, or writes
            // that outran the log's flush); after a clean shutdown the check would read
            // the unused rest of every consume-queue file for nothing.
            let check_tail = mode == RecoveryMode::Abnormal;
            let queue = rebuild_queue(
                disk,
                topic,
                queue_id,
                qs,
                cq_file_size,
                check_tail,
                flush,
                report,
            )?;
            queues
                .entry(topic.clone())
                .or_default()
                .insert(queue_id, queue);
        }
    }
    Ok(queues)
}

#[allow(clippy::too_many_arguments)]
fn rebuild_queue(
    disk: &mut dyn Disk,
    topic: &str,
    queue_id: i32,
    qs: &QueueScan,
    cq_file_size: u64,
    check_tail: bool,
    flush: &mut FlushTracker,
    report: &mut RecoveryReport,
) -> Result<ConsumeQueue, StoreError> {
    let dir = queue_dir(topic, queue_id);
    let max = qs.base + qs.entries.len() as u64;
    let first_start = qs.base * CQ_STORE_UNIT_SIZE / cq_file_size * cq_file_size;
    let last_start = (max * CQ_STORE_UNIT_SIZE - 1) / cq_file_size * cq_file_size;
    // Files outside the needed range hold nothing the log backs.
    for file in disk.list(&dir)? {
        let path = join(&dir, &file.name);
        match parse_file_name(&file.name) {
            Some(s)
                if !file.is_dir && s % cq_file_size == 0 && s >= first_start && s <= last_start => {
            }
            Some(_) if !file.is_dir => {
                report.note(format!("{path}: outside the queue's range; deleted"));
                disk.delete(&path)?;
                flush.note_dir_change(&dir);
            }
            _ => report.note(format!("{path}: not a consume-queue file; ignored")),
        }
    }
    let mut starts = Vec::new();
    let mut start = first_start;
    while start <= last_start {
        let path = join(&dir, &file_name(start));
        if !disk.exists(&path) {
            disk.create(&path)?;
            flush.note_dir_change(&dir);
            flush.note_dir_change(parent_dir(&dir));
            flush.note_dir_change("consumequeue");
        }
        let len = disk.len(&path)?;
        if len != cq_file_size {
            disk.set_len(&path, cq_file_size)?;
            flush.note_write(&path);
        }
        // Entries of this file that the log backs: queue offsets [lo, hi).
        let lo = (start / CQ_STORE_UNIT_SIZE).max(qs.base);
        let hi = ((start + cq_file_size) / CQ_STORE_UNIT_SIZE).min(max);
        let (rewrites, stale_tail) = {
            let bytes = disk.read(&path, 0, cq_file_size as usize)?;
            let mut rewrites: Vec<(u64, [u8; 20])> = Vec::new();
            for q in lo..hi {
                let at = (q * CQ_STORE_UNIT_SIZE - start) as usize;
                let want = qs.entries[(q - qs.base) as usize];
                // Compared as decoded fields, not as 20 bytes: a slice comparison is a
                // `memcmp` call, and there is one entry per record. `from_bytes` and
                // `to_bytes` are inverses, so exactly the same entries differ.
                if CqEntry::from_bytes(&bytes[at..at + 20]) != want {
                    rewrites.push((at as u64, want.to_bytes()));
                }
            }
            let tail_from = (hi * CQ_STORE_UNIT_SIZE - start) as usize;
            let stale = if check_tail {
                last_non_zero(&bytes[tail_from..]).map(|last| (tail_from, tail_from + last + 1))
            } else {
                None
            };
            (rewrites, stale)
        };
        for (at, want) in &rewrites {
            disk.write(&path, *at, want)?;
        }
        if let Some((from, to)) = stale_tail {
            disk.write(&path, from as u64, &vec![0u8; to - from])?;
            report.note(format!(
                "{path}: stale entries after the queue's end zeroed"
            ));
        }
        if !rewrites.is_empty() || stale_tail.is_some() {
            flush.note_write(&path);
        }
        report.consume_queue_entries_rewritten += rewrites.len() as u64;
        starts.push(start);
        start += cq_file_size;
    }
    let files = MappedFileQueue::with_files(dir, cq_file_size, starts);
    Ok(ConsumeQueue::recovered(
        topic, queue_id, files, qs.base, max,
    ))
}

/// The index of the last non-zero byte of `bytes`, if any.
///
/// Why not `iter().rposition(|&b| b != 0)`: recovery asks this of every consume-queue
/// file's tail past the queue's end, which is mostly zeros (a file holds 300,000
/// entries, 6 MB, preallocated), and of the commit-log file's tail after its last
/// record. A byte-at-a-time loop with an early exit does not vectorize; on a clean
/// 64 MiB store with four queues it took longer than the CRC of the whole log. OR-ing
/// fixed 256-byte blocks compiles to SIMD and runs at memory speed; only the block that
/// holds the answer is searched byte by byte.
pub(super) fn last_non_zero(bytes: &[u8]) -> Option<usize> {
    const BLOCK: usize = 256;
    let whole = bytes.len() - bytes.len() % BLOCK;
    if let Some(i) = bytes[whole..].iter().rposition(|&b| b != 0) {
        return Some(whole + i);
    }
    let block = bytes[..whole].chunks_exact(BLOCK).rposition(|block| {
        let block: &[u8; BLOCK] = block.try_into().expect("chunks_exact");
        block.iter().fold(0u8, |acc, &b| acc | b) != 0
    })?;
    let from = block * BLOCK;
    let i = bytes[from..from + BLOCK]
        .iter()
        .rposition(|&b| b != 0)
        .expect("the block has a non-zero byte");
    Some(from + i)
}

#[cfg(test)]
mod tests {
    use super::last_non_zero;

    #[test]
    fn last_non_zero_agrees_with_a_byte_scan() {
        // Lengths around the block size, with the last non-zero byte at every position.
        for len in [0, 1, 255, 256, 257, 511, 512, 1000, 1024, 1300] {
            let zeros = vec![0u8; len];
            assert_eq!(last_non_zero(&zeros), None, "len {len}");
            for at in 0..len {
                let mut bytes = zeros.clone();
                bytes[at] = 0x80;
                if at > 0 {
                    bytes[at / 2] = 1; // an earlier one must not be the answer
                }
                let expected = bytes.iter().rposition(|&b| b != 0);
                assert_eq!(last_non_zero(&bytes), expected, "len {len}, at {at}");
            }
        }
    }
}
