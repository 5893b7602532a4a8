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
//! - Each commit-log file's format is read from its first record (`scan.rs`): with the
//!   `__CRC32#` tail every record of the file must carry one; without it (a RocketMQ that
//!   had `enabledAppendPropCRC` off) records are checked by BODYCRC. RocketMQ has no
//!   such choice to make: its recovery checks the body CRC only. A store is never cut
//!   over which of the two formats it was written in.
//! - A store recovery cannot make sense of is refused, untouched, with
//!   [`StoreError::Refused`] (`survey.rs`, `scan.rs`): commit-log files of another mapped
//!   file size, or a first file that does not start with a RocketMQ record. Damage after
//!   a recognisable start is cut as above; RocketMQ would refuse the first and walk into
//!   the second.
//! - The report counts every record lost at a cut, in the cut file and in every later
//!   file (`salvage` in `scan.rs`), not only those reachable record by record from it.
//!
//! Here: the report and the order of the steps. `survey.rs` lists the commit-log files,
//! `scan.rs` verifies them, `cut.rs` cuts, `queues.rs` rebuilds the consume queues.

mod cut;
mod queues;
mod scan;
mod survey;

use super::checkpoint::Checkpoint;
use super::commit_log::{CommitLog, COMMIT_LOG_DIR};
use super::consume_queue::CqEntry;
use super::disk::{join, Disk};
use super::flush::FlushTracker;
use super::mapped_file::MappedFileQueue;
use super::message_store::{MessageStore, StoreConfig, StoreError, ABORT_PATH};
use super::record::END_FILE_MIN_BLANK_LENGTH;

pub use cut::ZERO_WRITE_BYTES;

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
    /// Start offsets of the commit-log files whose records have no `__CRC32#` tail.
    pub commit_log_files_without_crc_tail: Vec<u64>,
    pub consume_queue_entries_rewritten: u64,
    /// One line per repair or oddity, in the order they happened.
    pub notes: Vec<String>,
}

impl RecoveryReport {
    /// Every record lost at the cut: those listed and those only counted.
    pub fn discarded_count(&self) -> u64 {
        self.discarded.len() as u64 + self.discarded_not_listed
    }

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
        commit_log_files_without_crc_tail: Vec::new(),
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
    // Nothing is written before both have run: either may refuse the store.
    let survey = survey::survey_commit_log(disk, file_size, &mut report)?;
    let scan = scan::scan_commit_log(disk, &survey, file_size, &config.message_delay_level)?;
    let mut chain = survey.repair(disk, &mut report)?;
    report.records_recovered = scan.records;
    report.commit_log_files_without_crc_tail = scan.files_without_crc_tail.clone();
    report.discarded = scan.discarded;
    report.discarded_not_listed = scan.discarded_not_listed;

    let write_offset = match &scan.cut {
        None => scan.end,
        Some((offset, reason, file_index)) => {
            let (tail_zeroed, files_deleted) = cut::cut_commit_log(
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
        cut::zero_range(
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
    let without_tail = scan.files_without_crc_tail.iter().copied();
    let commit_log = CommitLog::recovered(files, write_offset, without_tail.collect());
    report.commit_log_min_offset = commit_log.min_offset();
    report.commit_log_end_offset = write_offset;

    let mut logic_flush = FlushTracker::new(0);
    let queues = queues::rebuild_consume_queues(
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
