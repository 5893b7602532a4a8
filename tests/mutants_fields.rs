//! Planted bugs for the rules on what a delivery must be: never a refused send
//! (`refused`), exactly the subscribed tags (`filter`), every field as sent
//! (`corrupt`: keys, user properties, born host, reconsume count, message id).
//!
//! Each broker mutant wraps the reference broker and tampers with what it sends, the
//! way a buggy implementation would behave on the wire; the client mutant changes
//! what the consumer is built with. Every one is caught by its rule alone, within a
//! few seeds of a scenario that is otherwise clean.

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;

use rmq_model::broker::Broker;
use rmq_model::client::ConsumerConfig;
use rmq_model::message::{encode_properties, properties, PROPERTY_KEYS, PROPERTY_UNIQ_KEY};
use rmq_model::node::{Ctx, Input, Node, NodeId, TimerId};
use rmq_model::protocol::{response_code, Message, Response};
use rmq_model::store::record::{parse, CrcCheck, Host, NewRecord, Slot};
use rmq_model::store::Disk;
use rmq_sim::check::Rule;
use rmq_sim::cluster::runner::{self, reference_broker, BrokerFactory, Nodes, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::mutants::tamper::consumer_config;

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

/// The reference broker with what it sends tampered with.
struct Mutant {
    inner: Broker,
    tamper: Tamper,
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

fn mutant_factory(tamper: Tamper) -> BrokerFactory {
    Rc::new(move |config, disk: &mut dyn Disk| {
        Box::new(Mutant {
            inner: Broker::boot(config, disk),
            tamper,
        })
    })
}

/// Runs seeds `0..max_seeds` of `scenario` until one fails; returns the failing seed
/// and the rules its report names, or `None` when every seed passed.
fn first_failure(scenario: &str, max_seeds: u64, nodes: Nodes) -> Option<(u64, BTreeSet<Rule>)> {
    let loaded = load(scenario);
    (0..max_seeds).find_map(|seed| {
        let variant = loaded.variant_for(seed);
        let out = runner::run(variant, seed, nodes.clone(), RunOptions::default());
        (!out.report.passed()).then(|| {
            let rules = out.report.violations.iter().map(|v| v.rule).collect();
            (seed, rules)
        })
    })
}

/// The mutant is caught within `max_seeds`, by `rule` alone; and the reference passes
/// the seed that caught it.
fn caught_by_only(rule: Rule, scenario: &str, max_seeds: u64, nodes: impl Into<Nodes>) {
    let (seed, rules) = first_failure(scenario, max_seeds, nodes.into())
        .unwrap_or_else(|| panic!("not caught in {max_seeds} seeds of {scenario}"));
    assert_eq!(
        rules,
        BTreeSet::from([rule]),
        "{scenario} seed {seed}: caught by {rules:?}, not by {rule:?} alone"
    );
    let loaded = load(scenario);
    let out = runner::run(
        loaded.variant_for(seed),
        seed,
        reference_broker(),
        RunOptions::default(),
    );
    assert!(
        out.report.passed(),
        "the reference fails {scenario} seed {seed}: {:?}",
        out.report.violations
    );
}

/// A planted broker bug of this file, picked for some records only (by queue offset),
/// so the rest of the run stays healthy.
fn picked(queue_offset: i64) -> bool {
    queue_offset % 5 == 2
}

/// The fields of a served record a mutant may rewrite.
struct Served {
    properties: String,
    born_host: Host,
    reconsume_times: i32,
}

/// Re-encodes the picked records of every pull response after `f` rewrote them
/// (with a fresh `__CRC32#` tail, as a broker that built them this way would).
fn rewrite_pulls(m: Message, f: fn(&mut Served)) -> Option<Message> {
    let Message::Response {
        opaque,
        response: Response::Pull(mut p),
    } = m
    else {
        return Some(m);
    };
    let mut out = Vec::with_capacity(p.records.len() + 64);
    let mut at = 0;
    while at < p.records.len() {
        let Ok(Slot::Record(v)) = parse(&p.records[at..], CrcCheck::Skip) else {
            out.extend_from_slice(&p.records[at..]);
            break;
        };
        at += v.total_size;
        if !picked(v.queue_offset) {
            out.extend_from_slice(v.bytes);
            continue;
        }
        let mut served = Served {
            properties: v.user_properties().to_string(),
            born_host: v.born_host,
            reconsume_times: v.reconsume_times,
        };
        f(&mut served);
        NewRecord {
            topic: v.topic,
            queue_id: v.queue_id,
            flag: v.flag,
            sys_flag: v.sys_flag,
            born_timestamp_ms: v.born_timestamp_ms,
            born_host: served.born_host,
            store_host: v.store_host,
            reconsume_times: served.reconsume_times,
            prepared_transaction_offset: v.prepared_transaction_offset,
            body: v.body,
            properties: &served.properties,
        }
        .encode(
            v.queue_offset,
            v.physical_offset,
            v.store_timestamp_ms,
            &mut out,
        );
    }
    p.records = out;
    Some(Message::Response {
        opaque,
        response: Response::Pull(p),
    })
}

/// Replaces the value of property `name` with `value(old)`.
fn replace_property(props: &str, name: &str, value: fn(&str) -> String) -> String {
    let pairs: Vec<(String, String)> = properties(props)
        .map(|(n, v)| {
            let v = if n == name { value(v) } else { v.to_string() };
            (n.to_string(), v)
        })
        .collect();
    encode_properties(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

/// A broker that stores a message but answers the producer with a refusal
/// (MESSAGE_ILLEGAL, which the producer does not retry): the producer reports a
/// definite failure of a message consumers then receive.
#[test]
fn stored_but_refused_is_caught_by_refused() {
    fn refuse(_: NodeId, m: Message) -> Option<Message> {
        match m {
            Message::Response {
                opaque,
                response: Response::Send(s),
            } if picked(s.queue_offset as i64) => Some(Message::Response {
                opaque,
                response: Response::Error {
                    code: response_code::MESSAGE_ILLEGAL,
                    remark: "the message is illegal".into(),
                },
            }),
            m => Some(m),
        }
    }
    caught_by_only(Rule::Refused, "case1_kill", 5, mutant_factory(refuse));
}

/// A client that subscribes with `*` whatever expression the application gave (the
/// expression lost on its way to the subscription table): the broker's hash filter and
/// the client's string filter both pass everything, and `g_ab` (TagA || TagB) gets
/// TagC too.
#[test]
fn a_client_that_drops_its_expression_is_caught_by_filter() {
    fn subscribe_all(c: &mut ConsumerConfig) {
        c.tag_expression = "*".into();
    }
    caught_by_only(
        Rule::Filter,
        "case1_kill",
        5,
        consumer_config(subscribe_all),
    );
}

/// A broker that serves a message with one of its user properties rewritten (the
/// workload id's value gets a leading zero: same id for a parser, another property
/// for the application).
#[test]
fn a_rewritten_user_property_is_caught_by_corrupt() {
    fn pad(_: NodeId, m: Message) -> Option<Message> {
        rewrite_pulls(m, |s| {
            s.properties = replace_property(&s.properties, "WID", |v| format!("0{v}"));
        })
    }
    caught_by_only(Rule::Corrupt, "case1_kill", 5, mutant_factory(pad));
}

/// A broker that serves a message with its KEYS rewritten.
#[test]
fn rewritten_keys_are_caught_by_corrupt() {
    fn rekey(_: NodeId, m: Message) -> Option<Message> {
        rewrite_pulls(m, |s| {
            s.properties = replace_property(&s.properties, PROPERTY_KEYS, |v| v.to_uppercase());
        })
    }
    caught_by_only(Rule::Corrupt, "case1_kill", 5, mutant_factory(rekey));
}

/// A broker that serves a message with its born host rewritten (its own port, as a
/// broker that confused born and store hosts in one field would).
#[test]
fn a_rewritten_born_host_is_caught_by_corrupt() {
    fn rehost(_: NodeId, m: Message) -> Option<Message> {
        rewrite_pulls(m, |s| s.born_host.port += 1)
    }
    caught_by_only(Rule::Corrupt, "case1_kill", 5, mutant_factory(rehost));
}

/// A broker that serves a message with its reconsume count raised though nobody
/// handed it back. The raised count no longer takes the delivery out of the order and
/// offset checks, so corrupt alone names it.
#[test]
fn a_raised_reconsume_count_is_caught_by_corrupt() {
    fn raise(_: NodeId, m: Message) -> Option<Message> {
        rewrite_pulls(m, |s| s.reconsume_times += 1)
    }
    caught_by_only(Rule::Corrupt, "case1_kill", 5, mutant_factory(raise));
}

/// A broker that serves a message under another message id (UNIQ_KEY) than the one
/// the producer was given.
#[test]
fn a_rewritten_message_id_is_caught_by_corrupt() {
    fn reid(_: NodeId, m: Message) -> Option<Message> {
        rewrite_pulls(m, |s| {
            s.properties = replace_property(&s.properties, PROPERTY_UNIQ_KEY, |v| {
                v.chars().rev().collect()
            });
        })
    }
    caught_by_only(Rule::Corrupt, "case1_kill", 5, mutant_factory(reid));
}
