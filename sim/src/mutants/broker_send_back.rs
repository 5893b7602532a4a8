//! Planted bugs in the broker's retry and dead-letter handling
//! (`broker/consumer_send_msg_back.rs`): a handed-back message stored without its
//! reconsume count raised, dead-lettered one failure early, or dead-lettered and
//! stored for another retry as well.

use std::collections::BTreeSet;

use rmq_model::broker::RETRY_MAX_TIMES;
use rmq_model::message::RETRY_GROUP_TOPIC_PREFIX;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{ConsumerSendMsgBack, Message, Request};

use super::tamper::{
    found_pull, record_spans, rewrite_served_records, tamper_brokers, view, Tamper,
};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, nodes| Mutant {
        name,
        component: Component::BrokerSendBack,
        description,
        scenario: "retry_dlq",
        variant: "",
        seeds: 4,
        expected: Rule::Retry,
        nodes,
    };
    vec![
        m(
            "retry-count-not-raised",
            "stores a handed-back message with its reconsume count unchanged, so it never reaches the maximum",
            || tamper_brokers(|_| Some(CountNotRaised)),
        ),
        m(
            "dlq-after-15",
            "dead-letters a message at its 16th failure instead of its 17th (maxReconsumeTimes − 1)",
            || tamper_brokers(|_| Some(DeadLetterEarly)),
        ),
        m(
            "dlq-also-retried",
            "dead-letters an exhausted message and stores it for one more retry as well",
            || tamper_brokers(|_| Some(DeadLetterAndRetry::default())),
        ),
    ]
}

/// `input`, its send-back (if it is one) changed by `change`.
fn rewrite_send_back(
    mut input: Input<Message>,
    change: impl FnOnce(&mut ConsumerSendMsgBack),
) -> Option<Input<Message>> {
    if let Some(b) = send_back(&mut input) {
        change(b);
    }
    Some(input)
}

/// The send-back in `input`, if it is one.
fn send_back(input: &mut Input<Message>) -> Option<&mut ConsumerSendMsgBack> {
    match input {
        Input::Packet {
            msg:
                Message::Request {
                    request: Request::ConsumerSendMsgBack(b),
                    ..
                },
            ..
        } => Some(b),
        _ => None,
    }
}

/// The broker compares a count that never rises with no maximum, and serves every
/// retry copy with the count the message was first sent with (0).
struct CountNotRaised;

impl Tamper for CountNotRaised {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        rewrite_send_back(input, |b| b.max_reconsume_times = Some(i32::MAX))
    }

    fn outgoing(
        &mut self,
        _: &mut dyn Ctx<Message>,
        _: NodeId,
        mut msg: Message,
    ) -> Option<Message> {
        rewrite_served_records(
            &mut msg,
            |v| v.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX),
            |s| s.reconsume_times = 0,
        );
        Some(msg)
    }
}

/// The broker takes one less than the maximum the consumer sends (or the group's).
struct DeadLetterEarly;

impl Tamper for DeadLetterEarly {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        rewrite_send_back(input, |b| {
            b.max_reconsume_times = Some(b.max_reconsume_times.unwrap_or(RETRY_MAX_TIMES) - 1)
        })
    }
}

/// Opaques of the broker's own extra send-backs: their answers are dropped.
const EXTRA_OPAQUE_BASE: u32 = 0xF000_0000;

/// Remembers the retry copies it served at the maximum count (their next failure
/// dead-letters them); a send-back of one is handled as asked, then once more as if no
/// maximum applied, which stores one more retry copy.
#[derive(Default)]
struct DeadLetterAndRetry {
    exhausted: BTreeSet<u64>,
    extra: Option<Input<Message>>,
    next_opaque: u32,
}

impl Tamper for DeadLetterAndRetry {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        mut input: Input<Message>,
    ) -> Option<Input<Message>> {
        let from = match &input {
            Input::Packet { from, .. } => *from,
            _ => return Some(input),
        };
        if let Some(b) = send_back(&mut input) {
            let max = b.max_reconsume_times.unwrap_or(RETRY_MAX_TIMES);
            if max >= 0 && self.exhausted.remove(&b.offset) {
                let mut again = b.clone();
                again.max_reconsume_times = Some(i32::MAX);
                self.next_opaque = self.next_opaque.wrapping_add(1) % 0x0FFF_FFFF;
                self.extra = Some(Input::Packet {
                    from,
                    msg: Message::Request {
                        opaque: EXTRA_OPAQUE_BASE + self.next_opaque,
                        request: Request::ConsumerSendMsgBack(again),
                    },
                });
            }
        }
        Some(input)
    }

    fn follow_up(&mut self) -> Option<Input<Message>> {
        self.extra.take()
    }

    fn outgoing(
        &mut self,
        _: &mut dyn Ctx<Message>,
        _: NodeId,
        mut msg: Message,
    ) -> Option<Message> {
        if let Message::Response { opaque, .. } = &msg {
            if *opaque >= EXTRA_OPAQUE_BASE {
                return None;
            }
        }
        if let Some(p) = found_pull(&mut msg) {
            for (at, len) in record_spans(&p.records) {
                if let Some(v) = view(&p.records[at..at + len]) {
                    if v.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
                        && v.reconsume_times >= RETRY_MAX_TIMES
                    {
                        self.exhausted.insert(v.physical_offset as u64);
                    }
                }
            }
        }
        Some(msg)
    }
}
