//! The checker has teeth: broken brokers, plugged in through the broker factory with
//! every scenario unchanged, are caught — each by the rule it breaks.
//!
//! A mutant wraps the reference broker and tampers with what goes in or out of it,
//! the way a buggy implementation would behave on the wire.

use std::path::Path;
use std::rc::Rc;

use rmq_model::broker::{Broker, BrokerRole, FlushDiskType};
use rmq_model::node::{Ctx, Input, Node, NodeId, TimerId};
use rmq_model::protocol::{Message, Request, Response};
use rmq_model::store::record::{parse, CrcCheck, Slot};
use rmq_model::store::Disk;
use rmq_sim::check::Rule;
use rmq_sim::history::Promise;
use rmq_sim::runner::BrokerFactory;
use rmq_sim::scenario::LoadedScenario;
use rmq_sim::sweep::{sweep, SweepSummary};

fn load(name: &str) -> LoadedScenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"));
    LoadedScenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// What a mutant does to the messages its broker sends.
type Tamper = fn(NodeId, Message) -> Option<Message>;

/// A `Ctx` that passes everything through but lets the mutant rewrite or drop sends.
struct TamperCtx<'a> {
    inner: &'a mut dyn Ctx<Message>,
    tamper: Tamper,
}

impl Ctx<Message> for TamperCtx<'_> {
    fn me(&self) -> NodeId {
        self.inner.me()
    }
    fn my_addr(&self) -> String {
        self.inner.my_addr()
    }
    fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        self.inner.resolve(addr)
    }
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn random_u64(&mut self) -> u64 {
        self.inner.random_u64()
    }
    fn send(&mut self, to: NodeId, msg: Message) {
        if let Some(msg) = (self.tamper)(to, msg) {
            self.inner.send(to, msg);
        }
    }
    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
        self.inner.set_timer(after_ms, kind)
    }
    fn cancel_timer(&mut self, id: TimerId) {
        self.inner.cancel_timer(id)
    }
    fn disk(&mut self) -> &mut dyn Disk {
        self.inner.disk()
    }
}

/// The reference broker with its sends tampered with, and optionally its inputs.
struct Mutant {
    inner: Broker,
    tamper: Tamper,
    /// Handles an input instead of the broker (true = swallowed).
    intercept: fn(&mut dyn Ctx<Message>, &Input<Message>) -> bool,
}

impl Node<Message> for Mutant {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        let mut ctx = TamperCtx {
            inner: ctx,
            tamper: self.tamper,
        };
        self.inner.on_start(&mut ctx);
    }
    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if (self.intercept)(ctx, &input) {
            return;
        }
        let mut ctx = TamperCtx {
            inner: ctx,
            tamper: self.tamper,
        };
        self.inner.handle(&mut ctx, input);
    }
    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        let mut ctx = TamperCtx {
            inner: ctx,
            tamper: self.tamper,
        };
        self.inner.shutdown(&mut ctx);
    }
    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }
}

fn no_intercept(_: &mut dyn Ctx<Message>, _: &Input<Message>) -> bool {
    false
}

/// Runs `seeds` of `scenario` (only those whose variant `pick` accepts) with `broker`.
fn caught(
    scenario: &str,
    seeds: u64,
    pick: fn(&str) -> bool,
    broker: fn() -> BrokerFactory,
) -> SweepSummary {
    let loaded = load(scenario);
    let mut total = SweepSummary::default();
    for seed in 0..seeds {
        if !pick(&loaded.variant_for(seed).name) {
            continue;
        }
        let s = sweep(&loaded, seed..seed + 1, broker);
        total.seeds += 1;
        total.failed += s.failed;
        total.failures.extend(s.failures);
        if total.failed > 0 {
            break;
        }
    }
    total
}

fn first_rules(s: &SweepSummary) -> Vec<Rule> {
    s.failures
        .first()
        .map(|f| f.rules.clone())
        .unwrap_or_default()
}

/// Mutant 1: SEND_OK before the covering fsync under SYNC_FLUSH (it flushes
/// asynchronously but still claims SYNC_FLUSH). Caught as loss in case 4 (power cut).
#[test]
fn send_ok_before_fsync_is_caught_in_case4() {
    fn lying_flush() -> BrokerFactory {
        Rc::new(|mut config, disk: &mut dyn Disk| {
            config.flush_disk_type = FlushDiskType::AsyncFlush;
            Box::new(Broker::boot(config, disk))
        })
    }
    let s = caught(
        "case4_power_cut",
        200,
        |v| v.contains("flush=sync_flush"),
        lying_flush,
    );
    assert!(s.failed > 0, "not caught in {} SYNC_FLUSH seeds", s.seeds);
    assert!(
        first_rules(&s).contains(&Rule::Lost),
        "{:?}",
        first_rules(&s)
    );
}

/// Mutant 1b: an ASYNC_FLUSH broker that flushes every 30 s instead of RocketMQ's
/// 500 ms (thorough every 10 s). The scenario declares no `[promise]`, so the checker
/// holds it to RocketMQ's defaults, not to the broker's own configuration: records
/// acknowledged more than the declared flush window before a power cut were lost.
#[test]
fn broker_flushing_less_often_than_promised_is_caught_in_case4() {
    fn slow_flush() -> BrokerFactory {
        Rc::new(|mut config, disk: &mut dyn Disk| {
            config.flush_interval_commit_log_ms = 30_000;
            config.flush_commit_log_thorough_interval_ms = 30_000;
            Box::new(Broker::boot(config, disk))
        })
    }
    let loaded = load("case4_power_cut");
    assert_eq!(
        loaded.file.promise,
        Promise::default(),
        "the default promise"
    );
    let s = caught(
        "case4_power_cut",
        200,
        |v| v.contains("flush=async_flush"),
        slow_flush,
    );
    assert!(s.failed > 0, "not caught in {} ASYNC_FLUSH seeds", s.seeds);
    assert!(
        first_rules(&s).contains(&Rule::Lost),
        "{:?}",
        first_rules(&s)
    );
}

/// Mutant 1c: the same slow flush on an ASYNC_MASTER: it ships only durable records,
/// so its slave falls 30 s behind instead of the declared replication window (one
/// flush interval and two heartbeats). Caught as loss in case 5 when the master's
/// machine is lost, with the promise left at RocketMQ's defaults.
#[test]
fn master_replicating_less_often_than_promised_is_caught_in_case5() {
    fn slow_ship() -> BrokerFactory {
        Rc::new(|mut config, disk: &mut dyn Disk| {
            config.flush_interval_commit_log_ms = 30_000;
            config.flush_commit_log_thorough_interval_ms = 30_000;
            Box::new(Broker::boot(config, disk))
        })
    }
    let s = caught(
        "case5_machine_lost",
        300,
        |v| v.contains("replication=async"),
        slow_ship,
    );
    assert!(
        s.failed > 0,
        "not caught in {} ASYNC replication seeds",
        s.seeds
    );
    assert!(
        first_rules(&s).contains(&Rule::Lost),
        "{:?}",
        first_rules(&s)
    );
}

/// Mutant 2: under SYNC_MASTER the slave acknowledges what it never stores. Caught as
/// loss in case 5 once the master's machine is lost.
#[test]
fn slave_that_never_replicates_is_caught_in_case5() {
    fn lying_slave() -> BrokerFactory {
        Rc::new(|config, disk: &mut dyn Disk| {
            let is_slave = config.role == BrokerRole::Slave;
            let inner = Broker::boot(config, disk);
            if !is_slave {
                return Box::new(inner);
            }
            fn ack_without_storing(ctx: &mut dyn Ctx<Message>, input: &Input<Message>) -> bool {
                let Input::Packet {
                    from,
                    msg:
                        Message::Request {
                            request:
                                Request::HaTransfer {
                                    master_offset,
                                    data,
                                    ..
                                },
                            ..
                        },
                } = input
                else {
                    return false;
                };
                if !data.is_empty() {
                    let request = Request::HaReport {
                        slave_max_offset: master_offset + data.len() as u64,
                    };
                    ctx.send(*from, Message::Request { opaque: 0, request });
                }
                true
            }
            // Its own honest reports would tell the master the truth.
            fn drop_reports(_: NodeId, m: Message) -> Option<Message> {
                match m {
                    Message::Request {
                        request: Request::HaReport { slave_max_offset },
                        ..
                    } if slave_max_offset > 0 => None,
                    m => Some(m),
                }
            }
            Box::new(Mutant {
                inner,
                tamper: drop_reports,
                intercept: ack_without_storing,
            })
        })
    }
    let s = caught(
        "case5_machine_lost",
        300,
        |v| v.contains("replication=sync"),
        lying_slave,
    );
    assert!(
        s.failed > 0,
        "not caught in {} SYNC replication seeds",
        s.seeds
    );
    assert!(
        first_rules(&s).contains(&Rule::Lost),
        "{:?}",
        first_rules(&s)
    );
}

/// Rewrites every pull response's records with `f`.
fn tamper_pulls(m: Message, f: fn(&mut Vec<u8>)) -> Option<Message> {
    match m {
        Message::Response {
            opaque,
            response: Response::Pull(mut p),
        } => {
            if !p.records.is_empty() {
                f(&mut p.records);
            }
            Some(Message::Response {
                opaque,
                response: Response::Pull(p),
            })
        }
        m => Some(m),
    }
}

fn mutant_factory(tamper: Tamper) -> BrokerFactory {
    Rc::new(move |config, disk: &mut dyn Disk| {
        Box::new(Mutant {
            inner: Broker::boot(config, disk),
            tamper,
            intercept: no_intercept,
        })
    })
}

/// Where the first record's body starts in a pull response's records.
fn first_body_at(records: &[u8]) -> Option<usize> {
    match parse(records, CrcCheck::Skip) {
        Ok(Slot::Record(v)) if !v.body.is_empty() => {
            Some(v.body.as_ptr() as usize - records.as_ptr() as usize)
        }
        _ => None,
    }
}

/// A broker that serves a damaged body (the client does not verify CRCs) is caught as
/// corrupt.
#[test]
fn corrupt_bodies_are_caught() {
    fn flip(_: NodeId, m: Message) -> Option<Message> {
        tamper_pulls(m, |records| {
            if let Some(at) = first_body_at(records) {
                records[at] ^= 0x40;
            }
        })
    }
    fn factory() -> BrokerFactory {
        mutant_factory(flip)
    }
    let s = caught("case1_kill", 10, |_| true, factory);
    assert!(s.failed > 0);
    assert!(
        first_rules(&s).contains(&Rule::Corrupt),
        "{:?}",
        first_rules(&s)
    );
}

/// A broker that answers SEND_OK with a queue offset one past the real one breaks
/// "one offset, one message".
#[test]
fn wrong_send_offsets_are_caught() {
    fn shift(_: NodeId, m: Message) -> Option<Message> {
        match m {
            Message::Response {
                opaque,
                response: Response::Send(mut s),
            } => {
                s.queue_offset += 1;
                Some(Message::Response {
                    opaque,
                    response: Response::Send(s),
                })
            }
            m => Some(m),
        }
    }
    fn factory() -> BrokerFactory {
        mutant_factory(shift)
    }
    let s = caught("case1_kill", 10, |_| true, factory);
    assert!(s.failed > 0);
    assert!(
        first_rules(&s).contains(&Rule::Offsets),
        "{:?}",
        first_rules(&s)
    );
}

/// A broker that serves a batch in reverse order breaks per-queue order.
#[test]
fn reordered_batches_are_caught() {
    fn reverse(_: NodeId, m: Message) -> Option<Message> {
        tamper_pulls(m, |records| {
            let mut parts = Vec::new();
            let mut at = 0;
            while at + 4 <= records.len() {
                let total = i32::from_be_bytes(records[at..at + 4].try_into().unwrap()) as usize;
                parts.push(records[at..at + total].to_vec());
                at += total;
            }
            parts.reverse();
            *records = parts.concat();
        })
    }
    fn factory() -> BrokerFactory {
        mutant_factory(reverse)
    }
    let s = caught("case1_kill", 10, |_| true, factory);
    assert!(s.failed > 0);
    assert!(
        first_rules(&s).contains(&Rule::Order),
        "{:?}",
        first_rules(&s)
    );
}

/// A broker that stops serving pulls after the heal leaves groups stuck: liveness.
#[test]
fn brokers_that_stop_serving_are_caught() {
    fn stop_after_10s(_: NodeId, m: Message) -> Option<Message> {
        // Answer no pull that found messages: consumers never progress.
        match &m {
            Message::Response {
                response: Response::Pull(p),
                ..
            } if !p.records.is_empty() => None,
            _ => Some(m),
        }
    }
    fn factory() -> BrokerFactory {
        mutant_factory(stop_after_10s)
    }
    let s = caught("case1_kill", 4, |_| true, factory);
    assert!(s.failed > 0);
    let rules = first_rules(&s);
    assert!(
        rules.contains(&Rule::Liveness) && rules.contains(&Rule::Lost),
        "{rules:?}"
    );
}

/// A broker that serves a record whose workload id property was renamed delivers a
/// message the workload never sent: phantom.
#[test]
fn phantom_messages_are_caught() {
    fn forge(_: NodeId, m: Message) -> Option<Message> {
        tamper_pulls(m, |records| {
            if let Some(at) = records.windows(4).position(|w| w == b"WID\x01") {
                records[at + 2] = b'X';
            }
        })
    }
    fn factory() -> BrokerFactory {
        mutant_factory(forge)
    }
    let s = caught("case1_kill", 10, |_| true, factory);
    assert!(s.failed > 0);
    assert!(
        first_rules(&s).contains(&Rule::Phantom),
        "{:?}",
        first_rules(&s)
    );
}
