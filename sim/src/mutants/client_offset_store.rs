//! Planted bugs in the push consumer's offset store (`client/offset_store.rs`): the
//! offset it commits to the broker is not the one it consumed up to.

use rmq_model::node::NodeId;
use rmq_model::protocol::{Message, Request};

use super::tamper::{tamper_consumers, Rewrite};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![Mutant {
        name: "offset-store-commits-ahead",
        component: Component::ClientOffsetStore,
        description: "commits one past the next offset to consume (UPDATE_CONSUMER_OFFSET and the pull's commit offset)",
        scenario: "consumer_restarts",
        variant: "",
        seeds: 60,
        expected: Rule::Lost,
        nodes: || tamper_consumers(|_| Some(Rewrite(commit_ahead))),
    }]
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
