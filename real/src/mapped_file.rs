//! [`MappedFiles`]: read-only shared mappings of store files, which [`FsDisk`] reads
//! through and lends to the store without a copy. The one place in rmq-real that maps
//! memory, and so the one place with `unsafe` for it.
//!
//! A mapping covers the file's length when it was mapped. Lending a slice of it needs
//! three things to hold for as long as the slice lives:
//! - the mapping stays mapped: it is unmapped only through `&mut self` (or by drop),
//!   and every lent slice borrows `&self`, so the borrow checker forbids both at once.
//!   A `&self` call that replaces or evicts a mapping moves it to `retired` instead;
//!   retired mappings are unmapped at the next `&mut self` call;
//! - the bytes stay in the file: touching a mapped page past the file's end raises
//!   SIGBUS. Nothing in this process shrinks a file without first calling
//!   [`MappedFiles::forget_all`] (`FsDisk::set_len`); no other process, and no second
//!   `FsDisk` in this one, may touch the store while the broker holds its lock
//!   (`config/store_lock.rs`: an open-file-description lock, so a second locker in
//!   this process is refused as well), the same contract RocketMQ's broker, which maps
//!   every store file, relies on;
//! - the bytes do not change: every write in this process takes `&mut FsDisk`, so none
//!   runs while a slice is lent; other processes are kept out as above.
//!
//! One cost of reading through mappings: a read error of the device (a latent sector
//! error) arrives as SIGBUS and ends the process, where `pread` returned an error. The
//! sector is then unreadable by either path, and the broker restarts into recovery.
//!
//! [`FsDisk`]: crate::fs_disk::FsDisk

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::sync::{Mutex, MutexGuard};

use memmap2::{Mmap, MmapOptions};

/// At most this many files are mapped for reading, and at most this many more mappings
/// wait in `retired` for the next `&mut` call; past both, reads fall back to `pread`.
pub const MAX_MAPPED_FILES: usize = 256;

/// A file's bytes `[0, len)`, mapped read-only and shared, so writes made through the
/// file's descriptors are seen at once (Linux keeps one page cache for both).
#[derive(Debug)]
struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    fn map(file: &File, len: u64) -> io::Result<MappedFile> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an empty file cannot be mapped",
            ));
        }
        // SAFETY: creating the mapping reads nothing; what makes reading it sound (no
        // shrinking, no writes while lent) is argued in the module doc and upheld by
        // `MappedFiles` and its one caller. `len` is the file's length measured by the
        // caller, so no page of the mapping starts past the file's end.
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(MappedFile { map })
    }

    /// `[offset, offset + len)` if it lies inside the mapping.
    fn slice(&self, offset: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        self.map.get(start..end)
    }
}

#[derive(Debug, Default)]
struct Maps {
    /// The mapping reads use, by the disk's relative path.
    live: BTreeMap<String, MappedFile>,
    /// Mappings a `&self` call replaced or evicted; slices of them may still be lent.
    retired: Vec<MappedFile>,
}

/// The bounded set of mappings of one [`crate::fs_disk::FsDisk`].
#[derive(Debug, Default)]
pub struct MappedFiles {
    /// A mutex so that mapping on `&self` keeps the disk `Sync`. Lent slices point into
    /// the mappings' memory, which stays put when a `MappedFile` moves between maps.
    maps: Mutex<Maps>,
}

impl MappedFiles {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        // Every operation on the maps is a single insert, remove, push or lookup: a
        // panic while holding the lock cannot leave them inconsistent.
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes at `[offset, offset + len)` of `path` if its mapping covers them.
    pub fn read(&self, path: &str, offset: u64, len: usize) -> Option<&[u8]> {
        let maps = self.lock();
        let bytes = maps.live.get(path)?.slice(offset, len)?;
        // SAFETY: the slice points into a mapping, not into the guard: the mapping is
        // unmapped only by `forget`, `forget_all`, `release_retired` (all `&mut self`)
        // or by dropping `self`, none of which can happen while the returned slice
        // borrows `&self`; `&self` calls only move it to `retired`, which keeps it
        // mapped. The bytes stay in the file and unchanged while lent (module doc).
        Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) })
    }

    /// Maps `file` (`path`'s open handle) over its first `file_len` bytes, which the
    /// caller has just measured, and lends `[offset, offset + len)` of it. `None` when
    /// both bounds are reached (the caller reads with `pread`), the range is not inside
    /// `file_len`, or mapping fails (at debug level: `pread` still works, and a failure
    /// such as `vm.max_map_count` reached would repeat on every read).
    pub fn map_and_read(
        &self,
        path: &str,
        file: &File,
        file_len: u64,
        offset: u64,
        len: usize,
    ) -> Option<&[u8]> {
        let mut maps = self.lock();
        let replaces = maps.live.contains_key(path);
        let evicts = !replaces && maps.live.len() >= MAX_MAPPED_FILES;
        if (replaces || evicts) && maps.retired.len() >= MAX_MAPPED_FILES {
            return None;
        }
        let mapped = match MappedFile::map(file, file_len) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(path, error = %e, "cannot map for reading; reading with pread");
                return None;
            }
        };
        let bytes = mapped.slice(offset, len)?;
        // SAFETY: as in `read`: the mapping goes into `live` below and leaves it only
        // for `retired` on `&self`, and is unmapped only on `&mut self` or drop.
        let bytes = unsafe { std::slice::from_raw_parts(bytes.as_ptr(), bytes.len()) };
        if evicts {
            // The smallest path: for the commit log, its oldest file.
            if let Some((_, old)) = maps.live.pop_first() {
                maps.retired.push(old);
            }
        }
        if let Some(old) = maps.live.insert(path.to_string(), mapped) {
            maps.retired.push(old);
        }
        debug_assert!(maps.live.len() <= MAX_MAPPED_FILES);
        debug_assert!(maps.retired.len() <= MAX_MAPPED_FILES);
        Some(bytes)
    }

    /// Unmaps what `&self` calls retired: with `&mut self`, no slice is lent.
    pub fn release_retired(&mut self) {
        self.maps_mut().retired.clear();
    }

    /// Unmaps `path` (deleted, or renamed away or over).
    pub fn forget(&mut self, path: &str) {
        let maps = self.maps_mut();
        maps.retired.clear();
        maps.live.remove(path);
    }

    /// Unmaps everything: a file is about to shrink, and another path may name it too
    /// (a symbolic link inside the root), so no mapping of it may survive.
    pub fn forget_all(&mut self) {
        let maps = self.maps_mut();
        maps.retired.clear();
        maps.live.clear();
    }

    /// Live and retired mappings (for tests of the bounds).
    pub fn counts(&self) -> (usize, usize) {
        let maps = self.lock();
        (maps.live.len(), maps.retired.len())
    }

    fn maps_mut(&mut self) -> &mut Maps {
        self.maps.get_mut().unwrap_or_else(|e| e.into_inner())
    }
}
