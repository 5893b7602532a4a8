//! The store directory's lock: a second holder is refused with a message naming the
//! directory, whether it is in this process, in another process, or a RocketMQ broker
//! (whose Java `FileChannel.tryLock` takes a POSIX record lock); dropping or dying
//! releases it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::io::AsRawFd;
use std::process::{Command, Stdio};

use rmq_real::config::store_lock::{StoreLock, StoreLockError, LOCK_FILE_NAME};

/// Set in the child process started by `second_process_is_refused_until_it_dies`.
const HOLD_ENV: &str = "RMQ_REAL_TEST_HOLD_STORE_LOCK";

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

/// Run as a child: holds the lock on the directory named by `HOLD_ENV` until killed.
#[test]
fn child_holds_store_lock() {
    let Ok(dir) = std::env::var(HOLD_ENV) else {
        return;
    };
    let _lock = StoreLock::acquire(&dir).unwrap();
    println!("locked");
    std::io::stdout().flush().unwrap();
    // Wait for the parent to kill us (or to close our stdin).
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn second_process_is_refused_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_store_lock",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // The harness prints its own lines first, and "test child_holds_store_lock ... "
    // right before ours; wait for it (bounded by the child's output).
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "child ended before locking");
        if line.trim_end().ends_with("locked") {
            break;
        }
    }
    let err = StoreLock::acquire(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    // kill -9: the kernel releases the lock with the process.
    child.kill().unwrap();
    child.wait().unwrap();
    StoreLock::acquire(dir.path()).unwrap();
}
