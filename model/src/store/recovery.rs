//! Boot is recovery: what survived on the disk becomes a [`MessageStore`].
//!
//! Following RocketMQ (`DefaultMessageStore.recover`, `CommitLog.recoverNormally` /
//! `recoverAbnormally`, reference A.6): the `abort` marker tells a clean shutdown
//! (normal recovery) from a crash (abnormal recovery); the commit log is walked record
//! by record with CRC verification; **the first record that fails ends the log** — what
//! follows it is cut off, exactly as RocketMQ treats a torn tail, even when the failure
//! is bit rot in the middle of the durable region (RocketMQ has no way to skip a record
//! whose header it cannot trust, and neither do we). The records cut off behind a
//! damaged one are listed in the [`RecoveryReport`] so a checker can tell loss by
//! damage from loss by bug. Consume queues are then rebuilt to match the log.
//!
//! Where rocketsim deliberately differs from RocketMQ, and why:
//! - The whole commit log is verified on every boot, not from the third-to-last file
//!   (normal) or the checkpoint's file (abnormal): bit rot in old files is found at boot,
//!   and a clock that jumped cannot fool the checkpoint's timestamps. The cost is a
//!   verifying scan of every byte; the `store` bench compares it with raw CRC32 over
//!   the same bytes.
//! - Every consume-queue entry is checked against the log, not only the last files: a
//!   damaged entry is rewritten, so every entry served points at a whole record of its
//!   topic, queue and queue offset.
//! - Stale bytes after the cut are zeroed instead of left in place, where a later,
//!   shorter record could end right where an old valid record begins and resurrect it,
//!   and where a read by commit-log offset (a message id) would still find a discarded
//!   record whole and verified. Zeroing (not an end-of-file marker) is what makes the cut
//!   stick across a second crash: whichever of the zeroing writes and the deletions of
//!   later files reach the media, the bytes at the cut are either the bad bytes that
//!   caused it or zeros, so the next scan stops there again and never walks on into a
//!   deleted-but-back file. Stray bytes behind any blank marker the scan meets are
//!   zeroed for the same reason.
//! - The recovered log is fsynced before the store accepts writes (it may have been in
//!   a crashed process's page cache only), so nothing served after boot can vanish.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::checkpoint::Checkpoint;
use super::commit_log::{CommitLog, COMMIT_LOG_DIR, END_OF_OFFSET_SPACE};
use super::consume_queue::{queue_dir, ConsumeQueue, CqEntry, CQ_STORE_UNIT_SIZE};
use super::disk::{join, Disk, DiskError};
use super::flush::FlushTracker;
use super::mapped_file::{parse_file_name, MappedFileQueue};
use super::message_store::{MessageStore, StoreConfig, StoreError, ABORT_PATH};
use super::record::{self, RecordError, Slot, END_FILE_MIN_BLANK_LENGTH};
use crate::message::is_valid_topic;

/// At most this many cut-off records are listed one by one; the rest are counted.
pub const MAX_DISCARDED_LISTED: usize = 4096;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RecoveryMode {
    /// No abort marker: the last run shut down cleanly.
    Normal,
    /// Abort marker present: the last run crashed.
    Abnormal,
}

/// Where the commit log was cut and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub offset: u64,
    pub reason: String,
    /// Bytes after the cut in its file were not all zero (a torn or damaged tail, or
    /// records written after a damaged one), so they were zeroed.
    pub tail_zeroed: bool,
}

/// A whole, valid-looking record found behind the cut and discarded with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscardedRecord {
    pub physical_offset: u64,
    pub size: u32,
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub store_timestamp_ms: i64,
}

/// What recovery found and did; every repair carries its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    pub mode: RecoveryMode,
    pub checkpoint: Option<Checkpoint>,
    pub records_recovered: u64,
    pub commit_log_min_offset: u64,
    pub commit_log_end_offset: u64,
    pub cut: Option<Cut>,
    pub discarded: Vec<DiscardedRecord>,
    /// Discarded records beyond [`MAX_DISCARDED_LISTED`].
    pub discarded_not_listed: u64,
    pub consume_queue_entries_rewritten: u64,
    /// One line per repair or oddity, in the order they happened.
    pub notes: Vec<String>,
}

impl RecoveryReport {
    fn note(&mut self, line: String) {
        tracing::warn!(target: "rmq_model::store::recovery", "{line}");
        self.notes.push(line);
    }
}

/// Expected consume-queue contents for one queue, built from the log.
#[derive(Clone, Debug, Default)]
struct QueueScan {
    base: u64,
    entries: Vec<CqEntry>,
}

struct Scan {
    end: u64,
    /// (offset, reason, index of the file in the chain)
    cut: Option<(u64, String, usize)>,
    queues: BTreeMap<String, BTreeMap<i32, QueueScan>>,
    records: u64,
    last_store_timestamp_ms: i64,
    discarded: Vec<DiscardedRecord>,
    discarded_not_listed: u64,
    /// Blank markers with non-zero bytes behind them: (file start, marker position, end
    /// of the last non-zero byte), all positions within the file. At most one per file.
    stale_after_blank: Vec<(u64, u64, u64)>,
}

/// Rebuilds a store from `disk`. The store starts `Booting`: the caller completes the
/// syncs it requested (`MessageStore::outstanding_syncs`), after which it is `Ready`.
pub fn recover(
    disk: &mut dyn Disk,
    config: StoreConfig,
) -> Result<(MessageStore, RecoveryReport), StoreError> {
    config.validate()?;
    let mode = if disk.exists(ABORT_PATH) {
        RecoveryMode::Abnormal
    } else {
        RecoveryMode::Normal
    };
    let mut report = RecoveryReport {
        mode,
        checkpoint: None,
        records_recovered: 0,
        commit_log_min_offset: 0,
        commit_log_end_offset: 0,
        cut: None,
        discarded: Vec::new(),
        discarded_not_listed: 0,
        consume_queue_entries_rewritten: 0,
        notes: Vec::new(),
    };
    if disk.exists(super::checkpoint::CHECKPOINT_PATH) {
        match Checkpoint::load(disk) {
            Ok(c) => report.checkpoint = Some(c),
            Err(reason) => report.note(reason),
        }
    }

    let file_size = config.commit_log_file_size_bytes;
    let mut chain = load_commit_log_files(disk, file_size, &mut report)?;
    let scan = scan_commit_log(disk, &chain, &config);
    report.records_recovered = scan.records;
    report.discarded = scan.discarded;
    report.discarded_not_listed = scan.discarded_not_listed;

    let write_offset = match &scan.cut {
        None => scan.end,
        Some((offset, reason, file_index)) => {
            let (tail_zeroed, files_deleted) = cut_commit_log(
                disk,
                &mut chain,
                *offset,
                *file_index,
                file_size,
                &mut report,
            )?;
            // Zeros after the last record are the log's natural end, not a cut.
            if tail_zeroed || files_deleted > 0 || !report.discarded.is_empty() {
                report.cut = Some(Cut {
                    offset: *offset,
                    reason: reason.clone(),
                    tail_zeroed,
                });
            }
            *offset
        }
    };
    // A blank marker ends its file; whatever sits behind it is not part of the log.
    // Every such file lies before the cut, so it is still in the chain.
    for &(start, marker_at, stale_end) in &scan.stale_after_blank {
        let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
        zero_range(
            disk,
            &path,
            marker_at + END_FILE_MIN_BLANK_LENGTH,
            stale_end,
        )?;
        report.note(format!(
            "{path}: non-zero bytes behind the end-of-file marker at {}; zeroed",
            start + marker_at
        ));
    }
    if mode == RecoveryMode::Normal
        && (report.cut.as_ref().is_some_and(|c| c.tail_zeroed) || !report.discarded.is_empty())
    {
        report.note("after a clean shutdown the log had damage past its end".to_string());
    }
    let files = MappedFileQueue::with_files(COMMIT_LOG_DIR, file_size, chain);
    let commit_log = CommitLog::recovered(files, write_offset);
    report.commit_log_min_offset = commit_log.min_offset();
    report.commit_log_end_offset = write_offset;

    let mut logic_flush = FlushTracker::new(0);
    let queues = rebuild_consume_queues(
        disk,
        &scan.queues,
        &config,
        mode,
        &mut logic_flush,
        &mut report,
    )?;
    if mode == RecoveryMode::Normal && report.consume_queue_entries_rewritten > 0 {
        report.note(format!(
            "after a clean shutdown {} consume-queue entries disagreed with the log",
            report.consume_queue_entries_rewritten
        ));
    }

    // The boot sync: the whole recovered log, its directory, and the abort marker.
    let mut commit_log_flush = FlushTracker::new(0);
    for &start in commit_log.files().starts() {
        commit_log_flush.note_write(&commit_log.files().path_of(start));
    }
    commit_log_flush.note_dir_change(COMMIT_LOG_DIR);
    if !disk.exists(ABORT_PATH) {
        disk.create(ABORT_PATH)?;
    }
    commit_log_flush.note_dir_change("");
    commit_log_flush.request(disk, write_offset)?;
    logic_flush.request(disk, 1)?;

    let checkpoint = report.checkpoint.unwrap_or_default();
    let store = MessageStore::assemble(
        config,
        commit_log,
        queues,
        commit_log_flush,
        logic_flush,
        checkpoint,
        scan.last_store_timestamp_ms,
    );
    Ok((store, report))
}

/// Lists `commitlog/`, keeps the contiguous run of files from the first one, and gives
/// every kept file the configured length.
fn load_commit_log_files(
    disk: &mut dyn Disk,
    file_size: u64,
    report: &mut RecoveryReport,
) -> Result<Vec<u64>, StoreError> {
    let mut starts = Vec::new();
    for entry in disk.list(COMMIT_LOG_DIR)? {
        let path = join(COMMIT_LOG_DIR, &entry.name);
        match parse_file_name(&entry.name) {
            // A file reaching past the i64 offset space could hold records no consume
            // queue or message id can name (near the top of the name space its end
            // would not even fit a u64). The store never writes there (see
            // `END_OF_OFFSET_SPACE`), so leaving it alone cannot collide with a new file.
            Some(start) if !entry.is_dir && start > END_OF_OFFSET_SPACE - file_size => {
                report.note(format!(
                    "{path}: starts at {start}, so it would end past the 63-bit offset space; ignored"
                ))
            }
            Some(start) if !entry.is_dir && start % file_size == 0 => starts.push(start),
            Some(_) if !entry.is_dir => report.note(format!(
                "{path}: start offset is not a multiple of the {file_size}-byte file size; ignored"
            )),
            _ => report.note(format!("{path}: not a commit-log file; ignored")),
        }
    }
    let mut chain: Vec<u64> = Vec::new();
    for start in starts {
        match chain.last() {
            Some(&last) if last + file_size != start => {
                let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
                report.note(format!(
                    "{path}: follows a gap after {}; deleted (no record can span a gap)",
                    last + file_size
                ));
                disk.delete(&path)?;
            }
            _ => chain.push(start),
        }
    }
    for &start in &chain {
        let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
        let len = disk.len(&path)?;
        if len != file_size {
            report.note(format!(
                "{path}: {len} bytes instead of {file_size}; {}",
                if len < file_size {
                    "extended with zeros"
                } else {
                    "cut to size"
                }
            ));
            disk.set_len(&path, file_size)?;
        }
    }
    Ok(chain)
}

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

fn scan_commit_log(disk: &dyn Disk, chain: &[u64], config: &StoreConfig) -> Scan {
    let file_size = config.commit_log_file_size_bytes;
    let crc = config.crc_check();
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
    };
    'files: for (file_index, &start) in chain.iter().enumerate() {
        let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
        let (bytes, read_error) = read_tolerant(disk, &path, file_size);
        let mut pos: usize = 0;
        loop {
            let offset = start + pos as u64;
            scan.end = offset;
            let parsed = record::parse(&bytes[pos..], crc);
            let failure = match parsed {
                Ok(Slot::Blank) => {
                    let behind = &bytes[pos + END_FILE_MIN_BLANK_LENGTH as usize..];
                    if let Some(last) = behind.iter().rposition(|&b| b != 0) {
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
                    &mut scan.queues,
                ) {
                    Ok(()) => {
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
            salvage(disk, chain, file_index, &bytes, pos, config, &mut scan);
            break 'files;
        }
    }
    if chain.is_empty() {
        scan.end = 0;
    }
    scan
}

fn is_blank_marker(bytes: &[u8], remaining_in_file: u64) -> bool {
    bytes.len() >= 8
        && u32::from_be_bytes(bytes[4..8].try_into().unwrap()) == record::BLANK_MAGIC_CODE
        && i32::from_be_bytes(bytes[..4].try_into().unwrap()) as i64 == remaining_in_file as i64
}

/// Checks what the CRC cannot: the record is where it says it is, leaves room for the
/// blank marker, and takes the next offset of its queue. Records it in `queues`.
fn accept(
    view: &record::RecordView<'_>,
    offset: u64,
    file_end: u64,
    min_offset: u64,
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
        tags_code: view.tags_code(),
    });
    Ok(())
}

/// Lists the whole records behind a cut, for the report. Skips the failed record by its
/// own TOTALSIZE when that is plausible, then walks on while records verify.
fn salvage(
    disk: &dyn Disk,
    chain: &[u64],
    file_index: usize,
    bytes: &[u8],
    cut_pos: usize,
    config: &StoreConfig,
    scan: &mut Scan,
) {
    let file_size = config.commit_log_file_size_bytes;
    let crc = config.crc_check();
    let mut pos = cut_pos;
    // The failed slot itself: a CRC failure on a structurally whole record is listed.
    if let Ok(Slot::Record(v)) = record::parse(&bytes[pos..], record::CrcCheck::Skip) {
        list_discarded(scan, chain[file_index] + pos as u64, &v);
        pos += v.total_size;
    } else if bytes.len() >= pos + 4 {
        let total = i32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap());
        if total >= record::MIN_RECORD_LEN as i32 && pos + total as usize <= bytes.len() {
            pos += total as usize;
        } else {
            return;
        }
    }
    let mut current: Cow<'_, [u8]> = Cow::Borrowed(bytes);
    let mut index = file_index;
    loop {
        match record::parse(&current[pos.min(current.len())..], crc) {
            Ok(Slot::Record(v)) => {
                list_discarded(scan, chain[index] + pos as u64, &v);
                pos += v.total_size;
            }
            Ok(Slot::Blank) if index + 1 < chain.len() => {
                index += 1;
                let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(chain[index]));
                current = read_tolerant(disk, &path, file_size).0;
                pos = 0;
            }
            _ => return,
        }
    }
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

/// Cuts the log at `offset` in `chain[file_index]`: later files go; non-zero bytes
/// after the cut in its file are zeroed. Returns whether it zeroed, and how many files
/// it deleted.
fn cut_commit_log(
    disk: &mut dyn Disk,
    chain: &mut Vec<u64>,
    offset: u64,
    file_index: usize,
    file_size: u64,
    report: &mut RecoveryReport,
) -> Result<(bool, usize), StoreError> {
    let files_deleted = chain.len() - file_index - 1;
    for &start in &chain[file_index + 1..] {
        let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
        report.note(format!("{path}: lies past the cut at {offset}; deleted"));
        disk.delete(&path)?;
    }
    chain.truncate(file_index + 1);
    let start = chain[file_index];
    let path = join(COMMIT_LOG_DIR, &super::mapped_file::file_name(start));
    let remaining = start + file_size - offset;
    // Zero up to the last non-zero byte; an unreadable tail is zeroed whole (the write
    // also lets the drive remap the bad sectors once it reaches the media).
    let zero_end = match disk.read(&path, offset - start, remaining as usize) {
        Ok(tail) => last_non_zero(&tail).map(|last| offset - start + last as u64 + 1),
        Err(_) => Some(file_size),
    };
    let Some(zero_end) = zero_end else {
        return Ok((false, files_deleted));
    };
    zero_range(disk, &path, offset - start, zero_end)?;
    report.note(format!(
        "{path}: {} bytes after the cut at {offset} were not empty; zeroed",
        zero_end - (offset - start)
    ));
    Ok((true, files_deleted))
}

/// Zeroes `[from, to)` of a file, in writes of at most [`ZERO_WRITE_BYTES`] (a commit-log
/// file may be 1 GiB: no buffer the size of the range).
fn zero_range(disk: &mut dyn Disk, path: &str, from: u64, to: u64) -> Result<(), DiskError> {
    static ZEROS: [u8; ZERO_WRITE_BYTES] = [0; ZERO_WRITE_BYTES];
    let mut at = from;
    while at < to {
        let n = (to - at).min(ZERO_WRITE_BYTES as u64);
        disk.write(path, at, &ZEROS[..n as usize])?;
        at += n;
    }
    Ok(())
}

/// The largest single write [`zero_range`] issues.
pub const ZERO_WRITE_BYTES: usize = 64 * 1024;

/// Makes every consume queue match the scan: rewrites entries that differ, creates
/// missing files, deletes files and queues the log does not back, zeroes stale tails.
fn rebuild_consume_queues(
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
        let path = join(&dir, &super::mapped_file::file_name(start));
        if !disk.exists(&path) {
            disk.create(&path)?;
            flush.note_dir_change(&dir);
            flush.note_dir_change(super::disk::parent_dir(&dir));
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
fn last_non_zero(bytes: &[u8]) -> Option<usize> {
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
