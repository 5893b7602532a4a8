//! [`FsDisk`]: the store's [`Disk`] over a real directory.
//!
//! Every trait path is relative to the root given to [`FsDisk::open`] and is checked
//! lexically before it touches the file system (no absolute paths, no empty, `.` or
//! `..` components), so no path the store builds can name a file outside the root.
//! Symbolic links an operator placed inside the root are followed, as RocketMQ users
//! expect when they move a store directory to another volume.
//!
//! Reads go through read-only shared mappings of the files (`mapped_file.rs`) and lend
//! the mapped bytes to the store (`Cow::Borrowed`); writes are positioned I/O (`pwrite`)
//! on cached handles, which the mappings see at once since both are views of the one
//! page cache (which plays the model's page cache). A read inside a file's mapping makes
//! no system call; one past it measures the file (`fstat`), maps it again if it grew,
//! and reports a read past the end as the model does. Measured with `cargo bench -p
//! rmq-real --bench fs_disk_read`, medians of one run on the project's machine (ext4
//! on a virtual disk, data in the page cache), `pread` being the path reads took before
//! (`fstat`, then `pread` into a new buffer):
//! - one pulled message (`get_message`, 1 KiB body): 3.82 µs → 1.37 µs (2.8×);
//! - one 20-byte consume-queue entry: 0.70 µs → 0.12 µs (5.9×);
//! - one 32 KiB replication batch, the slave 64 KiB / 1 MiB / 16 MiB behind: 119 µs /
//!   3.39 ms / 110 ms → 4.1 / 4.2 / 4.7 µs (each record is parsed from a read of the
//!   rest of the file up to the durable offset, free when lent, a copy with `pread`).
//!
//! End to end, `real/bench/broker.sh ASYNC_FLUSH 4 64 10 3` (10 s of sends, then 3 s of
//! `mqbench consume` over that backlog; two rounds each, on two cores other builds
//! shared, so only the size of the gap is meaningful): 61k and 71k deliveries/s with
//! `pread`, 120k and 98k with mappings; the broker's CPU per delivery about 3 µs and
//! 1 µs (at 10 ms tick resolution).
//!
//! Mappings are read-only, bounded ([`MAX_MAPPED_FILES`]) and dropped before anything
//! could make them lie (see `mapped_file.rs`); past the bound, reads copy with `pread`.
//!
//! Syncs run in one of two modes, and either way their outcomes wait for
//! [`FsDisk::take_completed`], so the driver hands them back to the store exactly as
//! the simulator hands back a simulated sync:
//! - [`FsDisk::open`]: at once, inside `request_sync`, while the store waits (tests,
//!   tools, recovery checks);
//! - [`FsDisk::open_threaded`]: on a worker thread (`sync_worker.rs`), on a cloned
//!   descriptor, while the broker keeps serving; the completion arrives later, and a
//!   waker set with [`FsDisk::set_waker`] tells the event loop.
//!
//! A file sync is `fdatasync` (`File::sync_data`): it writes the file's data and the
//! metadata needed to read it back, which includes its length (fdatasync(2): "a change
//! to the file size ... would require a metadata flush"), and skips timestamps, which
//! nothing reads. Writes stay `pwrite` rather than `mmap` + `msync`: measured on the
//! project's machine (ext4 on a virtual disk; `cargo run --release -p rmq-real
//! --example fsync_cost -- 300`), making one 4 KiB append durable took a median of
//! about 4.0 ms either way (the device's flush dominates), but `pwrite` + `fdatasync`
//! wrote about 7.3 KiB to the device per append and `msync` of the one dirty page
//! about 1 MiB.
//!
//! Directories are implicit in the trait (a directory exists while it holds a file), so
//! `create` makes missing parents and `delete` removes parents it left empty, and a
//! directory sync also syncs every ancestor up to the root: a new subdirectory's entry
//! lives in its parent.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rmq_model::store::disk::parent_dir;
use rmq_model::store::{DirEntry, Disk, DiskError, SyncTarget, SyncTicket, SyncWaiter};

use crate::fs_sync::{dir_path, map_io, sync_dir_chain, sync_file};
use crate::mapped_file::MappedFiles;
pub use crate::mapped_file::MAX_MAPPED_FILES;
pub use crate::sync_worker::MAX_SYNCS_IN_FLIGHT;
use crate::sync_worker::{SyncJob, SyncWorker, Waker};

/// At most this many files are kept open; beyond it the handle with the smallest path
/// is closed (for the commit log, its oldest file).
pub const MAX_OPEN_FILES: usize = 256;

/// At most this many syncs are outstanding (requested and not yet taken with
/// [`FsDisk::take_completed`]). The store keeps at most a few hundred in flight (64
/// flush batches of a few files each), so reaching this means the driver stopped
/// draining completions: a bug in the driver, not a condition of the disk.
pub const MAX_COMPLETIONS_PENDING: usize = 65_536;

/// Where syncs run.
enum Syncs {
    /// Inside `request_sync`; the outcomes wait here.
    Inline {
        completed: Vec<(SyncTicket, Result<(), DiskError>)>,
        waker: Option<Waker>,
    },
    /// On a worker thread.
    Threaded(SyncWorker),
}

impl std::fmt::Debug for Syncs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Syncs::Inline { completed, waker } => f
                .debug_struct("Inline")
                .field("completed", completed)
                .field("waker", &waker.is_some())
                .finish(),
            Syncs::Threaded(worker) => worker.fmt(f),
        }
    }
}

/// A [`Disk`] backed by the files under one root directory.
#[derive(Debug)]
pub struct FsDisk {
    root: PathBuf,
    /// Open read-write handles by relative path. A mutex, not a `RefCell`, so that an
    /// `FsDisk` stays `Sync`; `read` takes `&self` and still fills the cache.
    handles: Mutex<BTreeMap<String, File>>,
    /// What reads go through; every `&mut self` method unmaps what reads retired.
    mapped: MappedFiles,
    next_ticket: u64,
    syncs: Syncs,
    /// The planted durability bug (`planted_write_behind.rs`), in its builds only.
    #[cfg(feature = "planted-bugs")]
    write_behind: crate::planted_write_behind::WriteBehind,
}

impl FsDisk {
    /// Opens (creating it and its parents if needed) the directory `root`.
    /// Syncs run at once inside `request_sync`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsDisk> {
        let syncs = Syncs::Inline {
            completed: Vec::new(),
            waker: None,
        };
        FsDisk::open_with(root.into(), syncs)
    }

    /// Like [`FsDisk::open`], but syncs run on a worker thread of their own; their
    /// outcomes arrive later (see [`FsDisk::set_waker`], [`FsDisk::wait_completed`]).
    /// Dropping the disk waits for the syncs already requested.
    pub fn open_threaded(root: impl Into<PathBuf>) -> io::Result<FsDisk> {
        let root = root.into();
        let worker = SyncWorker::spawn(format!("fsync {}", root.display()))?;
        FsDisk::open_with(root, Syncs::Threaded(worker))
    }

    fn open_with(root: PathBuf, syncs: Syncs) -> io::Result<FsDisk> {
        fs::create_dir_all(&root)?;
        if !fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: not a directory", root.display()),
            ));
        }
        // The root's own entry must survive a power cut before anything inside it can.
        File::open(&root)?.sync_all()?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)?.sync_all()?;
        }
        Ok(FsDisk {
            root,
            handles: Mutex::new(BTreeMap::new()),
            mapped: MappedFiles::default(),
            next_ticket: 0,
            syncs,
            #[cfg(feature = "planted-bugs")]
            write_behind: Default::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The outcomes of the syncs requested since the last call, oldest first. The
    /// driver passes each to `MessageStore::on_sync_complete`.
    pub fn take_completed(&mut self) -> Vec<(SyncTicket, Result<(), DiskError>)> {
        match &mut self.syncs {
            Syncs::Inline { completed, .. } => std::mem::take(completed),
            Syncs::Threaded(worker) => worker.take_completed(),
        }
    }

    /// Like [`FsDisk::take_completed`], but first waits (at most `timeout`) until at
    /// least one sync has completed, unless none is in flight.
    pub fn wait_completed(
        &mut self,
        timeout: Duration,
    ) -> Vec<(SyncTicket, Result<(), DiskError>)> {
        if let Syncs::Threaded(worker) = &self.syncs {
            worker.wait(timeout);
        }
        self.take_completed()
    }

    /// Syncs requested and not yet completed (always 0 when they run inline).
    pub fn syncs_in_flight(&self) -> usize {
        match &self.syncs {
            Syncs::Inline { .. } => 0,
            Syncs::Threaded(worker) => worker.counts().0,
        }
    }

    /// Sets the function called after each sync completes — on the worker thread in
    /// threaded mode, inside `request_sync` otherwise — so that an event loop waiting
    /// for input learns there are completions to take. It must be quick, must not block
    /// (the driver may be waiting for the worker) and must not touch the disk.
    pub fn set_waker(&mut self, waker: Box<dyn Fn() + Send + Sync>) {
        let waker: Waker = Arc::from(waker);
        match &mut self.syncs {
            Syncs::Inline { waker: slot, .. } => *slot = Some(waker),
            Syncs::Threaded(worker) => worker.set_waker(Some(waker)),
        }
    }

    /// Delivers every finished sync — and those the completions request in turn — to
    /// `waiter`, until none are left; in threaded mode it waits for the worker.
    pub fn complete_syncs<W: SyncWaiter>(&mut self, waiter: &mut W) -> Vec<W::Event> {
        let mut events = Vec::new();
        loop {
            let done = self.wait_completed(Duration::from_secs(3600));
            if done.is_empty() {
                if self.syncs_in_flight() > 0 {
                    continue;
                }
                return events;
            }
            for (ticket, result) in done {
                events.push(waiter.on_sync_complete(self, ticket, result));
            }
        }
    }

    /// How many files are open now (for tests of the handle bound).
    pub fn open_files(&self) -> usize {
        self.lock_handles().len()
    }

    /// Files mapped for reading, and mappings waiting to be unmapped at the next `&mut`
    /// call (for tests of the mapping bound).
    pub fn mapped_files(&self) -> (usize, usize) {
        self.mapped.counts()
    }

    fn lock_handles(&self) -> MutexGuard<'_, BTreeMap<String, File>> {
        // A panic while holding the lock cannot leave the map inconsistent: every
        // operation on it is a single insert, remove or lookup.
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The real path of a file: `path` must name something strictly inside the root.
    fn file_path(&self, path: &str) -> Result<PathBuf, DiskError> {
        if path.is_empty() {
            return Err(DiskError::io(path, "empty file path"));
        }
        self.dir_path(path)
    }

    /// The real path of a directory; "" is the root.
    fn dir_path(&self, path: &str) -> Result<PathBuf, DiskError> {
        dir_path(&self.root, path)
    }

    /// Runs `f` on the open handle of `path`, opening (and caching) it if needed.
    fn with_handle<T>(
        &self,
        path: &str,
        f: impl FnOnce(&File) -> io::Result<T>,
    ) -> Result<T, DiskError> {
        let real = self.file_path(path)?;
        let mut handles = self.lock_handles();
        if !handles.contains_key(path) {
            // Directories are not files: the model has no name that is both.
            match fs::metadata(&real) {
                Ok(m) if !m.is_file() => return Err(DiskError::not_found(path)),
                Ok(_) => {}
                Err(e) => return Err(map_io(path, e)),
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&real)
                .map_err(|e| map_io(path, e))?;
            insert_bounded(&mut handles, path, file);
        }
        let file = handles.get(path).expect("handle was just cached");
        f(file).map_err(|e| map_io(path, e))
    }

    /// A new ticket, checking first that the driver drains completions.
    fn next_ticket(&mut self) -> SyncTicket {
        let outstanding = match &self.syncs {
            Syncs::Inline { completed, .. } => completed.len(),
            Syncs::Threaded(worker) => {
                let (in_flight, completed) = worker.counts();
                in_flight + completed
            }
        };
        assert!(
            outstanding < MAX_COMPLETIONS_PENDING,
            "{MAX_COMPLETIONS_PENDING} syncs outstanding: the driver must call take_completed"
        );
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        ticket
    }

    /// Runs the sync inline, or hands it to the worker.
    fn start_sync(&mut self, job: SyncJob) -> SyncTicket {
        let ticket = self.next_ticket();
        match &mut self.syncs {
            Syncs::Inline { completed, waker } => {
                let result = match job {
                    SyncJob::File { path, file } => sync_file(&file).map_err(|e| map_io(&path, e)),
                    SyncJob::DirChain { root, dir } => sync_dir_chain(&root, &dir),
                };
                completed.push((ticket, result));
                if let Some(wake) = waker {
                    wake();
                }
            }
            Syncs::Threaded(worker) => worker.submit(ticket, job),
        }
        ticket
    }

    /// Removes the directories above `path` that its removal left empty, stopping at
    /// the first one that still holds something (or at the root).
    fn prune_empty_parents(&self, path: &str) {
        let mut dir = parent_dir(path);
        while !dir.is_empty() {
            let Ok(real) = self.dir_path(dir) else { return };
            // Fails, and so stops, on a directory that is not empty.
            if fs::remove_dir(real).is_err() {
                return;
            }
            dir = parent_dir(dir);
        }
    }
}

fn insert_bounded(handles: &mut BTreeMap<String, File>, path: &str, file: File) {
    if handles.len() >= MAX_OPEN_FILES {
        handles.pop_first();
    }
    handles.insert(path.to_string(), file);
    debug_assert!(handles.len() <= MAX_OPEN_FILES);
}

impl FsDisk {
    /// What the file holds (the store's read, before any planted overlay).
    fn read_file(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        if let Some(bytes) = self.mapped.read(path, offset, len) {
            return Ok(Cow::Borrowed(bytes));
        }
        // Not mapped yet, or past the mapping: measure the file, then map it again.
        let (file_len, bytes) = self.with_handle(path, |f| {
            let file_len = f.metadata()?.len();
            match offset.checked_add(len as u64) {
                Some(end) if end <= file_len => {}
                _ => return Ok((file_len, None)),
            }
            if len == 0 {
                return Ok((file_len, Some(Cow::Borrowed(&[][..]))));
            }
            if let Some(bytes) = self.mapped.map_and_read(path, f, file_len, offset, len) {
                return Ok((file_len, Some(Cow::Borrowed(bytes))));
            }
            // Both mapping bounds reached (or mapping failed): copy instead.
            let mut buf = vec![0u8; len];
            match f.read_exact_at(&mut buf, offset) {
                Ok(()) => Ok((file_len, Some(Cow::Owned(buf)))),
                // Cut by another process between the length check and the read.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok((file_len, None)),
                Err(e) => Err(e),
            }
        })?;
        bytes.ok_or_else(|| DiskError::PastEnd {
            path: path.to_string(),
            offset,
            len: len as u64,
            file_len,
        })
    }

    fn write_file(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        // A write only grows a file, so the mappings stay valid and see it at once.
        self.mapped.release_retired();
        self.with_handle(path, |f| {
            // An empty write past the end still grows the file to `offset`, as in the
            // model (`pwrite` of nothing would leave the length alone).
            if data.is_empty() && f.metadata()?.len() < offset {
                return f.set_len(offset);
            }
            f.write_all_at(data, offset)
        })
    }
}

impl Disk for FsDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        let real = self.file_path(path)?;
        if let Some(parent) = real.parent() {
            // Any failure here (a parent that is a file, permissions) is an I/O error:
            // it must not read as "the file already exists".
            fs::create_dir_all(parent).map_err(|e| DiskError::io(path, e.to_string()))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&real)
            .map_err(|e| map_io(path, e))?;
        self.mapped.release_retired();
        insert_bounded(&mut self.lock_handles(), path, file);
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        match self.file_path(path) {
            Ok(real) => fs::metadata(real).is_ok_and(|m| m.is_file()),
            Err(_) => false,
        }
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.with_handle(path, |f| Ok(f.metadata()?.len()))
    }

    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.mapped.release_retired();
        if self.with_handle(path, |f| Ok(len < f.metadata()?.len()))? {
            // Pages past the new end must not stay mapped: touching one is SIGBUS.
            self.mapped.forget_all();
        }
        self.with_handle(path, |f| f.set_len(len))
    }

    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        let bytes = self.read_file(path, offset, len)?;
        #[cfg(feature = "planted-bugs")]
        let bytes = self.write_behind.overlay(path, offset, bytes);
        Ok(bytes)
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        #[cfg(feature = "planted-bugs")]
        if crate::planted_write_behind::WriteBehind::holds(path) && !data.is_empty() {
            self.write_behind.hold(path, offset, data);
            return Ok(());
        }
        self.write_file(path, offset, data)
    }

    fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        let real = self.file_path(path)?;
        self.lock_handles().remove(path);
        self.mapped.forget(path);
        match fs::symlink_metadata(&real) {
            Ok(m) if m.is_dir() => return Err(DiskError::not_found(path)),
            Ok(_) => {}
            Err(e) => return Err(map_io(path, e)),
        }
        fs::remove_file(&real).map_err(|e| map_io(path, e))?;
        self.prune_empty_parents(path);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let real_from = self.file_path(from)?;
        let real_to = self.file_path(to)?;
        if parent_dir(from) != parent_dir(to) {
            return Err(DiskError::io(
                from,
                format!("rename to {to}: not the same directory"),
            ));
        }
        if !self.exists(from) {
            return Err(DiskError::not_found(from));
        }
        {
            let mut handles = self.lock_handles();
            handles.remove(from);
            handles.remove(to);
        }
        self.mapped.forget(from);
        self.mapped.forget(to);
        fs::rename(&real_from, &real_to).map_err(|e| map_io(from, e))
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError> {
        let real = self.dir_path(dir)?;
        let entries = match fs::read_dir(&real) {
            Ok(entries) => entries,
            // A directory exists only while it holds a file; a file has no children.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(Vec::new())
            }
            Err(e) => return Err(DiskError::io(dir, e.to_string())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DiskError::io(dir, e.to_string()))?;
            let file_type = entry
                .file_type()
                .map_err(|e| DiskError::io(dir, e.to_string()))?;
            let is_dir = if file_type.is_symlink() {
                fs::metadata(entry.path()).is_ok_and(|m| m.is_dir())
            } else {
                file_type.is_dir()
            };
            // A name that is not UTF-8 cannot be a store file; it is shown (lossily)
            // so that recovery reports it rather than silently skipping it.
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir,
            });
        }
        out.sort();
        Ok(out)
    }

    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError> {
        self.mapped.release_retired();
        let job = match target {
            SyncTarget::File(path) => {
                #[cfg(feature = "planted-bugs")]
                for (offset, data) in self.write_behind.take(path) {
                    self.write_file(path, offset, &data)?;
                }
                // Opening is the request (a missing file is refused at once, as on every
                // disk); the fsync's own outcome is the completion. The clone shares
                // the open file, so its fsync covers every write made through the cache.
                let file = self.with_handle(path, File::try_clone)?;
                SyncJob::File {
                    path: path.to_string(),
                    file,
                }
            }
            SyncTarget::Dir(dir) => {
                self.dir_path(dir)?;
                SyncJob::DirChain {
                    root: self.root.clone(),
                    dir: dir.to_string(),
                }
            }
        };
        Ok(self.start_sync(job))
    }
}
