//! The world: a deterministic event loop that drives sans-I/O nodes.
//!
//! One queue of events ordered by virtual time ms, ties broken by the order events were
//! scheduled, never by anything hashed or allocated, so a seed replays byte for byte
//! (`queue.rs`). Nothing sleeps: [`World::step`] jumps the clock to the next event.
//!
//! Each node lives in a slot with its [`SimDisk`], its armed timers and a boot epoch.
//! A crash empties the slot (the node's memory is gone), crashes the disk the chosen way
//! and bumps the epoch, so timers, sync completions and notices addressed to the old
//! incarnation are dropped when they come due instead of being searched out of the queue.
//! A restart rebuilds the node through the factory from whatever its disk kept.
//!
//! Every processed event is folded into a running fingerprint (its time, kind,
//! nodes and a digest of its message), and, when the trace is kept (replays), appends a
//! readable line to it: two runs agree iff their fingerprints do.
//!
//! Random streams (see [`crate::cluster::seeds`]): per link latency, per node fsync latency, per
//! node crash outcomes, per node `Ctx::random_u64`.
//!
//! Besides faults scheduled at fixed times, the world takes [`Trigger`]s: faults aimed
//! at a moment it observes — a packet of some kind delivered from one node (a SEND_OK
//! reaching a producer, an HA transfer reaching a slave), or a node asking for an fsync
//! (a group commit) — and struck a given delay after the first such moment once the
//! trigger is armed. A world without triggers never looks at a packet's kind, so runs
//! without them are unchanged.
//!
//! Here: the event queue, the clock, the fingerprint and the trace. `nodes.rs` hosts the
//! nodes (their `Ctx`, boot, effects), `fault.rs` holds the faults and what each does,
//! `trigger.rs` the faults aimed at moments.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt::Debug;
use std::rc::Rc;

use rand_chacha::ChaCha8Rng;
use rmq_model::node::{Input, Node, NodeFactory, NodeId, TimerId};
use rmq_model::store::disk::SyncTicket;

use crate::cluster::net::{Net, NetConfig};
use crate::cluster::seeds::{stream, Purpose, MAX_NODES};
use crate::hasher::FastSet;
use crate::storage::disk::SimDisk;

mod fault;
mod nodes;
mod queue;
mod trigger;

use nodes::Effect;
use queue::EventQueue;
use trigger::Observed;

pub use fault::{Fault, FaultRecord};
pub use trigger::{Trigger, Watch};

/// A requested fsync completes this long after the request (uniform, per node stream),
/// and never before an earlier request of the same disk.
pub const MIN_SYNC_LATENCY_MS: u64 = 1;
pub const MAX_SYNC_LATENCY_MS: u64 = 10;
/// Trace lines kept in memory (the most recent); the fingerprint covers all of them.
pub const MAX_TRACE_LINES: usize = 100_000;
/// More queued events than this means a node floods the world: a bug to stop on.
pub const MAX_QUEUED_EVENTS: usize = 1_000_000;

enum Event<M> {
    Packet {
        from: NodeId,
        to: NodeId,
        conn_epoch: u64,
        /// Boxed: the heap moves events around as it sifts, and messages are large
        /// next to every other event.
        msg: Box<M>,
    },
    Timer {
        node: NodeId,
        boot_epoch: u64,
        id: TimerId,
        kind: u64,
    },
    SyncDue {
        node: NodeId,
        boot_epoch: u64,
        ticket: SyncTicket,
    },
    Broken {
        node: NodeId,
        boot_epoch: u64,
        peer: NodeId,
    },
    /// Boxed: faults are rare and the largest variant; the heap moves every event.
    Fault(Box<Fault>),
}

struct Slot<M> {
    /// `None` while the node is down: its memory is gone.
    node: Option<Box<dyn Node<M>>>,
    disk: SimDisk,
    /// Armed timers of the current incarnation; a fired or cancelled one is absent.
    timers: FastSet<TimerId>,
    /// Bumped at every crash: events carrying an older epoch are dropped.
    boot_epoch: u64,
    /// The machine is gone for good.
    lost: bool,
    /// A clean shutdown was asked for: the process exits once the node says stopped.
    stopping: bool,
    /// A restart was asked for while a clean shutdown was still in progress: the
    /// process boots again as soon as it has exited.
    restart_when_stopped: bool,
    /// What the node's clock reads minus the true time.
    clock_skew_ms: i64,
    node_rng: ChaCha8Rng,
    sync_latency_rng: ChaCha8Rng,
    disk_fault_rng: ChaCha8Rng,
    /// The newest ticket whose completion is scheduled (tickets of a disk only grow).
    last_sync_scheduled: Option<SyncTicket>,
    /// Completions of one disk come in request order: none is due before this.
    last_sync_due_ms: u64,
}

/// The port every simulated node listens on (RocketMQ's broker default).
pub const SIM_PORT: u16 = 10911;

/// A simulated node's address: `10.0.{id / 256}.{id % 256}:10911`.
///
/// Written by hand: producers stamp every message with their address, and the
/// formatting machinery cost several times what the digits do.
pub fn sim_addr(node: NodeId) -> String {
    let mut addr = String::with_capacity(24);
    addr.push_str("10.0.");
    push_decimal(&mut addr, node.0 >> 8);
    addr.push('.');
    push_decimal(&mut addr, node.0 & 0xff);
    addr.push(':');
    push_decimal(&mut addr, u32::from(SIM_PORT));
    addr
}

/// Appends `n` in decimal, as `{}` would.
fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// The node behind an address made by [`sim_addr`] (any port).
///
/// Parsed by hand, accepting what `Ipv4Addr`'s parser accepts of `10.0.c.d`: every
/// send resolves its peer's address, and the general parser was a visible cost.
pub fn node_of_addr(addr: &str) -> Option<NodeId> {
    let addr = addr.as_bytes();
    let colon = addr.iter().rposition(|&b| b == b':')?;
    let ip = addr[..colon].strip_prefix(b"10.0.")?;
    let dot = ip.iter().position(|&b| b == b'.')?;
    let (c, d) = (&ip[..dot], &ip[dot + 1..]);
    Some(NodeId((u32::from(octet(c)?) << 8) | u32::from(octet(d)?)))
}

/// One dotted-decimal octet as `Ipv4Addr` reads it: one to three digits, no leading
/// zero, at most 255.
fn octet(digits: &[u8]) -> Option<u8> {
    let well_formed = !digits.is_empty()
        && digits.len() <= 3
        && digits.iter().all(u8::is_ascii_digit)
        && (digits.len() == 1 || digits[0] != b'0');
    if !well_formed {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    u8::try_from(value).ok()
}

pub struct World<M> {
    seed: u64,
    now_ms: u64,
    queue: EventQueue<Event<M>>,
    /// The effects buffer handed to every handler, kept to reuse its allocation.
    effects: Vec<Effect<M>>,
    /// Sync completions being scheduled (`schedule_new_syncs`), kept to reuse its
    /// allocation.
    syncs_due: Vec<(u64, SyncTicket)>,
    slots: Vec<Slot<M>>,
    factory: Box<dyn NodeFactory<M>>,
    net: Net,
    next_timer_id: u64,
    trace: VecDeque<String>,
    /// Keep trace lines in memory (replays); the fingerprint covers them either way.
    keep_trace: bool,
    fingerprint: u64,
    faults: Vec<FaultRecord>,
    events_processed: u64,
    /// How a message appears in the trace (default: its `Debug`).
    describe: fn(&M) -> String,
    /// What of a message the fingerprint covers (default: a hash of its `Debug`).
    digest: fn(&M) -> u64,
    /// Observers of the true time (history recorders: nodes see skewed clocks).
    true_clock: Option<Rc<Cell<u64>>>,
    /// Armed triggers, in the order they were armed.
    triggers: Vec<Trigger>,
    /// The moment class of a message, for [`Watch::Packet`] (default: none, 0).
    moment_of: fn(&M) -> u32,
}

fn no_moment<M>(_: &M) -> u32 {
    0
}

fn debug_string<M: Debug>(m: &M) -> String {
    format!("{m:?}")
}

fn debug_digest<M: Debug>(m: &M) -> u64 {
    fnv1a(FNV_OFFSET_BASIS, format!("{m:?}").as_bytes())
}

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

impl<M: Debug + 'static> World<M> {
    /// Boots `node_count` nodes (n0, n1, ...) on empty disks at t=0.
    pub fn new(
        seed: u64,
        factory: impl NodeFactory<M> + 'static,
        node_count: u32,
        net_config: NetConfig,
    ) -> World<M> {
        assert!(node_count <= MAX_NODES, "at most {MAX_NODES} nodes");
        let slots = (0..node_count)
            .map(|i| Slot {
                node: None,
                disk: SimDisk::new(),
                timers: FastSet::default(),
                boot_epoch: 0,
                lost: false,
                stopping: false,
                restart_when_stopped: false,
                clock_skew_ms: 0,
                node_rng: stream(seed, Purpose::NodeRandom, i),
                sync_latency_rng: stream(seed, Purpose::SyncLatency, i),
                disk_fault_rng: stream(seed, Purpose::DiskFaults, i),
                last_sync_scheduled: None,
                last_sync_due_ms: 0,
            })
            .collect();
        let mut world = World {
            seed,
            now_ms: 0,
            queue: EventQueue::new(),
            effects: Vec::new(),
            syncs_due: Vec::new(),
            slots,
            factory: Box::new(factory),
            net: Net::new(seed, net_config),
            next_timer_id: 0,
            trace: VecDeque::new(),
            keep_trace: true,
            fingerprint: FNV_OFFSET_BASIS,
            faults: Vec::new(),
            events_processed: 0,
            describe: debug_string::<M>,
            digest: debug_digest::<M>,
            true_clock: None,
            triggers: Vec::new(),
            moment_of: no_moment::<M>,
        };
        for i in 0..node_count {
            world.boot(NodeId(i));
            world.record(format!("boot n{i}"));
        }
        world
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Events processed so far by [`World::step`].
    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }

    /// Whether trace lines are kept in memory (they are always fingerprinted).
    pub fn set_keep_trace(&mut self, keep: bool) {
        self.keep_trace = keep;
        if !keep {
            self.trace.clear();
        }
    }

    /// A cell the world keeps at the true virtual time, for recorders that must not
    /// see a node's skewed clock.
    pub fn share_true_clock(&mut self, clock: Rc<Cell<u64>>) {
        clock.set(self.now_ms);
        self.true_clock = Some(clock);
    }

    /// How messages are written in the trace, and what of them the fingerprint covers.
    pub fn set_message_format(&mut self, describe: fn(&M) -> String, digest: fn(&M) -> u64) {
        self.describe = describe;
        self.digest = digest;
    }

    /// How packets are put into moment classes for [`Watch::Packet`] (0: none).
    pub fn set_moment_classifier(&mut self, moment_of: fn(&M) -> u32) {
        self.moment_of = moment_of;
    }

    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// A hash over every event so far: its time, what it was, which nodes, and a digest
    /// of its message; equal fingerprints mean equal runs.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// The most recent [`MAX_TRACE_LINES`] trace lines, oldest first.
    pub fn trace(&self) -> impl Iterator<Item = &str> {
        self.trace.iter().map(String::as_str)
    }

    pub fn faults(&self) -> &[FaultRecord] {
        &self.faults
    }

    pub fn node_count(&self) -> u32 {
        self.slots.len() as u32
    }

    pub fn is_up(&self, node: NodeId) -> bool {
        self.slot(node).node.is_some()
    }

    pub fn disk(&self, node: NodeId) -> &SimDisk {
        &self.slot(node).disk
    }

    /// For damage faults (bit rot, latent errors) the world does not model yet.
    pub fn disk_mut(&mut self, node: NodeId) -> &mut SimDisk {
        &mut self.slot_mut(node).disk
    }

    pub fn queued_events(&self) -> usize {
        self.queue.len()
    }

    fn slot(&self, node: NodeId) -> &Slot<M> {
        let count = self.slots.len();
        self.slots
            .get(node.0 as usize)
            .unwrap_or_else(|| panic!("{node} does not exist ({count} nodes)"))
    }

    fn slot_mut(&mut self, node: NodeId) -> &mut Slot<M> {
        let count = self.slots.len();
        self.slots
            .get_mut(node.0 as usize)
            .unwrap_or_else(|| panic!("{node} does not exist ({count} nodes)"))
    }

    fn push(&mut self, at_ms: u64, event: Event<M>) {
        assert!(at_ms >= self.now_ms, "no event in the past");
        assert!(
            self.queue.len() < MAX_QUEUED_EVENTS,
            "more than {MAX_QUEUED_EVENTS} queued events"
        );
        self.queue.push(at_ms, event);
    }

    /// Records a rare event (boot, injected fault, clean stop) by its text.
    fn record(&mut self, line: String) -> String {
        let digest = fnv1a(FNV_OFFSET_BASIS, line.as_bytes());
        self.record_event([50, digest, 0, 0], Some(line))
    }

    /// Processes the next event; `None` when nothing is left to happen.
    pub fn step(&mut self) -> Option<String> {
        let (at_ms, event) = self.queue.pop()?;
        Some(self.process(at_ms, event))
    }

    /// Processes one event taken from the queue; the returned line is the trace's.
    fn process(&mut self, at_ms: u64, event: Event<M>) -> String {
        debug_assert!(at_ms >= self.now_ms);
        self.events_processed += 1;
        if let Some(clock) = &self.true_clock {
            clock.set(at_ms);
        }
        self.now_ms = at_ms;
        let keep = self.keep_trace;
        // Each event is fingerprinted from a few numbers (cheap: this runs for every
        // event); its readable line is only built when the trace is kept.
        let (parts, line): ([u64; 4], Option<String>) = match event {
            Event::Packet {
                from,
                to,
                conn_epoch,
                msg,
            } => {
                let digest = (self.digest)(&msg);
                let text = keep.then(|| (self.describe)(&msg));
                let moment = if self.triggers.is_empty() {
                    0
                } else {
                    (self.moment_of)(&msg)
                };
                let ids = (u64::from(from.0) << 32) | u64::from(to.0);
                if !self.net.is_current(from, to, conn_epoch) {
                    let line = text.map(|t| format!("{from} -> {to} lost {t} (connection broke)"));
                    ([1, ids, conn_epoch, digest], line)
                } else if !self.is_up(to) {
                    let line = text.map(|t| format!("{from} -> {to} lost {t} ({to} is down)"));
                    ([2, ids, conn_epoch, digest], line)
                } else {
                    self.run_node(to, |node, ctx| {
                        node.handle(ctx, Input::Packet { from, msg: *msg });
                    });
                    if moment != 0 {
                        self.observe(Observed::Packet { from, to, moment });
                    }
                    let line = text.map(|t| format!("{from} -> {to} {t}"));
                    ([3, ids, conn_epoch, digest], line)
                }
            }
            Event::Timer {
                node,
                boot_epoch,
                id,
                kind,
            } => {
                let slot = self.slot_mut(node);
                let current = slot.boot_epoch == boot_epoch && slot.node.is_some();
                let n = u64::from(node.0);
                if !current {
                    let line = keep.then(|| format!("{node} {id} dropped (older incarnation)"));
                    ([10, n, id.0, kind], line)
                } else if !slot.timers.remove(&id) {
                    (
                        [11, n, id.0, kind],
                        keep.then(|| format!("{node} {id} cancelled")),
                    )
                } else {
                    self.run_node(node, |n, ctx| n.handle(ctx, Input::Timer { id, kind }));
                    let line = keep.then(|| format!("{node} {id} fired kind={kind}"));
                    ([12, n, id.0, kind], line)
                }
            }
            Event::SyncDue {
                node,
                boot_epoch,
                ticket,
            } => {
                let slot = self.slot_mut(node);
                let n = u64::from(node.0);
                if slot.boot_epoch != boot_epoch || slot.node.is_none() {
                    let line = keep.then(|| format!("{node} {ticket} dropped (older incarnation)"));
                    ([20, n, ticket.0, 0], line)
                } else {
                    let (done, result) = slot
                        .disk
                        .complete_next()
                        .expect("a scheduled sync is still pending");
                    assert_eq!(done, ticket, "syncs complete in request order");
                    let (code, line) = match &result {
                        Ok(()) => (21, keep.then(|| format!("{node} {ticket} complete"))),
                        Err(e) => (22, keep.then(|| format!("{node} {ticket} failed: {e}"))),
                    };
                    self.run_node(node, |n, ctx| {
                        n.handle(ctx, Input::SyncComplete { ticket, result });
                    });
                    ([code, n, ticket.0, 0], line)
                }
            }
            Event::Broken {
                node,
                boot_epoch,
                peer,
            } => {
                let slot = self.slot(node);
                let ids = (u64::from(node.0) << 32) | u64::from(peer.0);
                if slot.boot_epoch != boot_epoch || slot.node.is_none() {
                    let line = keep.then(|| {
                        format!("{node} connection to {peer} broke (dropped: older incarnation)")
                    });
                    ([30, ids, 0, 0], line)
                } else {
                    self.run_node(node, |n, ctx| {
                        n.handle(ctx, Input::ConnectionBroken { peer });
                    });
                    (
                        [31, ids, 0, 0],
                        keep.then(|| format!("{node} connection to {peer} broke")),
                    )
                }
            }
            Event::Fault(fault) => {
                let line = self.apply_fault(*fault);
                (
                    [40, fnv1a(FNV_OFFSET_BASIS, line.as_bytes()), 0, 0],
                    Some(line),
                )
            }
        };
        self.record_event(parts, line)
    }

    /// Folds one event into the fingerprint and, when the trace is kept, stores its line.
    fn record_event(&mut self, parts: [u64; 4], line: Option<String>) -> String {
        // Word at a time (this runs for every event): each word is mixed in with a
        // multiply and a rotate, so order and every bit of each word matter.
        let mut hash = self.fingerprint;
        for word in [self.now_ms, parts[0], parts[1], parts[2], parts[3]] {
            hash = (hash ^ word).wrapping_mul(FNV_PRIME).rotate_left(31);
        }
        self.fingerprint = hash;
        match line {
            Some(line) if self.keep_trace => self.keep_line(line),
            _ => String::new(),
        }
    }

    fn keep_line(&mut self, line: String) -> String {
        let line = format!("[t={}ms] {line}", self.now_ms);
        if self.trace.len() == MAX_TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(line.clone());
        line
    }

    /// Processes every event due at or before `t_ms`, then moves the clock to `t_ms`.
    pub fn run_until(&mut self, t_ms: u64) {
        while let Some((at_ms, event)) = self.queue.pop_due(t_ms) {
            self.process(at_ms, event);
        }
        self.now_ms = self.now_ms.max(t_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition the hand parser must agree with.
    fn node_of_addr_by_std(addr: &str) -> Option<NodeId> {
        let (ip, _port) = addr.rsplit_once(':')?;
        let ip: std::net::Ipv4Addr = ip.parse().ok()?;
        let [a, b, c, d] = ip.octets();
        (a == 10 && b == 0).then(|| NodeId((u32::from(c) << 8) | u32::from(d)))
    }

    #[test]
    fn node_of_addr_reads_sim_addr_and_rejects_what_ipv4_rejects() {
        for id in [0, 1, 255, 256, 1000, 65535] {
            assert_eq!(node_of_addr(&sim_addr(NodeId(id))), Some(NodeId(id)));
        }
        for bad in [
            "10.0.01.2:1",
            "10.0.1.256:1",
            "10.0.1:1",
            "10.0.1.2.3:1",
            "10.0.+1.2:1",
            "10.1.1.2:1",
            "10.0.1.2",
            "10.0..2:1",
        ] {
            assert_eq!(node_of_addr(bad), None, "{bad}");
            assert_eq!(node_of_addr_by_std(bad), None, "{bad}");
        }
    }

    #[test]
    fn sim_addr_writes_what_format_writes() {
        for id in [
            0,
            1,
            9,
            10,
            99,
            100,
            255,
            256,
            2559,
            2560,
            65535,
            65536,
            u32::MAX,
        ] {
            let expected = format!("10.0.{}.{}:{SIM_PORT}", id >> 8, id & 0xff);
            assert_eq!(sim_addr(NodeId(id)), expected);
        }
    }

    proptest::proptest! {
        #[test]
        fn node_of_addr_agrees_with_the_std_parser(addr in "(10\\.0\\.)?[0-9+.:]{0,12}") {
            proptest::prop_assert_eq!(node_of_addr(&addr), node_of_addr_by_std(&addr));
        }
    }
}
