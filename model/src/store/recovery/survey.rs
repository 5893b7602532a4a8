//! Which files make up the commit log, and whether the store was written with the
//! configured mapped file size. Read-only: the repairs it finds are made by
//! [`Survey::repair`] once the scan has also accepted the store.
//!
//! RocketMQ refuses to load a commit-log file whose length is not the configured size
//! (`MappedFileQueue.doLoad`, "length not matched"). rocketsim refuses a file that is
//! longer, or named at an offset that is not a multiple of the size: both say the store
//! was written with another `mappedFileSizeCommitLog`, and cutting or ignoring such a
//! file would destroy records. A file that is *shorter* is what a crash leaves when the
//! file's length never reached the media, so it is extended with zeros.

use crate::store::commit_log::{COMMIT_LOG_DIR, END_OF_OFFSET_SPACE};
use crate::store::disk::{join, Disk};
use crate::store::mapped_file::{file_name, parse_file_name};
use crate::store::message_store::StoreError;

use super::RecoveryReport;

/// The commit-log files as found.
pub(super) struct Survey {
    /// The contiguous run of files from the first one: the log.
    pub(super) chain: Vec<u64>,
    /// Each chain file's length (at most the configured size).
    pub(super) lens: Vec<u64>,
    /// Files after a gap: no record can span a gap, so they lie past an earlier cut
    /// whose deletions were not all durable, and they go.
    after_gap: Vec<u64>,
    file_size: u64,
}

fn path_of(start: u64) -> String {
    join(COMMIT_LOG_DIR, &file_name(start))
}

/// Lists `commitlog/` and refuses a store written with another mapped file size.
pub(super) fn survey_commit_log(
    disk: &dyn Disk,
    file_size: u64,
    report: &mut RecoveryReport,
) -> Result<Survey, StoreError> {
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
            Some(start) if !entry.is_dir => {
                return Err(StoreError::Refused {
                    path,
                    reason: format!(
                        "starts at offset {start}, not a multiple of the configured \
                         {file_size}-byte commit-log file size: the store was written \
                         with another mapped file size (set commit_log_file_size_bytes \
                         to the size of its files)"
                    ),
                })
            }
            _ => report.note(format!("{path}: not a commit-log file; ignored")),
        }
    }
    let mut chain: Vec<u64> = Vec::new();
    let mut after_gap = Vec::new();
    for start in starts {
        match chain.last() {
            Some(&last) if last + file_size != start || !after_gap.is_empty() => {
                after_gap.push(start)
            }
            _ => chain.push(start),
        }
    }
    let mut lens = Vec::with_capacity(chain.len());
    for &start in chain.iter().chain(&after_gap) {
        let path = path_of(start);
        let len = disk.len(&path)?;
        if len > file_size {
            return Err(StoreError::Refused {
                path,
                reason: format!(
                    "{len} bytes, more than the configured {file_size}-byte commit-log \
                     file size: the store was written with another mapped file size \
                     (set commit_log_file_size_bytes to {len})"
                ),
            });
        }
        lens.push(len);
    }
    lens.truncate(chain.len());
    Ok(Survey {
        chain,
        lens,
        after_gap,
        file_size,
    })
}

impl Survey {
    /// Deletes the files after a gap and extends short files with zeros. Returns the
    /// chain.
    pub(super) fn repair(
        self,
        disk: &mut dyn Disk,
        report: &mut RecoveryReport,
    ) -> Result<Vec<u64>, StoreError> {
        for &start in &self.after_gap {
            let path = path_of(start);
            report.note(format!(
                "{path}: follows a gap in the commit log; deleted (no record can span a gap)"
            ));
            disk.delete(&path)?;
        }
        for (&start, &len) in self.chain.iter().zip(&self.lens) {
            if len != self.file_size {
                let path = path_of(start);
                report.note(format!(
                    "{path}: {len} bytes instead of {}; extended with zeros",
                    self.file_size
                ));
                disk.set_len(&path, self.file_size)?;
            }
        }
        Ok(self.chain)
    }
}
