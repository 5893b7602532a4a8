//! The store directory's lock (reference A.1): a broker holds an exclusive lock on the
//! file `lock` under `storePathRootDir` for as long as it runs, so that a second broker
//! pointed at the same directory is refused instead of corrupting it.
//!
//! The lock is an open-file-description lock (`fcntl(F_OFD_SETLK)`, Linux) on the whole
//! file. Two reasons for it over `flock`: OFD locks and the POSIX record locks that
//! Java's `FileChannel.tryLock(0, 1, false)` takes are the same kind on Linux, so a
//! RocketMQ broker and a rocketsim broker on one directory exclude each other; and,
//! unlike classic POSIX locks, an OFD lock belongs to the open file, not to the process,
//! so two lockers in one process conflict too (and closing an unrelated descriptor of
//! the same file does not drop it). Elsewhere `flock` stands in.
//!
//! The lock lives as long as [`StoreLock`]; dropping it, or the process ending in any
//! way (`kill -9` included), releases it. The file itself stays, as in RocketMQ, which
//! writes "lock" into it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name under the store root.
pub const LOCK_FILE_NAME: &str = "lock";

#[derive(Debug, thiserror::Error)]
pub enum StoreLockError {
    #[error(
        "store directory {} is in use by another broker (it holds {}): stop that broker \
         or give this one another storePathRootDir",
        dir.display(),
        lock_file.display()
    )]
    Held { dir: PathBuf, lock_file: PathBuf },
    #[error("store directory {}: cannot take its lock: {source}", dir.display())]
    Io { dir: PathBuf, source: io::Error },
}

/// An exclusive hold on a store directory; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    dir: PathBuf,
    /// Closing this descriptor releases the lock.
    _file: File,
}

impl StoreLock {
    /// Locks `dir` (creating it and its `lock` file if needed), or says who holds it.
    pub fn acquire(dir: impl AsRef<Path>) -> Result<StoreLock, StoreLockError> {
        let dir = dir.as_ref().to_path_buf();
        let io_error = |source| StoreLockError::Io {
            dir: dir.clone(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io_error)?;
        let lock_file = dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_file)
            .map_err(io_error)?;
        match try_lock_exclusive(&file) {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || matches!(e.raw_os_error(), Some(libc::EACCES | libc::EAGAIN)) =>
            {
                return Err(StoreLockError::Held { dir, lock_file });
            }
            Err(e) => return Err(io_error(e)),
        }
        // As RocketMQ does; only for people who look inside.
        file.write_all_at(b"lock", 0).map_err(io_error)?;
        Ok(StoreLock { dir, _file: file })
    }

    /// The directory held.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(target_os = "linux")]
fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: `flock` is plain data; zeroed is a valid value of every field, and the
    // ones that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // l_start = 0, l_len = 0: the whole file, however long it grows. OFD locks need
    // l_pid = 0.
    // SAFETY: the descriptor is open for as long as `file` is borrowed, and `lock`
    // points at a valid, initialized `flock` that outlives the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: the descriptor is open for as long as `file` is borrowed; flock takes no
    // pointers.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
