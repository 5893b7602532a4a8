//! Planted bugs in the producer (`client/producer/`): what goes on the wire is not
//! the message the application handed over.

use rmq_model::node::NodeId;
use rmq_model::protocol::{Message, Request};

use super::tamper::{tamper_producers, Rewrite};
use super::{Component, Mutant};
use crate::check::Rule;
use crate::history::WID_PROPERTY;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![Mutant {
        name: "producer-mislabels-properties",
        component: Component::ClientProducer,
        description: "sends every message with another message's user properties (its workload id shifted by a million)",
        scenario: "case1_kill",
        variant: "",
        seeds: 4,
        expected: Rule::Phantom,
        nodes: || tamper_producers(|| Rewrite(mislabel)),
    }, Mutant {
        name: "orderly-send-fails-over",
        component: Component::ClientProducer,
        description: "sends every fifth message to the neighbour of the queue its selector picked (queue id xor 1), as a producer failing an orderly send over to another queue would",
        scenario: "orderly_rebalance",
        variant: "",
        seeds: 4,
        expected: Rule::KeyOrder,
        nodes: || tamper_producers(|| Rewrite(fail_over)),
    }]
}

/// The workload id a send carries, if any.
fn wid_of(properties: &str) -> Option<u64> {
    let needle = format!("{WID_PROPERTY}\u{1}");
    let start = properties.find(&needle)? + needle.len();
    let end = properties[start..]
        .find('\u{2}')
        .map_or(properties.len(), |i| start + i);
    properties[start..end].parse().ok()
}

fn fail_over(_: NodeId, msg: Message) -> Option<Message> {
    Some(match msg {
        Message::Request {
            opaque,
            request: Request::SendMessage(mut send),
        } => {
            if wid_of(&send.properties).is_some_and(|wid| wid % 5 == 0) {
                send.queue_id ^= 1;
            }
            Message::Request {
                opaque,
                request: Request::SendMessage(send),
            }
        }
        m => m,
    })
}

fn mislabel(_: NodeId, msg: Message) -> Option<Message> {
    Some(match msg {
        Message::Request {
            opaque,
            request: Request::SendMessage(mut send),
        } => {
            if let Some(wid) = wid_of(&send.properties) {
                let from = format!("{WID_PROPERTY}\u{1}{wid}");
                let to = format!("{WID_PROPERTY}\u{1}{}", wid + 1_000_000);
                send.properties = send.properties.replacen(&from, &to, 1);
            }
            Message::Request {
                opaque,
                request: Request::SendMessage(send),
            }
        }
        m => m,
    })
}
