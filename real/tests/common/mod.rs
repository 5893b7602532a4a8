//! What the real-runtime tests share: the model's producer and consumer as nodes that
//! hand their events to the test, and the checks on what they saw.

#![allow(dead_code)] // Each test binary uses its own part.

pub mod cpp_client;
pub mod procs;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_model::client::consumer::{ConsumerConfig, PushConsumer};
use rmq_model::client::producer::{OutgoingMessage, Producer, ProducerConfig};
use rmq_model::client::{ClientEvent, SendOutcome};
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::{response_code, Message};
use rmq_real::process::Hosted;

pub const TOPIC: &str = "TopicReal";

pub type Events = Arc<Mutex<Vec<ClientEvent>>>;

const TIMER_SEND: u64 = 1;

/// The model's producer, sending `count` messages once it has started.
pub struct SendAll {
    producer: Producer,
    count: usize,
    events: Events,
}

impl Node<Message> for SendAll {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.producer.start(ctx);
        ctx.set_timer(10, TIMER_SEND);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        if let Input::Timer {
            kind: TIMER_SEND, ..
        } = input
        {
            for i in 0..self.count {
                self.producer.send(
                    ctx,
                    OutgoingMessage {
                        topic: TOPIC.into(),
                        tags: Some(if i % 2 == 0 { "TagA" } else { "TagB" }.into()),
                        keys: Some(format!("key-{i}")),
                        user_properties: vec![("n".into(), i.to_string())],
                        body: format!("body-{i}").into_bytes(),
                        delay_time_level: 0,
                    },
                );
            }
            return;
        }
        let out = self.producer.handle(ctx, input);
        self.events.lock().unwrap().extend(out);
    }
}

pub struct Consume {
    consumer: PushConsumer,
    events: Events,
}

impl Node<Message> for Consume {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.consumer.start(ctx);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        let out = self.consumer.handle(ctx, input);
        self.events.lock().unwrap().extend(out);
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A name server and a SYNC_FLUSH broker hosted in this process under `dir`; the
/// name server's address.
pub fn start_cluster(dir: &std::path::Path) -> (Hosted, Hosted, String) {
    use rmq_model::broker::{Broker, BrokerConfig, FlushDiskType};
    use rmq_model::namesrv::{NameServer, NamesrvConfig};
    let namesrv = Hosted::start(dir.join("ns"), true, |_, _| {
        Box::new(NameServer::new(NamesrvConfig::default()))
    })
    .expect("name server started");
    let ns_addr = namesrv.addr.to_string();
    let ns = ns_addr.clone();
    let broker = Hosted::start(dir.join("broker"), true, move |_, disk| {
        let config = BrokerConfig {
            namesrv_addrs: vec![ns],
            flush_disk_type: FlushDiskType::SyncFlush,
            default_topic_queue_nums: 4,
            ..BrokerConfig::default()
        };
        Box::new(Broker::boot(config, disk))
    })
    .expect("broker started");
    (namesrv, broker, ns_addr)
}

/// A hosted producer sending `count` messages to [`TOPIC`] through `namesrv`.
pub fn start_producer(dir: std::path::PathBuf, namesrv: &str, count: usize) -> (Hosted, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let ns = namesrv.to_string();
    let hosted = Hosted::start(dir, false, move |_, _| {
        Box::new(SendAll {
            producer: Producer::new(ProducerConfig {
                producer_group: "p_real".into(),
                namesrv_addrs: vec![ns],
                ..ProducerConfig::default()
            }),
            count,
            events: sink,
        })
    })
    .expect("producer started");
    (hosted, events)
}

/// A hosted clustering consumer of [`TOPIC`] (`TagA || TagB`) in `group`.
pub fn start_consumer(dir: std::path::PathBuf, namesrv: &str, group: &str) -> (Hosted, Events) {
    let events: Events = Arc::default();
    let sink = events.clone();
    let config = ConsumerConfig {
        consumer_group: group.into(),
        namesrv_addrs: vec![namesrv.to_string()],
        topic: TOPIC.into(),
        tag_expression: "TagA || TagB".into(),
        // The topic is created by the first send: ask for its route again soon rather
        // than after RocketMQ's 30 s.
        poll_name_server_interval_ms: 500,
        ..ConsumerConfig::default()
    };
    let hosted = Hosted::start(dir, false, move |_, _| {
        Box::new(Consume {
            consumer: PushConsumer::new(config),
            events: sink,
        })
    })
    .expect("consumer started");
    (hosted, events)
}

/// Waits for every send's result; returns the positions of those stored with
/// SEND_OK, failing on any other outcome.
pub fn wait_stored(sent: &Events, count: usize) -> Vec<(String, i32, u64)> {
    wait_for("every send's result", Duration::from_secs(60), || {
        sent.lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ClientEvent::SendResult { .. }))
            .count()
            == count
    });
    sent.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::SendResult {
                outcome:
                    SendOutcome::Stored {
                        code,
                        broker_name,
                        queue_id,
                        queue_offset,
                        ..
                    },
                ..
            } => {
                assert_eq!(*code, response_code::SUCCESS);
                Some((broker_name.clone(), *queue_id, *queue_offset))
            }
            ClientEvent::SendResult { outcome, .. } => {
                panic!("a send did not succeed: {outcome:?}")
            }
            _ => None,
        })
        .collect()
}

/// What a consumer got: (broker, queue, offset, body), in delivery order.
pub fn delivered(events: &Events) -> Vec<(String, i32, u64, Vec<u8>)> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered {
                broker_name,
                queue_id,
                queue_offset,
                msg,
                ..
            } => Some((
                broker_name.clone(),
                *queue_id,
                *queue_offset,
                msg.body.clone(),
            )),
            _ => None,
        })
        .collect()
}

/// Waits until `consumed` holds every position in `stored`, then checks: each body is
/// the one sent (`body-N`), and each queue was delivered in offset order.
pub fn assert_all_delivered(stored: &[(String, i32, u64)], consumed: &Events) {
    wait_for(
        "every stored message delivered",
        Duration::from_secs(60),
        || {
            let got: std::collections::BTreeSet<_> = delivered(consumed)
                .into_iter()
                .map(|(b, q, o, _)| (b, q, o))
                .collect();
            stored.iter().all(|p| got.contains(p))
        },
    );
    let mut last: BTreeMap<(String, i32), u64> = BTreeMap::new();
    for (b, q, o, body) in delivered(consumed) {
        assert!(body.starts_with(b"body-"), "{body:?}");
        if let Some(prev) = last.insert((b.clone(), q), o) {
            assert!(o > prev, "queue {b}/{q} went from {prev} to {o}");
        }
    }
}
