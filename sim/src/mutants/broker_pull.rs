//! Planted bugs in the broker's PULL_MESSAGE answers (`broker/pull.rs`): what a
//! consumer is served is damaged, reordered, forged, withheld, skipped, repeated or
//! delayed on the way out, or served before it is durable (RocketMQ's own behaviour,
//! which `high_watermark.rs` deliberately strengthens).

use std::collections::VecDeque;

use rmq_model::message::{encode_properties, properties, PROPERTY_KEYS, PROPERTY_UNIQ_KEY};
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::Message;

use super::tamper::{
    broker_config, forge_served, found_pull, position_in, record_spans, rewrite_served,
    tamper_brokers, view, Rewrite, Tamper,
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
        m(
            "pull-stutters",
            "every 7th answer with records says next_begin_offset one before the end of what it served: the last record comes again",
            4,
            Rule::Duplicates,
            || tamper_brokers(|_| Some(Stutter { found: 0 })),
        ),
        m(
            "pull-reserves-last-record",
            "answers FOUND with next_begin_offset on the last record served: the group's commits stay one behind what it consumed",
            4,
            Rule::Commits,
            || tamper_brokers(|_| Some(Rewrite(reserve_last))),
        ),
        Mutant {
            scenario: "settled",
            ..m(
                "pull-answers-late",
                "holds every FOUND answer for the 15 s long-poll timeout, as if arrivals never woke held pulls",
                4,
                Rule::Latency,
                || {
                    tamper_brokers(|_| {
                        Some(AnswersLate {
                            held: VecDeque::new(),
                        })
                    })
                },
            )
        },
        m(
            "pull-leaks-unsent-record",
            "serves, before some records, a copy without its user properties (an internal record leaked to consumers)",
            4,
            Rule::Phantom,
            || tamper_brokers(|_| Some(Rewrite(leak_copy))),
        ),
        m(
            "pull-rewrite-user-property",
            "serves some records with a user property's value rewritten (a leading zero on the workload id)",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(pad_property))),
        ),
        m(
            "pull-rewrite-keys",
            "serves some records with their KEYS upper-cased",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(upper_keys))),
        ),
        m(
            "pull-rewrite-born-host",
            "serves some records with another born host port",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(rehost))),
        ),
        m(
            "pull-rewrite-message-id",
            "serves some records under another message id (UNIQ_KEY reversed) than the producer was given",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(reverse_id))),
        ),
        m(
            "pull-raise-reconsume-count",
            "serves some records with their reconsume count raised though nobody handed them back",
            4,
            Rule::Corrupt,
            || tamper_brokers(|_| Some(Rewrite(raise_reconsume))),
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

/// The records the field mutants rewrite: one in five, so the rest of a run stays
/// healthy and only the field rules can tell.
fn picked(queue_offset: i64) -> bool {
    queue_offset % 5 == 2
}

/// Replaces the value of property `name` with `value(old)`.
fn replace_property(props: &str, name: &str, value: fn(&str) -> String) -> String {
    let pairs: Vec<(String, String)> = properties(props)
        .map(|(n, v)| {
            let v = if n == name { value(v) } else { v.to_string() };
            (n.to_string(), v)
        })
        .collect();
    encode_properties(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
}

fn pad_property(_: NodeId, mut msg: Message) -> Option<Message> {
    rewrite_served(&mut msg, picked, |s| {
        s.properties = replace_property(&s.properties, WID_PROPERTY, |v| format!("0{v}"));
    });
    Some(msg)
}

fn leak_copy(_: NodeId, mut msg: Message) -> Option<Message> {
    forge_served(&mut msg, picked, |s| s.properties.clear());
    Some(msg)
}

fn upper_keys(_: NodeId, mut msg: Message) -> Option<Message> {
    rewrite_served(&mut msg, picked, |s| {
        s.properties = replace_property(&s.properties, PROPERTY_KEYS, |v| v.to_uppercase());
    });
    Some(msg)
}

fn rehost(_: NodeId, mut msg: Message) -> Option<Message> {
    rewrite_served(&mut msg, picked, |s| s.born_host.port += 1);
    Some(msg)
}

fn reverse_id(_: NodeId, mut msg: Message) -> Option<Message> {
    rewrite_served(&mut msg, picked, |s| {
        s.properties = replace_property(&s.properties, PROPERTY_UNIQ_KEY, |v| {
            v.chars().rev().collect()
        });
    });
    Some(msg)
}

fn raise_reconsume(_: NodeId, mut msg: Message) -> Option<Message> {
    rewrite_served(&mut msg, picked, |s| s.reconsume_times += 1);
    Some(msg)
}

/// Counts this broker's answers with records; every 7th steps its next offset back.
struct Stutter {
    found: u64,
}

impl Tamper for Stutter {
    fn outgoing(
        &mut self,
        _: &mut dyn Ctx<Message>,
        _: NodeId,
        mut msg: Message,
    ) -> Option<Message> {
        if let Some(p) = found_pull(&mut msg) {
            if !p.records.is_empty() && p.next_begin_offset > 0 {
                self.found += 1;
                if self.found.is_multiple_of(7) {
                    p.next_begin_offset -= 1;
                }
            }
        }
        Some(msg)
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

/// Answers held back, released in order (every hold is equally long). A held answer
/// goes out even to a consumer that restarted meanwhile (the wrapper cannot see the
/// connection close, which the reference broker honours), so this mutant is judged on
/// `settled`, where consumers do not restart.
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
