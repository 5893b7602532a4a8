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
    }]
}

fn mislabel(_: NodeId, msg: Message) -> Option<Message> {
    Some(match msg {
        Message::Request {
            opaque,
            request: Request::SendMessage(mut send),
        } => {
            let needle = format!("{WID_PROPERTY}\u{1}");
            if let Some(at) = send.properties.find(&needle) {
                let start = at + needle.len();
                let end = send.properties[start..]
                    .find('\u{2}')
                    .map_or(send.properties.len(), |i| start + i);
                if let Ok(wid) = send.properties[start..end].parse::<u64>() {
                    send.properties
                        .replace_range(start..end, &(wid + 1_000_000).to_string());
                }
            }
            Message::Request {
                opaque,
                request: Request::SendMessage(send),
            }
        }
        m => m,
    })
}
