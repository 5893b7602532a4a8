//! The one door between the storage engine and a disk.
//!
//! Reads and writes are synchronous against the page cache (as with mmap): a write is
//! visible to the next read at once. Durability is never synchronous: the store *asks*
//! for an fsync of a file or a directory and gets a [`SyncTicket`]; the driver (the
//! simulator, the real runtime, a test) later tells the store that the ticket completed.
//! What becomes durable is what the page cache held when the sync was *requested*.
//!
//! Directory operations (create, delete, rename) are durable only after a sync of the
//! directory that holds the entry. Paths are relative, `/`-separated, with no `.`/`..`
//! parts; directories exist implicitly while they hold a file.

use std::borrow::Cow;
use std::fmt;

/// A request for durability, answered later by the driver.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SyncTicket(pub u64);

impl fmt::Display for SyncTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sync#{}", self.0)
    }
}

/// What a sync makes durable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncTarget<'a> {
    /// The data and length of one file (fsync).
    File(&'a str),
    /// The entries of one directory: files created, deleted or renamed in it.
    Dir(&'a str),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: no such file")]
    NotFound { path: String },
    #[error("{path}: already exists")]
    AlreadyExists { path: String },
    #[error("{path}: read of {len} bytes at {offset} is past the end ({file_len} bytes)")]
    PastEnd {
        path: String,
        offset: u64,
        len: u64,
        file_len: u64,
    },
    /// A latent sector error, a dead disk, an OS error.
    #[error("{path}: I/O error: {detail}")]
    Io { path: String, detail: String },
}

impl DiskError {
    pub fn not_found(path: &str) -> DiskError {
        DiskError::NotFound {
            path: path.to_string(),
        }
    }

    pub fn io(path: &str, detail: impl Into<String>) -> DiskError {
        DiskError::Io {
            path: path.to_string(),
            detail: detail.into(),
        }
    }

    pub fn path(&self) -> &str {
        match self {
            DiskError::NotFound { path }
            | DiskError::AlreadyExists { path }
            | DiskError::PastEnd { path, .. }
            | DiskError::Io { path, .. } => path,
        }
    }
}

/// One name in a directory listing.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
}

/// A disk as the storage engine sees it. Implementations: `MemDisk` (no faults, for
/// unit tests and benches), the simulator's `SimDisk` (faults from a seed) and the real
/// runtime's file-backed disk.
pub trait Disk {
    /// Creates an empty file; parent directories come into being implicitly.
    fn create(&mut self, path: &str) -> Result<(), DiskError>;
    fn exists(&self, path: &str) -> bool;
    fn len(&self, path: &str) -> Result<u64, DiskError>;
    /// Grows the file with zeros or cuts it.
    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError>;
    /// Exactly `len` bytes at `offset`; borrowed where the disk can (page cache, mmap).
    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError>;
    /// Writes into the page cache, growing the file if the write reaches past its end.
    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError>;
    fn delete(&mut self, path: &str) -> Result<(), DiskError>;
    /// Atomically replaces `to` (if present) with `from`. Both in the same directory.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;
    /// The immediate children of `dir` ("" is the root), sorted by name.
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError>;
    /// Asks for durability; completion is reported later by the driver.
    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError>;
}

/// Whatever asked a disk for syncs and takes their completions: the store, a config
/// file. Lets a driver deliver completions without knowing who asked.
pub trait SyncWaiter {
    type Event;
    fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> Self::Event;
}

/// The directory part of a path ("" for a top-level file).
pub fn parent_dir(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[..i],
        None => "",
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
