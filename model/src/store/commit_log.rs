//! The commit log: every record of every topic, appended one after another into
//! fixed-size files under `commitlog/` (reference A.1, A.2).

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::disk::{Disk, DiskError};
use super::flush::FlushTracker;
use super::mapped_file::MappedFileQueue;
use super::record::{blank_marker, CrcCheck, END_FILE_MIN_BLANK_LENGTH};

pub const COMMIT_LOG_DIR: &str = "commitlog";

/// Physical offsets are i64 on disk (in every record, consume-queue entry and message
/// id): no commit-log file may reach past this. Recovery ignores files that would; the
/// store refuses appends that might need one (`StoreError::LogFull`).
pub const END_OF_OFFSET_SPACE: u64 = 1 << 63;

#[derive(Clone, Debug)]
pub struct CommitLog {
    files: MappedFileQueue,
    /// One past the last byte of the last record (RocketMQ's max physical offset).
    write_offset: u64,
    /// Start offsets of the files written by a RocketMQ with `enabledAppendPropCRC` off
    /// (their first record has no `__CRC32#` tail): their records are verified by BODYCRC
    /// unless they carry a tail. Every other file's records must carry one. Recovery
    /// decides it (`recovery/scan.rs`); the files this store creates carry tails.
    files_without_crc_tail: BTreeSet<u64>,
}

impl CommitLog {
    pub fn new(file_size: u64) -> CommitLog {
        CommitLog {
            files: MappedFileQueue::new(COMMIT_LOG_DIR, file_size),
            write_offset: 0,
            files_without_crc_tail: BTreeSet::new(),
        }
    }

    /// A commit log recovery has verified up to `write_offset`.
    pub fn recovered(
        files: MappedFileQueue,
        write_offset: u64,
        files_without_crc_tail: BTreeSet<u64>,
    ) -> CommitLog {
        debug_assert!(files.is_empty() || files.min_offset().unwrap() <= write_offset);
        debug_assert!(files.end_offset().unwrap_or(write_offset) >= write_offset);
        debug_assert!(files_without_crc_tail
            .iter()
            .all(|s| files.starts().contains(s)));
        CommitLog {
            files,
            write_offset,
            files_without_crc_tail,
        }
    }

    /// How a record at `physical_offset` proves its integrity: by its `__CRC32#` tail,
    /// or in a file written without tails, by its tail if it has one, else its BODYCRC.
    pub fn crc_check_at(&self, physical_offset: u64) -> CrcCheck {
        let start = physical_offset - physical_offset % self.file_size();
        if self.files_without_crc_tail.contains(&start) {
            CrcCheck::TailOrBody
        } else {
            CrcCheck::Strict
        }
    }

    /// Marks the file holding `physical_offset` as written without tails: a slave
    /// copying a master's file that starts with a tail-less record.
    pub fn note_file_without_crc_tail(&mut self, physical_offset: u64) {
        let start = physical_offset - physical_offset % self.file_size();
        self.files_without_crc_tail.insert(start);
    }

    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }

    pub fn file_size(&self) -> u64 {
        self.files.file_size()
    }

    pub fn write_offset(&self) -> u64 {
        self.write_offset
    }

    /// The lowest offset still stored.
    pub fn min_offset(&self) -> u64 {
        self.files.min_offset().unwrap_or(self.write_offset)
    }

    /// Where a record of `len` bytes goes. If it does not fit in the current file with
    /// room left for the blank marker, the file is closed with the marker and the
    /// record starts the next file (`DefaultAppendMessageCallback.doAppend`).
    pub fn position_for(
        &mut self,
        disk: &mut dyn Disk,
        len: u64,
        flush: &mut FlushTracker,
    ) -> Result<u64, DiskError> {
        let file_size = self.file_size();
        assert!(
            len + END_FILE_MIN_BLANK_LENGTH <= file_size,
            "caller checks the size"
        );
        if let Some(start) = self.files.file_for(self.write_offset) {
            let remaining = start + file_size - self.write_offset;
            if len + END_FILE_MIN_BLANK_LENGTH <= remaining {
                return Ok(self.write_offset);
            }
            let path = self.files.path_of(start);
            disk.write(&path, self.write_offset - start, &blank_marker(remaining))?;
            flush.note_write(&path);
            self.write_offset = start + file_size;
        }
        // No file holds the write offset: it sits at the end of the last one (or the
        // store is empty), so the next file starts here.
        let start = self.write_offset - self.write_offset % file_size;
        self.files.create_file(disk, start)?;
        // A file this store creates is written with tails from its first record.
        self.files_without_crc_tail.remove(&start);
        flush.note_dir_change(COMMIT_LOG_DIR);
        self.write_offset = start;
        Ok(start)
    }

    /// Writes a record's bytes at the position `position_for` gave.
    pub fn write(
        &mut self,
        disk: &mut dyn Disk,
        physical_offset: u64,
        bytes: &[u8],
        flush: &mut FlushTracker,
    ) -> Result<(), DiskError> {
        assert_eq!(physical_offset, self.write_offset);
        let start = self
            .files
            .file_for(physical_offset)
            .expect("position_for made it");
        let path = self.files.path_of(start);
        disk.write(&path, physical_offset - start, bytes)?;
        flush.note_write(&path);
        self.write_offset += bytes.len() as u64;
        Ok(())
    }

    /// The bytes at `[physical_offset, physical_offset + len)` if they lie inside one
    /// file and below the write offset; None otherwise.
    pub fn read<'d>(
        &self,
        disk: &'d dyn Disk,
        physical_offset: u64,
        len: u64,
    ) -> Result<Option<Cow<'d, [u8]>>, DiskError> {
        let Some(end) = physical_offset.checked_add(len) else {
            return Ok(None);
        };
        if end > self.write_offset || len == 0 {
            return Ok(None);
        }
        let Some(start) = self.files.file_for(physical_offset) else {
            return Ok(None);
        };
        if end > start + self.file_size() {
            return Ok(None);
        }
        let bytes = disk.read(
            &self.files.path_of(start),
            physical_offset - start,
            len as usize,
        )?;
        Ok(Some(bytes))
    }
}
