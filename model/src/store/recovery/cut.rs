//! Cutting the commit log: later files deleted, the rest of the cut file zeroed (why
//! zeroed, not left as RocketMQ leaves it: see the module doc of `recovery`).

use crate::store::commit_log::COMMIT_LOG_DIR;
use crate::store::disk::{join, Disk, DiskError};
use crate::store::mapped_file::file_name;
use crate::store::message_store::StoreError;

use super::queues::last_non_zero;
use super::RecoveryReport;

/// Cuts the log at `offset` in `chain[file_index]`: later files go; non-zero bytes
/// after the cut in its file are zeroed. Returns whether it zeroed, and how many files
/// it deleted.
pub(super) fn cut_commit_log(
    disk: &mut dyn Disk,
    chain: &mut Vec<u64>,
    offset: u64,
    file_index: usize,
    file_size: u64,
    report: &mut RecoveryReport,
) -> Result<(bool, usize), StoreError> {
    let files_deleted = chain.len() - file_index - 1;
    for &start in &chain[file_index + 1..] {
        let path = join(COMMIT_LOG_DIR, &file_name(start));
        report.note(format!("{path}: lies past the cut at {offset}; deleted"));
        disk.delete(&path)?;
    }
    chain.truncate(file_index + 1);
    let start = chain[file_index];
    let path = join(COMMIT_LOG_DIR, &file_name(start));
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
pub(super) fn zero_range(
    disk: &mut dyn Disk,
    path: &str,
    from: u64,
    to: u64,
) -> Result<(), DiskError> {
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
