//! Planted bugs in the push consumer's offset store (`client/offset_store.rs`): the
//! offset it commits to the broker is not the one it consumed up to.

use std::collections::BTreeMap;

use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{pull_sys_flag, response_code, Message, Request, Response};

use super::client_rebalance::clustering;
use super::tamper::{tamper_consumers, Rewrite, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![
        Mutant {
            name: "offset-store-never-commits",
            component: Component::ClientOffsetStore,
            description: "never sends a commit to the broker (no UPDATE_CONSUMER_OFFSET, no COMMIT_OFFSET in pulls)",
            scenario: "consumer_restarts",
            variant: "",
            seeds: 4,
            expected: Rule::Offsets,
            nodes: || tamper_consumers(|_| Some(Rewrite(never_commit))),
        },
        Mutant {
            name: "offset-store-commits-behind",
            component: Component::ClientOffsetStore,
            description: "keeps the offset of the last consumed message, not one past it, and commits that (its pulls ask one further)",
            scenario: "case1_kill",
            variant: "",
            seeds: 4,
            expected: Rule::Commits,
            nodes: || {
                tamper_consumers(|c| {
                    clustering(c).then(|| CommitsBehind {
                        pulls: BTreeMap::new(),
                        behind: BTreeMap::new(),
                    })
                })
            },
        },
        Mutant {
        name: "offset-store-commits-ahead",
        component: Component::ClientOffsetStore,
        description: "commits one past the next offset to consume (UPDATE_CONSUMER_OFFSET and the pull's commit offset)",
        scenario: "consumer_restarts",
        variant: "",
        seeds: 60,
        expected: Rule::Lost,
        nodes: || tamper_consumers(|_| Some(Rewrite(commit_ahead))),
    },
    ]
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

fn commit_ahead(_: NodeId, msg: Message) -> Option<Message> {
    Some(match msg {
        Message::Request {
            opaque,
            request: Request::UpdateConsumerOffset { key, offset },
        } => Message::Request {
            opaque,
            request: Request::UpdateConsumerOffset {
                key,
                offset: offset + 1,
            },
        },
        Message::Request {
            opaque,
            request: Request::PullMessage(mut pull),
        } => {
            if pull.commit_offset > 0 {
                pull.commit_offset += 1;
            }
            Message::Request {
                opaque,
                request: Request::PullMessage(pull),
            }
        }
        m => m,
    })
}

/// The off-by-one of an offset store that records the last consumed offset instead of
/// the next one: every pull answer's next offset reaches the client one lower, and the
/// client's next pull from exactly that offset is sent one further, so it reads on as
/// if nothing were wrong while everything it commits stays one behind.
struct CommitsBehind {
    /// Pulls in flight: opaque → (broker, queue id).
    pulls: BTreeMap<u32, (NodeId, i32)>,
    /// (broker, queue id) → the lowered next offset the client was given last.
    behind: BTreeMap<(NodeId, i32), u64>,
}

impl Tamper for CommitsBehind {
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, to: NodeId, msg: Message) -> Option<Message> {
        let Message::Request {
            opaque,
            request: Request::PullMessage(mut pull),
        } = msg
        else {
            return Some(msg);
        };
        let key = (to, pull.queue_id);
        if self.behind.get(&key) == Some(&pull.queue_offset) {
            pull.queue_offset += 1;
        }
        self.pulls.insert(opaque, key);
        Some(Message::Request {
            opaque,
            request: Request::PullMessage(pull),
        })
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
                    response: Response::Pull(mut p),
                },
        } = input
        else {
            return Some(input);
        };
        if let Some(key) = self.pulls.remove(&opaque) {
            let moves_on = matches!(
                p.code,
                response_code::SUCCESS
                    | response_code::PULL_NOT_FOUND
                    | response_code::PULL_RETRY_IMMEDIATELY
            );
            if moves_on && p.next_begin_offset > 0 {
                p.next_begin_offset -= 1;
                self.behind.insert(key, p.next_begin_offset);
            } else {
                self.behind.remove(&key);
            }
        }
        Some(Input::Packet {
            from,
            msg: Message::Response {
                opaque,
                response: Response::Pull(p),
            },
        })
    }
}
