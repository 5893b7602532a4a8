//! The name server in the world: brokers register every 30 s, a client asks for routes
//! every second; a broker that falls silent is dropped by the 10 s liveness scan once
//! 120 s have passed, and a crashed broker is dropped at once (its connection breaks).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::namesrv::{NameServer, NamesrvConfig};
use rmq_model::node::{Ctx, Input, Node, NodeId};
use rmq_model::protocol::{
    response_code, BrokerIdentity, Message, RegisterBroker, Request, Response,
};
use rmq_model::store::config_tables::{DataVersion, TopicConfig};
use rmq_model::store::Disk;
use rmq_sim::cluster::net::NetConfig;
use rmq_sim::cluster::world::World;
use rmq_sim::storage::disk::CrashKind;

const NAMESRV: NodeId = NodeId(0);
const BROKER_A: NodeId = NodeId(1);
const BROKER_B: NodeId = NodeId(2);
const CLIENT: NodeId = NodeId(3);
const TIMER_REGISTER: u64 = 1;

/// A broker reduced to its name-server duties: register 10 s after start, then every
/// 30 s (`registerNameServerPeriod`), until `silent_after_ms`.
struct BrokerStub {
    name: &'static str,
    silent_after_ms: u64,
}

impl Node<Message> for BrokerStub {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        ctx.set_timer(10_000, TIMER_REGISTER);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer { .. } = input {
            if ctx.now_ms() > self.silent_after_ms {
                return;
            }
            let topic = TopicConfig {
                topic_name: "TopicTest".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                ..TopicConfig::default()
            };
            let request = Request::RegisterBroker(RegisterBroker {
                broker: BrokerIdentity {
                    cluster_name: "DefaultCluster".into(),
                    broker_name: self.name.into(),
                    broker_addr: format!("{}:10911", ctx.me()),
                    broker_id: 0,
                },
                ha_server_addr: format!("{}:10912", ctx.me()),
                topic_config_table: BTreeMap::from([("TopicTest".to_string(), topic)]),
                data_version: DataVersion {
                    timestamp: 0,
                    counter: 1,
                },
            });
            ctx.send(NAMESRV, Message::Request { opaque: 0, request });
            ctx.set_timer(30_000, TIMER_REGISTER);
        }
    }
}

/// (virtual ms, broker names in the route, or None for TOPIC_NOT_EXIST).
type Seen = Rc<RefCell<Vec<(u64, Option<Vec<String>>)>>>;

/// Asks for TopicTest's route every second and records what it sees.
struct RouteWatcher {
    seen: Seen,
    next_opaque: u32,
}

impl Node<Message> for RouteWatcher {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        ctx.set_timer(1_000, 0);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Timer { .. } => {
                self.next_opaque += 1;
                let request = Request::GetRouteInfoByTopic {
                    topic: "TopicTest".into(),
                };
                let opaque = self.next_opaque;
                ctx.send(NAMESRV, Message::Request { opaque, request });
                ctx.set_timer(1_000, 0);
            }
            Input::Packet {
                msg: Message::Response { response, .. },
                ..
            } => {
                let names = match response {
                    Response::Route(route) => Some(
                        route
                            .broker_datas
                            .into_iter()
                            .map(|b| b.broker_name)
                            .collect(),
                    ),
                    Response::Error { code, .. } => {
                        assert_eq!(code, response_code::TOPIC_NOT_EXIST);
                        None
                    }
                    other => panic!("unexpected response {other:?}"),
                };
                self.seen.borrow_mut().push((ctx.now_ms(), names));
            }
            _ => {}
        }
    }
}

fn world(seed: u64, seen: &Seen, b_silent_after_ms: u64) -> World<Message> {
    let seen = seen.clone();
    let factory = move |id: NodeId, _disk: &mut dyn Disk| -> Box<dyn Node<Message>> {
        match id {
            NAMESRV => Box::new(NameServer::new(NamesrvConfig::default())),
            BROKER_A => Box::new(BrokerStub {
                name: "broker-a",
                silent_after_ms: u64::MAX,
            }),
            BROKER_B => Box::new(BrokerStub {
                name: "broker-b",
                silent_after_ms: b_silent_after_ms,
            }),
            CLIENT => Box::new(RouteWatcher {
                seen: seen.clone(),
                next_opaque: 0,
            }),
            other => panic!("no node {other}"),
        }
    };
    World::new(seed, factory, 4, NetConfig::default())
}

/// The route the client saw last at or before `t_ms`.
fn route_at(seen: &Seen, t_ms: u64) -> Option<Vec<String>> {
    seen.borrow()
        .iter()
        .rev()
        .find(|(t, _)| *t <= t_ms)
        .and_then(|(_, names)| names.clone())
}

#[test]
fn silent_brokers_expire_after_120_s_and_crashed_ones_at_once() {
    let seen: Seen = Rc::new(RefCell::new(Vec::new()));
    // broker-b registers at 10 s and 40 s, then falls silent.
    let mut w = world(1, &seen, 45_000);
    w.run_until(9_000);
    assert_eq!(route_at(&seen, 9_000), None, "no broker has registered yet");
    w.run_until(150_000);
    assert_eq!(
        route_at(&seen, 150_000),
        Some(vec!["broker-a".to_string(), "broker-b".to_string()])
    );
    // Last heard at 40 s: expired after 160 s, dropped by the scan at 165 s.
    w.run_until(170_000);
    let dropped_at = seen
        .borrow()
        .iter()
        .find(|(t, names)| *t > 150_000 && names.as_ref().is_some_and(|n| n.len() == 1))
        .map(|(t, _)| *t)
        .expect("broker-b was dropped");
    assert!(
        (160_000..=167_000).contains(&dropped_at),
        "dropped at {dropped_at}"
    );
    assert_eq!(route_at(&seen, 170_000), Some(vec!["broker-a".to_string()]));

    // A crash closes broker-a's connection: it is dropped at once, not 120 s later.
    w.crash(BROKER_A, CrashKind::ProcessCrash);
    w.run_until(172_000);
    assert_eq!(
        route_at(&seen, 172_000),
        None,
        "no route once broker-a is gone"
    );
    // It comes back, registers 10 s after boot, and the route returns.
    w.restart(BROKER_A);
    w.run_until(185_000);
    assert_eq!(route_at(&seen, 185_000), Some(vec!["broker-a".to_string()]));
}

#[test]
fn name_server_runs_are_deterministic() {
    let run = |seed| {
        let seen: Seen = Rc::new(RefCell::new(Vec::new()));
        let mut w = world(seed, &seen, 45_000);
        w.crash(BROKER_B, CrashKind::PowerCut);
        w.run_until(60_000);
        w.restart(BROKER_B);
        w.run_until(200_000);
        let answers = seen.borrow().len();
        (w.fingerprint(), answers)
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5).0, run(6).0);
}
