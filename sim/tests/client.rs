//! The producer and the push consumer in the world, against the real name server and
//! a small fake broker written here (in-memory queues of real stored records, long
//! polling, consumer offsets, heartbeats and the group's member list).
//!
//! Shown: sends avoid a broker that refuses them; two clustering consumers split the
//! queues and together get every message exactly once; when one crashes the survivor
//! takes its queues over at once and resumes from the committed offsets; a
//! broadcasting consumer gets every message its tags select and resumes from its local
//! offset file after a restart; a run replays exactly from its seed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rmq_model::client::{
    ClientEvent, ConsumerConfig, OutgoingMessage, Producer, ProducerConfig, PushConsumer, SendId,
    SendOutcome,
};
use rmq_model::message::{offset_msg_id, property};
use rmq_model::namesrv::{NameServer, NamesrvConfig};
use rmq_model::node::{Ctx, Input, Node, NodeId};
use rmq_model::protocol::{
    pull_sys_flag, response_code, BrokerIdentity, Message, MessageModel, PullMessage, PullResponse,
    QueueKey, RegisterBroker, Request, Response, SendMessage, SendResponse,
};
use rmq_model::store::config_tables::{DataVersion, TopicConfig};
use rmq_model::store::record::{Host, NewRecord};
use rmq_model::store::Disk;
use rmq_sim::cluster::net::NetConfig;
use rmq_sim::cluster::world::{sim_addr, World};
use rmq_sim::storage::disk::CrashKind;

const NAMESRV: NodeId = NodeId(0);
const BROKER_A: NodeId = NodeId(1);
const BROKER_B: NodeId = NodeId(2);
const PRODUCER: NodeId = NodeId(3);
const CONSUMER_1: NodeId = NodeId(4);
const CONSUMER_2: NodeId = NodeId(5);
const BROADCAST: NodeId = NodeId(6);
const NODES: u32 = 7;

const TOPIC: &str = "TopicTest";
const QUEUES_PER_BROKER: u32 = 4;
const CLUSTER_GROUP: &str = "cluster_group";
const BROADCAST_GROUP: &str = "broadcast_group";
/// The broadcasting consumer's subscription: every third message (TagC) is not for it.
const BROADCAST_TAGS: &str = "TagA || TagB";

/// Host timer kinds (below the clients' range).
const TIMER_REGISTER: u64 = 1;
const TIMER_HOLD_SCAN: u64 = 2;
const TIMER_SEND: u64 = 3;
const TIMER_START: u64 = 4;

/// Everything the clients reported: (virtual ms, node, event).
type Log = Rc<RefCell<Vec<(u64, NodeId, ClientEvent)>>>;

/// What a fake broker saw, for the test to judge.
#[derive(Debug, Default)]
struct BrokerStats {
    refused_sends: u64,
    stored_sends: u64,
    pulls_with_commit_flag: u64,
}

type Stats = Rc<RefCell<BTreeMap<&'static str, BrokerStats>>>;

/// A pull parked until its queue grows or its suspend time is up.
struct Held {
    from: NodeId,
    opaque: u32,
    pull: PullMessage,
    deadline_ms: u64,
}

/// A broker reduced to what the clients talk to: registration with the name server,
/// SEND_MESSAGE_V2 into in-memory queues of stored records, PULL_MESSAGE with long
/// polling, consumer offsets (from UPDATE_CONSUMER_OFFSET and from pulls carrying
/// COMMIT_OFFSET, as a master does: the client reports both as commits, so a takeover
/// resumes from exactly what the old owner committed), heartbeats, the group's member
/// list and its change notices. It keeps nothing on disk: a test never restarts it.
struct FakeBroker {
    name: &'static str,
    /// Sends are refused with SYSTEM_ERROR before this time.
    refuse_sends_until_ms: u64,
    stats: Stats,
    /// (topic, queue id) → the queue's records, by queue offset.
    queues: BTreeMap<(String, i32), Vec<Vec<u8>>>,
    next_physical_offset: i64,
    offsets: BTreeMap<QueueKey, u64>,
    /// group → consumer channel → client id.
    consumers: BTreeMap<String, BTreeMap<NodeId, String>>,
    held: Vec<Held>,
}

impl FakeBroker {
    fn new(name: &'static str, refuse_sends_until_ms: u64, stats: Stats) -> FakeBroker {
        FakeBroker {
            name,
            refuse_sends_until_ms,
            stats,
            queues: BTreeMap::new(),
            next_physical_offset: 0,
            offsets: BTreeMap::new(),
            consumers: BTreeMap::new(),
            held: Vec::new(),
        }
    }

    fn register(&self, ctx: &mut dyn Ctx<Message>) {
        let config = TopicConfig {
            topic_name: TOPIC.into(),
            read_queue_nums: QUEUES_PER_BROKER,
            write_queue_nums: QUEUES_PER_BROKER,
            ..TopicConfig::default()
        };
        let request = Request::RegisterBroker(RegisterBroker {
            broker: BrokerIdentity {
                cluster_name: "DefaultCluster".into(),
                broker_name: self.name.into(),
                broker_addr: ctx.my_addr(),
                broker_id: 0,
            },
            ha_server_addr: String::new(),
            topic_config_table: BTreeMap::from([(TOPIC.to_string(), config)]),
            data_version: DataVersion {
                timestamp: 0,
                counter: 1,
            },
        });
        ctx.send(NAMESRV, Message::Request { opaque: 0, request });
    }

    fn host_of(addr: &str) -> Host {
        let (ip, port) = addr.rsplit_once(':').expect("ip:port");
        Host {
            ip: ip.parse().expect("an IP"),
            port: port.parse().expect("a port"),
        }
    }

    fn store(&mut self, ctx: &mut dyn Ctx<Message>, send: &SendMessage) -> Response {
        let mut stats = self.stats.borrow_mut();
        let stats = stats.entry(self.name).or_default();
        if ctx.now_ms() < self.refuse_sends_until_ms {
            stats.refused_sends += 1;
            return Response::Error {
                code: response_code::SYSTEM_ERROR,
                remark: "refusing sends for now".into(),
            };
        }
        assert_eq!(send.topic, TOPIC);
        assert!((0..QUEUES_PER_BROKER as i32).contains(&send.queue_id));
        let queue = self
            .queues
            .entry((send.topic.clone(), send.queue_id))
            .or_default();
        let queue_offset = queue.len() as u64;
        let store_host = Self::host_of(&ctx.my_addr());
        let record = NewRecord {
            topic: &send.topic,
            queue_id: send.queue_id,
            flag: send.flag,
            sys_flag: send.sys_flag,
            born_timestamp_ms: send.born_timestamp_ms,
            born_host: Self::host_of(&send.born_host),
            store_host,
            reconsume_times: send.reconsume_times,
            prepared_transaction_offset: 0,
            body: &send.body,
            properties: &send.properties,
        };
        record.validate(4 << 20).expect("a valid message");
        let mut bytes = Vec::new();
        let physical_offset = self.next_physical_offset;
        record.encode(
            queue_offset as i64,
            physical_offset,
            ctx.now_ms() as i64,
            &mut bytes,
        );
        self.next_physical_offset += bytes.len() as i64;
        queue.push(bytes);
        stats.stored_sends += 1;
        Response::Send(SendResponse {
            code: response_code::SUCCESS,
            msg_id: offset_msg_id(store_host.ip, store_host.port, physical_offset),
            queue_id: send.queue_id,
            queue_offset,
        })
    }

    /// The answer to a pull now, or `None` to hold it (nothing new yet).
    fn serve(&self, pull: &PullMessage, may_hold: bool) -> Option<PullResponse> {
        let empty = Vec::new();
        let queue = self
            .queues
            .get(&(pull.topic.clone(), pull.queue_id))
            .unwrap_or(&empty);
        let max = queue.len() as u64;
        let answer = |code, next_begin_offset, records| PullResponse {
            code,
            next_begin_offset,
            min_offset: 0,
            max_offset: max,
            suggest_which_broker_id: 0,
            records,
        };
        if pull.queue_offset > max {
            return Some(answer(response_code::PULL_OFFSET_MOVED, max, Vec::new()));
        }
        if pull.queue_offset == max {
            let suspend = pull.sys_flag & pull_sys_flag::SUSPEND != 0;
            return if may_hold && suspend {
                None
            } else {
                Some(answer(response_code::PULL_NOT_FOUND, max, Vec::new()))
            };
        }
        let end = max.min(pull.queue_offset + u64::from(pull.max_msg_nums));
        let records = queue[pull.queue_offset as usize..end as usize].concat();
        Some(answer(response_code::SUCCESS, end, records))
    }

    fn answer_held(&mut self, ctx: &mut dyn Ctx<Message>, expire_only: bool) {
        let now_ms = ctx.now_ms();
        let held = std::mem::take(&mut self.held);
        for h in held {
            let answer = if now_ms >= h.deadline_ms {
                self.serve(&h.pull, false)
            } else if expire_only {
                None
            } else {
                self.serve(&h.pull, true)
            };
            match answer {
                Some(pull) => ctx.send(
                    h.from,
                    Message::Response {
                        opaque: h.opaque,
                        response: Response::Pull(pull),
                    },
                ),
                None => self.held.push(h),
            }
        }
    }

    /// NOTIFY_CONSUMER_IDS_CHANGED, oneway, to every member of `group`.
    fn notify_group(&self, ctx: &mut dyn Ctx<Message>, group: &str) {
        let Some(members) = self.consumers.get(group) else {
            return;
        };
        for &member in members.keys() {
            let request = Request::NotifyConsumerIdsChanged {
                consumer_group: group.to_string(),
            };
            ctx.send(member, Message::Request { opaque: 0, request });
        }
    }

    fn on_request(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        request: Request,
    ) {
        let response = match request {
            Request::SendMessage(send) => {
                let response = self.store(ctx, &send);
                if matches!(response, Response::Send(_)) {
                    self.answer_held(ctx, false);
                }
                response
            }
            Request::PullMessage(pull) => {
                if pull.sys_flag & pull_sys_flag::COMMIT_OFFSET != 0 {
                    let mut stats = self.stats.borrow_mut();
                    stats.entry(self.name).or_default().pulls_with_commit_flag += 1;
                    let key = QueueKey {
                        consumer_group: pull.consumer_group.clone(),
                        topic: pull.topic.clone(),
                        queue_id: pull.queue_id,
                    };
                    self.offsets.insert(key, pull.commit_offset);
                }
                match self.serve(&pull, true) {
                    Some(answer) => Response::Pull(answer),
                    None => {
                        let deadline_ms = ctx.now_ms() + pull.suspend_timeout_ms;
                        self.held.push(Held {
                            from,
                            opaque,
                            pull,
                            deadline_ms,
                        });
                        return;
                    }
                }
            }
            Request::QueryConsumerOffset(key) => match self.offsets.get(&key) {
                Some(&offset) => Response::Offset(offset),
                None => Response::Error {
                    code: response_code::QUERY_NOT_FOUND,
                    remark: "no offset".into(),
                },
            },
            Request::UpdateConsumerOffset { key, offset } => {
                self.offsets.insert(key, offset);
                return; // oneway
            }
            Request::GetMaxOffset { topic, queue_id } => Response::Offset(
                self.queues
                    .get(&(topic, queue_id))
                    .map_or(0, |q| q.len() as u64),
            ),
            Request::HeartBeat(data) => {
                for consumer in &data.consumers {
                    let members = self
                        .consumers
                        .entry(consumer.group_name.clone())
                        .or_default();
                    let previous = members.insert(from, data.client_id.clone());
                    if previous.as_ref() != Some(&data.client_id) {
                        self.notify_group(ctx, &consumer.group_name);
                    }
                }
                Response::HeartBeat
            }
            Request::GetConsumerListByGroup { consumer_group } => {
                match self.consumers.get(&consumer_group) {
                    Some(members) if !members.is_empty() => {
                        Response::ConsumerList(members.values().cloned().collect())
                    }
                    _ => Response::Error {
                        code: response_code::SYSTEM_ERROR,
                        remark: "no consumer for this group".into(),
                    },
                }
            }
            other => panic!("the fake broker does not expect {other:?}"),
        };
        ctx.send(from, Message::Response { opaque, response });
    }
}

impl Node<Message> for FakeBroker {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.register(ctx);
        ctx.set_timer(30_000, TIMER_REGISTER);
        ctx.set_timer(1_000, TIMER_HOLD_SCAN);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Packet {
                from,
                msg: Message::Request { opaque, request },
            } => self.on_request(ctx, from, opaque, request),
            // The name server's registration answers.
            Input::Packet { .. } => {}
            Input::Timer {
                kind: TIMER_REGISTER,
                ..
            } => {
                self.register(ctx);
                ctx.set_timer(30_000, TIMER_REGISTER);
            }
            Input::Timer {
                kind: TIMER_HOLD_SCAN,
                ..
            } => {
                self.answer_held(ctx, true);
                ctx.set_timer(1_000, TIMER_HOLD_SCAN);
            }
            Input::Timer { .. } | Input::SyncComplete { .. } => {}
            // A consumer's channel closed (it crashed): it leaves its groups, and the
            // others hear of it (RocketMQ's `doChannelCloseEvent`).
            Input::ConnectionBroken { peer } => {
                self.held.retain(|h| h.from != peer);
                let groups: Vec<String> = self
                    .consumers
                    .iter_mut()
                    .filter_map(|(group, members)| members.remove(&peer).map(|_| group.clone()))
                    .collect();
                for group in groups {
                    self.notify_group(ctx, &group);
                }
            }
        }
    }
}

/// Sends `count` messages, one every `interval_ms` from `first_send_ms`; message `n`
/// has body `m{n}`, property WID=n and tag TagA, TagB or TagC by `n % 3`.
struct ProducerHost {
    producer: Producer,
    log: Log,
    first_send_ms: u64,
    interval_ms: u64,
    count: u64,
    sent: u64,
}

fn tag_of(n: u64) -> &'static str {
    ["TagA", "TagB", "TagC"][(n % 3) as usize]
}

impl Node<Message> for ProducerHost {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.producer.start(ctx);
        ctx.set_timer(self.first_send_ms, TIMER_SEND);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer {
            kind: TIMER_SEND, ..
        } = input
        {
            let n = self.sent;
            let id = self.producer.send(
                ctx,
                OutgoingMessage {
                    topic: TOPIC.into(),
                    tags: Some(tag_of(n).into()),
                    keys: Some(format!("key{n}")),
                    user_properties: vec![("WID".into(), n.to_string())],
                    body: format!("m{n}").into_bytes(),
                    delay_time_level: 0,
                },
            );
            // Ids count up from 0 in one producer, so id n is message n.
            assert_eq!(id, SendId(n));
            self.sent += 1;
            if self.sent < self.count {
                ctx.set_timer(self.interval_ms, TIMER_SEND);
            }
            return;
        }
        for event in self.producer.handle(ctx, input) {
            self.log.borrow_mut().push((ctx.now_ms(), ctx.me(), event));
        }
    }
}

/// Starts its consumer 1 s after boot (so the brokers have registered) and logs what
/// it reports. Built anew at every restart: the old consumer's memory is gone.
struct ConsumerHost {
    consumer: PushConsumer,
    log: Log,
}

impl Node<Message> for ConsumerHost {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        ctx.set_timer(1_000, TIMER_START);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer {
            kind: TIMER_START, ..
        } = input
        {
            self.consumer.start(ctx);
            return;
        }
        for event in self.consumer.handle(ctx, input) {
            self.log.borrow_mut().push((ctx.now_ms(), ctx.me(), event));
        }
    }
}

struct Harness {
    world: World<Message>,
    log: Log,
    stats: Stats,
}

/// Sends from 10 s, one every 100 ms; broker-b refuses sends until `b_refuses_until_ms`.
fn harness(seed: u64, message_count: u64, b_refuses_until_ms: u64) -> Harness {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let stats: Stats = Rc::new(RefCell::new(BTreeMap::new()));
    let (factory_log, factory_stats) = (log.clone(), stats.clone());
    let namesrv_addrs = vec![sim_addr(NAMESRV)];
    let factory = move |id: NodeId, _disk: &mut dyn Disk| -> Box<dyn Node<Message>> {
        let consumer = |group: &str, model, tags: &str| {
            Box::new(ConsumerHost {
                consumer: PushConsumer::new(ConsumerConfig {
                    consumer_group: group.into(),
                    namesrv_addrs: namesrv_addrs.clone(),
                    topic: TOPIC.into(),
                    tag_expression: tags.into(),
                    message_model: model,
                    ..ConsumerConfig::default()
                }),
                log: factory_log.clone(),
            })
        };
        match id {
            NAMESRV => Box::new(NameServer::new(NamesrvConfig::default())),
            BROKER_A => Box::new(FakeBroker::new("broker-a", 0, factory_stats.clone())),
            BROKER_B => Box::new(FakeBroker::new(
                "broker-b",
                b_refuses_until_ms,
                factory_stats.clone(),
            )),
            PRODUCER => Box::new(ProducerHost {
                producer: Producer::new(ProducerConfig {
                    producer_group: "producer_group".into(),
                    namesrv_addrs: namesrv_addrs.clone(),
                    ..ProducerConfig::default()
                }),
                log: factory_log.clone(),
                first_send_ms: 10_000,
                interval_ms: 100,
                count: message_count,
                sent: 0,
            }),
            CONSUMER_1 | CONSUMER_2 => consumer(CLUSTER_GROUP, MessageModel::Clustering, "*"),
            BROADCAST => consumer(BROADCAST_GROUP, MessageModel::Broadcasting, BROADCAST_TAGS),
            other => panic!("no node {other}"),
        }
    };
    Harness {
        world: World::new(seed, factory, NODES, NetConfig::default()),
        log,
        stats,
    }
}

/// (broker, queue id, queue offset): where a message is stored.
type Position = (String, i32, u64);
/// (broker, queue id).
type Queue = (String, i32);

/// A stored send: its position, message number and message id.
#[derive(Debug)]
struct Stored {
    n: u64,
    msg_id: String,
}

fn stored_sends(log: &Log, count: u64) -> BTreeMap<Position, Stored> {
    let mut stored = BTreeMap::new();
    let mut results = 0;
    for (_, _, event) in log.borrow().iter() {
        if let ClientEvent::SendResult { id, outcome } = event {
            results += 1;
            match outcome {
                SendOutcome::Stored {
                    code,
                    broker_name,
                    queue_id,
                    queue_offset,
                    msg_id,
                    ..
                } => {
                    assert_eq!(*code, response_code::SUCCESS);
                    let position = (broker_name.clone(), *queue_id, *queue_offset);
                    let previous = stored.insert(
                        position,
                        Stored {
                            n: id.0,
                            msg_id: msg_id.clone(),
                        },
                    );
                    assert!(previous.is_none(), "two sends at one position");
                }
                SendOutcome::Failed { .. } => panic!("send {id:?} failed: {outcome:?}"),
            }
        }
    }
    assert_eq!(results, count, "every send has a result");
    stored
}

/// The deliveries of `group`, in log order: (time, node, position, message number).
fn deliveries(
    log: &Log,
    stored: &BTreeMap<Position, Stored>,
    group: &str,
) -> Vec<(u64, NodeId, Position, u64)> {
    let mut out = Vec::new();
    for (t, node, event) in log.borrow().iter() {
        if let ClientEvent::Delivered {
            group: g,
            broker_name,
            topic,
            queue_id,
            queue_offset,
            msg,
        } = event
        {
            if g != group {
                continue;
            }
            assert_eq!(topic, TOPIC);
            let position = (broker_name.clone(), *queue_id, *queue_offset);
            let sent = stored
                .get(&position)
                .unwrap_or_else(|| panic!("{node} got a message never stored at {position:?}"));
            // It is the message that was sent, untouched.
            let n = sent.n;
            assert_eq!(msg.msg_id, sent.msg_id);
            assert_eq!(msg.body, format!("m{n}").into_bytes());
            assert_eq!(
                property(&msg.properties, "WID"),
                Some(n.to_string().as_str())
            );
            assert_eq!(msg.tags.as_deref(), Some(tag_of(n)));
            assert!(!msg.properties.contains("__CRC32#"));
            out.push((*t, *node, position, n));
        }
    }
    out
}

/// The queues `node` of `group` owns after the events in `[since_ms, until_ms]`;
/// `since_ms` is the boot of the incarnation (a crash forgets without Disowned).
fn owned_at(log: &Log, node: NodeId, group: &str, since_ms: u64, until_ms: u64) -> BTreeSet<Queue> {
    let mut owned = BTreeSet::new();
    for (t, n, event) in log.borrow().iter() {
        if *n != node || *t < since_ms || *t > until_ms {
            continue;
        }
        match event {
            ClientEvent::Owned {
                group: g,
                broker_name,
                queue_id,
                ..
            } if g == group => {
                assert!(
                    owned.insert((broker_name.clone(), *queue_id)),
                    "owned twice"
                );
            }
            ClientEvent::Disowned {
                group: g,
                broker_name,
                queue_id,
                ..
            } if g == group => {
                assert!(
                    owned.remove(&(broker_name.clone(), *queue_id)),
                    "disowned unowned"
                );
            }
            _ => {}
        }
    }
    owned
}

/// The last offset `node` committed for each queue before `until_ms`.
fn last_committed(log: &Log, node: NodeId, until_ms: u64) -> BTreeMap<Queue, u64> {
    let mut committed = BTreeMap::new();
    for (t, n, event) in log.borrow().iter() {
        if let ClientEvent::Committed {
            broker_name,
            queue_id,
            offset,
            ..
        } = event
        {
            if *n == node && *t < until_ms {
                committed.insert((broker_name.clone(), *queue_id), *offset);
            }
        }
    }
    committed
}

/// (time, queue, start offset) of each Owned event of `node` in `[from_ms, to_ms]`.
fn owned_events(log: &Log, node: NodeId, from_ms: u64, to_ms: u64) -> Vec<(u64, Queue, u64)> {
    log.borrow()
        .iter()
        .filter_map(|(t, n, event)| match event {
            ClientEvent::Owned {
                broker_name,
                queue_id,
                start_offset,
                ..
            } if *n == node && (from_ms..=to_ms).contains(t) => {
                Some((*t, (broker_name.clone(), *queue_id), *start_offset))
            }
            _ => None,
        })
        .collect()
}

fn all_queues() -> BTreeSet<Queue> {
    ["broker-a", "broker-b"]
        .iter()
        .flat_map(|b| (0..QUEUES_PER_BROKER as i32).map(move |q| (b.to_string(), q)))
        .collect()
}

#[test]
fn clustering_splits_the_queues_and_delivers_each_message_once() {
    for seed in 0..SEEDS {
        clustering_run(seed);
    }
}

/// Seeds each world test runs (they take milliseconds each).
const SEEDS: u64 = 20;

fn clustering_run(seed: u64) {
    const COUNT: u64 = 200;
    let mut h = harness(seed, COUNT, 15_000);
    h.world.run_until(60_000);

    let stored = stored_sends(&h.log, COUNT);
    assert_eq!(stored.len() as u64, COUNT);
    // broker-b refused sends until 15 s; each refused send was retried on broker-a
    // (every send is stored), and broker-b took its share afterwards.
    {
        let stats = h.stats.borrow();
        assert!(stats["broker-b"].refused_sends > 0, "{stats:?}");
        assert!(stats["broker-b"].stored_sends > 0, "{stats:?}");
        assert_eq!(
            stats["broker-a"].stored_sends + stats["broker-b"].stored_sends,
            COUNT,
            "no send stored twice"
        );
        assert!(stats["broker-a"].pulls_with_commit_flag > 0);
    }
    let on_b_before_window = stored
        .iter()
        .filter(|((b, _, _), s)| b == "broker-b" && s.n < 45)
        .count();
    assert_eq!(
        on_b_before_window, 0,
        "sends of the first 4.5 s all went to broker-a"
    );

    // The two clustering consumers hold disjoint halves of the 8 queues.
    let owned_1 = owned_at(&h.log, CONSUMER_1, CLUSTER_GROUP, 0, 60_000);
    let owned_2 = owned_at(&h.log, CONSUMER_2, CLUSTER_GROUP, 0, 60_000);
    assert_eq!(owned_1.len(), 4, "{owned_1:?}");
    assert_eq!(owned_2.len(), 4, "{owned_2:?}");
    assert!(owned_1.is_disjoint(&owned_2));
    assert_eq!(&owned_1 | &owned_2, all_queues());

    // Every stored message reached the group exactly once, from its queue's owner.
    let got = deliveries(&h.log, &stored, CLUSTER_GROUP);
    let mut count: BTreeMap<&Position, u32> = BTreeMap::new();
    for (_, node, position, _) in &got {
        *count.entry(position).or_default() += 1;
        let owner = if *node == CONSUMER_1 {
            &owned_1
        } else {
            &owned_2
        };
        assert!(owner.contains(&(position.0.clone(), position.1)));
    }
    assert_eq!(count.len(), stored.len(), "every message delivered");
    assert!(count.values().all(|&c| c == 1), "exactly once");
    assert!(got.iter().any(|(_, n, _, _)| *n == CONSUMER_1));
    assert!(got.iter().any(|(_, n, _, _)| *n == CONSUMER_2));

    // Offsets committed by the end cover every queue's messages.
    // (Both clustering consumers; the broadcasting one is filtered out below.)
    let committed: BTreeMap<Queue, u64> = h
        .log
        .borrow()
        .iter()
        .filter_map(|(_, _, e)| match e {
            ClientEvent::Committed {
                group,
                broker_name,
                queue_id,
                offset,
                ..
            } if group == CLUSTER_GROUP => Some(((broker_name.clone(), *queue_id), *offset)),
            _ => None,
        })
        .collect();
    for queue in all_queues() {
        let len = stored
            .keys()
            .filter(|(b, q, _)| *b == queue.0 && *q == queue.1)
            .count() as u64;
        assert_eq!(
            committed.get(&queue).copied().unwrap_or(0),
            len,
            "{queue:?}"
        );
    }

    // The broadcasting consumer owns every queue and got exactly the TagA/TagB ones.
    assert_eq!(
        owned_at(&h.log, BROADCAST, BROADCAST_GROUP, 0, 60_000),
        all_queues()
    );
    let got = deliveries(&h.log, &stored, BROADCAST_GROUP);
    let got_ns: Vec<u64> = got.iter().map(|(_, _, _, n)| *n).collect();
    let got_set: BTreeSet<u64> = got_ns.iter().copied().collect();
    assert_eq!(got_set.len(), got_ns.len(), "no duplicates");
    let expected: BTreeSet<u64> = (0..COUNT).filter(|n| tag_of(*n) != "TagC").collect();
    assert_eq!(got_set, expected);
}

#[test]
fn a_crashed_consumer_is_replaced_from_committed_offsets_and_broadcasting_resumes() {
    for seed in 0..SEEDS {
        crash_run(seed);
    }
}

fn crash_run(seed: u64) {
    const COUNT: u64 = 400;
    const CRASH_MS: u64 = 25_000;
    const RESTART_MS: u64 = 45_000;
    const BCAST_CRASH_MS: u64 = 30_000;
    const BCAST_RESTART_MS: u64 = 35_000;
    let mut h = harness(seed, COUNT, 0);
    h.world.run_until(CRASH_MS);
    let owned_at_crash = owned_at(&h.log, CONSUMER_2, CLUSTER_GROUP, 0, CRASH_MS);
    assert_eq!(owned_at_crash.len(), 4);
    let committed_at_crash = last_committed(&h.log, CONSUMER_2, CRASH_MS + 1);
    h.world.crash(CONSUMER_2, CrashKind::ProcessCrash);

    h.world.run_until(BCAST_CRASH_MS);
    let bcast_committed = last_committed(&h.log, BROADCAST, BCAST_CRASH_MS + 1);
    h.world.crash(BROADCAST, CrashKind::ProcessCrash);
    h.world.run_until(BCAST_RESTART_MS);
    h.world.restart(BROADCAST);
    h.world.run_until(RESTART_MS);
    h.world.restart(CONSUMER_2);
    h.world.run_until(100_000);

    let stored = stored_sends(&h.log, COUNT);

    // The survivor took the crashed consumer's queues over at once (the broker saw the
    // connection close and notified; no 20 s wait for the next rebalance) ...
    let takeover = owned_events(&h.log, CONSUMER_1, CRASH_MS, RESTART_MS);
    let taken: BTreeSet<Queue> = takeover.iter().map(|(_, q, _)| q.clone()).collect();
    assert_eq!(taken, owned_at_crash);
    assert!(
        takeover.iter().all(|(t, _, _)| *t < CRASH_MS + 1_000),
        "{takeover:?}"
    );
    // ... starting from exactly what the crashed one had committed.
    for (_, queue, start_offset) in &takeover {
        assert_eq!(
            Some(start_offset),
            committed_at_crash.get(queue),
            "{queue:?} resumes from the committed offset"
        );
    }
    assert!(
        committed_at_crash.values().any(|&o| o > 0),
        "it had consumed something"
    );

    // After its restart the two split the queues again.
    let owned_1 = owned_at(&h.log, CONSUMER_1, CLUSTER_GROUP, 0, 100_000);
    let owned_2 = owned_at(&h.log, CONSUMER_2, CLUSTER_GROUP, RESTART_MS, 100_000);
    assert_eq!(owned_1.len(), 4);
    assert_eq!(owned_2.len(), 4);
    assert_eq!(&owned_1 | &owned_2, all_queues());

    // Nothing lost; a message delivered twice is one the crashed consumer delivered
    // but had not committed, or one consumed during the handover back.
    let got = deliveries(&h.log, &stored, CLUSTER_GROUP);
    let mut by_position: BTreeMap<&Position, Vec<(u64, NodeId)>> = BTreeMap::new();
    for (t, node, position, _) in &got {
        by_position.entry(position).or_default().push((*t, *node));
    }
    assert_eq!(by_position.len(), stored.len(), "every message delivered");
    for (position, seen) in &by_position {
        if seen.len() == 1 {
            continue;
        }
        let queue = (position.0.clone(), position.1);
        let uncommitted_at_crash = owned_at_crash.contains(&queue)
            && position.2 >= committed_at_crash.get(&queue).copied().unwrap_or(0)
            && seen.iter().any(|(t, n)| *n == CONSUMER_2 && *t < CRASH_MS);
        let handover_back = seen.iter().any(|(t, _)| *t >= RESTART_MS);
        assert!(
            uncommitted_at_crash || handover_back,
            "{position:?} delivered {seen:?}"
        );
    }

    // The broadcasting consumer came back from its file: no queue restarted below what
    // it had committed, nor past what it had consumed.
    let restarts = owned_events(&h.log, BROADCAST, BCAST_RESTART_MS, 100_000);
    assert_eq!(restarts.len(), all_queues().len());
    let bcast = deliveries(&h.log, &stored, BROADCAST_GROUP);
    for (_, queue, start_offset) in &restarts {
        let committed = bcast_committed.get(queue).copied().unwrap_or(0);
        let consumed = bcast
            .iter()
            .filter(|(t, _, p, _)| *t < BCAST_CRASH_MS && p.0 == queue.0 && p.1 == queue.1)
            .map(|(_, _, p, _)| p.2 + 1)
            .max()
            .unwrap_or(0);
        assert!(
            *start_offset >= committed,
            "{queue:?}: {start_offset} < {committed}"
        );
        assert!(*start_offset <= consumed.max(committed), "{queue:?}");
    }
    assert!(
        restarts.iter().any(|(_, _, o)| *o > 0),
        "offsets came back from the file"
    );
    // And it got every message for its tags.
    let got_set: BTreeSet<u64> = bcast.iter().map(|(_, _, _, n)| *n).collect();
    let expected: BTreeSet<u64> = (0..COUNT).filter(|n| tag_of(*n) != "TagC").collect();
    assert_eq!(got_set, expected);
}

#[test]
fn client_runs_replay_from_their_seed() {
    let run = |seed| {
        let mut h = harness(seed, 60, 12_000);
        h.world.run_until(12_000);
        h.world.crash(CONSUMER_1, CrashKind::ProcessCrash);
        h.world.run_until(14_000);
        h.world.restart(CONSUMER_1);
        h.world.run_until(40_000);
        let events = format!("{:?}", h.log.borrow());
        (h.world.fingerprint(), events)
    };
    let (a, b) = (run(3), run(3));
    assert_eq!(a, b);
    assert_ne!(run(3).0, run(4).0);
}
