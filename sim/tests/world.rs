//! The world's event loop, network, timers, fsyncs and crashes, driven by toy nodes.
//! Each toy node writes what it saw into a shared log the test then judges.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::node::{Ctx, Input, Node, NodeId, TimerId};
use rmq_model::store::disk::{Disk, SyncTarget, SyncTicket};
use rmq_sim::cluster::net::NetConfig;
use rmq_sim::cluster::world::{Fault, World, MAX_SYNC_LATENCY_MS, MIN_SYNC_LATENCY_MS};
use rmq_sim::storage::disk::CrashKind;

#[derive(Clone, Debug, PartialEq)]
enum Msg {
    Seq(u64),
    Ping(u64),
    Pong(u64),
}

const N0: NodeId = NodeId(0);
const N1: NodeId = NodeId(1);
const N2: NodeId = NodeId(2);

/// (virtual time, node, input) for every input any node handled.
type Log = Rc<RefCell<Vec<(u64, NodeId, Input<Msg>)>>>;

fn new_log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

const SEND_TIMER: u64 = 1;

/// Sends `Seq(0), Seq(1), ...` to `to` every `interval_ms` (plus 0..3 ms drawn from the
/// node's rng when `random_interval`), answers pings, and asserts that what it receives
/// on each connection is strictly increasing: the network may lose, never reorder.
struct Streamer {
    log: Log,
    to: Option<NodeId>,
    interval_ms: u64,
    random_interval: bool,
    next_seq: u64,
    last_received: BTreeMap<NodeId, u64>,
}

impl Streamer {
    fn arm(&mut self, ctx: &mut dyn Ctx<Msg>) {
        let extra_ms = if self.random_interval {
            ctx.random_u64() % 3
        } else {
            0
        };
        ctx.set_timer(self.interval_ms + extra_ms, SEND_TIMER);
    }
}

impl Node<Msg> for Streamer {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Msg>) {
        if self.to.is_some() {
            self.arm(ctx);
        }
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Msg>, input: Input<Msg>) {
        self.log
            .borrow_mut()
            .push((ctx.now_ms(), ctx.me(), input.clone()));
        match input {
            Input::Timer { kind, .. } => {
                assert_eq!(kind, SEND_TIMER);
                let to = self.to.expect("only streamers arm timers");
                ctx.send(to, Msg::Seq(self.next_seq));
                if self.next_seq % 4 == 3 {
                    ctx.send(to, Msg::Ping(self.next_seq));
                }
                self.next_seq += 1;
                self.arm(ctx);
            }
            Input::Packet { from, msg } => match msg {
                Msg::Seq(n) => {
                    if let Some(&last) = self.last_received.get(&from) {
                        assert!(n > last, "{from} -> {}: {n} after {last}", ctx.me());
                    }
                    self.last_received.insert(from, n);
                }
                Msg::Ping(n) => ctx.send(from, Msg::Pong(n)),
                Msg::Pong(_) => {}
            },
            // FIFO is per connection: the next one (a restarted peer) starts afresh.
            Input::ConnectionBroken { peer } => {
                self.last_received.remove(&peer);
            }
            Input::SyncComplete { .. } => {}
        }
    }
}

/// `targets[i]` is where node i streams (None: it only receives).
fn streamers(
    log: &Log,
    targets: Vec<Option<NodeId>>,
    interval_ms: u64,
    random_interval: bool,
) -> impl Fn(NodeId, &mut dyn Disk) -> Box<dyn Node<Msg>> {
    let log = log.clone();
    move |id: NodeId, _disk: &mut dyn Disk| -> Box<dyn Node<Msg>> {
        Box::new(Streamer {
            log: log.clone(),
            to: targets[id.0 as usize],
            interval_ms,
            random_interval,
            next_seq: 0,
            last_received: BTreeMap::new(),
        })
    }
}

fn seqs_received(log: &Log, at: NodeId, from: NodeId) -> Vec<(u64, u64)> {
    log.borrow()
        .iter()
        .filter_map(|(t, node, input)| match input {
            Input::Packet {
                from: f,
                msg: Msg::Seq(n),
            } if *node == at && *f == from => Some((*t, *n)),
            _ => None,
        })
        .collect()
}

fn broken_notices(log: &Log, at: NodeId, peer: NodeId) -> Vec<u64> {
    log.borrow()
        .iter()
        .filter_map(|(t, node, input)| match input {
            Input::ConnectionBroken { peer: p } if *node == at && *p == peer => Some(*t),
            _ => None,
        })
        .collect()
}

/// A three-node ring with jitter, node randomness, a crash/restart and a partition.
fn busy_run(seed: u64) -> (Vec<String>, u64) {
    let log = new_log();
    let factory = streamers(&log, vec![Some(N1), Some(N2), Some(N0)], 2, true);
    let mut world = World::new(seed, factory, 3, NetConfig::default());
    world.schedule(
        30,
        Fault::Partition {
            a: N0,
            b: N1,
            one_way: false,
        },
    );
    world.schedule(60, Fault::HealAll);
    world.schedule(
        80,
        Fault::Crash {
            node: N2,
            kind: CrashKind::PowerCut,
        },
    );
    world.schedule(90, Fault::Restart { node: N2 });
    world.run_until(150);
    (
        world.trace().map(str::to_string).collect(),
        world.fingerprint(),
    )
}

/// (a) Same seed, same trace and fingerprint; another seed, another fingerprint.
#[test]
fn same_seed_same_trace_other_seed_other_fingerprint() {
    let (trace_a, fp_a) = busy_run(42);
    let (trace_b, fp_b) = busy_run(42);
    assert!(trace_a.len() > 200, "the run should be busy");
    assert_eq!(trace_a, trace_b);
    assert_eq!(fp_a, fp_b);
    let (_, fp_c) = busy_run(43);
    assert_ne!(fp_a, fp_c);
    assert!(trace_a.iter().all(|l| l.starts_with("[t=")));
}

/// (b) Heavy jitter, a packet every millisecond: the receiver sees every packet, in
/// order (the Streamer asserts strictly increasing; here also that none is missing).
#[test]
fn fifo_per_connection_under_jitter() {
    for seed in 0..8 {
        let log = new_log();
        let net = NetConfig {
            base_latency_ms: 1,
            jitter_ms: 30,
            break_notice_ms: 1,
        };
        let mut world = World::new(
            seed,
            streamers(&log, vec![Some(N1), None], 1, false),
            2,
            net,
        );
        world.run_until(300);
        let got: Vec<u64> = seqs_received(&log, N1, N0)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert!(got.len() > 250, "seed {seed}: {} packets", got.len());
        assert_eq!(
            got,
            (0..got.len() as u64).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

/// (c) A two-way partition loses what is in flight, both ends hear ConnectionBroken,
/// sends on the cut link are refused; healing lets traffic resume.
#[test]
fn partition_loses_in_flight_packets_and_heal_resumes() {
    let log = new_log();
    let net = NetConfig {
        base_latency_ms: 5,
        jitter_ms: 5,
        break_notice_ms: 2,
    };
    let mut world = World::new(7, streamers(&log, vec![Some(N1), None], 1, false), 2, net);
    world.run_until(100);
    world.partition(N0, N1, false);
    world.run_until(200);
    world.heal(N0, N1);
    world.run_until(300);

    let got = seqs_received(&log, N1, N0);
    let before: Vec<u64> = got.iter().filter(|(t, _)| *t <= 100).map(|p| p.1).collect();
    assert!(
        got.iter().all(|(t, _)| *t <= 100 || *t > 200),
        "nothing crosses the cut"
    );
    let after: Vec<u64> = got.iter().filter(|(t, _)| *t > 200).map(|p| p.1).collect();
    assert!(!after.is_empty(), "traffic resumes after the heal");
    // Packets sent in the last latency window before the cut were in flight: lost.
    let last_before = *before.last().unwrap();
    assert!(
        last_before < 98,
        "in-flight packets were delivered: {last_before}"
    );
    assert!(
        after[0] >= 200,
        "packets sent during the cut are not delivered late"
    );

    // Both ends told at cut time + notice; the sender also for each refused send.
    assert_eq!(broken_notices(&log, N1, N0), vec![102]);
    let at_sender = broken_notices(&log, N0, N1);
    assert_eq!(at_sender[0], 102);
    assert!(at_sender.len() > 90, "each send during the cut is refused");
    assert!(at_sender.iter().all(|&t| (102..=202).contains(&t)));
}

/// (c) One-way: a -> b is cut, b -> a keeps flowing after the break.
#[test]
fn one_way_partition_cuts_one_direction() {
    let log = new_log();
    let mut world = World::new(
        9,
        streamers(&log, vec![Some(N1), Some(N0)], 3, false),
        2,
        NetConfig::default(),
    );
    world.run_until(100);
    world.partition(N0, N1, true);
    world.run_until(200);
    assert!(seqs_received(&log, N1, N0).iter().all(|(t, _)| *t <= 100));
    let back: Vec<u64> = seqs_received(&log, N0, N1)
        .iter()
        .filter(|(t, _)| *t > 110)
        .map(|p| p.1)
        .collect();
    assert!(back.len() > 20, "n1 -> n0 still works: {back:?}");
    assert!(!broken_notices(&log, N1, N0).is_empty());
    assert!(!broken_notices(&log, N0, N1).is_empty());
    world.heal_all();
    world.run_until(300);
    assert!(seqs_received(&log, N1, N0).iter().any(|(t, _)| *t > 200));
}

/// A crash breaks the crashed node's connections: peers hear of it, and packets it had
/// in flight are lost; after the restart its new incarnation streams again.
#[test]
fn a_crash_breaks_connections_and_loses_in_flight_packets() {
    let log = new_log();
    let net = NetConfig {
        base_latency_ms: 5,
        jitter_ms: 0,
        break_notice_ms: 1,
    };
    let mut world = World::new(3, streamers(&log, vec![Some(N1), None], 1, false), 2, net);
    world.run_until(50);
    world.crash(N0, CrashKind::ProcessCrash);
    assert!(!world.is_up(N0));
    world.run_until(100);
    let got = seqs_received(&log, N1, N0);
    assert!(
        got.iter().all(|(t, _)| *t <= 50),
        "in-flight packets are lost"
    );
    assert_eq!(broken_notices(&log, N1, N0), vec![51]);
    world.restart(N0);
    world.run_until(150);
    // The new incarnation starts numbering from 0 again.
    let after: Vec<u64> = seqs_received(&log, N1, N0)
        .iter()
        .filter(|(t, _)| *t > 100)
        .map(|p| p.1)
        .collect();
    assert_eq!(after.first(), Some(&0));
    assert_eq!(world.faults().len(), 2);
}

/// Sets the planned timers at start, cancels some, logs what fires.
struct TimerNode {
    log: Log,
    /// (after_ms, kind, cancel right away)
    plan: Vec<(u64, u64, bool)>,
}

impl Node<Msg> for TimerNode {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Msg>) {
        for &(after_ms, kind, cancel) in &self.plan {
            let id: TimerId = ctx.set_timer(after_ms, kind);
            if cancel {
                ctx.cancel_timer(id);
            }
        }
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Msg>, input: Input<Msg>) {
        self.log.borrow_mut().push((ctx.now_ms(), ctx.me(), input));
    }
}

fn timer_world(plan: Vec<(u64, u64, bool)>) -> (World<Msg>, Log) {
    let log = new_log();
    let l = log.clone();
    let factory = move |_id: NodeId, _disk: &mut dyn Disk| -> Box<dyn Node<Msg>> {
        Box::new(TimerNode {
            log: l.clone(),
            plan: plan.clone(),
        })
    };
    (World::new(1, factory, 1, NetConfig::default()), log)
}

fn fired(log: &Log) -> Vec<(u64, u64)> {
    log.borrow()
        .iter()
        .filter_map(|(t, _, input)| match input {
            Input::Timer { kind, .. } => Some((*t, *kind)),
            _ => None,
        })
        .collect()
}

/// (d) + (f) Timers fire at their virtual time; ties in time fire in the order they
/// were set; cancelled timers never fire.
#[test]
fn timers_fire_in_time_then_sequence_order_and_cancelled_never() {
    let (mut world, log) = timer_world(vec![
        (5, 1, false),
        (3, 2, false),
        (5, 3, false),
        (1, 4, false),
        (3, 5, false),
        (4, 6, true),
        (0, 7, false),
    ]);
    world.run_until(100);
    assert_eq!(
        fired(&log),
        vec![(0, 7), (1, 4), (3, 2), (3, 5), (5, 1), (5, 3)]
    );
    assert!(world.trace().any(|l| l.contains("cancelled")));
}

/// (d) A timer of a crashed incarnation never fires, not even after a restart.
#[test]
fn timers_of_a_crashed_incarnation_never_fire() {
    let (mut world, log) = timer_world(vec![(100, 1, false)]);
    world.run_until(50);
    world.crash(N0, CrashKind::ProcessCrash);
    world.run_until(60);
    world.restart(N0);
    world.run_until(1000);
    assert_eq!(fired(&log), vec![(160, 1)]);
}

/// (f) Packets due at the same millisecond arrive in the order they were sent.
#[test]
fn same_time_packets_keep_send_order() {
    let log = new_log();
    let net = NetConfig {
        base_latency_ms: 5,
        jitter_ms: 0,
        break_notice_ms: 1,
    };
    // n0 and n1 both send to n2 every 10 ms; n0's timer was set first, so at each tie
    // n0's packet was scheduled first.
    let mut world = World::new(
        0,
        streamers(&log, vec![Some(N2), Some(N2), None], 10, false),
        3,
        net,
    );
    world.run_until(100);
    let arrivals: Vec<(u64, NodeId)> = log
        .borrow()
        .iter()
        .filter_map(|(t, node, input)| match input {
            Input::Packet {
                from,
                msg: Msg::Seq(_),
            } if *node == N2 => Some((*t, *from)),
            _ => None,
        })
        .collect();
    assert!(arrivals.len() >= 16);
    for pair in arrivals.chunks(2) {
        assert_eq!(pair[0].0, pair[1].0, "same arrival time");
        assert_eq!((pair[0].1, pair[1].1), (N0, N1));
    }
}

const COUNTER_PATH: &str = "counter";
const TICK_TIMER: u64 = 2;
const TICK_MS: u64 = 3;

#[derive(Default)]
struct CounterLog {
    /// What each incarnation recovered.
    recovered: Vec<u64>,
    /// (requested at, completed at) of every sync.
    sync_times_ms: Vec<(u64, u64)>,
    /// The highest count covered by a completed sync.
    synced: u64,
}

/// Appends 1, 2, 3, ... as u64 LE to one file, syncing after each append; boot keeps
/// the longest prefix that reads 1..=n and cuts the rest (an unsynced tail may hold
/// zeros or torn pages after a power cut).
struct Counter {
    log: Rc<RefCell<CounterLog>>,
    count: u64,
    /// ticket -> (count it covers, requested at)
    pending: BTreeMap<SyncTicket, (u64, u64)>,
}

impl Counter {
    fn recover(log: Rc<RefCell<CounterLog>>, disk: &mut dyn Disk) -> Counter {
        if !disk.exists(COUNTER_PATH) {
            disk.create(COUNTER_PATH).unwrap();
            disk.request_sync(SyncTarget::Dir("")).unwrap();
        }
        let len = disk.len(COUNTER_PATH).unwrap();
        let bytes = disk
            .read(COUNTER_PATH, 0, len as usize)
            .unwrap()
            .into_owned();
        let count = bytes
            .chunks_exact(8)
            .enumerate()
            .take_while(|(i, c)| u64::from_le_bytes((*c).try_into().unwrap()) == *i as u64 + 1)
            .count() as u64;
        disk.set_len(COUNTER_PATH, count * 8).unwrap();
        log.borrow_mut().recovered.push(count);
        Counter {
            log,
            count,
            pending: BTreeMap::new(),
        }
    }
}

impl Node<Msg> for Counter {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Msg>) {
        ctx.set_timer(TICK_MS, TICK_TIMER);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Msg>, input: Input<Msg>) {
        match input {
            Input::Timer { kind, .. } => {
                assert_eq!(kind, TICK_TIMER);
                self.count += 1;
                let offset = (self.count - 1) * 8;
                let disk = ctx.disk();
                disk.write(COUNTER_PATH, offset, &self.count.to_le_bytes())
                    .unwrap();
                let ticket = disk.request_sync(SyncTarget::File(COUNTER_PATH)).unwrap();
                self.pending.insert(ticket, (self.count, ctx.now_ms()));
                ctx.set_timer(TICK_MS, TICK_TIMER);
            }
            Input::SyncComplete { ticket, result } => {
                result.unwrap();
                // The boot-time directory sync is not in `pending`.
                if let Some((count, requested_ms)) = self.pending.remove(&ticket) {
                    let mut log = self.log.borrow_mut();
                    log.sync_times_ms.push((requested_ms, ctx.now_ms()));
                    log.synced = log.synced.max(count);
                }
            }
            Input::Packet { .. } | Input::ConnectionBroken { .. } => {}
        }
    }
}

fn counter_world(seed: u64) -> (World<Msg>, Rc<RefCell<CounterLog>>) {
    let log = Rc::new(RefCell::new(CounterLog::default()));
    let l = log.clone();
    let factory = move |_id: NodeId, disk: &mut dyn Disk| -> Box<dyn Node<Msg>> {
        Box::new(Counter::recover(l.clone(), disk))
    };
    (World::new(seed, factory, 1, NetConfig::default()), log)
}

/// (e) Fsyncs complete as Input::SyncComplete within the latency bounds, in request
/// order; after a power cut and a restart the node recovers at least what was synced.
#[test]
fn syncs_complete_later_and_a_power_cut_keeps_what_was_synced() {
    let mut lost_some_unsynced = false;
    for seed in 0..16 {
        let (mut world, log) = counter_world(seed);
        world.run_until(200 + seed * 7);
        {
            let log = log.borrow();
            assert!(log.sync_times_ms.len() > 40, "seed {seed}");
            for &(requested_ms, completed_ms) in &log.sync_times_ms {
                assert!(completed_ms >= requested_ms + MIN_SYNC_LATENCY_MS);
                // In-order completion can queue a sync behind an older one, but never
                // past the older one's due time, which is itself within the bound.
                assert!(completed_ms <= requested_ms + MAX_SYNC_LATENCY_MS);
            }
            let completions: Vec<u64> = log.sync_times_ms.iter().map(|p| p.1).collect();
            assert!(completions.windows(2).all(|w| w[0] <= w[1]));
        }
        let synced = log.borrow().synced;
        let written = world.disk(N0).cache_bytes(COUNTER_PATH).unwrap().len() as u64 / 8;
        assert!(
            synced < written,
            "seed {seed}: something is still in flight"
        );
        world.crash(N0, CrashKind::PowerCut);
        world.run_until(400);
        assert_eq!(log.borrow().recovered, vec![0], "down until restarted");
        world.restart(N0);
        let recovered = *log.borrow().recovered.last().unwrap();
        assert!(
            recovered >= synced,
            "seed {seed}: {recovered} < synced {synced}"
        );
        assert!(recovered <= written);
        lost_some_unsynced |= recovered < written;
        // The new incarnation goes on from there, and its syncs complete too.
        world.run_until(500);
        assert!(log.borrow().synced > recovered, "seed {seed}");
    }
    assert!(
        lost_some_unsynced,
        "a power cut should lose some unsynced tail"
    );
}

/// Syncs in flight at a crash never complete for the next incarnation.
#[test]
fn syncs_of_a_crashed_incarnation_are_dropped() {
    let (mut world, log) = counter_world(5);
    world.run_until(100);
    let synced_before = log.borrow().sync_times_ms.len();
    world.crash(N0, CrashKind::ProcessCrash);
    world.run_until(150);
    assert_eq!(log.borrow().sync_times_ms.len(), synced_before);
    assert!(world
        .trace()
        .any(|l| l.contains("dropped (older incarnation)")));
    // A process crash keeps the page cache: nothing written is lost.
    let written_before = log.borrow().recovered.len();
    world.restart(N0);
    assert_eq!(log.borrow().recovered.len(), written_before + 1);
    assert!(*log.borrow().recovered.last().unwrap() >= 33);
    world.lose_machine(N0);
    world.restart(N0);
    assert!(!world.is_up(N0), "a lost machine never boots");
    assert!(world.disk(N0).is_lost());
}

fn pong_moment(m: &Msg) -> u32 {
    u32::from(matches!(m, Msg::Pong(_)))
}

/// A trigger strikes its faults at the first matching packet delivered once it is armed
/// (plus each fault's offset), once; packets before it is armed do not count.
#[test]
fn a_trigger_strikes_after_the_first_matching_packet_once_armed() {
    use rmq_sim::cluster::world::{Trigger, Watch};
    let log = new_log();
    let factory = streamers(&log, vec![Some(N1), None, None], 2, true);
    let mut world = World::new(9, factory, 3, NetConfig::default());
    world.set_moment_classifier(pong_moment);
    world.arm(Trigger {
        watch: Watch::Packet {
            from: N1,
            to: Some(N0),
            moment: 1,
        },
        armed_at_ms: 50,
        expires_at_ms: 1_000,
        then: vec![
            (
                3,
                Fault::Crash {
                    node: N2,
                    kind: CrashKind::ProcessCrash,
                },
            ),
            (10, Fault::Restart { node: N2 }),
        ],
    });
    world.run_until(300);
    let first_pong_ms = log
        .borrow()
        .iter()
        .find_map(|(t, node, input)| match input {
            Input::Packet {
                from,
                msg: Msg::Pong(_),
            } if *node == N0 && *from == N1 && *t >= 50 => Some(*t),
            _ => None,
        })
        .expect("pongs flow");
    let struck: Vec<(u64, String)> = world
        .faults()
        .iter()
        .map(|f| (f.at_ms, f.fault.to_string()))
        .collect();
    assert_eq!(
        struck,
        vec![
            (first_pong_ms + 3, "crash n2 Process".to_string()),
            (first_pong_ms + 10, "restart n2".to_string()),
        ]
    );
    assert!(world
        .trace()
        .any(|l| l.contains("trigger on") && l.contains("fired")));
}

/// A trigger on an fsync request crashes the node while that fsync is in flight: the
/// power cut lands before the sync completes, so what it covered may be lost. A trigger
/// whose first fault would fall at or after its expiry strikes nothing.
#[test]
fn a_trigger_on_an_fsync_request_strikes_mid_sync_and_expires_at_the_heal() {
    use rmq_sim::cluster::world::{Trigger, Watch};
    let (mut world, log) = counter_world(4);
    world.arm(Trigger {
        watch: Watch::SyncRequested { node: N0 },
        armed_at_ms: 100,
        expires_at_ms: 1_000,
        then: vec![
            (
                0,
                Fault::Crash {
                    node: N0,
                    kind: CrashKind::PowerCut,
                },
            ),
            (50, Fault::Restart { node: N0 }),
        ],
    });
    world.run_until(300);
    let crash_ms = world.faults()[0].at_ms;
    let requested: Vec<u64> = log.borrow().sync_times_ms.iter().map(|p| p.0).collect();
    assert!(crash_ms >= 100);
    assert_eq!(crash_ms % TICK_MS, 0, "struck at a tick's fsync request");
    assert!(
        !requested.contains(&crash_ms),
        "the fsync requested at the crash never completed"
    );
    assert!(
        requested.contains(&(crash_ms - TICK_MS)),
        "the one before did"
    );
    assert_eq!(world.faults().len(), 2, "struck once, then restarted");

    let (mut world, _) = counter_world(4);
    world.arm(Trigger {
        watch: Watch::SyncRequested { node: N0 },
        armed_at_ms: 100,
        expires_at_ms: 105,
        then: vec![(
            20,
            Fault::Crash {
                node: N0,
                kind: CrashKind::PowerCut,
            },
        )],
    });
    world.run_until(300);
    assert!(world.faults().is_empty(), "due after the expiry: dropped");
    assert!(world.trace().any(|l| l.contains("expired at the heal")));
}
