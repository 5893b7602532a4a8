//! Workload drivers: client nodes that host a RocketMQ producer or push consumer
//! (`rmq_model::client`) and write what the application saw into the shared history.
//!
//! A producer host sends one message per interval until the heal, each carrying a fresh
//! workload id ([`WID_PROPERTY`]); an orderly one sends each with one of its sharding keys
//! through the queue selector, one send per key at a time (a key's next send only after
//! the previous one's outcome), so each key's acknowledged messages have a send order; a consumer host records every delivery, ownership
//! change and offset commit. Both draw their randomness from `Ctx` and their workload
//! ids from the shared history, so a restart never reuses an id. [`listener`] is the
//! concurrent listener that fails or hangs on a seeded share of messages,
//! [`orderly_listener`] an orderly group's.
//!
//! They are plain nodes on `Ctx`: the simulator's runner hosts them in its world, and
//! the real runtime's chaos harness (`rmq_real::chaos`) on real sockets, one recorder
//! per client thread.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::mem::take;
use std::rc::Rc;

use rmq_model::client::{
    ClientEvent, ConsumeConcurrentlyStatus, ConsumeOrderlyStatus, ConsumerConfig,
    MessageQueueSelector, OutgoingMessage, Producer, ProducerConfig, PushConsumer, SendId,
    SendOutcome, CLIENT_TIMER_KIND_BASE,
};
use rmq_model::message::{
    properties, property, DLQ_GROUP_TOPIC_PREFIX, PROPERTY_KEYS, RETRY_GROUP_TOPIC_PREFIX,
};
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::{response_code, Message};
use rmq_model::store::record::Host;

pub mod listener;
pub mod orderly_listener;

use self::listener::{FailingListener, HungCalls, ListenerPlan};
use self::orderly_listener::{OrderlyCalls, WorkloadOrderlyListener};
use crate::history::{
    user_properties_crc, ConsumeOutcome, Entry, History, MessageFields, Name, SendStatus,
    WID_PROPERTY,
};

/// The history all workload nodes of a run write to, and the next workload id.
#[derive(Default)]
pub struct Recorder {
    pub history: History,
    next_wid: u64,
    /// The world's true time: a node's own clock may be skewed, the history's never is.
    pub clock: Rc<Cell<u64>>,
}

impl Recorder {
    /// A recorder whose first workload id is `first_wid`: clients that do not share one
    /// recorder (the real harness's, one per thread) take disjoint ranges.
    pub fn with_first_wid(first_wid: u64) -> Recorder {
        Recorder {
            next_wid: first_wid.saturating_sub(1),
            ..Recorder::default()
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn next_wid(&mut self) -> u64 {
        self.next_wid += 1;
        self.next_wid
    }
}

pub type SharedRecorder = Rc<RefCell<Recorder>>;

const TIMER_SEND: u64 = 1;
const _: () = assert!(TIMER_SEND < CLIENT_TIMER_KIND_BASE);

#[derive(Clone, Debug)]
pub struct ProducerPlan {
    pub topic: String,
    pub tags: Vec<String>,
    pub send_interval_ms: [u64; 2],
    pub body_bytes: [u32; 2],
    /// Messages sent back to back per interval (uniform in the range; `[1, 1]` draws
    /// nothing).
    pub burst: [u32; 2],
    pub start_ms: u64,
    pub stop_ms: u64,
    /// Delay levels each message draws one of (uniformly; 0 = at once). Empty: every
    /// message at once, and nothing is drawn.
    pub delay_levels: Vec<u32>,
    /// Orderly sends: each message takes one of this many sharding keys of this
    /// producer (uniformly among those with no send in flight; none idle: the tick
    /// sends nothing). 0: sends pick their queue round-robin.
    pub sharding_keys: u32,
}

fn uniform(ctx: &mut dyn Ctx<Message>, lo: u64, hi: u64) -> u64 {
    lo + ctx.random_u64() % (hi - lo + 1)
}

pub struct ProducerHost {
    producer: Producer,
    plan: ProducerPlan,
    recorder: SharedRecorder,
    /// Each send in flight: its workload id and its sharding key's index.
    in_flight: BTreeMap<SendId, (u64, Option<u32>)>,
    /// Sharding keys with a send in flight.
    busy_keys: BTreeSet<u32>,
    /// CRC32 of this node's address, the born host of every message it sends.
    born_host_crc: Option<u32>,
}

impl ProducerHost {
    pub fn new(config: ProducerConfig, plan: ProducerPlan, recorder: SharedRecorder) -> Self {
        ProducerHost {
            producer: Producer::new(config),
            plan,
            recorder,
            in_flight: BTreeMap::new(),
            busy_keys: BTreeSet::new(),
            born_host_crc: None,
        }
    }

    /// An orderly producer's next key: one with no send in flight, drawn uniformly;
    /// `Err` when every key is busy. `Ok(None)`: not an orderly producer.
    fn idle_key(&self, ctx: &mut dyn Ctx<Message>) -> Result<Option<u32>, ()> {
        let keys = self.plan.sharding_keys;
        if keys == 0 {
            return Ok(None);
        }
        let idle = keys - self.busy_keys.len() as u32;
        if idle == 0 {
            return Err(());
        }
        let nth = (ctx.random_u64() % u64::from(idle)) as usize;
        let key = (0..keys).filter(|k| !self.busy_keys.contains(k)).nth(nth);
        Ok(Some(key.expect("an idle key")))
    }

    fn send_one(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Ok(key) = self.idle_key(ctx) else {
            return;
        };
        // Named after the producer's node, so a restarted producer goes on with the
        // same keys and no two producers share one.
        let sharding_key = key.map(|k| format!("p{}-k{k}", ctx.me().0));
        let wid = self.recorder.borrow_mut().next_wid();
        let tag = self.plan.tags[(ctx.random_u64() % self.plan.tags.len() as u64) as usize].clone();
        let len = uniform(
            ctx,
            u64::from(self.plan.body_bytes[0]),
            u64::from(self.plan.body_bytes[1]),
        ) as usize;
        let seed = ctx.random_u64();
        let body: Vec<u8> = (0..len)
            .map(|i| (seed.rotate_left((i % 64) as u32) as u8) ^ (i as u8))
            .collect();
        // An orderly send is never delayed: the broker re-stores a delayed message
        // into its queue when due, behind what the key sent after it.
        let delay_level = match self.plan.delay_levels.len() {
            _ if key.is_some() => 0,
            0 => 0,
            n => self.plan.delay_levels[(ctx.random_u64() % n as u64) as usize],
        };
        let at_ms = self.recorder.borrow().now_ms();
        let keys = format!("wid-{wid}");
        let user_properties = vec![(WID_PROPERTY.to_string(), wid.to_string())];
        // The producer stamps the message with this node's clock and address in this
        // same call, so these are the born timestamp and host it sends.
        let fields = MessageFields {
            keys_crc: Some(crc32fast::hash(keys.as_bytes())),
            props_crc: user_properties_crc(
                user_properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            ),
            born_ms: ctx.now_ms() as i64,
            born_host_crc: *self
                .born_host_crc
                .get_or_insert_with(|| crc32fast::hash(ctx.my_addr().as_bytes())),
            msg_id_crc: None,
        };
        self.recorder.borrow_mut().history.push(Entry::SendInvoke {
            at_ms,
            client: ctx.me().0,
            wid,
            topic: Name::from(self.plan.topic.as_str()),
            tags: Some(Name::from(tag.as_str())),
            body_crc: crc32fast::hash(&body),
            fields: Some(fields),
            delay_level,
            sharding_key: sharding_key.as_deref().map(Name::from),
        });
        let msg = OutgoingMessage {
            topic: self.plan.topic.clone(),
            tags: Some(tag),
            keys: Some(keys),
            user_properties,
            body,
            delay_time_level: delay_level,
        };
        let id = match sharding_key {
            Some(k) => self
                .producer
                .send_selected(ctx, msg, MessageQueueSelector::by_hash(k)),
            None => self.producer.send(ctx, msg),
        };
        // On a real clock time moves between the reading above and the producer's
        // own: the entry carries the timestamp the producer stamped.
        if let Some(stamped_ms) = self.producer.born_timestamp_ms(id) {
            let mut recorder = self.recorder.borrow_mut();
            if let Some(Entry::SendInvoke {
                wid: w,
                fields: Some(f),
                ..
            }) = recorder.history.entries.last_mut()
            {
                if *w == wid {
                    f.born_ms = stamped_ms as i64;
                }
            }
        }
        if let Some(k) = key {
            self.busy_keys.insert(k);
        }
        self.in_flight.insert(id, (wid, key));
    }

    fn schedule_next(&mut self, ctx: &mut dyn Ctx<Message>) {
        let [lo, hi] = self.plan.send_interval_ms;
        let after_ms = uniform(ctx, lo, hi);
        if self.recorder.borrow().now_ms() + after_ms < self.plan.stop_ms {
            ctx.set_timer(after_ms, TIMER_SEND);
        }
    }

    fn record(&mut self, ctx: &mut dyn Ctx<Message>, event: ClientEvent) {
        let ClientEvent::SendResult { id, outcome } = event else {
            return;
        };
        let Some((wid, key)) = self.in_flight.remove(&id) else {
            return;
        };
        if let Some(k) = key {
            self.busy_keys.remove(&k);
        }
        let at_ms = self.recorder.borrow().now_ms();
        let client = ctx.me().0;
        let entry = match outcome {
            SendOutcome::Stored {
                code,
                broker_name,
                queue_id,
                queue_offset,
                msg_id,
                retried_after_unknown,
            } => Entry::SendOk {
                at_ms,
                client,
                wid,
                status: match code {
                    response_code::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
                    response_code::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
                    response_code::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
                    _ => SendStatus::SendOk,
                },
                broker: broker_name.into(),
                queue_id,
                queue_offset,
                msg_id,
                retried_after_unknown,
            },
            SendOutcome::Failed {
                definite,
                reason,
                retried_after_unknown,
            } => Entry::SendFail {
                at_ms,
                client,
                wid,
                definite,
                reason,
                retried_after_unknown,
            },
        };
        self.recorder.borrow_mut().history.push(entry);
    }
}

impl Node<Message> for ProducerHost {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.producer.start(ctx);
        let now_ms = self.recorder.borrow().now_ms();
        if now_ms < self.plan.start_ms {
            ctx.set_timer(self.plan.start_ms - now_ms, TIMER_SEND);
        } else {
            self.schedule_next(ctx);
        }
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer {
            kind: TIMER_SEND, ..
        } = input
        {
            if self.recorder.borrow().now_ms() < self.plan.stop_ms {
                let [lo, hi] = self.plan.burst;
                let burst = if hi > 1 {
                    uniform(ctx, u64::from(lo), u64::from(hi))
                } else {
                    1
                };
                for _ in 0..burst {
                    self.send_one(ctx);
                }
                self.schedule_next(ctx);
            }
            return;
        }
        for event in self.producer.handle(ctx, input) {
            self.record(ctx, event);
        }
    }
}

const TIMER_START: u64 = 2;
const _: () = assert!(TIMER_START < CLIENT_TIMER_KIND_BASE);

/// What a consumer host does besides consuming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerPlan {
    /// The consumer starts at this true time (0: at boot; a group may join late).
    pub start_at_ms: u64,
    /// How its listener answers (by default: success, at once).
    pub listener: ListenerPlan,
}

pub struct ConsumerHost {
    consumer: PushConsumer,
    recorder: SharedRecorder,
    /// Reads `%DLQ%{group}`: records what it receives as `DeadLetter`s of that group,
    /// and nothing else (its own queues and commits are no part of the workload).
    dead_letters_of: Option<String>,
    /// The consumer starts at this true time (a group that joins late and finds a
    /// backlog); 0: at boot.
    start_at_ms: u64,
    started: bool,
    /// Born hosts seen, with the CRC32 of their `ip:port`: a run has a few producers,
    /// and formatting an address for every delivery would cost more than the lookup.
    born_hosts: Vec<(Host, u32)>,
    /// The workload id of the last delivery recorded: a listener that answers at once
    /// is answered by the very next event.
    last_wid: Option<u64>,
    /// The workload ids of deliveries whose listener has not answered yet, by queue
    /// (broker, topic, queue id) and queue offset.
    in_listener: BTreeMap<(String, String, i32, u64), Option<u64>>,
    /// An orderly group's listener calls still working (`orderly_listener.rs`).
    orderly_done: OrderlyCalls,
    /// The client's events of the input being handled; kept, empty, for the next.
    events: Vec<ClientEvent>,
    /// Hung concurrent listener calls (`listener.rs`).
    hung: HungCalls,
}

/// At most this many born hosts are remembered; past it each one is formatted anew.
const MAX_BORN_HOSTS: usize = 64;

impl ConsumerHost {
    pub fn new(config: ConsumerConfig, plan: ConsumerPlan, recorder: SharedRecorder) -> Self {
        let dead_letters_of = config
            .topic
            .strip_prefix(DLQ_GROUP_TOPIC_PREFIX)
            .map(str::to_string);
        let orderly = config.consume_orderly;
        let mut consumer = PushConsumer::new(config);
        let hung = HungCalls::default();
        if plan.listener.fails() {
            consumer.register_message_listener(Box::new(FailingListener {
                plan: plan.listener,
                hung: hung.clone(),
            }));
        }
        let orderly_done = OrderlyCalls::default();
        if orderly {
            consumer.register_message_listener_orderly(Box::new(WorkloadOrderlyListener::new(
                orderly_done.clone(),
                plan.listener,
            )));
        }
        ConsumerHost {
            consumer,
            orderly_done,
            hung,
            recorder,
            dead_letters_of,
            start_at_ms: plan.start_at_ms,
            started: false,
            born_hosts: Vec::new(),
            last_wid: None,
            in_listener: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.started = true;
        self.consumer.start(ctx);
    }

    /// Runs the consumer with a bug planted in the model (the mutant campaign's).
    pub fn plant(&mut self, bug: rmq_model::client::consumer::PlantedBug) {
        self.consumer.plant(bug);
    }

    fn born_host_crc(&mut self, host: Host) -> u32 {
        if let Some(&(_, crc)) = self.born_hosts.iter().find(|(h, _)| *h == host) {
            return crc;
        }
        let crc = crc32fast::hash(format!("{}:{}", host.ip, host.port).as_bytes());
        if self.born_hosts.len() < MAX_BORN_HOSTS {
            self.born_hosts.push((host, crc));
        }
        crc
    }

    /// Records the events of one step and empties `events`. A delivery its listener
    /// answered at once is followed by that answer. The events are read in place and
    /// their strings moved into the entries: an event is a few hundred bytes, and
    /// moving each one out of the vector cost more than recording it.
    fn record_all(&mut self, ctx: &mut dyn Ctx<Message>, events: &mut Vec<ClientEvent>) {
        for at in 0..events.len() {
            let (event, next) = events[at..].split_first_mut().expect("in range");
            let answered_at_once = match (&*event, next.first()) {
                (
                    ClientEvent::Delivered {
                        broker_name,
                        topic,
                        queue_id,
                        queue_offset,
                        ..
                    },
                    Some(
                        ClientEvent::Consumed {
                            broker_name: b,
                            topic: t,
                            queue_id: q,
                            queue_offset: o,
                            ..
                        }
                        | ClientEvent::ConsumedOrderly {
                            broker_name: b,
                            topic: t,
                            queue_id: q,
                            queue_offset: o,
                            ..
                        },
                    ),
                ) => queue_offset == o && queue_id == q && broker_name == b && topic == t,
                _ => false,
            };
            self.record(ctx, event, answered_at_once);
        }
        events.clear();
    }

    /// Records one event, taking its strings (the event is cleared right after).
    fn record(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        event: &mut ClientEvent,
        answered_at_once: bool,
    ) {
        let at_ms = self.recorder.borrow().now_ms();
        let client = ctx.me().0;
        if let Some(group) = &self.dead_letters_of {
            if let ClientEvent::Delivered {
                broker_name,
                queue_id,
                queue_offset,
                msg,
                ..
            } = event
            {
                let entry = Entry::DeadLetter {
                    at_ms,
                    group: Name::from(group.as_str()),
                    client,
                    broker: Name::from(broker_name.as_str()),
                    queue_id: *queue_id,
                    queue_offset: *queue_offset,
                    wid: property(&msg.properties, WID_PROPERTY).and_then(|w| w.parse().ok()),
                    reconsume_times: msg.reconsume_times,
                };
                self.push(entry);
            }
            return;
        }
        // A listener's answer, concurrent or orderly, or the consumer giving up on it
        // after consumeTimeout: one `consumed` entry, with what was answered.
        let answer = match &*event {
            ClientEvent::Consumed { status, .. } => Some(consume_outcome(*status)),
            ClientEvent::ConsumedOrderly { status, .. } => Some(orderly_outcome(*status)),
            ClientEvent::ConsumeTimedOut { .. } => Some(ConsumeOutcome::TimeOut),
            _ => None,
        };
        let entry = match event {
            ClientEvent::SendResult { .. } => return,
            ClientEvent::Consumed {
                group,
                broker_name,
                topic,
                queue_id,
                queue_offset,
                ..
            }
            | ClientEvent::ConsumedOrderly {
                group,
                broker_name,
                topic,
                queue_id,
                queue_offset,
                ..
            }
            | ClientEvent::ConsumeTimedOut {
                group,
                broker_name,
                topic,
                queue_id,
                queue_offset,
            } => self.consumed_entry(
                at_ms,
                client,
                (take(group), take(broker_name), take(topic)),
                (*queue_id, *queue_offset),
                answer.expect("an answer event has an answer"),
            ),
            ClientEvent::Delivered {
                group,
                broker_name,
                topic,
                queue_id,
                queue_offset,
                msg,
            } => {
                let born_host_crc = self.born_host_crc(msg.born_host);
                // One pass over the properties for the digest, KEYS and the workload id
                // (each the first pair of its name, as `property` finds it).
                let (mut keys, mut wid_text) = (None, None);
                let props_crc =
                    user_properties_crc(properties(&msg.properties).inspect(|&(name, value)| {
                        if name == PROPERTY_KEYS {
                            keys = keys.or(Some(value));
                        } else if name == WID_PROPERTY {
                            wid_text = wid_text.or(Some(value));
                        }
                    }));
                let fields = MessageFields {
                    keys_crc: keys.map(|k| crc32fast::hash(k.as_bytes())),
                    props_crc,
                    born_ms: msg.born_timestamp_ms,
                    born_host_crc,
                    msg_id_crc: Some(crc32fast::hash(msg.msg_id.as_bytes())),
                };
                let wid = wid_text.and_then(|w: &str| w.parse().ok());
                self.last_wid = wid;
                if !answered_at_once {
                    self.in_listener.insert(
                        (broker_name.clone(), topic.clone(), *queue_id, *queue_offset),
                        wid,
                    );
                }
                Entry::Deliver {
                    at_ms,
                    group: Name::from(group.as_str()),
                    client,
                    // The record's own topic: a record served for the wrong queue shows.
                    // A retry's is its retry topic (the listener sees the original one,
                    // restored from RETRY_TOPIC).
                    topic: if msg.topic.is_empty() || topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                        Name::from(topic.as_str())
                    } else {
                        Name::from(msg.topic.as_str())
                    },
                    broker: Name::from(broker_name.as_str()),
                    queue_id: *queue_id,
                    queue_offset: *queue_offset,
                    wid,
                    reconsume_times: msg.reconsume_times,
                    body_crc: crc32fast::hash(&msg.body),
                    // The consumer read TAGS out of the properties already.
                    tags: msg.tags.as_deref().map(Name::from),
                    fields: Some(fields),
                }
            }
            ClientEvent::Owned {
                group,
                broker_name,
                topic,
                queue_id,
                start_offset,
                offset_from_broker_id,
                offset_moved,
            } => Entry::Own {
                at_ms,
                group: Name::from(group.as_str()),
                client,
                broker: Name::from(broker_name.as_str()),
                topic: Name::from(topic.as_str()),
                queue_id: *queue_id,
                start_offset: *start_offset,
                offset_from_broker_id: *offset_from_broker_id,
                offset_moved: *offset_moved,
            },
            ClientEvent::Disowned {
                group,
                broker_name,
                topic,
                queue_id,
            } => Entry::Disown {
                at_ms,
                group: Name::from(group.as_str()),
                client,
                broker: Name::from(broker_name.as_str()),
                topic: Name::from(topic.as_str()),
                queue_id: *queue_id,
            },
            ClientEvent::Committed {
                group,
                broker_name,
                topic,
                queue_id,
                offset,
            } => Entry::Commit {
                at_ms,
                group: Name::from(group.as_str()),
                client,
                broker: Name::from(broker_name.as_str()),
                topic: Name::from(topic.as_str()),
                queue_id: *queue_id,
                offset: *offset,
            },
        };
        self.push(entry);
    }

    /// The listener's answer for the delivery at (broker, topic, queue id, offset).
    fn consumed_entry(
        &mut self,
        at_ms: u64,
        client: u32,
        (group, broker_name, topic): (String, String, String),
        (queue_id, queue_offset): (i32, u64),
        status: ConsumeOutcome,
    ) -> Entry {
        // Matched by queue and offset only while some listener is still working: keys
        // cost allocations the common case has no need of.
        let wid = if self.in_listener.is_empty() {
            self.last_wid
        } else {
            let key = (broker_name.clone(), topic.clone(), queue_id, queue_offset);
            if status == ConsumeOutcome::TimeOut {
                // The listener still holds the message: its late answer names it too.
                self.in_listener.get(&key).copied().unwrap_or(self.last_wid)
            } else {
                self.in_listener.remove(&key).unwrap_or(self.last_wid)
            }
        };
        Entry::Consumed {
            at_ms,
            group: group.into(),
            client,
            broker: broker_name.into(),
            topic: topic.into(),
            queue_id,
            queue_offset,
            wid,
            status,
        }
    }

    fn push(&self, entry: Entry) {
        self.recorder.borrow_mut().history.push(entry);
    }
}

fn orderly_outcome(status: ConsumeOrderlyStatus) -> ConsumeOutcome {
    match status {
        ConsumeOrderlyStatus::Success => ConsumeOutcome::ConsumeSuccess,
        ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
            ConsumeOutcome::SuspendCurrentQueueAMoment
        }
    }
}

fn consume_outcome(status: ConsumeConcurrentlyStatus) -> ConsumeOutcome {
    match status {
        ConsumeConcurrentlyStatus::ConsumeSuccess => ConsumeOutcome::ConsumeSuccess,
        ConsumeConcurrentlyStatus::ReconsumeLater => ConsumeOutcome::ReconsumeLater,
    }
}

impl Node<Message> for ConsumerHost {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        let now_ms = self.recorder.borrow().now_ms();
        if now_ms < self.start_at_ms {
            ctx.set_timer(self.start_at_ms - now_ms, TIMER_START);
        } else {
            self.start(ctx);
        }
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if !self.started {
            if let Input::Timer {
                kind: TIMER_START, ..
            } = input
            {
                self.start(ctx);
            }
            return;
        }
        if let Input::Timer {
            id,
            kind: orderly_listener::TIMER_ORDERLY_DONE,
        } = input
        {
            if let Some((mq, offset, status)) = self.orderly_done.take(id) {
                let mut events = self.consumer.consumed_orderly(ctx, &mq, offset, status);
                self.record_all(ctx, &mut events);
            }
            return;
        }
        if let Input::Timer {
            id,
            kind: listener::TIMER_HUNG_DONE,
        } = input
        {
            if let Some((mq, offset)) = self.hung.take(id) {
                let done = ConsumeConcurrentlyStatus::ConsumeSuccess;
                let mut events = self.consumer.consumed(ctx, &mq, offset, done);
                self.record_all(ctx, &mut events);
            }
            return;
        }
        // One buffer for every input, empty between them.
        let mut events = take(&mut self.events);
        self.consumer.handle_into(ctx, input, &mut events);
        self.record_all(ctx, &mut events);
        self.events = events;
    }

    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        if !self.started {
            return;
        }
        let mut events = self.consumer.shutdown(ctx);
        self.record_all(ctx, &mut events);
    }

    /// A broadcasting consumer exits only once its offset file is written (RocketMQ's
    /// `shutdown` persists the offsets synchronously before returning).
    fn is_stopped(&self) -> bool {
        !self.started || self.consumer.is_stopped()
    }
}
