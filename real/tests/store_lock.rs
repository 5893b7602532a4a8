//! The store directory's lock: a second holder is refused with a message naming the
//! directory, whether it is in this process, in another process, or a RocketMQ broker
//! (whose Java `FileChannel.tryLock` takes a POSIX record lock); dropping or dying
//! releases it.
//!
//! The test that starts a child process lives in `store_lock_child.rs`: a child forked
//! while a lock here is held shares its open file until it execs, so a drop-and-retake
//! in this binary could find the lock still held.

use std::os::unix::io::AsRawFd;

use rmq_real::config::store_lock::{StoreLock, StoreLockError, LOCK_FILE_NAME};

#[test]
fn second_locker_in_this_process_is_refused_until_the_first_drops() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let first = StoreLock::acquire(&store).unwrap();
    assert_eq!(first.dir(), store);
    assert_eq!(std::fs::read(store.join(LOCK_FILE_NAME)).unwrap(), b"lock");

    let err = StoreLock::acquire(&store).unwrap_err();
    assert!(matches!(err, StoreLockError::Held { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains(&store.display().to_string()), "{message}");
    assert!(message.contains("another broker"), "{message}");

    // Another directory is independent.
    let other = StoreLock::acquire(dir.path().join("other")).unwrap();
    drop(first);
    let again = StoreLock::acquire(&store).unwrap();
    drop((again, other));
}

#[test]
fn a_java_style_posix_lock_excludes_us() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join(LOCK_FILE_NAME))
        .unwrap();
    // What RocketMQ's `lockFile.getChannel().tryLock(0, 1, false)` does on Linux.
    // SAFETY: zeroed is a valid `flock`; the fields that matter are set below.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_len = 1;
    // SAFETY: the descriptor is open while `file` lives; `lock` is valid for the call.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let err = StoreLock::acquire(dir.path()).unwrap_err();
    assert!(matches!(err, StoreLockError::Held { .. }), "{err}");
    drop(file);
    StoreLock::acquire(dir.path()).unwrap();
}
