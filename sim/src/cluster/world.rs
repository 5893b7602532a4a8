//! The world: a deterministic event loop that drives sans-I/O nodes.
//!
//! One queue of events ordered by (virtual time ms, insertion sequence): ties break by
//! the order events were scheduled, never by anything hashed or allocated, so a seed
//! replays byte for byte. The queue is a binary heap keyed by that pair: the keys are
//! unique, so the pop order is total and the same on every run. Nothing sleeps: [`World::step`] jumps the clock to the next
//! event.
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

use std::cell::Cell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::fmt::{self, Debug};
use std::rc::Rc;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rmq_model::node::{Ctx, Input, Node, NodeFactory, NodeId, TimerId};
use rmq_model::store::disk::{Disk, SyncTicket};

use crate::cluster::net::{Net, NetConfig};
use crate::cluster::seeds::{stream, Purpose, MAX_NODES};
use crate::storage::disk::{CrashKind, SimDisk};

/// A requested fsync completes this long after the request (uniform, per node stream),
/// and never before an earlier request of the same disk.
pub const MIN_SYNC_LATENCY_MS: u64 = 1;
pub const MAX_SYNC_LATENCY_MS: u64 = 10;
/// Trace lines kept in memory (the most recent); the fingerprint covers all of them.
pub const MAX_TRACE_LINES: usize = 100_000;
/// More queued events than this means a node floods the world: a bug to stop on.
pub const MAX_QUEUED_EVENTS: usize = 1_000_000;

/// Something the world does to the cluster, now or at a scheduled time.
///
/// A fault has one name from scenario to history: a scenario's `process_crash`
/// (or `kill`), `os_crash` and `power_cut` are [`Fault::Crash`] of that
/// [`CrashKind`], `machine_lost` is [`Fault::MachineLost`], `disk_damaged`
/// [`Fault::DiskDamaged`], `connection_reset` [`Fault::ConnectionReset`], and so on;
/// the history records each under the same name (see `fault_entry` in `runner.rs`:
/// a clean shutdown as `process_crash`, a connection reset as `partition`, the
/// classes the checker judges by).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node's process, OS or power goes (`process_crash`, `os_crash`, `power_cut`).
    Crash {
        node: NodeId,
        kind: CrashKind,
    },
    /// Boots a crashed node from its disk. Ignored if it is up or its machine is lost.
    Restart {
        node: NodeId,
    },
    /// Power cut, then the disk is gone and the node never boots again.
    MachineLost {
        node: NodeId,
    },
    /// A clean stop (SIGTERM): the node finishes its shutdown, then its process exits.
    CleanShutdown {
        node: NodeId,
    },
    /// Bit rot: `bits` single-bit flips in random sectors of files under `path_prefix`.
    DiskDamaged {
        node: NodeId,
        path_prefix: String,
        bits: u32,
    },
    /// The connection between `a` and `b` is reset (RST): in-flight packets are lost
    /// and both ends see the break; the next send reconnects.
    ConnectionReset {
        a: NodeId,
        b: NodeId,
    },
    /// The node's clock reads `skew_ms` off the true time from now on.
    ClockSkew {
        node: NodeId,
        skew_ms: i64,
    },
    /// Cuts `a -> b`, and `b -> a` unless `one_way`.
    Partition {
        a: NodeId,
        b: NodeId,
        one_way: bool,
    },
    Heal {
        a: NodeId,
        b: NodeId,
    },
    HealAll,
    Clog {
        from: NodeId,
        to: NodeId,
        extra_ms: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { node, kind } => {
                // The trace keeps the words it had before faults had one name from
                // scenario to history: trace lines feed the run's fingerprint.
                let kind = match kind {
                    CrashKind::ProcessCrash => "Process",
                    CrashKind::OsCrash => "Os",
                    CrashKind::PowerCut => "PowerCut",
                };
                write!(f, "crash {node} {kind}")
            }
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::MachineLost { node } => write!(f, "lose machine {node}"),
            Fault::CleanShutdown { node } => write!(f, "shutdown {node}"),
            Fault::DiskDamaged {
                node,
                path_prefix,
                bits,
            } => write!(f, "damage {node} disk {path_prefix}* ({bits} bits)"),
            Fault::ClockSkew { node, skew_ms } => write!(f, "clock skew {node} {skew_ms:+}ms"),
            Fault::ConnectionReset { a, b } => write!(f, "reset connection {a} <-> {b}"),
            Fault::Partition { a, b, one_way } => {
                let arrow = if *one_way { "->" } else { "<->" };
                write!(f, "partition {a} {arrow} {b}")
            }
            Fault::Heal { a, b } => write!(f, "heal {a} <-> {b}"),
            Fault::HealAll => write!(f, "heal all"),
            Fault::Clog { from, to, extra_ms } => write!(f, "clog {from} -> {to} +{extra_ms}ms"),
        }
    }
}

/// A moment a [`Trigger`] waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A packet from `from` (to `to`, if given) that the world's moment classifier
    /// (see [`World::set_moment_classifier`]) puts in class `moment`, delivered.
    Packet {
        from: NodeId,
        to: Option<NodeId>,
        moment: u32,
    },
    /// `node` asked its disk for an fsync (the completion is still to come).
    SyncRequested { node: NodeId },
}

/// What the world observed, matched against the armed triggers.
#[derive(Copy, Clone, Debug)]
enum Observed {
    Packet {
        from: NodeId,
        to: NodeId,
        moment: u32,
    },
    SyncRequested {
        node: NodeId,
    },
}

impl Watch {
    fn matches(&self, seen: Observed) -> bool {
        match (*self, seen) {
            (
                Watch::Packet { from, to, moment },
                Observed::Packet {
                    from: f,
                    to: t,
                    moment: m,
                },
            ) => from == f && moment == m && to.is_none_or(|to| to == t),
            (Watch::SyncRequested { node }, Observed::SyncRequested { node: n }) => node == n,
            _ => false,
        }
    }
}

impl fmt::Display for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Watch::Packet {
                from,
                to: Some(to),
                moment,
            } => write!(f, "packet of moment {moment} {from} -> {to}"),
            Watch::Packet {
                from,
                to: None,
                moment,
            } => write!(f, "packet of moment {moment} from {from}"),
            Watch::SyncRequested { node } => write!(f, "fsync requested by {node}"),
        }
    }
}

/// A fault aimed at a moment: from `armed_at_ms` on, the first moment matching `watch`
/// schedules each of `then` at that moment plus its offset. Nothing is struck at or
/// after `expires_at_ms` (the heal): a first fault due then is dropped with the rest,
/// and later ones (a restart, a heal) are pulled back to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub watch: Watch,
    pub armed_at_ms: u64,
    pub expires_at_ms: u64,
    /// Offsets in ms from the observed moment, ascending.
    pub then: Vec<(u64, Fault)>,
}

/// A fault as it happened, for the checker's allowance and for failure reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    pub at_ms: u64,
    pub fault: Fault,
}

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

/// An event in the queue, ordered by its unique (time, sequence) key alone.
struct Queued<M> {
    key: Reverse<(u64, u64)>,
    event: Event<M>,
}

impl<M> PartialEq for Queued<M> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<M> Eq for Queued<M> {}

impl<M> PartialOrd for Queued<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<M> Ord for Queued<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

struct Slot<M> {
    /// `None` while the node is down: its memory is gone.
    node: Option<Box<dyn Node<M>>>,
    disk: SimDisk,
    /// Armed timers of the current incarnation; a fired or cancelled one is absent.
    timers: BTreeSet<TimerId>,
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

enum Effect<M> {
    Send { to: NodeId, msg: M },
    SetTimer { id: TimerId, at_ms: u64, kind: u64 },
    CancelTimer(TimerId),
}

/// The `Ctx` a node sees during one handler call. Effects are collected and applied in
/// order after the handler returns, so the node never observes the world mid-change.
struct SimCtx<'a, M> {
    me: NodeId,
    node_count: u32,
    /// The node's clock (skewed).
    now_ms: u64,
    /// The world's clock, which timers are scheduled on.
    true_now_ms: u64,
    rng: &'a mut ChaCha8Rng,
    disk: &'a mut SimDisk,
    next_timer_id: &'a mut u64,
    effects: Vec<Effect<M>>,
}

impl<M> Ctx<M> for SimCtx<'_, M> {
    fn me(&self) -> NodeId {
        self.me
    }

    fn my_addr(&self) -> String {
        sim_addr(self.me)
    }

    fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        node_of_addr(addr).filter(|n| n.0 < self.node_count)
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.random()
    }

    fn send(&mut self, to: NodeId, msg: M) {
        self.effects.push(Effect::Send { to, msg });
    }

    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
        let id = TimerId(*self.next_timer_id);
        *self.next_timer_id += 1;
        let at_ms = self.true_now_ms + after_ms;
        self.effects.push(Effect::SetTimer { id, at_ms, kind });
        id
    }

    fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer(id));
    }

    fn disk(&mut self) -> &mut dyn Disk {
        &mut *self.disk
    }
}

/// The port every simulated node listens on (RocketMQ's broker default).
pub const SIM_PORT: u16 = 10911;

/// A simulated node's address: `10.0.{id / 256}.{id % 256}:10911`.
pub fn sim_addr(node: NodeId) -> String {
    format!("10.0.{}.{}:{SIM_PORT}", node.0 >> 8, node.0 & 0xff)
}

/// The node behind an address made by [`sim_addr`] (any port).
pub fn node_of_addr(addr: &str) -> Option<NodeId> {
    let (ip, _port) = addr.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let [a, b, c, d] = ip.octets();
    (a == 10 && b == 0).then(|| NodeId((u32::from(c) << 8) | u32::from(d)))
}

pub struct World<M> {
    seed: u64,
    now_ms: u64,
    next_seq: u64,
    queue: BinaryHeap<Queued<M>>,
    /// The effects buffer handed to every handler, kept to reuse its allocation.
    effects: Vec<Effect<M>>,
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
                timers: BTreeSet::new(),
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
            next_seq: 0,
            queue: BinaryHeap::new(),
            effects: Vec::new(),
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

    /// Arms a trigger; its faults are scheduled when its moment comes.
    pub fn arm(&mut self, trigger: Trigger) {
        assert!(!trigger.then.is_empty(), "a trigger strikes something");
        assert!(
            trigger.then.windows(2).all(|w| w[0].0 <= w[1].0),
            "a trigger's offsets ascend"
        );
        self.triggers.push(trigger);
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
        self.queue.push(Queued {
            key: Reverse((at_ms, self.next_seq)),
            event,
        });
        self.next_seq += 1;
    }

    /// Records a rare event (boot, injected fault, clean stop) by its text.
    fn record(&mut self, line: String) -> String {
        let digest = fnv1a(FNV_OFFSET_BASIS, line.as_bytes());
        self.record_event([50, digest, 0, 0], Some(line))
    }

    /// Schedules `fault` at `at_ms` (not in the past).
    pub fn schedule(&mut self, at_ms: u64, fault: Fault) {
        self.push(at_ms, Event::Fault(Box::new(fault)));
    }

    /// Injects `fault` now.
    pub fn inject(&mut self, fault: Fault) {
        let line = self.apply_fault(fault);
        self.record(line);
    }

    pub fn crash(&mut self, node: NodeId, kind: CrashKind) {
        self.inject(Fault::Crash { node, kind });
    }

    pub fn restart(&mut self, node: NodeId) {
        self.inject(Fault::Restart { node });
    }

    pub fn lose_machine(&mut self, node: NodeId) {
        self.inject(Fault::MachineLost { node });
    }

    pub fn partition(&mut self, a: NodeId, b: NodeId, one_way: bool) {
        self.inject(Fault::Partition { a, b, one_way });
    }

    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.inject(Fault::Heal { a, b });
    }

    pub fn heal_all(&mut self) {
        self.inject(Fault::HealAll);
    }

    pub fn clog(&mut self, from: NodeId, to: NodeId, extra_ms: u64) {
        self.inject(Fault::Clog { from, to, extra_ms });
    }

    /// Processes the next event; `None` when nothing is left to happen.
    pub fn step(&mut self) -> Option<String> {
        let Queued {
            key: Reverse((at_ms, _seq)),
            event,
        } = self.queue.pop()?;
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
        Some(self.record_event(parts, line))
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
        while let Some(Queued {
            key: Reverse((at_ms, _)),
            ..
        }) = self.queue.peek()
        {
            let at_ms = *at_ms;
            if at_ms > t_ms {
                break;
            }
            self.step();
        }
        self.now_ms = self.now_ms.max(t_ms);
    }

    /// Builds the node from its disk and starts it.
    fn boot(&mut self, id: NodeId) {
        let slot = self.slot_mut(id);
        assert!(slot.node.is_none(), "{id} is already up");
        assert!(!slot.lost, "{id}'s machine is lost");
        let node = self.factory.build(id, &mut self.slots[id.0 as usize].disk);
        self.slots[id.0 as usize].node = Some(node);
        // Recovery may have asked for syncs before on_start.
        self.schedule_new_syncs(id);
        self.run_node(id, |node, ctx| node.on_start(ctx));
    }

    /// Runs one handler of `id` (which must be up) and applies what it asked for.
    fn run_node(&mut self, id: NodeId, f: impl FnOnce(&mut dyn Node<M>, &mut dyn Ctx<M>)) {
        let node_count = self.slots.len() as u32;
        let slot = &mut self.slots[id.0 as usize];
        let mut node = slot.node.take().expect("handlers run only on live nodes");
        let mut ctx = SimCtx {
            me: id,
            node_count,
            now_ms: self.now_ms.saturating_add_signed(slot.clock_skew_ms),
            true_now_ms: self.now_ms,
            rng: &mut slot.node_rng,
            disk: &mut slot.disk,
            next_timer_id: &mut self.next_timer_id,
            effects: std::mem::take(&mut self.effects),
        };
        f(node.as_mut(), &mut ctx);
        let mut effects = ctx.effects;
        let exits = slot.stopping && node.is_stopped();
        slot.node = Some(node);
        for effect in effects.drain(..) {
            self.apply_effect(id, effect);
        }
        // Hand the (empty) buffer back; a handler that ran meanwhile (none does: effects
        // are applied, not run) would have left its own, which is as good.
        self.effects = effects;
        self.schedule_new_syncs(id);
        if exits {
            // The process exits after a clean shutdown: memory gone, page cache kept.
            let restart = std::mem::take(&mut self.slot_mut(id).restart_when_stopped);
            self.crash_now(id, CrashKind::ProcessCrash);
            self.record(format!("{id} stopped cleanly"));
            if restart {
                self.boot_deferred(id);
            }
        }
    }

    /// Performs a restart that was deferred while `id` was stopping, and records it
    /// as the fault it is.
    fn boot_deferred(&mut self, id: NodeId) {
        let fault = Fault::Restart { node: id };
        self.record(format!("fault {fault} (deferred until stopped)"));
        self.faults.push(FaultRecord {
            at_ms: self.now_ms,
            fault,
        });
        self.boot(id);
    }

    fn apply_effect(&mut self, me: NodeId, effect: Effect<M>) {
        match effect {
            Effect::Send { to, msg } => {
                assert!(to.0 < self.node_count(), "{me} sends to unknown {to}");
                // A cut link drops the packet; a down peer refuses the connection.
                // Either way only the sender hears of it.
                if self.net.is_blocked(me, to) || !self.is_up(to) {
                    self.notify_broken(me, to);
                    return;
                }
                let delivery = self
                    .net
                    .send(self.now_ms, me, to)
                    .expect("not blocked: checked above");
                self.push(
                    delivery.at_ms,
                    Event::Packet {
                        from: me,
                        to,
                        conn_epoch: delivery.conn_epoch,
                        msg: Box::new(msg),
                    },
                );
            }
            Effect::SetTimer { id, at_ms, kind } => {
                let slot = self.slot_mut(me);
                slot.timers.insert(id);
                let boot_epoch = slot.boot_epoch;
                self.push(
                    at_ms,
                    Event::Timer {
                        node: me,
                        boot_epoch,
                        id,
                        kind,
                    },
                );
            }
            Effect::CancelTimer(id) => {
                self.slot_mut(me).timers.remove(&id);
            }
        }
    }

    /// Schedules completions of the syncs `node` requested since the last call.
    fn schedule_new_syncs(&mut self, node: NodeId) {
        let now_ms = self.now_ms;
        let slot = self.slot_mut(node);
        let mut due = Vec::new();
        for ticket in slot.disk.pending_syncs_after(slot.last_sync_scheduled) {
            let latency_ms = slot
                .sync_latency_rng
                .random_range(MIN_SYNC_LATENCY_MS..=MAX_SYNC_LATENCY_MS);
            let at_ms = (now_ms + latency_ms).max(slot.last_sync_due_ms);
            slot.last_sync_due_ms = at_ms;
            slot.last_sync_scheduled = Some(ticket);
            due.push((at_ms, ticket));
        }
        let boot_epoch = slot.boot_epoch;
        let requested = !due.is_empty();
        for (at_ms, ticket) in due {
            self.push(
                at_ms,
                Event::SyncDue {
                    node,
                    boot_epoch,
                    ticket,
                },
            );
        }
        if requested && !self.triggers.is_empty() {
            self.observe(Observed::SyncRequested { node });
        }
    }

    /// Fires every armed trigger whose moment this is (and drops expired ones).
    fn observe(&mut self, seen: Observed) {
        let now_ms = self.now_ms;
        let mut fired = Vec::new();
        self.triggers.retain(|t| {
            if now_ms >= t.expires_at_ms {
                return false;
            }
            if now_ms < t.armed_at_ms || !t.watch.matches(seen) {
                return true;
            }
            fired.push(t.clone());
            false
        });
        for t in fired {
            let first_at_ms = now_ms + t.then[0].0;
            if first_at_ms >= t.expires_at_ms {
                self.record(format!("trigger on {} expired at the heal", t.watch));
                continue;
            }
            let faults: Vec<String> = t.then.iter().map(|(_, f)| f.to_string()).collect();
            self.record(format!(
                "trigger on {} fired: {}",
                t.watch,
                faults.join(", ")
            ));
            for (offset_ms, fault) in t.then {
                self.schedule((now_ms + offset_ms).min(t.expires_at_ms), fault);
            }
        }
    }

    /// Tells `node` (if up) that its connection to `peer` broke, after the notice delay.
    fn notify_broken(&mut self, node: NodeId, peer: NodeId) {
        let at_ms = self.now_ms + self.net.config().break_notice_ms;
        let slot = self.slot(node);
        if slot.node.is_none() {
            return;
        }
        let boot_epoch = slot.boot_epoch;
        self.push(
            at_ms,
            Event::Broken {
                node,
                boot_epoch,
                peer,
            },
        );
    }

    fn apply_fault(&mut self, fault: Fault) -> String {
        let line = self.apply_fault_inner(fault.clone());
        // Only faults that took effect count for the checker's allowance; a deferred
        // restart counts when it boots the node.
        if !line.contains("(ignored") && !line.contains("(deferred") {
            self.faults.push(FaultRecord {
                at_ms: self.now_ms,
                fault,
            });
        }
        line
    }

    fn apply_fault_inner(&mut self, fault: Fault) -> String {
        match fault {
            Fault::Crash { node, kind } => {
                if !self.is_up(node) {
                    return format!("fault {fault} (ignored: already down)");
                }
                let restart = self.slot(node).restart_when_stopped;
                self.crash_now(node, kind);
                if restart {
                    // The crash cut a clean shutdown short; the restart it was waiting
                    // for happens now.
                    self.boot_deferred(node);
                }
            }
            Fault::Restart { node } => {
                let slot = self.slot(node);
                if slot.lost {
                    return format!("fault {fault} (ignored: machine lost)");
                }
                if slot.node.is_some() && slot.stopping {
                    // A clean shutdown takes a few milliseconds (flushes, unregistering);
                    // a restart asked for meanwhile (the heal restarts every node) must
                    // not be lost, or the node would stay down for the rest of the run.
                    self.slot_mut(node).restart_when_stopped = true;
                    return format!("fault {fault} (deferred: stopping)");
                }
                if slot.node.is_some() {
                    return format!("fault {fault} (ignored: already up)");
                }
                self.boot(node);
            }
            Fault::MachineLost { node } => {
                if self.is_up(node) {
                    self.crash_now(node, CrashKind::PowerCut);
                }
                let slot = self.slot_mut(node);
                slot.lost = true;
                slot.disk.lose_disk();
            }
            Fault::CleanShutdown { node } => {
                if !self.is_up(node) {
                    return format!("fault {fault} (ignored: already down)");
                }
                self.slot_mut(node).stopping = true;
                self.run_node(node, |n, ctx| n.shutdown(ctx));
            }
            Fault::DiskDamaged {
                node,
                ref path_prefix,
                bits,
            } => {
                let slot = self.slot_mut(node);
                let mut hits = Vec::new();
                for _ in 0..bits {
                    if let Some(d) = slot.disk.rot(&mut slot.disk_fault_rng, path_prefix) {
                        hits.push(format!("{}@{}", d.path, d.byte_offset));
                    }
                }
                return format!("fault {fault}: {}", hits.join(" "));
            }
            Fault::ClockSkew { node, skew_ms } => self.slot_mut(node).clock_skew_ms = skew_ms,
            Fault::ConnectionReset { a, b } => {
                if !self.net.break_conn(a, b) {
                    return format!("fault {fault} (ignored: no open connection)");
                }
                self.notify_broken(a, b);
                self.notify_broken(b, a);
            }
            Fault::Partition { a, b, one_way } => {
                if self.net.partition(a, b, one_way) {
                    self.notify_broken(a, b);
                    self.notify_broken(b, a);
                }
            }
            Fault::Heal { a, b } => self.net.heal(a, b),
            Fault::HealAll => self.net.heal_all(),
            Fault::Clog { from, to, extra_ms } => self.net.clog(from, to, extra_ms),
        }
        format!("fault {fault}")
    }

    fn crash_now(&mut self, node: NodeId, kind: CrashKind) {
        let slot = self.slot_mut(node);
        slot.node = None;
        slot.stopping = false;
        slot.restart_when_stopped = false;
        slot.timers.clear();
        slot.boot_epoch += 1;
        slot.last_sync_due_ms = 0;
        slot.disk.crash(kind, &mut slot.disk_fault_rng);
        for peer in self.net.break_all_of(node) {
            self.notify_broken(peer, node);
        }
    }
}
