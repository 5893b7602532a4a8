//! Planted bugs no rule catches yet: runnable (`sim run --broker NAME`), kept out of the
//! campaign's [`registry`](super::registry) until the rule that should catch each one
//! exists (issue 8, section 1). Moving one into the registry is one [`Mutant`] entry
//! with its rule, in its component's file.
//!
//! [`Mutant`]: super::Mutant

use std::collections::VecDeque;
use std::rc::Rc;

use rmq_model::broker::Broker;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{pull_sys_flag, response_code, Message, Request, Response};
use rmq_model::store::Disk;

use super::client_rebalance::{clustering, Membership};
use super::tamper::{
    consumer_config, found_pull, tamper_brokers, tamper_consumers, Rewrite, Tamper,
};
use super::Component;
use crate::cluster::runner::Nodes;

/// A planted bug every current rule lets through.
#[derive(Clone, Copy)]
pub struct BlindSpot {
    pub name: &'static str,
    pub component: Component,
    pub description: &'static str,
    /// Where it was tried: every seed of this scenario passed (see the module doc).
    pub scenario: &'static str,
    /// The rule of issue 8 that should catch it.
    pub awaits: &'static str,
    pub nodes: fn() -> Nodes,
}

pub fn blind_spots() -> Vec<BlindSpot> {
    vec![
        BlindSpot {
            name: "rebalance-sees-only-itself",
            component: Component::ClientRebalance,
            description: "allocates as if it were the group's only member: every member consumes every queue",
            scenario: "consumer_restarts",
            awaits: "one owner per queue",
            nodes: || {
                tamper_consumers(|c| {
                    clustering(c).then_some(Membership::Alone {
                        client_id: String::new(),
                    })
                })
            },
        },
        BlindSpot {
            name: "filter-subscribes-all",
            component: Component::ClientFilter,
            description: "subscribes to `*` whatever the group's tag expression: it receives unsubscribed tags",
            scenario: "case1_kill",
            awaits: "exactly the subscribed tags",
            nodes: || consumer_config(|c| c.tag_expression = "*".to_string()),
        },
        BlindSpot {
            name: "send-refused-but-stored",
            component: Component::BrokerSend,
            description: "stores every message but answers SYSTEM_ERROR: definitely refused sends are delivered",
            scenario: "case1_kill",
            awaits: "a definite refusal is never delivered",
            nodes: || tamper_brokers(|_| Some(Rewrite(refuse_stored))),
        },
        BlindSpot {
            name: "send-status-downgraded",
            component: Component::BrokerSend,
            description: "answers SLAVE_NOT_AVAILABLE instead of SEND_OK, with no slave configured and no fault",
            scenario: "case1_kill",
            awaits: "acknowledgements as strong as promised",
            nodes: || tamper_brokers(|_| Some(Rewrite(downgrade_status))),
        },
        BlindSpot {
            name: "offset-store-never-commits",
            component: Component::ClientOffsetStore,
            description: "never sends a commit to the broker (no UPDATE_CONSUMER_OFFSET, no COMMIT_OFFSET in pulls)",
            scenario: "consumer_restarts",
            awaits: "commits keep up; duplicates need a cause",
            nodes: || tamper_consumers(|_| Some(Rewrite(never_commit))),
        },
        BlindSpot {
            name: "offsets-forgotten-on-restart",
            component: Component::BrokerOffsets,
            description: "boots without reading config/consumerOffset.json: every restart resets the groups' offsets",
            scenario: "case1_kill",
            awaits: "commits stay put across a broker restart",
            nodes: || {
                Nodes::with_broker(Rc::new(|config, disk: &mut dyn Disk| {
                    let _ = disk.delete("config/consumerOffset.json");
                    Box::new(Broker::boot(config, disk))
                }))
            },
        },
        BlindSpot {
            name: "pull-answers-late",
            component: Component::BrokerPull,
            description: "holds every FOUND pull answer for the 15 s long-poll timeout, as if arrivals never woke held pulls",
            scenario: "case1_kill",
            awaits: "latency after the heal",
            nodes: || {
                tamper_brokers(|_| {
                    Some(AnswersLate {
                        held: VecDeque::new(),
                    })
                })
            },
        },
        BlindSpot {
            name: "pull-reserves-last-record",
            component: Component::BrokerPull,
            description: "answers FOUND with next_begin_offset on the last record served: it is delivered twice",
            scenario: "case1_kill",
            awaits: "duplicates need a cause",
            nodes: || tamper_brokers(|_| Some(Rewrite(reserve_last))),
        },
    ]
}

fn refuse_stored(_: NodeId, msg: Message) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::Send(_),
        } => Some(Message::Response {
            opaque,
            response: Response::Error {
                code: response_code::SYSTEM_ERROR,
                remark: "planted refusal".into(),
            },
        }),
        m => Some(m),
    }
}

fn downgrade_status(_: NodeId, msg: Message) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::Send(mut s),
        } => {
            s.code = response_code::SLAVE_NOT_AVAILABLE;
            Some(Message::Response {
                opaque,
                response: Response::Send(s),
            })
        }
        m => Some(m),
    }
}

fn never_commit(_: NodeId, msg: Message) -> Option<Message> {
    match msg {
        Message::Request {
            request: Request::UpdateConsumerOffset { .. },
            ..
        } => None,
        Message::Request {
            opaque,
            request: Request::PullMessage(mut pull),
        } => {
            pull.sys_flag &= !pull_sys_flag::COMMIT_OFFSET;
            pull.commit_offset = 0;
            Some(Message::Request {
                opaque,
                request: Request::PullMessage(pull),
            })
        }
        m => Some(m),
    }
}

fn reserve_last(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        p.next_begin_offset = p.next_begin_offset.saturating_sub(1);
    }
    Some(msg)
}

/// RocketMQ's `brokerSuspendMaxTimeMillis`: how long a held pull waits at most.
const HOLD_MS: u64 = 15_000;
/// A timer kind no node uses.
const RELEASE_TIMER_KIND: u64 = u64::MAX - 0x4d55;

/// Answers held back, released in order (every hold is equally long).
struct AnswersLate {
    held: VecDeque<(NodeId, Message)>,
}

impl Tamper for AnswersLate {
    fn outgoing(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        to: NodeId,
        mut msg: Message,
    ) -> Option<Message> {
        if found_pull(&mut msg).is_none() {
            return Some(msg);
        }
        ctx.set_timer(HOLD_MS, RELEASE_TIMER_KIND);
        self.held.push_back((to, msg));
        None
    }

    fn incoming(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        let Input::Timer {
            kind: RELEASE_TIMER_KIND,
            ..
        } = input
        else {
            return Some(input);
        };
        if let Some((to, msg)) = self.held.pop_front() {
            ctx.send(to, msg);
        }
        None
    }
}
