//! The broker in the world, driven by a scripted client: what `broker.rs` and
//! `broker_batch.rs` share (a name server, a master, an optional slave and a client
//! that sends a script of requests at set times and keeps the answers).

#![allow(dead_code)] // Each test binary uses its own part.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::broker::{Broker, BrokerConfig, BrokerRole, FlushDiskType};
use rmq_model::message::encode_properties;
use rmq_model::node::{Ctx, Input, Node, NodeId};
use rmq_model::protocol::{
    pull_sys_flag, response_code, Message, PullMessage, Request, Response, SendMessage,
};
use rmq_model::store::config_tables::TopicConfig;
use rmq_model::store::record::{parse, CrcCheck, Slot};
use rmq_model::store::{Disk, StoreConfig};
use rmq_sim::cluster::net::NetConfig;
use rmq_sim::cluster::world::{sim_addr, Fault, World};

pub const NAMESRV: NodeId = NodeId(0);
pub const MASTER: NodeId = NodeId(1);
pub const SLAVE: NodeId = NodeId(2);
pub const CLIENT: NodeId = NodeId(3);

/// A request the script sends at a time, to a node.
pub type Script = Vec<(u64, NodeId, Request)>;
/// (time answered, opaque, response).
pub type Answers = Rc<RefCell<Vec<(u64, u32, Response)>>>;

pub struct ScriptedClient {
    pub script: Script,
    pub answers: Answers,
}

impl Node<Message> for ScriptedClient {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        for (i, (at_ms, _, _)) in self.script.iter().enumerate() {
            ctx.set_timer(*at_ms, i as u64);
        }
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Timer { kind, .. } => {
                let (_, to, request) = self.script[kind as usize].clone();
                ctx.send(
                    to,
                    Message::Request {
                        opaque: kind as u32,
                        request,
                    },
                );
            }
            Input::Packet {
                msg: Message::Response { opaque, response },
                ..
            } => self
                .answers
                .borrow_mut()
                .push((ctx.now_ms(), opaque, response)),
            _ => {}
        }
    }
}

pub fn config(role: BrokerRole, flush: FlushDiskType) -> BrokerConfig {
    let topic = TopicConfig {
        topic_name: "TopicTest".into(),
        read_queue_nums: 2,
        write_queue_nums: 2,
        ..TopicConfig::default()
    };
    BrokerConfig {
        role,
        flush_disk_type: flush,
        broker_id: u64::from(role == BrokerRole::Slave),
        namesrv_addrs: vec![sim_addr(NAMESRV)],
        ha_master_addr: (role == BrokerRole::Slave).then(|| sim_addr(MASTER)),
        master_addr: (role == BrokerRole::Slave).then(|| sim_addr(MASTER)),
        store: StoreConfig {
            commit_log_file_size_bytes: 64 * 1024,
            consume_queue_entries_per_file: 64,
            ..StoreConfig::default()
        },
        topics: BTreeMap::from([("TopicTest".to_string(), topic)]),
        ..BrokerConfig::default()
    }
}

pub fn send(queue_id: i32, tag: &str, body: &str) -> Request {
    Request::SendMessage(send_message(
        "TopicTest",
        queue_id,
        encode_properties([("TAGS", tag), ("WAIT", "true")]),
        body.as_bytes(),
    ))
}

/// A send from producer group "p" at 10.0.0.3:5000, born at 0, flag 0.
pub fn send_message(topic: &str, queue_id: i32, properties: String, body: &[u8]) -> SendMessage {
    SendMessage {
        producer_group: "p".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp_ms: 0,
        born_host: "10.0.0.3:5000".into(),
        flag: 0,
        properties,
        reconsume_times: 0,
        max_reconsume_times: None,
        body: body.to_vec(),
    }
}

pub fn pull(queue_id: i32, offset: u64, tags: &str) -> Request {
    Request::PullMessage(PullMessage {
        consumer_group: "g".into(),
        topic: "TopicTest".into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION,
        commit_offset: 0,
        suspend_timeout_ms: 15_000,
        subscription: Some(tags.into()),
    })
}

pub fn world(
    seed: u64,
    master: BrokerConfig,
    slave: Option<BrokerConfig>,
    script: Script,
    answers: &Answers,
) -> World<Message> {
    let answers = answers.clone();
    let script = RefCell::new(Some(script));
    let factory = move |id: NodeId, disk: &mut dyn Disk| -> Box<dyn Node<Message>> {
        match id {
            NAMESRV => Box::new(rmq_model::namesrv::NameServer::new(Default::default())),
            MASTER => Box::new(Broker::boot(master.clone(), disk)),
            SLAVE => match &slave {
                Some(c) => Box::new(Broker::boot(c.clone(), disk)),
                None => Box::new(ScriptedClient {
                    script: Vec::new(),
                    answers: Rc::default(),
                }),
            },
            CLIENT => Box::new(ScriptedClient {
                script: script.borrow_mut().take().unwrap_or_default(),
                answers: answers.clone(),
            }),
            other => panic!("no node {other}"),
        }
    };
    World::new(seed, factory, 4, NetConfig::default())
}

pub fn answer(answers: &Answers, opaque: u32) -> (u64, Response) {
    answers
        .borrow()
        .iter()
        .find(|(_, o, _)| *o == opaque)
        .map(|(t, _, r)| (*t, r.clone()))
        .unwrap_or_else(|| panic!("no answer to request {opaque}"))
}

pub fn bodies(records: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let Ok(Slot::Record(v)) = parse(&records[at..], CrcCheck::Strict) else {
            panic!("a served record does not parse");
        };
        out.push(String::from_utf8(v.body.to_vec()).unwrap());
        at += v.total_size;
    }
    out
}

/// Sends `request` at 1 s to an ASYNC_MASTER with `flush`; expects SUCCESS. Whether
/// `needle` was on the first commit-log file's media when the answer arrived.
pub fn durable_at_answer(flush: FlushDiskType, request: Request, needle: &[u8]) -> bool {
    let answers: Answers = Rc::default();
    let script = vec![(1_000, MASTER, request)];
    let mut w = world(
        2,
        config(BrokerRole::AsyncMaster, flush),
        None,
        script,
        &answers,
    );
    w.run_until(1_000);
    while answers.borrow().is_empty() {
        w.step().expect("events remain");
    }
    let Response::Send(s) = answer(&answers, 0).1 else {
        panic!("the send failed")
    };
    assert_eq!(s.code, response_code::SUCCESS);
    w.disk(MASTER)
        .durable_bytes("commitlog/00000000000000000000")
        .is_some_and(|log| log.windows(needle.len()).any(|x| x == needle))
}

/// A SYNC_MASTER and its slave: `replicated` is sent at 12 s and must be answered
/// SUCCESS by 13 s (the slave acknowledged); the slave's queue 0 is pulled at 14 s; the
/// slave is lost; `alone`, sent at 20 s, must be answered SLAVE_NOT_AVAILABLE (stored
/// on the master). Returns the bodies the slave served.
pub fn sync_master_case(replicated: Request, alone: Request) -> Vec<String> {
    let answers: Answers = Rc::default();
    let script = vec![
        (12_000, MASTER, replicated),
        (14_000, SLAVE, pull(0, 0, "*")),
        (20_000, MASTER, alone),
    ];
    let mut w = world(
        3,
        config(BrokerRole::SyncMaster, FlushDiskType::AsyncFlush),
        Some(config(BrokerRole::Slave, FlushDiskType::AsyncFlush)),
        script,
        &answers,
    );
    w.run_until(13_000);
    let Response::Send(s) = answer(&answers, 0).1 else {
        panic!("the replicated send failed")
    };
    assert_eq!(s.code, response_code::SUCCESS, "the slave acknowledged");
    w.run_until(15_000);
    let Response::Pull(p) = answer(&answers, 1).1 else {
        panic!("the slave's pull failed")
    };
    w.inject(Fault::MachineLost { node: SLAVE });
    w.run_until(30_000);
    let Response::Send(s) = answer(&answers, 2).1 else {
        panic!("the lone send failed")
    };
    assert_eq!(s.code, response_code::SLAVE_NOT_AVAILABLE);
    bodies(&p.records)
}
