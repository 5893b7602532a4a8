//! Planted bugs in the broker's PULL_MESSAGE answers (`broker/pull.rs`): what a
//! consumer is served is damaged, reordered, forged, withheld or skipped on the way out,
//! or served before it is durable (RocketMQ's own behaviour, which `high_watermark.rs`
//! deliberately strengthens).

use rmq_model::node::NodeId;
use rmq_model::protocol::Message;

use super::tamper::{
    broker_config, found_pull, position_in, record_spans, tamper_brokers, view, Rewrite,
};
use super::{Component, Mutant};
use crate::check::Rule;
use crate::history::WID_PROPERTY;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, seeds, expected, nodes| Mutant {
        name,
        component: Component::BrokerPull,
        description,
        scenario: "case1_kill",
        variant: "",
        seeds,
        expected,
        nodes,
    };
    vec![
        m(
            "pull-corrupt-body",
            "flips a bit in the body of the first record of every pull it serves (the client checks no CRC)",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(flip_body))),
        ),
        m(
            "pull-rewrite-tags",
            "serves records with their TAGS property rewritten from TagA to TagC",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(rewrite_tags))),
        ),
        m(
            "pull-reverse-batch",
            "serves the records of a pull batch in reverse queue order",
            4,
            Rule::Order,
            || tamper_brokers(|_| Some(Rewrite(reverse_batch))),
        ),
        m(
            "pull-forge-wid",
            "renames the workload-id property of served records: the consumer gets a message nobody sent",
            4,
            Rule::Phantom,
            || tamper_brokers(|_| Some(Rewrite(forge_wid))),
        ),
        m(
            "pull-withhold-found",
            "never answers a pull that found messages, so consumers wait forever",
            4,
            Rule::Liveness,
            || tamper_brokers(|_| Some(Rewrite(withhold_found))),
        ),
        m(
            "pull-skip-first-record",
            "drops the first record of every batch of two or more, still advancing next_begin_offset past it",
            4,
            Rule::Lost,
            || tamper_brokers(|_| Some(Rewrite(skip_first_record))),
        ),
        m(
            "pull-next-offset-ahead",
            "answers FOUND with next_begin_offset one past the last record served",
            4,
            Rule::Lost,
            || tamper_brokers(|_| Some(Rewrite(next_offset_ahead))),
        ),
        Mutant {
            name: "pull-serves-page-cache",
            component: Component::BrokerPull,
            description: "serves the page cache as RocketMQ does (`serve_only_durable = false`): a SYNC_FLUSH consumer is handed a record a power cut then takes away, and skips the acknowledged message that reuses its offset",
            scenario: "power_cut_consuming",
            variant: "flush=sync_flush",
            seeds: 40,
            expected: Rule::Lost,
            nodes: || broker_config(|c| c.serve_only_durable = false),
        },
    ]
}

fn flip_body(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        let at = view(&p.records)
            .filter(|v| !v.body.is_empty())
            .map(|v| position_in(&p.records, v.body));
        if let Some(at) = at {
            p.records[at] ^= 0x40;
        }
    }
    Some(msg)
}

fn rewrite_tags(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        let needle = b"TAGS\x01TagA\x02";
        let mut at = 0;
        while let Some(i) = p.records[at..]
            .windows(needle.len())
            .position(|w| w == needle)
        {
            let tag_end = at + i + needle.len() - 2;
            p.records[tag_end] = b'C';
            at += i + needle.len();
        }
    }
    Some(msg)
}

fn reverse_batch(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        let mut parts: Vec<Vec<u8>> = record_spans(&p.records)
            .into_iter()
            .map(|(at, len)| p.records[at..at + len].to_vec())
            .collect();
        parts.reverse();
        p.records = parts.concat();
    }
    Some(msg)
}

fn forge_wid(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        let needle = format!("{WID_PROPERTY}\u{1}");
        if let Some(at) = p
            .records
            .windows(needle.len())
            .position(|w| w == needle.as_bytes())
        {
            p.records[at + 1] = b'X';
        }
    }
    Some(msg)
}

fn withhold_found(_: NodeId, mut msg: Message) -> Option<Message> {
    if found_pull(&mut msg).is_some() {
        return None;
    }
    Some(msg)
}

fn skip_first_record(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        let spans = record_spans(&p.records);
        if spans.len() >= 2 {
            p.records.drain(..spans[0].1);
        }
    }
    Some(msg)
}

fn next_offset_ahead(_: NodeId, mut msg: Message) -> Option<Message> {
    if let Some(p) = found_pull(&mut msg) {
        p.next_begin_offset += 1;
    }
    Some(msg)
}
