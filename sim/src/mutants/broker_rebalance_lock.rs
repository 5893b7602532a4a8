//! Planted bugs in the broker's queue locks (`broker/rebalance_lock_manager.rs`).

use std::collections::{BTreeMap, BTreeSet};

use rmq_model::client::MessageQueue;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{Message, Request, Response};

use super::tamper::{tamper_brokers, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![Mutant {
        name: "lock-not-checked",
        component: Component::BrokerRebalanceLock,
        description: "grants every LOCK_BATCH_MQ whoever holds the queues: two orderly consumers whose views differ consume one queue at once",
        scenario: "orderly_unkeyed",
        variant: "",
        seeds: 20,
        expected: Rule::Exclusivity,
        nodes: || tamper_brokers(|_| Some(GrantAll::default())),
    }]
}

/// Answers each LOCK_BATCH_MQ with every queue it asked for.
#[derive(Default)]
struct GrantAll {
    /// Lock requests in the broker, by opaque: the queues asked for.
    asked: BTreeMap<u32, BTreeSet<MessageQueue>>,
}

impl Tamper for GrantAll {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        if let Input::Packet {
            msg:
                Message::Request {
                    opaque,
                    request: Request::LockBatchMq(body),
                },
            ..
        } = &input
        {
            self.asked.insert(*opaque, body.queues.clone());
        }
        Some(input)
    }

    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, _: NodeId, msg: Message) -> Option<Message> {
        match msg {
            Message::Response {
                opaque,
                response: Response::LockBatchMq(granted),
            } => {
                let all = self.asked.remove(&opaque).unwrap_or(granted);
                Some(Message::Response {
                    opaque,
                    response: Response::LockBatchMq(all),
                })
            }
            m => Some(m),
        }
    }
}
