//! The model's nodes on the real runtime, over loopback TCP and real files: a name
//! server, a SYNC_FLUSH broker, the model's own producer and push consumer. Everything
//! crosses the wire as RocketMQ remoting frames (`real::remoting`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmq_model::broker::{Broker, BrokerConfig, FlushDiskType};
use rmq_model::client::consumer::{ConsumerConfig, PushConsumer};
use rmq_model::client::producer::{OutgoingMessage, Producer, ProducerConfig};
use rmq_model::client::{ClientEvent, SendOutcome};
use rmq_model::namesrv::{NameServer, NamesrvConfig};
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::{response_code, Message};
use rmq_real::process::Hosted;
use rmq_real::runtime::Ended;

type Events = Arc<Mutex<Vec<ClientEvent>>>;

const TIMER_SEND: u64 = 1;

/// The model's producer, sending `count` messages once it has started.
struct SendAll {
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
                        topic: "TopicReal".into(),
                        tags: Some(if i % 2 == 0 { "TagA" } else { "TagB" }.into()),
                        keys: Some(format!("key-{i}")),
                        user_properties: vec![("n".into(), i.to_string())],
                        body: format!("body-{i}").into_bytes(),
                    },
                );
            }
            return;
        }
        let out = self.producer.handle(ctx, input);
        self.events.lock().unwrap().extend(out);
    }
}

struct Consume {
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

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn producer_and_consumer_of_the_model_talk_to_a_hosted_broker_over_remoting_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut namesrv = Hosted::start(dir.path().join("ns"), true, |_, _| {
        Box::new(NameServer::new(NamesrvConfig::default()))
    })
    .unwrap();
    let ns_addr = namesrv.addr.to_string();
    let ns = ns_addr.clone();
    let mut broker = Hosted::start(dir.path().join("broker"), true, move |_, disk| {
        let config = BrokerConfig {
            namesrv_addrs: vec![ns],
            flush_disk_type: FlushDiskType::SyncFlush,
            default_topic_queue_nums: 4,
            ..BrokerConfig::default()
        };
        Box::new(Broker::boot(config, disk))
    })
    .unwrap();
    // Let the broker register before the clients ask for routes.
    std::thread::sleep(Duration::from_millis(300));

    const COUNT: usize = 200;
    let consumed: Events = Arc::default();
    let c_events = consumed.clone();
    let ns = ns_addr.clone();
    let mut consumer = Hosted::start(dir.path().join("consumer"), false, move |_, _| {
        Box::new(Consume {
            consumer: PushConsumer::new(ConsumerConfig {
                consumer_group: "g_real".into(),
                namesrv_addrs: vec![ns],
                topic: "TopicReal".into(),
                tag_expression: "TagA || TagB".into(),
                // The topic is created by the first send: ask for its route again soon
                // rather than after RocketMQ's 30 s.
                poll_name_server_interval_ms: 500,
                ..ConsumerConfig::default()
            }),
            events: c_events,
        })
    })
    .unwrap();
    let sent: Events = Arc::default();
    let p_events = sent.clone();
    let ns = ns_addr.clone();
    let mut producer = Hosted::start(dir.path().join("producer"), false, move |_, _| {
        Box::new(SendAll {
            producer: Producer::new(ProducerConfig {
                producer_group: "p_real".into(),
                namesrv_addrs: vec![ns],
                ..ProducerConfig::default()
            }),
            count: COUNT,
            events: p_events,
        })
    })
    .unwrap();

    let results = |events: &Events| {
        events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, ClientEvent::SendResult { .. }))
            .count()
    };
    wait_for("every send's result", Duration::from_secs(30), || {
        results(&sent) == COUNT
    });
    let stored: Vec<(String, i32, u64)> = sent
        .lock()
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
            other => panic!("a send did not succeed: {other:?}"),
        })
        .collect();
    assert_eq!(stored.len(), COUNT);

    let delivered = |events: &Events| -> Vec<(String, i32, u64, Vec<u8>)> {
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
    };
    wait_for("every message delivered", Duration::from_secs(60), || {
        delivered(&consumed).len() >= COUNT
    });
    let got = delivered(&consumed);
    // Every stored position delivered, with its body, and each queue in order.
    let mut positions: Vec<_> = got.iter().map(|(b, q, o, _)| (b.clone(), *q, *o)).collect();
    let mut expected = stored.clone();
    positions.sort();
    positions.dedup();
    expected.sort();
    assert_eq!(positions, expected);
    for (_, _, _, body) in &got {
        assert!(body.starts_with(b"body-"), "{body:?}");
    }
    let mut last: std::collections::BTreeMap<(String, i32), u64> = Default::default();
    for (b, q, o, _) in &got {
        if let Some(prev) = last.insert((b.clone(), *q), *o) {
            assert!(*o > prev, "queue {b}/{q} went from {prev} to {o}");
        }
    }

    assert_eq!(producer.stop().unwrap(), Ended::Stopped);
    assert_eq!(consumer.stop().unwrap(), Ended::Stopped);
    assert_eq!(broker.stop().unwrap(), Ended::Stopped);
    assert_eq!(namesrv.stop().unwrap(), Ended::Stopped);
    // A clean stop removed the abort marker: the next boot takes the normal path.
    assert!(!dir.path().join("broker/abort").exists());
}
