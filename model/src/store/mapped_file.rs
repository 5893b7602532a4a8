//! A directory of fixed-size files named by the global byte offset they start at
//! (`MappedFileQueue`, `UtilAll.offset2FileName`): the shape shared by the commit log
//! and every consume queue.

use super::disk::{join, Disk, DiskError};
use std::borrow::Cow;

/// Twenty decimal digits, zero-padded.
pub fn file_name(start_offset: u64) -> String {
    format!("{start_offset:020}")
}

/// The start offset a file name stands for, or None if it is not such a name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    if name.len() != 20 || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The files of one directory, contiguous: file `i` starts at `first + i * file_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFileQueue {
    dir: String,
    file_size: u64,
    /// Start offsets, ascending, each `file_size` after the previous.
    starts: Vec<u64>,
    /// `paths[i]` is the path of the file starting at `starts[i]` (built once: paths
    /// are asked for on every read and write).
    paths: Vec<String>,
}

impl MappedFileQueue {
    pub fn new(dir: impl Into<String>, file_size: u64) -> MappedFileQueue {
        assert!(file_size > 0);
        MappedFileQueue {
            dir: dir.into(),
            file_size,
            starts: Vec::new(),
            paths: Vec::new(),
        }
    }

    /// Adopts files that recovery has already checked to be contiguous.
    pub fn with_files(dir: impl Into<String>, file_size: u64, starts: Vec<u64>) -> Self {
        let mut q = MappedFileQueue::new(dir, file_size);
        for pair in starts.windows(2) {
            assert_eq!(pair[0] + file_size, pair[1], "files must be contiguous");
        }
        q.paths = starts
            .iter()
            .map(|&s| join(&q.dir, &file_name(s)))
            .collect();
        q.starts = starts;
        q
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    pub fn starts(&self) -> &[u64] {
        &self.starts
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The offset the first file starts at (the lowest offset still stored).
    pub fn min_offset(&self) -> Option<u64> {
        self.starts.first().copied()
    }

    /// One past the last byte the files can hold.
    pub fn end_offset(&self) -> Option<u64> {
        self.starts.last().map(|s| s + self.file_size)
    }

    /// The path of the file starting at `start`, borrowed when the file exists (reads
    /// and writes ask for it at every record).
    pub fn path_of(&self, start: u64) -> Cow<'_, str> {
        match self.starts.binary_search(&start) {
            Ok(i) => Cow::Borrowed(&self.paths[i]),
            Err(_) => Cow::Owned(join(&self.dir, &file_name(start))),
        }
    }

    /// The start of the file holding `offset`, if one does.
    pub fn file_for(&self, offset: u64) -> Option<u64> {
        let first = *self.starts.first()?;
        if offset < first {
            return None;
        }
        let index = ((offset - first) / self.file_size) as usize;
        self.starts.get(index).copied()
    }

    /// Creates the file starting at `start` at full size (RocketMQ preallocates), which
    /// must be the next one in line.
    pub fn create_file(&mut self, disk: &mut dyn Disk, start: u64) -> Result<(), DiskError> {
        if let Some(end) = self.end_offset() {
            assert_eq!(start, end, "a new file must follow the last one");
        }
        assert_eq!(
            start % self.file_size,
            0,
            "files start at multiples of their size"
        );
        let path = self.path_of(start).into_owned();
        disk.create(&path)?;
        disk.set_len(&path, self.file_size)?;
        self.starts.push(start);
        self.paths.push(path);
        Ok(())
    }

    /// Deletes every file that starts at or after `offset`; returns how many went.
    pub fn delete_files_from(
        &mut self,
        disk: &mut dyn Disk,
        offset: u64,
    ) -> Result<usize, DiskError> {
        let keep = self.starts.partition_point(|&s| s < offset);
        self.starts.truncate(keep);
        let doomed: Vec<String> = self.paths.drain(keep..).collect();
        for path in &doomed {
            disk.delete(path)?;
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemDisk;

    #[test]
    fn names_are_twenty_digits() {
        assert_eq!(file_name(0), "00000000000000000000");
        assert_eq!(file_name(1_073_741_824), "00000000001073741824");
        assert_eq!(parse_file_name("00000000001073741824"), Some(1_073_741_824));
        assert_eq!(parse_file_name("0000000000107374182"), None);
        assert_eq!(parse_file_name("0000000000107374182x"), None);
        assert_eq!(parse_file_name("99999999999999999999"), None);
    }

    #[test]
    fn files_are_found_by_offset() {
        let mut disk = MemDisk::new();
        let mut q = MappedFileQueue::new("commitlog", 100);
        q.create_file(&mut disk, 0).unwrap();
        q.create_file(&mut disk, 100).unwrap();
        assert_eq!(disk.len("commitlog/00000000000000000100").unwrap(), 100);
        assert_eq!(q.file_for(0), Some(0));
        assert_eq!(q.file_for(199), Some(100));
        assert_eq!(q.file_for(200), None);
        assert_eq!(q.delete_files_from(&mut disk, 100).unwrap(), 1);
        assert!(!disk.exists("commitlog/00000000000000000100"));
        assert_eq!(q.end_offset(), Some(100));
    }
}
