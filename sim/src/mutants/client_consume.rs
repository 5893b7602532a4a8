//! Planted bugs in the push consumer's process queue and consume service
//! (`client/consumer/pull.rs`): what the broker served in order reaches the listener out of
//! order.

use rmq_model::node::{Ctx, Input};
use rmq_model::protocol::Message;

use super::tamper::{found_pull, record_spans, tamper_consumers, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![Mutant {
        name: "consume-batch-reversed",
        component: Component::ClientConsume,
        description: "hands each pulled batch to the listener last record first",
        scenario: "case1_kill",
        variant: "",
        seeds: 4,
        expected: Rule::Order,
        nodes: || tamper_consumers(|_| Some(ReverseBatches)),
    }]
}

struct ReverseBatches;

impl Tamper for ReverseBatches {
    fn incoming(
        &mut self,
        _: &mut dyn Ctx<Message>,
        mut input: Input<Message>,
    ) -> Option<Input<Message>> {
        if let Input::Packet { msg, .. } = &mut input {
            if let Some(p) = found_pull(msg) {
                let mut parts: Vec<Vec<u8>> = record_spans(&p.records)
                    .into_iter()
                    .map(|(at, len)| p.records[at..at + len].to_vec())
                    .collect();
                parts.reverse();
                p.records = parts.concat();
            }
        }
        Some(input)
    }
}
