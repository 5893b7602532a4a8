//! **corrupt**: a message is delivered as it was sent. Compared field by field, each
//! difference named in the violation:
//!
//! - against its `SendInvoke`: body CRC, topic (a delivery from a retry topic,
//!   `%RETRY%...`, may name that topic instead), tags, and — when both entries recorded
//!   them — keys, user properties (their CRC), born timestamp and born host;
//! - the reconsume count: 0 unless the delivery came from a retry topic (only a message
//!   handed back is redelivered from there; a raised count on the message's own queue
//!   is a wrong field, and such a delivery still counts for order and offsets);
//! - the message id: every delivery names the id the producer was given
//!   (`SendOk.msg_id`), or, with no `SendOk`, the same id as the first delivery;
//! - the position: a delivery from the message's own queue comes from the broker,
//!   queue and offset its `SendOk` named, unless that `SendOk` says an earlier attempt
//!   got no answer (`after_unknown`: a second copy may sit at another position).
//!
//! Per-delivery fields are compared as deliveries stream by (one whose message was not
//! sent yet is kept and compared at the end, or left to phantom if it never was); the
//! message id and position, which a `SendOk` written after the delivery may settle,
//! are judged per message at the end from what the index kept (the first delivery and
//! the first one that disagrees with it), so memory stays proportional to messages.

use super::index::{Dlv, Index, Msg, NONE};
use super::{Rule, Sink};
use crate::history::{Entry, MessageFields};

#[derive(Default)]
pub(crate) struct Corrupt {
    /// Deliveries that differ from their send.
    found: Vec<Dlv>,
    /// Deliveries of messages not sent (yet) when they were delivered.
    later: Vec<Dlv>,
}

/// Which per-delivery fields differ from the send.
#[derive(Default)]
struct Diffs {
    body: bool,
    topic: bool,
    tags: bool,
    fields: bool,
    reconsume: bool,
}

impl Diffs {
    fn of(d: &Dlv, m: &Msg) -> Diffs {
        Diffs {
            body: d.crc != m.crc,
            topic: d.topic != m.topic && !d.retry,
            tags: d.tags != m.tags,
            fields: d.fields != 0 && m.fields != 0 && d.fields != m.fields,
            reconsume: d.reconsume != 0 && !d.retry,
        }
    }

    fn any(&self) -> bool {
        self.body || self.topic || self.tags || self.fields || self.reconsume
    }
}

/// One finding: a delivery and what is wrong with it.
enum Finding<'a> {
    Fields(&'a Dlv, Diffs),
    /// The delivery named another message id than message `.0`'s.
    MsgId(u32),
    /// The delivery came from another position than message `.0`'s `SendOk`.
    Position(u32),
}

impl Corrupt {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, msg: Option<&Msg>) {
        let Some(m) = msg else { return };
        if !m.invoked() {
            self.later.push(*d);
        } else if Diffs::of(d, m).any() {
            self.found.push(*d);
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        let mut all: Vec<(u64, u32, Finding)> = Vec::new();
        for d in self.found.iter().chain(&self.later) {
            let m = &ix.msgs[d.msg as usize];
            if !m.invoked() {
                continue; // never sent: phantom's
            }
            let diffs = Diffs::of(d, m);
            if diffs.any() {
                all.push((d.at_ms, d.entry, Finding::Fields(d, diffs)));
            }
        }
        for (i, m) in ix.msgs.iter().enumerate() {
            let i = i as u32;
            if let Some(e) = wrong_msg_id(m) {
                all.push((ix.entries[e as usize].at_ms(), e, Finding::MsgId(i)));
            }
            if let Some(e) = wrong_position(m) {
                all.push((ix.entries[e as usize].at_ms(), e, Finding::Position(i)));
            }
        }
        all.sort_by_key(|(at_ms, entry, _)| (*at_ms, *entry));
        for (_, entry, finding) in all {
            let msg = match &finding {
                Finding::Fields(d, _) => d.msg,
                Finding::MsgId(m) | Finding::Position(m) => *m,
            };
            let m = &ix.msgs[msg as usize];
            sink.report(Rule::Corrupt, format!("wid {}", m.wid), || {
                let diffs = match &finding {
                    Finding::Fields(d, diffs) => field_diffs(ix, d, m, diffs),
                    Finding::MsgId(_) => msg_id_diff(ix, entry, m),
                    Finding::Position(_) => format!(
                        "not the position {} offset {} its SEND_OK named (no earlier \
                         attempt of that send went unanswered)",
                        ix.queue_name(m.queue),
                        m.offset
                    ),
                };
                let Entry::Deliver {
                    at_ms,
                    group,
                    client,
                    broker,
                    topic,
                    queue_id,
                    queue_offset,
                    ..
                } = &ix.entries[entry as usize]
                else {
                    unreachable!("findings are deliveries")
                };
                format!(
                    "group {group} client n{client} received {} at {at_ms}ms from \
                     {broker}/{topic}/q{queue_id} offset {queue_offset} with {diffs}; {}",
                    ix.describe_msg(msg),
                    ix.faults.before(ix.entries, *at_ms),
                )
            });
        }
    }
}

/// The delivery of `m` that named a message id other than the producer's (or, with
/// no `SendOk`, other than the first delivery's).
fn wrong_msg_id(m: &Msg) -> Option<u32> {
    if m.id_dlv == NONE {
        return None;
    }
    if m.msg_id != 0 && m.dlv_msg_id != m.msg_id {
        return Some(m.id_dlv);
    }
    (m.other_id_dlv != NONE).then_some(m.other_id_dlv)
}

/// The delivery of `m` from its own queue at another position than its `SendOk`'s.
fn wrong_position(m: &Msg) -> Option<u32> {
    if !m.acked() || m.after_unknown || m.pos_dlv == NONE {
        return None;
    }
    if m.pos_queue != m.queue || m.pos_offset != m.offset {
        return Some(m.pos_dlv);
    }
    (m.other_pos_dlv != NONE).then_some(m.other_pos_dlv)
}

fn field_diffs(ix: &Index, d: &Dlv, m: &Msg, diffs: &Diffs) -> String {
    let mut out = Vec::new();
    if diffs.body {
        out.push(format!(
            "body crc {:#010x} instead of {:#010x}",
            d.crc, m.crc
        ));
    }
    if diffs.topic {
        out.push(format!(
            "topic {} instead of {}",
            ix.topics.name(d.topic),
            ix.topics.name(m.topic)
        ));
    }
    if diffs.tags {
        out.push(format!(
            "{} instead of {}",
            ix.tag_name(d.tags),
            ix.tag_name(m.tags)
        ));
    }
    if diffs.reconsume {
        out.push(format!(
            "reconsume count {} though it was never handed back (delivered from its own \
             topic, not a retry topic)",
            d.reconsume
        ));
    }
    if diffs.fields {
        let sent = match &ix.entries[m.invoke as usize] {
            Entry::SendInvoke { fields, .. } => fields.as_ref(),
            _ => None,
        };
        let got = match &ix.entries[d.entry as usize] {
            Entry::Deliver { fields, .. } => fields.as_ref(),
            _ => None,
        };
        if let (Some(sent), Some(got)) = (sent, got) {
            out.extend(fields_named(sent, got));
        }
    }
    out.join(", ")
}

/// Each of keys, user properties, born timestamp and born host that differ.
fn fields_named(sent: &MessageFields, got: &MessageFields) -> Vec<String> {
    let mut out = Vec::new();
    if got.keys != sent.keys {
        out.push(format!("keys {:?} instead of {:?}", got.keys, sent.keys));
    }
    if got.props_crc != sent.props_crc {
        out.push(format!(
            "user properties crc {:#010x} instead of {:#010x}",
            got.props_crc, sent.props_crc
        ));
    }
    if got.born_ms != sent.born_ms {
        out.push(format!(
            "born timestamp {}ms instead of {}ms",
            got.born_ms, sent.born_ms
        ));
    }
    if got.born_host != sent.born_host {
        out.push(format!(
            "born host {} instead of {}",
            got.born_host, sent.born_host
        ));
    }
    out
}

fn msg_id_diff(ix: &Index, entry: u32, m: &Msg) -> String {
    let got = match &ix.entries[entry as usize] {
        Entry::Deliver { msg_id, .. } => msg_id.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let (expected, whose) = if m.msg_id != 0 {
        match &ix.entries[m.ok as usize] {
            Entry::SendOk { msg_id, .. } => (msg_id.clone(), "the producer was given"),
            _ => (String::new(), ""),
        }
    } else {
        match &ix.entries[m.id_dlv as usize] {
            Entry::Deliver { msg_id, .. } => (
                msg_id.clone().unwrap_or_default(),
                "its first delivery named",
            ),
            _ => (String::new(), ""),
        }
    };
    format!("message id {got} instead of {expected}, the id {whose}")
}
