//! Planted bugs in the push consumer's rebalance (`client/rebalance.rs`): a consumer
//! that sees the wrong membership takes queues another member also takes, or leaves
//! queues to nobody.

use rmq_model::client::ConsumerConfig;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{Message, MessageModel, Request, Response};

use super::tamper::{tamper_consumers, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn clustering(config: &ConsumerConfig) -> bool {
    config.message_model == MessageModel::Clustering
}

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, seeds, expected, nodes| Mutant {
        name,
        component: Component::ClientRebalance,
        description,
        scenario: "case1_kill",
        variant: "",
        seeds,
        expected,
        nodes,
    };
    vec![
        m(
            "rebalance-ghost-member",
            "counts a member that does not exist when allocating queues: its share is consumed by nobody",
            4,
            Rule::Lost,
            || tamper_consumers(|c| clustering(c).then_some(Membership::Ghost)),
        ),
        m(
            "rebalance-ignores-members",
            "drops every GET_CONSUMER_LIST_BY_GROUP answer, so it never takes a queue",
            4,
            Rule::Liveness,
            || tamper_consumers(|c| clustering(c).then_some(Membership::Ignored)),
        ),
        Mutant {
            scenario: "consumer_restarts",
            ..m(
                "rebalance-sees-only-itself",
                "allocates as if it were the group's only member: every member consumes every queue",
                4,
                Rule::Owners,
                || {
                    tamper_consumers(|c| {
                        clustering(c).then_some(Membership::Alone {
                            client_id: String::new(),
                        })
                    })
                },
            )
        },
    ]
}

/// How the consumer misreads its group's membership.
pub(super) enum Membership {
    /// One more member than the broker listed.
    Ghost,
    /// Only itself (learned from its own heartbeat).
    Alone { client_id: String },
    /// No answer at all.
    Ignored,
}

impl Tamper for Membership {
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, _: NodeId, msg: Message) -> Option<Message> {
        if let (
            Membership::Alone { client_id },
            Message::Request {
                request: Request::HeartBeat(h),
                ..
            },
        ) = (&mut *self, &msg)
        {
            client_id.clone_from(&h.client_id);
        }
        Some(msg)
    }

    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        let Input::Packet {
            from,
            msg:
                Message::Response {
                    opaque,
                    response: Response::ConsumerList(mut ids),
                },
        } = input
        else {
            return Some(input);
        };
        match self {
            Membership::Ghost => ids.push("0.0.0.0@ghost".to_string()),
            Membership::Alone { client_id } => ids.retain(|id| id == client_id),
            Membership::Ignored => return None,
        }
        Some(Input::Packet {
            from,
            msg: Message::Response {
                opaque,
                response: Response::ConsumerList(ids),
            },
        })
    }
}
