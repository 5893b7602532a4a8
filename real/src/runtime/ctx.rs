//! The node's [`Ctx`] on the real runtime: the wall clock, tokio timers, sockets and
//! the real disk.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_model::node::{Ctx, NodeId, TimerId};
use rmq_model::protocol::Message;
use rmq_model::store::Disk;
use tokio::time::Instant;

use super::connection::Connections;
use super::wire::Wire;
use crate::fs_disk::FsDisk;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// The wall clock, never going back within a run: the node's timing (timeouts,
/// flush intervals, store timestamps) assumes time moves forward, and a wall clock
/// stepped back by an administrator or NTP would otherwise break that. Beside it, a
/// monotonic clock for ages no step of the wall clock may move (queue locks).
pub(super) struct Clock {
    last_ms: Cell<u64>,
    started: Instant,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock {
            last_ms: Cell::new(0),
            started: Instant::now(),
        }
    }
}

impl Clock {
    pub(super) fn now_ms(&self) -> u64 {
        let now = wall_clock_ms().max(self.last_ms.get());
        self.last_ms.set(now);
        now
    }

    /// Milliseconds since the node started, by the monotonic clock.
    pub(super) fn monotonic_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Armed timers, by deadline then id (the order they were set among equal deadlines).
#[derive(Default)]
pub(super) struct Timers {
    next_id: u64,
    armed: BTreeMap<(Instant, TimerId), u64>,
    deadline_of: BTreeMap<TimerId, Instant>,
}

impl Timers {
    fn set(&mut self, after_ms: u64, kind: u64) -> TimerId {
        let id = TimerId(self.next_id);
        self.next_id += 1;
        let at = Instant::now() + Duration::from_millis(after_ms);
        self.armed.insert((at, id), kind);
        self.deadline_of.insert(id, at);
        id
    }

    fn cancel(&mut self, id: TimerId) {
        if let Some(at) = self.deadline_of.remove(&id) {
            self.armed.remove(&(at, id));
        }
    }

    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.armed.keys().next().map(|(at, _)| *at)
    }

    /// The next timer due at `now`, taken out. One at a time: a handler may cancel a
    /// timer that is due too.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, u64)> {
        let (&(at, id), _) = self.armed.iter().next()?;
        if at > now {
            return None;
        }
        let kind = self.armed.remove(&(at, id)).expect("just seen");
        self.deadline_of.remove(&id);
        Some((id, kind))
    }
}

pub(super) struct RealCtx<'a> {
    pub(super) me: NodeId,
    pub(super) my_addr: &'a str,
    pub(super) clock: &'a mut Clock,
    pub(super) timers: &'a mut Timers,
    pub(super) conns: &'a mut Connections,
    pub(super) wire: &'a mut Wire,
    pub(super) disk: &'a mut FsDisk,
    pub(super) rng: &'a mut ChaCha8Rng,
}

impl Ctx<Message> for RealCtx<'_> {
    fn me(&self) -> NodeId {
        self.me
    }

    fn my_addr(&self) -> String {
        self.my_addr.to_string()
    }

    fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        self.conns.resolve(addr)
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn monotonic_ms(&self) -> u64 {
        self.clock.monotonic_ms()
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn send(&mut self, to: NodeId, msg: Message) {
        if let Message::Request { request, .. } = &msg {
            if self.conns.send_ha(to, request) {
                return;
            }
        }
        let now_ms = self.clock.now_ms();
        if let Some(cmd) = self.wire.outbound(to, &msg, now_ms) {
            self.conns.send_frame(to, &cmd);
        }
    }

    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
        self.timers.set(after_ms, kind)
    }

    fn cancel_timer(&mut self, id: TimerId) {
        self.timers.cancel(id);
    }

    fn disk(&mut self) -> &mut dyn Disk {
        self.disk
    }
}
