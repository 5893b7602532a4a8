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
use rmq_model::protocol::{pull_sys_flag, Message, PullMessage, Request, Response, SendMessage};
use rmq_model::store::config_tables::TopicConfig;
use rmq_model::store::record::{parse, CrcCheck, Slot};
use rmq_model::store::{Disk, StoreConfig};
use rmq_sim::cluster::net::NetConfig;
use rmq_sim::cluster::world::{sim_addr, World};

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
    Request::SendMessage(SendMessage {
        producer_group: "p".into(),
        topic: "TopicTest".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp_ms: 0,
        born_host: "10.0.0.3:5000".into(),
        flag: 0,
        properties: encode_properties([("TAGS", tag), ("WAIT", "true")]),
        reconsume_times: 0,
        body: body.as_bytes().to_vec(),
    })
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
