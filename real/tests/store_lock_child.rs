//! The store directory's lock held by another process: refused while it lives, released
//! by the kernel when it is killed. In its own test binary because starting the child
//! forks this process, and a fork shares every open lock file (until the exec) with the
//! child, so a test here dropping and retaking a lock in-process could race it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rmq_real::config::store_lock::StoreLock;

/// Set in the child process started by `second_process_is_refused_until_it_dies`.
const HOLD_ENV: &str = "RMQ_REAL_TEST_HOLD_STORE_LOCK";

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
