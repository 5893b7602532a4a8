//! Planted bugs in the broker's consumer offsets and consumer registry
//! (`broker/offsets.rs`, `broker/consumers.rs`): a group is told to start past what it
//! committed, or is never told who its members are.

use std::collections::BTreeSet;
use std::rc::Rc;

use rmq_model::broker::Broker;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{Message, Request, Response};
use rmq_model::store::Disk;

use super::tamper::{tamper_brokers, Rewrite, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;
use crate::cluster::runner::Nodes;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, scenario, seeds, expected, nodes| Mutant {
        name,
        component: Component::BrokerOffsets,
        description,
        scenario,
        variant: "",
        seeds,
        expected,
        nodes,
    };
    vec![
        m(
            "offsets-query-ahead",
            "answers QUERY_CONSUMER_OFFSET with one past the committed offset",
            "consumer_restarts",
            60,
            Rule::Lost,
            || {
                tamper_brokers(|_| {
                    Some(QueryAhead {
                        asked: BTreeSet::new(),
                    })
                })
            },
        ),
        m(
            "offsets-store-ahead",
            "stores every UPDATE_CONSUMER_OFFSET one past what the consumer committed",
            "consumer_restarts",
            60,
            Rule::Lost,
            || tamper_brokers(|_| Some(StoreAhead)),
        ),
        m(
            "offsets-forgotten-on-restart",
            "boots without reading config/consumerOffset.json: every restart resets the groups' offsets",
            "wide",
            // First caught at seed 24 (25 of 200 seeds).
            40,
            Rule::Offsets,
            || {
                Nodes::with_broker(Rc::new(|config, disk: &mut dyn Disk| {
                    let _ = disk.delete("config/consumerOffset.json");
                    Box::new(Broker::boot(config, disk))
                }))
            },
        ),
        m(
            "consumers-forgotten",
            "answers GET_CONSUMER_LIST_BY_GROUP with no members, so no consumer takes a queue",
            "case1_kill",
            4,
            Rule::Liveness,
            || tamper_brokers(|_| Some(Rewrite(no_members))),
        ),
    ]
}

/// Remembers which requests were offset queries, to tamper with their answers only
/// (GET_MAX_OFFSET is answered the same way).
struct QueryAhead {
    asked: BTreeSet<(NodeId, u32)>,
}

impl Tamper for QueryAhead {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        if let Input::Packet {
            from,
            msg:
                Message::Request {
                    opaque,
                    request: Request::QueryConsumerOffset(_),
                },
        } = &input
        {
            self.asked.insert((*from, *opaque));
        }
        Some(input)
    }

    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, to: NodeId, msg: Message) -> Option<Message> {
        match msg {
            Message::Response {
                opaque,
                response: Response::Offset(o),
            } if self.asked.remove(&(to, opaque)) => Some(Message::Response {
                opaque,
                response: Response::Offset(o + 1),
            }),
            m => Some(m),
        }
    }
}

struct StoreAhead;

impl Tamper for StoreAhead {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        match input {
            Input::Packet {
                from,
                msg:
                    Message::Request {
                        opaque,
                        request: Request::UpdateConsumerOffset { key, offset },
                    },
            } => Some(Input::Packet {
                from,
                msg: Message::Request {
                    opaque,
                    request: Request::UpdateConsumerOffset {
                        key,
                        offset: offset + 1,
                    },
                },
            }),
            Input::Packet {
                from,
                msg:
                    Message::Request {
                        opaque,
                        request: Request::PullMessage(mut pull),
                    },
            } => {
                if pull.commit_offset > 0 {
                    pull.commit_offset += 1;
                }
                Some(Input::Packet {
                    from,
                    msg: Message::Request {
                        opaque,
                        request: Request::PullMessage(pull),
                    },
                })
            }
            input => Some(input),
        }
    }
}

fn no_members(_: NodeId, msg: Message) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::ConsumerList(_),
        } => Some(Message::Response {
            opaque,
            response: Response::ConsumerList(Vec::new()),
        }),
        m => Some(m),
    }
}
