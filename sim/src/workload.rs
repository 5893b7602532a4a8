//! Workload drivers: client nodes that host a RocketMQ producer or push consumer
//! (`rmq_model::client`) and write what the application saw into the shared history.
//!
//! A producer host sends one message per interval until the heal, each carrying a fresh
//! workload id ([`WID_PROPERTY`]); a consumer host records every delivery, ownership
//! change and offset commit. Both draw their randomness from `Ctx` and their workload
//! ids from the shared history, so a restart never reuses an id.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::client::{
    ClientEvent, ConsumerConfig, OutgoingMessage, Producer, ProducerConfig, PushConsumer, SendId,
    SendOutcome, CLIENT_TIMER_KIND_BASE,
};
use rmq_model::message::property;
use rmq_model::node::{Ctx, Input, Node};
use rmq_model::protocol::{response_code, Message};

use crate::history::{Entry, History, SendStatus, WID_PROPERTY};

/// The history all workload nodes of a run write to, and the next workload id.
#[derive(Default)]
pub struct Recorder {
    pub history: History,
    next_wid: u64,
    /// The world's true time: a node's own clock may be skewed, the history's never is.
    pub clock: Rc<Cell<u64>>,
}

impl Recorder {
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
    pub start_ms: u64,
    pub stop_ms: u64,
}

fn uniform(ctx: &mut dyn Ctx<Message>, lo: u64, hi: u64) -> u64 {
    lo + ctx.random_u64() % (hi - lo + 1)
}

pub struct ProducerHost {
    producer: Producer,
    plan: ProducerPlan,
    recorder: SharedRecorder,
    in_flight: BTreeMap<SendId, u64>,
}

impl ProducerHost {
    pub fn new(config: ProducerConfig, plan: ProducerPlan, recorder: SharedRecorder) -> Self {
        ProducerHost {
            producer: Producer::new(config),
            plan,
            recorder,
            in_flight: BTreeMap::new(),
        }
    }

    fn send_one(&mut self, ctx: &mut dyn Ctx<Message>) {
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
        let at_ms = self.recorder.borrow().now_ms();
        self.recorder.borrow_mut().history.push(Entry::SendInvoke {
            at_ms,
            client: ctx.me().0,
            wid,
            topic: self.plan.topic.clone(),
            tags: Some(tag.clone()),
            body_crc: crc32fast::hash(&body),
        });
        let id = self.producer.send(
            ctx,
            OutgoingMessage {
                topic: self.plan.topic.clone(),
                tags: Some(tag),
                keys: Some(format!("wid-{wid}")),
                user_properties: vec![(WID_PROPERTY.to_string(), wid.to_string())],
                body,
            },
        );
        self.in_flight.insert(id, wid);
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
        let Some(wid) = self.in_flight.remove(&id) else {
            return;
        };
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
                broker: broker_name,
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
                self.send_one(ctx);
                self.schedule_next(ctx);
            }
            return;
        }
        for event in self.producer.handle(ctx, input) {
            self.record(ctx, event);
        }
    }
}

pub struct ConsumerHost {
    consumer: PushConsumer,
    recorder: SharedRecorder,
}

impl ConsumerHost {
    pub fn new(config: ConsumerConfig, recorder: SharedRecorder) -> Self {
        ConsumerHost {
            consumer: PushConsumer::new(config),
            recorder,
        }
    }

    fn record(&mut self, ctx: &mut dyn Ctx<Message>, event: ClientEvent) {
        let at_ms = self.recorder.borrow().now_ms();
        let client = ctx.me().0;
        let entry = match event {
            ClientEvent::SendResult { .. } => return,
            ClientEvent::Delivered {
                group,
                broker_name,
                topic,
                queue_id,
                queue_offset,
                msg,
            } => Entry::Deliver {
                at_ms,
                group,
                client,
                // The record's own topic: a record served for the wrong queue shows.
                topic: if msg.topic.is_empty() {
                    topic
                } else {
                    msg.topic
                },
                broker: broker_name,
                queue_id,
                queue_offset,
                wid: property(&msg.properties, WID_PROPERTY).and_then(|w| w.parse().ok()),
                reconsume_times: msg.reconsume_times,
                body_crc: crc32fast::hash(&msg.body),
                // The consumer read TAGS out of the properties already.
                tags: msg.tags,
            },
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
                group,
                client,
                broker: broker_name,
                topic,
                queue_id,
                start_offset,
                offset_from_broker_id,
                offset_moved,
            },
            ClientEvent::Disowned {
                group,
                broker_name,
                topic,
                queue_id,
            } => Entry::Disown {
                at_ms,
                group,
                client,
                broker: broker_name,
                topic,
                queue_id,
            },
            ClientEvent::Committed {
                group,
                broker_name,
                topic,
                queue_id,
                offset,
            } => Entry::Commit {
                at_ms,
                group,
                client,
                broker: broker_name,
                topic,
                queue_id,
                offset,
            },
        };
        self.recorder.borrow_mut().history.push(entry);
    }
}

impl Node<Message> for ConsumerHost {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.consumer.start(ctx);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        for event in self.consumer.handle(ctx, input) {
            self.record(ctx, event);
        }
    }

    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        for event in self.consumer.shutdown(ctx) {
            self.record(ctx, event);
        }
    }

    /// A broadcasting consumer exits only once its offset file is written (RocketMQ's
    /// `shutdown` persists the offsets synchronously before returning).
    fn is_stopped(&self) -> bool {
        self.consumer.is_stopped()
    }
}
