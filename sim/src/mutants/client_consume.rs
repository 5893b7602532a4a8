//! Planted bugs in the push consumer's process queue and consume service
//! (`client/consumer/pull.rs`, the send-back of failed messages): what the broker served
//! in order reaches the listener out of order; a message the listener consumed is
//! handed back for a retry anyway; a listener that hangs is never given up on; an
//! orderly consumer that dead-letters a message one failure early, or skips a failed
//! one (a bug planted in the model's consume service,
//! `rmq_model::client::consumer::PlantedBug`, which no boundary tamper can reach).

use std::rc::Rc;

use rmq_model::client::consumer::PlantedBug;
use rmq_model::client::timer_kind;
use rmq_model::node::{Ctx, Input};
use rmq_model::protocol::{ConsumerSendMsgBack, Message, MessageModel, Request};

use super::tamper::{consumer_config, found_pull, record_spans, tamper_consumers, view, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;
use crate::cluster::runner::Nodes;
use crate::history::workload::ConsumerHost;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![
        Mutant {
            name: "consume-batch-reversed",
            component: Component::ClientConsume,
            description: "hands each pulled batch to the listener last record first",
            scenario: "case1_kill",
            variant: "",
            seeds: 4,
            expected: Rule::Order,
            nodes: || tamper_consumers(|_| Some(ReverseBatches)),
        },
        Mutant {
            name: "success-sent-back",
            component: Component::ClientConsume,
            description:
                "hands every message it pulls from its topic back to the broker, successes too",
            scenario: "retry_dlq",
            variant: "",
            seeds: 4,
            expected: Rule::Retry,
            nodes: || {
                tamper_consumers(|c| {
                    (c.message_model == MessageModel::Clustering && !c.topic.starts_with('%')).then(
                        || SendEverythingBack {
                            group: c.consumer_group.clone(),
                            next_opaque: 0,
                        },
                    )
                })
            },
        },
        Mutant {
            name: "consume-timeout-early",
            component: Component::ClientConsume,
            description: "gives up on a listener after half of consumeTimeout",
            scenario: "retry_dlq",
            variant: "",
            seeds: 4,
            expected: Rule::Retry,
            nodes: || consumer_config(|c| c.consume_timeout_ms /= 2),
        },
        Mutant {
            name: "consume-timeout-never-swept",
            component: Component::ClientConsume,
            description: "never runs the consumeTimeout sweep: a hung listener's message is \
                          not handed back, and its late success is taken",
            scenario: "retry_dlq",
            variant: "",
            seeds: 4,
            expected: Rule::Retry,
            nodes: || tamper_consumers(|_| Some(NoCleanExpired)),
        },
        Mutant {
            name: "orderly-dlq-one-early",
            component: Component::ClientConsume,
            description: "an orderly consumer with a maximum dead-letters a failing message at its failure number max, one early (its maximum taken one lower)",
            scenario: "orderly_dlq",
            variant: "",
            seeds: 4,
            expected: Rule::Retry,
            nodes: || {
                consumer_config(|c| {
                    if c.consume_orderly {
                        c.max_reconsume_times = c.max_reconsume_times.map(|m| m - 1);
                    }
                })
            },
        },
        Mutant {
            name: "orderly-skips-failed-message",
            component: Component::ClientConsume,
            description: "an orderly consumer takes SUSPEND_CURRENT_QUEUE_A_MOMENT for SUCCESS: it commits past a failed message and consumes the next",
            scenario: "orderly",
            variant: "",
            seeds: 4,
            expected: Rule::KeyOrder,
            nodes: || planted(PlantedBug::OrderlySkipsFailedMessage),
        },
    ]
}

/// Swallows the consumeTimeout sweep's timer.
struct NoCleanExpired;

impl Tamper for NoCleanExpired {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        match input {
            Input::Timer {
                kind: timer_kind::CLEAN_EXPIRED_MSG,
                ..
            } => None,
            other => Some(other),
        }
    }
}

/// Reference nodes, every orderly consumer built with the model's planted `bug`.
fn planted(bug: PlantedBug) -> Nodes {
    Nodes {
        consumer: Rc::new(move |config, plan, recorder| {
            let orderly = config.consume_orderly;
            let mut host = ConsumerHost::new(config, plan, recorder);
            if orderly {
                host.plant(bug);
            }
            Box::new(host)
        }),
        ..Nodes::default()
    }
}

/// Opaques of the consumer's extra send-backs: their answers are swallowed.
const SEND_BACK_OPAQUE_BASE: u32 = 0xF000_0000;

/// For every record a broker serves from the group's own topic, a CONSUMER_SEND_MSG_BACK
/// to that broker, whatever the listener then answers.
struct SendEverythingBack {
    group: String,
    next_opaque: u32,
}

impl Tamper for SendEverythingBack {
    fn incoming(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mut input: Input<Message>,
    ) -> Option<Input<Message>> {
        let Input::Packet { from, msg } = &mut input else {
            return Some(input);
        };
        if let Message::Response { opaque, .. } = msg {
            if *opaque >= SEND_BACK_OPAQUE_BASE {
                return None;
            }
        }
        let from = *from;
        if let Some(p) = found_pull(msg) {
            for (at, len) in record_spans(&p.records) {
                let Some(v) = view(&p.records[at..at + len]) else {
                    continue;
                };
                if v.topic.starts_with('%') {
                    continue;
                }
                self.next_opaque = (self.next_opaque + 1) % 0x0FFF_FFFF;
                let request = Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
                    offset: v.physical_offset as u64,
                    group: self.group.clone(),
                    delay_level: 0,
                    origin_msg_id: None,
                    origin_topic: Some(v.topic.to_string()),
                    unit_mode: false,
                    max_reconsume_times: None,
                });
                ctx.send(
                    from,
                    Message::Request {
                        opaque: SEND_BACK_OPAQUE_BASE + self.next_opaque,
                        request,
                    },
                );
            }
        }
        Some(input)
    }
}

struct ReverseBatches;

impl Tamper for ReverseBatches {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        mut input: Input<Message>,
    ) -> Option<Input<Message>> {
        if let Input::Packet { msg, .. } = &mut input {
            if let Some(p) = found_pull(msg) {
                let mut parts: Vec<Vec<u8>> = record_spans(&p.records)
                    .into_iter()
                    .map(|(at, len)| p.records[at..at + len].to_vec())
                    .collect();
                parts.reverse();
                p.records = parts.concat();
            }
        }
        Some(input)
    }
}
