//! Planted bugs for the rules of issue 8 section 1 that judge causes and bounds:
//! duplicates, owners, commits, acks and latency. Each mutant wraps the reference
//! broker at the Node boundary (as in `mutants.rs`, whose scaffolding this copies) and
//! must be caught by the rule it breaks; the reference passes the same seeds.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use rmq_model::broker::Broker;
use rmq_model::node::{Ctx, Input, Node, NodeId, TimerId};
use rmq_model::protocol::{response_code, Message, Request, Response};
use rmq_model::store::Disk;
use rmq_sim::check::Rule;
use rmq_sim::cluster::runner::{reference_broker, BrokerFactory};
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::cluster::sweep::{sweep, SweepSummary};
use rmq_sim::cluster::world::sim_addr;

fn scenario_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(format!("{name}.toml"))
}

fn load(name: &str) -> LoadedScenario {
    LoadedScenario::load(&scenario_path(name)).unwrap_or_else(|e| panic!("{e}"))
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

fn pass_through(_: NodeId, m: Message) -> Option<Message> {
    Some(m)
}

fn mutant_factory(
    tamper: Tamper,
    intercept: fn(&mut dyn Ctx<Message>, &Input<Message>) -> bool,
) -> BrokerFactory {
    Rc::new(move |config, disk: &mut dyn Disk| {
        Box::new(Mutant {
            inner: Broker::boot(config, disk),
            tamper,
            intercept,
        })
    })
}

/// Runs the first `seeds` seeds of `loaded` with `broker`, stopping at the first
/// failure.
fn caught(loaded: &LoadedScenario, seeds: u64, broker: fn() -> BrokerFactory) -> SweepSummary {
    let mut total = SweepSummary::default();
    for seed in 0..seeds {
        let s = sweep(loaded, seed..seed + 1, broker);
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

/// The reference broker passes the seeds a mutant was caught within.
fn reference_passes(loaded: &LoadedScenario, seeds: u64) {
    let s = sweep(loaded, 0..seeds, reference_broker);
    assert_eq!(s.failed, 0, "{:#?}", s.failures);
}

fn assert_caught_by(
    loaded: &LoadedScenario,
    budget: u64,
    broker: fn() -> BrokerFactory,
    rule: Rule,
) {
    let s = caught(loaded, budget, broker);
    assert!(s.failed > 0, "not caught in {} seeds", s.seeds);
    eprintln!(
        "caught in {} seed(s) by {:?}: {:?}",
        s.seeds,
        first_rules(&s),
        s.failures.first().map(|f| &f.violations)
    );
    // Only this rule catches it.
    assert_eq!(first_rules(&s), vec![rule], "{:?}", s.failures);
    reference_passes(loaded, s.seeds);
}

/// Case 1 with a 150 s quiet period, producers sending `send_after_heal_ms` into it.
fn long_quiet(name: &str, send_after_heal_ms: u64) -> LoadedScenario {
    let path = std::env::temp_dir().join(format!("rocketsim_mutant_{name}.toml"));
    let text = std::fs::read_to_string(scenario_path("case1_kill"))
        .unwrap()
        .replace("quiet_ms = 75000", "quiet_ms = 150000")
        .replace(
            "groups = [",
            &format!("send_after_heal_ms = {send_after_heal_ms}\ngroups = ["),
        );
    std::fs::write(&path, text).unwrap();
    LoadedScenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

thread_local! {
    /// Pull answers with records the stuttering broker has sent.
    static PULLS: Cell<u64> = const { Cell::new(0) };
}

/// Duplicates: every 7th pull answer with records says `nextBeginOffset` one behind
/// the end of what it served, so the consumer pulls the last record again within the
/// same ownership span — a redelivery with no cause.
#[test]
fn pull_answering_next_begin_offset_behind_is_caught_as_duplicates() {
    fn stutter(_: NodeId, m: Message) -> Option<Message> {
        match m {
            Message::Response {
                opaque,
                response: Response::Pull(mut p),
            } if !p.records.is_empty() && p.next_begin_offset > 0 => {
                let n = PULLS.with(|c| {
                    c.set(c.get() + 1);
                    c.get()
                });
                if n.is_multiple_of(7) {
                    p.next_begin_offset -= 1;
                }
                Some(Message::Response {
                    opaque,
                    response: Response::Pull(p),
                })
            }
            m => Some(m),
        }
    }
    fn factory() -> BrokerFactory {
        mutant_factory(stutter, no_intercept)
    }
    assert_caught_by(&load("case1_kill"), 5, factory, Rule::Duplicates);
}

/// Owners: GET_CONSUMER_LIST_BY_GROUP answered with the asking consumer alone, so
/// every consumer of a group allocates itself every queue, for good.
#[test]
fn consumer_list_of_one_is_caught_as_owners() {
    fn alone(to: NodeId, m: Message) -> Option<Message> {
        match m {
            Message::Response {
                opaque,
                response: Response::ConsumerList(ids),
            } => {
                let addr = sim_addr(to);
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                let me: Vec<String> = ids
                    .into_iter()
                    .filter(|id| id.split('@').next() == Some(host))
                    .collect();
                Some(Message::Response {
                    opaque,
                    response: Response::ConsumerList(me),
                })
            }
            m => Some(m),
        }
    }
    fn factory() -> BrokerFactory {
        mutant_factory(alone, no_intercept)
    }
    // A quiet period long enough to outlast the route-refresh excuse after the heal.
    assert_caught_by(&long_quiet("owners", 0), 5, factory, Rule::Owners);
}

/// Offsets (the lower bound across a restart): the broker never persists consumer offsets (its 5 s persist timer is
/// swallowed), so a kill loses every commit since boot; a consumer that takes a queue
/// after the restart starts far behind what was committed long before the kill.
#[test]
fn broker_that_never_persists_offsets_is_caught_as_offsets() {
    fn no_persist(_: &mut dyn Ctx<Message>, input: &Input<Message>) -> bool {
        // The broker's PERSIST_OFFSETS timer kind (`broker::timer`).
        matches!(input, Input::Timer { kind, .. } if *kind == 4 << 32)
    }
    fn factory() -> BrokerFactory {
        mutant_factory(pass_through, no_persist)
    }
    // Kills of masters and consumer crashes: new owners read offsets after a restart.
    let path = std::env::temp_dir().join("rocketsim_mutant_commits.toml");
    let text = std::fs::read_to_string(scenario_path("case1_kill"))
        .unwrap()
        .replace(
            "targets = [\"masters\"]",
            "targets = [\"masters\", \"consumers\"]",
        )
        .replace(
            "kinds = [\"kill\", \"clean_restart\"]",
            "kinds = [\"kill\"]",
        )
        .replace("every_ms = [4000, 10000]", "every_ms = [1000, 3000]")
        .replace("down_ms = [500, 6000]", "down_ms = [3000, 12000]");
    std::fs::write(&path, text).unwrap();
    let loaded = LoadedScenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_caught_by(&loaded, 200, factory, Rule::Offsets);
}

/// Acks: every 5th SEND_OK is answered SLAVE_NOT_AVAILABLE, slave or not.
#[test]
fn slave_not_available_with_a_healthy_slave_is_caught_as_acks() {
    fn weaken(_: NodeId, m: Message) -> Option<Message> {
        match m {
            Message::Response {
                opaque,
                response: Response::Send(mut s),
            } if s.code == response_code::SUCCESS && s.queue_offset % 5 == 4 => {
                s.code = response_code::SLAVE_NOT_AVAILABLE;
                Some(Message::Response {
                    opaque,
                    response: Response::Send(s),
                })
            }
            m => Some(m),
        }
    }
    fn factory() -> BrokerFactory {
        mutant_factory(weaken, no_intercept)
    }
    assert_caught_by(&load("case1_kill"), 5, factory, Rule::Acks);
}

/// Latency: a broker that answers every pull only after holding it for a full long
/// poll (15 s), as if it never woke held pulls on arrival.
struct LazyPulls {
    inner: Broker,
    /// Pulls held back, oldest first, with when they are due.
    held: std::collections::VecDeque<(u64, NodeId, Message)>,
}

/// The wrapper's own timer kind (the broker's kinds are `n << 32`).
const LAZY_TIMER: u64 = 0x7777;
const LAZY_HOLD_MS: u64 = 15_000;

impl Node<Message> for LazyPulls {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.inner.on_start(ctx);
    }
    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Packet {
                from,
                msg:
                    msg @ Message::Request {
                        request: Request::PullMessage(_),
                        ..
                    },
            } => {
                self.held
                    .push_back((ctx.now_ms() + LAZY_HOLD_MS, from, msg));
                ctx.set_timer(LAZY_HOLD_MS, LAZY_TIMER);
            }
            Input::Timer {
                kind: LAZY_TIMER, ..
            } => {
                let now = ctx.now_ms();
                while self.held.front().is_some_and(|(due, ..)| *due <= now) {
                    let (_, from, msg) = self.held.pop_front().expect("front");
                    self.inner.handle(ctx, Input::Packet { from, msg });
                }
            }
            other => self.inner.handle(ctx, other),
        }
    }
    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.inner.shutdown(ctx);
    }
    fn is_stopped(&self) -> bool {
        self.inner.is_stopped()
    }
}

#[test]
fn broker_that_answers_pulls_only_at_their_timeout_is_caught_as_latency() {
    fn factory() -> BrokerFactory {
        Rc::new(|config, disk: &mut dyn Disk| {
            Box::new(LazyPulls {
                inner: Broker::boot(config, disk),
                held: Default::default(),
            })
        })
    }
    // Producers go on sending through the quiet period, past the moment the cluster
    // settled.
    assert_caught_by(&long_quiet("latency", 120_000), 5, factory, Rule::Latency);
}
