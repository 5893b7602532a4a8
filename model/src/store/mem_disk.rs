//! A fault-free in-memory [`Disk`] for unit tests and benchmarks: the page cache is the
//! media, and every sync is recorded so the caller can complete it when it likes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;

use super::disk::{parent_dir, DirEntry, Disk, DiskError, SyncTarget, SyncTicket, SyncWaiter};

#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    files: BTreeMap<String, Vec<u8>>,
    next_ticket: u64,
    requested: Vec<SyncTicket>,
}

impl MemDisk {
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    /// The syncs requested since the last call, oldest first. Nothing is ever lost on a
    /// `MemDisk`, so the caller may report them complete at once.
    pub fn take_requested_syncs(&mut self) -> Vec<SyncTicket> {
        std::mem::take(&mut self.requested)
    }

    /// Completes every requested sync — and those the completions request in turn —
    /// delivering each to `waiter`, until none are left.
    pub fn complete_syncs<W: SyncWaiter>(&mut self, waiter: &mut W) -> Vec<W::Event> {
        let mut events = Vec::new();
        loop {
            let tickets = self.take_requested_syncs();
            if tickets.is_empty() {
                return events;
            }
            for ticket in tickets {
                events.push(waiter.on_sync_complete(self, ticket, Ok(())));
            }
        }
    }

    /// Every file and its bytes, for tests that build or inspect a store image.
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }

    pub fn insert_file(&mut self, path: &str, bytes: Vec<u8>) {
        self.files.insert(path.to_string(), bytes);
    }

    fn file(&self, path: &str) -> Result<&Vec<u8>, DiskError> {
        self.files
            .get(path)
            .ok_or_else(|| DiskError::not_found(path))
    }

    fn file_mut(&mut self, path: &str) -> Result<&mut Vec<u8>, DiskError> {
        self.files
            .get_mut(path)
            .ok_or_else(|| DiskError::not_found(path))
    }
}

/// Lists the immediate children of `dir` among `paths` (sorted, deduplicated). Shared
/// by every in-memory disk so that listing means the same thing everywhere.
pub fn list_children<'a>(dir: &str, paths: impl Iterator<Item = &'a String>) -> Vec<DirEntry> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out: Vec<DirEntry> = Vec::new();
    for path in paths {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        let (name, is_dir) = match rest.find('/') {
            Some(i) => (&rest[..i], true),
            None => (rest, false),
        };
        if out.last().is_some_and(|e| e.name == name) {
            continue;
        }
        out.push(DirEntry {
            name: name.to_string(),
            is_dir,
        });
    }
    out.sort();
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// Bounds-checked slice of a file's bytes.
pub fn slice_of<'a>(
    path: &str,
    bytes: &'a [u8],
    offset: u64,
    len: usize,
) -> Result<&'a [u8], DiskError> {
    range_within(path, bytes.len() as u64, offset, len).map(|range| &bytes[range])
}

/// The bytes a read of `len` at `offset` covers in a file of `file_len` bytes, or the
/// error for a read past its end.
pub fn range_within(
    path: &str,
    file_len: u64,
    offset: u64,
    len: usize,
) -> Result<Range<usize>, DiskError> {
    let end = offset.checked_add(len as u64);
    match end {
        Some(end) if end <= file_len => Ok(offset as usize..end as usize),
        _ => Err(DiskError::PastEnd {
            path: path.to_string(),
            offset,
            len: len as u64,
            file_len,
        }),
    }
}

/// Writes `data` at `offset`, growing `bytes` with zeros first if needed.
pub fn write_into(bytes: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let offset = offset as usize;
    let end = offset + data.len();
    if bytes.len() < offset {
        bytes.resize(offset, 0);
    }
    // The part past the end is appended, not zeroed and then overwritten: syncs grow a
    // media image page by page, and zero-filling each page first doubled their cost.
    let overlap = end.min(bytes.len()) - offset;
    bytes[offset..offset + overlap].copy_from_slice(&data[..overlap]);
    bytes.extend_from_slice(&data[overlap..]);
}

impl Disk for MemDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        if self.files.contains_key(path) {
            return Err(DiskError::AlreadyExists {
                path: path.to_string(),
            });
        }
        self.files.insert(path.to_string(), Vec::new());
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path)
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        Ok(self.file(path)?.len() as u64)
    }

    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.file_mut(path)?.resize(len as usize, 0);
        Ok(())
    }

    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        let bytes = self.file(path)?;
        slice_of(path, bytes, offset, len).map(Cow::Borrowed)
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        write_into(self.file_mut(path)?, offset, data);
        Ok(())
    }

    fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        self.files
            .remove(path)
            .map(|_| ())
            .ok_or(DiskError::not_found(path))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        debug_assert_eq!(parent_dir(from), parent_dir(to));
        let bytes = self
            .files
            .remove(from)
            .ok_or_else(|| DiskError::not_found(from))?;
        self.files.insert(to.to_string(), bytes);
        Ok(())
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError> {
        Ok(list_children(dir, self.files.keys()))
    }

    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError> {
        if let SyncTarget::File(path) = target {
            self.file(path)?;
        }
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        self.requested.push(ticket);
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_shows_files_and_implicit_dirs_once() {
        let mut d = MemDisk::new();
        d.create("consumequeue/T/0/00000000000000000000").unwrap();
        d.create("consumequeue/T/1/00000000000000000000").unwrap();
        d.create("consumequeue/U/0/00000000000000000000").unwrap();
        d.create("checkpoint").unwrap();
        let root: Vec<_> = d.list("").unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(root, vec!["checkpoint", "consumequeue"]);
        let topics = d.list("consumequeue").unwrap();
        assert_eq!(topics.len(), 2);
        assert!(topics.iter().all(|e| e.is_dir));
        let queues: Vec<_> = d
            .list("consumequeue/T")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(queues, vec!["0", "1"]);
    }

    #[test]
    fn write_into_overwrites_straddles_and_fills_gaps_with_zeros() {
        let mut bytes = b"abcd".to_vec();
        write_into(&mut bytes, 1, b"XY");
        assert_eq!(bytes, b"aXYd");
        write_into(&mut bytes, 3, b"PQR");
        assert_eq!(bytes, b"aXYPQR");
        write_into(&mut bytes, 8, b"z");
        assert_eq!(bytes, b"aXYPQR\0\0z");
        write_into(&mut bytes, 9, b"");
        assert_eq!(bytes, b"aXYPQR\0\0z");
        write_into(&mut bytes, 11, b"");
        assert_eq!(bytes, b"aXYPQR\0\0z\0\0");
    }

    #[test]
    fn reads_past_the_end_are_errors_not_panics() {
        let mut d = MemDisk::new();
        d.create("f").unwrap();
        d.write("f", 2, b"ab").unwrap();
        assert_eq!(&*d.read("f", 0, 4).unwrap(), b"\0\0ab");
        assert!(matches!(d.read("f", 3, 2), Err(DiskError::PastEnd { .. })));
        assert!(matches!(
            d.read("f", u64::MAX, 2),
            Err(DiskError::PastEnd { .. })
        ));
    }
}
