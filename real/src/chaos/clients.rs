//! The workload's clients on the real runtime: the simulator's own producer and consumer
//! hosts (`rmq_sim::history::workload`), each on its own thread (`Hosted`), writing
//! history entries exactly as they do in the simulator.
//!
//! Three things differ from the simulator and are mended here: a recorder is per
//! thread (so each producer draws workload ids from its own range); every node of the
//! real runtime is `NodeId(0)` to itself, so the entries' `client` is set to the id the
//! harness gave the client; and a send's born host is unknown to its producer (the
//! broker reads it off the connection). Time is the wall clock, read before each input.

use std::cell::RefCell;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::Message;
use rmq_sim::history::workload::{Recorder, SharedRecorder};
use rmq_sim::history::Entry;

use crate::process::Hosted;

/// Entries every client thread hands over, in each client's own time order.
pub type Sink = Arc<Mutex<Vec<Entry>>>;

/// Workload ids of producer `i` start at `i * WID_RANGE + 1`.
pub const WID_RANGE: u64 = 1 << 40;

/// Wraps one workload host: sets the recorder's clock, forwards, and moves what the
/// host recorded into the sink with the harness's client id.
struct Recording {
    inner: Box<dyn Node<Message>>,
    recorder: SharedRecorder,
    client: u32,
    sink: Sink,
}

impl Recording {
    fn before(&self, ctx: &mut dyn Ctx<Message>) {
        self.recorder.borrow().clock.set(ctx.now_ms());
    }

    fn after(&self) {
        let mut recorder = self.recorder.borrow_mut();
        if recorder.history.entries.is_empty() {
            return;
        }
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        for mut entry in recorder.history.entries.drain(..) {
            set_client(&mut entry, self.client);
            if let Entry::SendInvoke {
                fields: Some(f), ..
            } = &mut entry
            {
                // The broker stamps bornHost from the connection's far end, an
                // ephemeral port the producer cannot name before it sends: recorded as
                // unknown (0), which the checker does not compare.
                f.born_host_crc = 0;
            }
            sink.push(entry);
        }
    }
}

impl Node<Message> for Recording {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.before(ctx);
        self.inner.on_start(ctx);
        self.after();
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        self.before(ctx);
        self.inner.handle(ctx, input);
        self.after();
    }

    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.before(ctx);
        self.inner.shutdown(ctx);
        self.after();
    }

    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }
}

/// The client an entry names, set to `client`.
fn set_client(entry: &mut Entry, id: u32) {
    match entry {
        Entry::SendInvoke { client, .. }
        | Entry::SendOk { client, .. }
        | Entry::SendFail { client, .. }
        | Entry::Deliver { client, .. }
        | Entry::Consumed { client, .. }
        | Entry::Own { client, .. }
        | Entry::Disown { client, .. }
        | Entry::Commit { client, .. }
        | Entry::DeadLetter { client, .. } => *client = id,
        Entry::Meta { .. } | Entry::Fault { .. } => {}
    }
}

/// Stops a client and waits at most `timeout_ms` for it; `false` if it did not end in
/// time (a client stuck in a handler cannot be interrupted: its thread is left to the
/// process's exit, and the run reports it).
pub fn stop_within(mut hosted: Hosted, timeout_ms: u64) -> bool {
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = hosted.stop();
        let _ = done.send(());
    });
    ended
        .recv_timeout(std::time::Duration::from_millis(timeout_ms))
        .is_ok()
}

/// Starts a workload host (built by `make` from its recorder) as client `client` on its
/// own thread, its disk under `dir`; `first_wid` starts its workload ids.
pub fn start(
    dir: PathBuf,
    client: u32,
    first_wid: u64,
    sink: Sink,
    make: impl FnOnce(SharedRecorder) -> Box<dyn Node<Message>> + Send + 'static,
) -> io::Result<Hosted> {
    std::fs::create_dir_all(&dir)?;
    Hosted::start(dir, false, move |_, _| {
        let recorder = Rc::new(RefCell::new(Recorder::with_first_wid(first_wid)));
        Box::new(Recording {
            inner: make(recorder.clone()),
            recorder,
            client,
            sink,
        })
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rmq_model::node::{Ctx, Input, Node};
    use rmq_model::protocol::Message;

    use super::stop_within;
    use crate::process::Hosted;

    /// A client whose first input keeps its thread for `busy_ms`.
    struct Stuck {
        busy_ms: u64,
    }

    impl Node<Message> for Stuck {
        fn on_start(&mut self, _: &mut dyn Ctx<Message>) {
            std::thread::sleep(Duration::from_millis(self.busy_ms));
        }

        fn handle(&mut self, _: &mut dyn Ctx<Message>, _: Input<Message>) {}
    }

    fn hosted(dir: &tempfile::TempDir, busy_ms: u64) -> Hosted {
        let dir = dir.path().to_path_buf();
        Hosted::start(dir, false, move |_, _| Box::new(Stuck { busy_ms })).unwrap()
    }

    #[test]
    fn a_client_stuck_past_the_timeout_is_reported_and_a_quick_one_is_not() {
        let (quick, stuck) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert!(stop_within(hosted(&quick, 0), 5_000));
        assert!(!stop_within(hosted(&stuck, 3_000), 200));
    }
}
