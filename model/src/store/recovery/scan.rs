//! The verifying walk over the commit log: every record from the first file's start,
//! until the log ends (zeros, or the end of the last file) or a record fails.
//!
//! A file's format is read from its first record. RocketMQ writes the `__CRC32#` tail
//! only with `enabledAppendPropCRC`, and rocketsim always: if the first record carries a
//! tail, every record of the file must ([`CrcCheck::Strict`]: a record whose tail is gone
//! is damage, never a downgrade to the body CRC); if it has none, the file was written
//! with the option off and its records are checked by BODYCRC, or by their tail when
//! they have one ([`CrcCheck::TailOrBody`]: rocketsim appending to such a file after
//! taking the store over). The first record itself is read under `TailOrBody`, which
//! refuses a record whose tail was damaged or torn rather than taking it for tail-less
//! (`record.rs`). So a store written entirely without tails, or mixing the formats file
//! by file, recovers whole under the default configuration.
//!
//! The first file must start with something RocketMQ writes: a record or a blank marker
//! (possibly damaged: a few bits off), or zeros (a log whose first write never reached
//! the disk, possibly with a flipped bit). Anything else is not a RocketMQ commit log, and the store is refused.

use crate::store::delay_level::MessageDelayLevel;
use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::store::commit_log::COMMIT_LOG_DIR;
use crate::store::consume_queue::CqEntry;
use crate::store::disk::{join, Disk, DiskError};
use crate::store::mapped_file::file_name;
use crate::store::message_store::StoreError;
use crate::store::record::{
    self, CrcCheck, RecordError, Slot, BLANK_MAGIC_CODE, END_FILE_MIN_BLANK_LENGTH,
    MESSAGE_MAGIC_CODE_V1, MESSAGE_MAGIC_CODE_V2,
};

use super::queues::last_non_zero;
use super::survey::Survey;
use super::{DiscardedRecord, QueueScan, MAX_DISCARDED_LISTED};

pub(super) struct Scan {
    pub(super) end: u64,
    /// (offset, reason, index of the file in the chain)
    pub(super) cut: Option<(u64, String, usize)>,
    pub(super) queues: BTreeMap<String, BTreeMap<i32, QueueScan>>,
    pub(super) records: u64,
    pub(super) last_store_timestamp_ms: i64,
    pub(super) discarded: Vec<DiscardedRecord>,
    pub(super) discarded_not_listed: u64,
    /// Blank markers with non-zero bytes behind them: (file start, marker position, end
    /// of the last non-zero byte), all positions within the file. At most one per file.
    pub(super) stale_after_blank: Vec<(u64, u64, u64)>,
    /// Start offsets of the files (before the cut) whose first record has no tail.
    pub(super) files_without_crc_tail: Vec<u64>,
}

/// A damaged magic code differs from RocketMQ's in a few bits; a random one in about
/// half of its 32. Up to this many different bits, the first file's first bytes are
/// taken for a damaged RocketMQ record (and cut), beyond it for something else (and the
/// store refused). About 1 in 70 random words falls within it of one of the four
/// (the three magic codes, and zeros).
const MAGIC_DAMAGED_MAX_BITS: u32 = 8;

/// Reads a whole file; on a read error, the readable prefix (sector by sector) and the
/// offset of the first unreadable sector.
fn read_tolerant<'d>(
    disk: &'d dyn Disk,
    path: &str,
    len: u64,
) -> (Cow<'d, [u8]>, Option<(u64, DiskError)>) {
    match disk.read(path, 0, len as usize) {
        Ok(bytes) => (bytes, None),
        Err(first_error) => {
            const SECTOR: u64 = 512;
            let mut good = Vec::new();
            let mut at = 0;
            while at < len {
                let n = SECTOR.min(len - at);
                match disk.read(path, at, n as usize) {
                    Ok(b) => good.extend_from_slice(&b),
                    Err(e) => return (Cow::Owned(good), Some((at, e))),
                }
                at += n;
            }
            (Cow::Owned(good), Some((0, first_error)))
        }
    }
}

/// A chain file's bytes, `file_size` of them: a file shorter than that (its length
/// never reached the media) reads as zeros past its end, as it will after
/// [`Survey::repair`] extends it.
fn read_file<'d>(
    disk: &'d dyn Disk,
    path: &str,
    len: u64,
    file_size: u64,
) -> (Cow<'d, [u8]>, Option<(u64, DiskError)>) {
    let (bytes, read_error) = read_tolerant(disk, path, len);
    if len >= file_size || read_error.is_some() {
        return (bytes, read_error);
    }
    let mut padded = bytes.into_owned();
    padded.resize(file_size as usize, 0);
    (Cow::Owned(padded), None)
}

/// Why the first file's first bytes are not the start of a RocketMQ commit log, if they
/// are not.
fn unrecognisable_start(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(8)];
    if head.iter().all(|&b| b == 0) {
        return None;
    }
    if head.len() < 8 {
        return Some(format!("{} bytes, too few for a record", head.len()));
    }
    let magic = u32::from_be_bytes(head[4..8].try_into().unwrap());
    // Zero: the unused space of a log whose first write never reached the disk, with a
    // flipped bit in what would have been its TOTALSIZE.
    let known = [
        MESSAGE_MAGIC_CODE_V1,
        MESSAGE_MAGIC_CODE_V2,
        BLANK_MAGIC_CODE,
        0,
    ];
    if known
        .iter()
        .any(|m| (m ^ magic).count_ones() <= MAGIC_DAMAGED_MAX_BITS)
    {
        return None;
    }
    Some(format!(
        "does not start with a RocketMQ commit-log record: magic code {magic:#010x} is \
         none of V1 {MESSAGE_MAGIC_CODE_V1:#010x}, V2 {MESSAGE_MAGIC_CODE_V2:#010x} or \
         the blank marker {BLANK_MAGIC_CODE:#010x}"
    ))
}

/// Walks the log. Read-only: Err only when the store is refused.
pub(super) fn scan_commit_log(
    disk: &dyn Disk,
    survey: &Survey,
    file_size: u64,
    delay_levels: &MessageDelayLevel,
) -> Result<Scan, StoreError> {
    let chain = &survey.chain;
    let min_offset = chain.first().copied().unwrap_or(0);
    let mut scan = Scan {
        end: min_offset,
        cut: None,
        queues: BTreeMap::new(),
        records: 0,
        last_store_timestamp_ms: 0,
        discarded: Vec::new(),
        discarded_not_listed: 0,
        stale_after_blank: Vec::new(),
        files_without_crc_tail: Vec::new(),
    };
    'files: for (file_index, &start) in chain.iter().enumerate() {
        let path = join(COMMIT_LOG_DIR, &file_name(start));
        let (bytes, read_error) = read_file(disk, &path, survey.lens[file_index], file_size);
        if file_index == 0 && read_error.is_none() {
            if let Some(reason) = unrecognisable_start(&bytes) {
                return Err(StoreError::Refused { path, reason });
            }
        }
        // Decided by the file's first record.
        let mut check: Option<CrcCheck> = None;
        let mut pos: usize = 0;
        loop {
            let offset = start + pos as u64;
            scan.end = offset;
            let parsed = record::parse(&bytes[pos..], check.unwrap_or(CrcCheck::TailOrBody));
            let failure = match parsed {
                Ok(Slot::Blank) => {
                    let behind = &bytes[pos + END_FILE_MIN_BLANK_LENGTH as usize..];
                    if let Some(last) = last_non_zero(behind) {
                        let marker_at = pos as u64;
                        let stale_end = marker_at + END_FILE_MIN_BLANK_LENGTH + last as u64 + 1;
                        scan.stale_after_blank.push((start, marker_at, stale_end));
                    }
                    scan.end = start + file_size;
                    continue 'files;
                }
                Ok(Slot::Record(view)) => match accept(
                    &view,
                    offset,
                    start + file_size,
                    min_offset,
                    delay_levels,
                    &mut scan.queues,
                ) {
                    Ok(()) => {
                        if check.is_none() {
                            check = Some(if view.has_crc_tail() {
                                CrcCheck::Strict
                            } else {
                                scan.files_without_crc_tail.push(start);
                                CrcCheck::TailOrBody
                            });
                        }
                        scan.records += 1;
                        scan.last_store_timestamp_ms = view.store_timestamp_ms;
                        pos += view.total_size;
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                // Only a prefix of the file was readable: a blank marker is still a
                // blank marker when an unreadable sector lies in the unused space
                // behind it, and must not cost the files after it.
                Err(_)
                    if read_error.is_some()
                        && is_blank_marker(&bytes[pos..], file_size - pos as u64) =>
                {
                    scan.end = start + file_size;
                    continue 'files;
                }
                Err(e) => match &read_error {
                    Some((bad_at, disk_error)) if *bad_at >= pos as u64 => {
                        format!("unreadable at {}: {disk_error}", start + bad_at)
                    }
                    _ => e.to_string(),
                },
            };
            scan.cut = Some((offset, failure, file_index));
            salvage(disk, survey, file_index, &bytes, pos, file_size, &mut scan);
            break 'files;
        }
    }
    if chain.is_empty() {
        scan.end = 0;
    }
    Ok(scan)
}

fn is_blank_marker(bytes: &[u8], remaining_in_file: u64) -> bool {
    bytes.len() >= 8
        && u32::from_be_bytes(bytes[4..8].try_into().unwrap()) == BLANK_MAGIC_CODE
        && i32::from_be_bytes(bytes[..4].try_into().unwrap()) as i64 == remaining_in_file as i64
}

/// Checks what the CRC cannot: the record is where it says it is, leaves room for the
/// blank marker, and takes the next offset of its queue. Records it in `queues`.
fn accept(
    view: &record::RecordView<'_>,
    offset: u64,
    file_end: u64,
    min_offset: u64,
    delay_levels: &MessageDelayLevel,
    queues: &mut BTreeMap<String, BTreeMap<i32, QueueScan>>,
) -> Result<(), RecordError> {
    if view.physical_offset != offset as i64 {
        return Err(RecordError::WrongPhysicalOffset {
            field: view.physical_offset,
            actual: offset,
        });
    }
    let remaining_after = file_end - offset - view.total_size as u64;
    if remaining_after < END_FILE_MIN_BLANK_LENGTH {
        return Err(RecordError::BadTotalSize {
            total: view.total_size as i64,
            remaining: (file_end - offset) as usize,
        });
    }
    if !view.is_dispatched() {
        return Ok(());
    }
    // Every earlier record of the queue lies before this one and takes at least
    // MIN_RECORD_LEN bytes, so a queue offset above this bound is damage (or a record
    // not written by a store). Without the bound, the first record of a trimmed log
    // could set a queue's base so high that its consume-queue byte offsets overflow.
    let max_plausible = offset / record::MIN_RECORD_LEN as u64;
    if view.queue_offset > 0 && view.queue_offset as u64 > max_plausible {
        return Err(RecordError::ImplausibleQueueOffset {
            queue_offset: view.queue_offset,
            physical_offset: offset,
        });
    }
    let by_id = match queues.get_mut(view.topic) {
        Some(q) => q,
        None => queues.entry(view.topic.to_string()).or_default(),
    };
    let queue = by_id.entry(view.queue_id).or_insert_with(|| QueueScan {
        // A log that still starts at 0 holds every record ever written, so every queue
        // starts at 0; a trimmed log may start a queue anywhere.
        base: if min_offset == 0 {
            0
        } else {
            view.queue_offset.max(0) as u64
        },
        entries: Vec::new(),
    });
    let expected = queue.base + queue.entries.len() as u64;
    if view.queue_offset != expected as i64 {
        let (topic, queue_id) = (view.topic.to_string(), view.queue_id);
        if queue.entries.is_empty() {
            by_id.remove(&queue_id);
            if by_id.is_empty() {
                queues.remove(&topic);
            }
        }
        return Err(RecordError::QueueOffsetOutOfSequence {
            topic,
            queue_id,
            expected: expected as i64,
            found: view.queue_offset,
        });
    }
    queue.entries.push(CqEntry {
        commit_log_offset: offset as i64,
        size: view.total_size as i32,
        tags_code: delay_levels.dispatch_tags_code(
            view.topic,
            view.properties,
            view.store_timestamp_ms,
        ),
    });
    Ok(())
}

/// Lists every record lost at a cut: each one that still parses whole (its CRC may
/// be what failed) at the offset it names, from the cut to the end of its file and in
/// every later file. Where a slot does not parse, the walk resumes at the next position
/// holding a record magic code and its own offset, so one damaged record does not hide
/// the records behind it.
fn salvage(
    disk: &dyn Disk,
    survey: &Survey,
    file_index: usize,
    bytes: &[u8],
    cut_pos: usize,
    file_size: u64,
    scan: &mut Scan,
) {
    salvage_file(survey.chain[file_index], bytes, cut_pos, scan);
    for index in file_index + 1..survey.chain.len() {
        let start = survey.chain[index];
        let path = join(COMMIT_LOG_DIR, &file_name(start));
        let (bytes, _) = read_file(disk, &path, survey.lens[index], file_size);
        salvage_file(start, &bytes, 0, scan);
    }
}

fn salvage_file(start: u64, bytes: &[u8], from: usize, scan: &mut Scan) {
    // Zeros hold no record: the walk ends at the last non-zero byte (most of a file
    // past a torn tail is zeros; this keeps the byte-by-byte resync off them).
    let Some(last) = last_non_zero(&bytes[from.min(bytes.len())..]) else {
        return;
    };
    let end = from + last + 1;
    let mut pos = from;
    while pos < end {
        match record::parse(&bytes[pos..], CrcCheck::Skip) {
            Ok(Slot::Record(v)) if v.physical_offset == (start + pos as u64) as i64 => {
                list_discarded(scan, start + pos as u64, &v);
                pos += v.total_size;
                continue;
            }
            Ok(Slot::Blank) => return,
            _ => {}
        }
        pos = next_record_candidate(bytes, start, pos + 1, end);
    }
}

/// The first position in `[from, end)` where a record could start: its magic code is a
/// record's and its PHYSICALOFFSET names that position. `end` if there is none.
fn next_record_candidate(bytes: &[u8], start: u64, from: usize, end: usize) -> usize {
    const PHYSICAL_OFFSET_AT: usize = 28;
    let mut pos = from;
    while pos < end && pos + PHYSICAL_OFFSET_AT + 8 <= bytes.len() {
        let magic = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        if magic == MESSAGE_MAGIC_CODE_V1 || magic == MESSAGE_MAGIC_CODE_V2 {
            let at = &bytes[pos + PHYSICAL_OFFSET_AT..pos + PHYSICAL_OFFSET_AT + 8];
            if i64::from_be_bytes(at.try_into().unwrap()) == (start + pos as u64) as i64 {
                return pos;
            }
        }
        pos += 1;
    }
    end
}

fn list_discarded(scan: &mut Scan, offset: u64, v: &record::RecordView<'_>) {
    if scan.discarded.len() >= MAX_DISCARDED_LISTED {
        scan.discarded_not_listed += 1;
        return;
    }
    scan.discarded.push(DiscardedRecord {
        physical_offset: offset,
        size: v.total_size as u32,
        topic: v.topic.to_string(),
        queue_id: v.queue_id,
        queue_offset: v.queue_offset,
        store_timestamp_ms: v.store_timestamp_ms,
    });
}
