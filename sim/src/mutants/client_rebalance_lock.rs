//! Planted bugs in an orderly consumer's queue locks (`client/consumer/rebalance_lock.rs`).

use std::collections::BTreeSet;

use rmq_model::client::{ConsumerConfig, MessageQueue};
use rmq_model::node::{Ctx, NodeId};
use rmq_model::protocol::{Message, Request};

use super::client_rebalance::clustering;
use super::tamper::{tamper_consumers, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![Mutant {
        name: "lock-never-renewed",
        component: Component::ClientRebalanceLock,
        description: "asks for each queue's lock once and never renews it: 30 s later the queue is no longer consumed, and what it holds is never delivered",
        scenario: "orderly_rebalance",
        variant: "",
        seeds: 4,
        expected: Rule::Lost,
        nodes: || {
            tamper_consumers(|c: &ConsumerConfig| {
                (c.consume_orderly && clustering(c)).then(NoRenewal::default)
            })
        },
    }]
}

/// Lets a queue into a LOCK_BATCH_MQ the first time only; a request left with no queue
/// is dropped (the consumer sees it time out).
#[derive(Default)]
struct NoRenewal {
    asked: BTreeSet<MessageQueue>,
}

impl Tamper for NoRenewal {
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, _: NodeId, msg: Message) -> Option<Message> {
        match msg {
            Message::Request {
                opaque,
                request: Request::LockBatchMq(mut body),
            } => {
                body.queues.retain(|mq| self.asked.insert(mq.clone()));
                if body.queues.is_empty() {
                    return None;
                }
                Some(Message::Request {
                    opaque,
                    request: Request::LockBatchMq(body),
                })
            }
            m => Some(m),
        }
    }
}
