//! The thread that runs `FsDisk`'s syncs in threaded mode, so that a
//! broker keeps serving (appending, answering pulls) while an fsync is on the media:
//! the group commit of DESIGN.md, where one fsync covers every record appended before
//! it was issued and the next one is issued when it completes.
//!
//! One worker, jobs in request order: each sync completes after every sync requested
//! before it (stronger than the `Disk` contract, which lets the store count completions
//! in any order). A sync makes durable at least what the page cache held when it was
//! requested, since the fsync runs after the request; a file deleted or renamed in the
//! meantime is synced through its own cloned descriptor, which is harmless.
//!
//! Completions wait in a list the driver drains (`FsDisk::take_completed`); after each
//! one the optional waker runs on the worker thread, so an event loop can sleep until
//! then. The waker must be quick, must not block (the driver may be waiting for this
//! worker) and must not call back into the disk.

use std::fmt;
use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rmq_model::store::{DiskError, SyncTicket};

use crate::fs_sync::{map_io, sync_dir_chain, sync_file};

/// At most this many syncs wait for the worker; a request past it waits for one to
/// finish. The store keeps far fewer in flight (64 flush batches of a few files each);
/// the bound keeps the cloned descriptors well under a process's usual limit of 1,024.
pub const MAX_SYNCS_IN_FLIGHT: usize = 512;

/// Called on the worker thread after each completion.
pub type Waker = Arc<dyn Fn() + Send + Sync>;

pub(crate) type Completion = (SyncTicket, Result<(), DiskError>);

/// What the worker syncs.
pub(crate) enum SyncJob {
    /// A cloned descriptor of the file (opened when the sync was requested).
    File { path: String, file: File },
    /// A directory and every ancestor up to the root.
    DirChain { root: PathBuf, dir: String },
}

#[derive(Default)]
struct State {
    completed: Vec<Completion>,
    /// Requested and not yet completed.
    in_flight: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled after each completion.
    done: Condvar,
    waker: Mutex<Option<Waker>>,
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, State> {
        // Every update of the state is a single push or counter change: a panic while
        // holding the lock cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) struct SyncWorker {
    jobs: Option<Sender<(SyncTicket, SyncJob)>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for SyncWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock_state();
        f.debug_struct("SyncWorker")
            .field("in_flight", &state.in_flight)
            .field("completed", &state.completed.len())
            .finish()
    }
}

impl SyncWorker {
    pub(crate) fn spawn(name: String) -> std::io::Result<SyncWorker> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            waker: Mutex::new(None),
        });
        let (jobs, receiver) = mpsc::channel();
        let worker_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(receiver, &worker_shared))?;
        Ok(SyncWorker {
            jobs: Some(jobs),
            shared,
            thread: Some(thread),
        })
    }

    /// Hands a job to the worker, first waiting while [`MAX_SYNCS_IN_FLIGHT`] are
    /// queued (each holds a file descriptor).
    pub(crate) fn submit(&self, ticket: SyncTicket, job: SyncJob) {
        {
            let state = self.shared.lock_state();
            let mut state = self
                .shared
                .done
                .wait_while(state, |s| s.in_flight >= MAX_SYNCS_IN_FLIGHT)
                .unwrap_or_else(|e| e.into_inner());
            state.in_flight += 1;
        }
        let sent = self
            .jobs
            .as_ref()
            .expect("jobs sender lives until drop")
            .send((ticket, job));
        // The worker only exits once the sender is dropped, or by panicking; a sync
        // panicking is a bug in this file.
        assert!(sent.is_ok(), "sync worker thread died");
    }

    pub(crate) fn set_waker(&self, waker: Option<Waker>) {
        *self.shared.waker.lock().unwrap_or_else(|e| e.into_inner()) = waker;
    }

    /// Requested and not yet completed, and completed and not yet taken.
    pub(crate) fn counts(&self) -> (usize, usize) {
        let state = self.shared.lock_state();
        (state.in_flight, state.completed.len())
    }

    pub(crate) fn take_completed(&self) -> Vec<Completion> {
        std::mem::take(&mut self.shared.lock_state().completed)
    }

    /// Waits until a completion is ready or nothing is in flight, at most `timeout`.
    pub(crate) fn wait(&self, timeout: Duration) {
        let state = self.shared.lock_state();
        let _ = self
            .shared
            .done
            .wait_timeout_while(state, timeout, |s| {
                s.completed.is_empty() && s.in_flight > 0
            })
            .unwrap_or_else(|e| e.into_inner());
    }
}

impl Drop for SyncWorker {
    /// Lets every requested sync finish: a clean shutdown's last fsyncs must not be
    /// dropped on the floor.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(jobs: Receiver<(SyncTicket, SyncJob)>, shared: &Shared) {
    while let Ok((ticket, job)) = jobs.recv() {
        let result = match job {
            SyncJob::File { path, file } => sync_file(&file).map_err(|e| map_io(&path, e)),
            SyncJob::DirChain { root, dir } => sync_dir_chain(&root, &dir),
        };
        {
            let mut state = shared.lock_state();
            state.in_flight -= 1;
            state.completed.push((ticket, result));
        }
        shared.done.notify_all();
        let waker = shared
            .waker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(wake) = waker {
            wake();
        }
    }
}
