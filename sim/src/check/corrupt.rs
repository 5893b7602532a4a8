//! **corrupt**: a message is delivered as it was sent. Compared field by field, each
//! difference named in the violation:
//!
//! - against its `SendInvoke`: body CRC, topic (a delivery from a retry topic,
//!   `%RETRY%...`, may name that topic instead), tags, and — when both entries recorded
//!   them — keys, user properties, born timestamp and born host (strings as CRC32s);
//! - the reconsume count: 0 unless the delivery came from a retry topic (only a message
//!   handed back is redelivered from there) or is its consumer's own re-hand of a
//!   message it failed at that position with a count one lower (`retry.rs`: the
//!   hand-back failed); or, in an orderly group, the count of the delivery its consumer's listener
//!   suspended (SUSPEND_CURRENT_QUEUE_A_MOMENT, recorded in a `Consumed`) plus one
//!   (`makeMessageToConsumeAgain` raises it in place); any other raised count on the message's own queue is a wrong
//!   field, and such a delivery still counts for order and offsets;
//! - the message id: every delivery names the id the producer was given (the CRC32
//!   of `SendOk.msg_id`), or, with no `SendOk`, the same id as the first delivery;
//! - the position: a delivery from the message's own queue comes from the broker,
//!   queue and offset its `SendOk` named, unless that `SendOk` says an earlier attempt
//!   got no answer (`retried_after_unknown`: a second copy may sit at another position)
//!   or the message was delayed (its `SendOk` names the schedule queue; the copy
//!   delivered when due sits wherever its own queue had reached).
//!
//! Everything is compared as deliveries stream by. A delivery whose message was not
//! sent yet is kept and compared at the end (or left to phantom if it never was); one
//! that comes before its message's `SendOk` is remembered per message (its first
//! position and id, and the first delivery that disagrees with them) and judged at
//! the end against the `SendOk`, if any — so memory stays proportional to messages.

use super::tables::{fields_digest_without_host, Dlv, Index, Msg, NONE};
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::{Entry, MessageFields};

#[derive(Default)]
pub(crate) struct Corrupt {
    /// Deliveries that differ from their send.
    found: Vec<Dlv>,
    /// Deliveries of messages not sent (yet) when they were delivered.
    later: Vec<Dlv>,
    /// Deliveries (entry, message) whose id or position differ from their `SendOk`.
    wrong_id: Vec<(u32, u32)>,
    wrong_position: Vec<(u32, u32)>,
    /// Per message: its deliveries before its `SendOk` (if any ever came).
    early: FastMap<u32, Early>,
}

/// What deliveries before a message's `SendOk` said: the first one's position and
/// message id, and the first one that disagreed with each.
#[derive(Clone, Copy)]
struct Early {
    pos_dlv: u32,
    queue: u32,
    offset: u64,
    other_pos_dlv: u32,
    id_dlv: u32,
    msg_id: u64,
    other_id_dlv: u32,
}

impl Early {
    const EMPTY: Early = Early {
        pos_dlv: NONE,
        queue: NONE,
        offset: 0,
        other_pos_dlv: NONE,
        id_dlv: NONE,
        msg_id: 0,
        other_id_dlv: NONE,
    };

    fn add(&mut self, d: &Dlv) {
        if !d.retry {
            if self.pos_dlv == NONE {
                (self.pos_dlv, self.queue, self.offset) = (d.entry, d.queue, d.offset);
            } else if self.other_pos_dlv == NONE && (self.queue, self.offset) != (d.queue, d.offset)
            {
                self.other_pos_dlv = d.entry;
            }
        }
        if d.msg_id != 0 {
            if self.id_dlv == NONE {
                (self.id_dlv, self.msg_id) = (d.entry, d.msg_id);
            } else if self.other_id_dlv == NONE && self.msg_id != d.msg_id {
                self.other_id_dlv = d.entry;
            }
        }
    }

    /// The delivery that named a message id other than the producer's (or, with no
    /// `SendOk`, other than the first delivery's).
    fn wrong_id(&self, m: &Msg) -> Option<u32> {
        if self.id_dlv == NONE {
            return None;
        }
        if m.acked() && self.msg_id != m.msg_id {
            return Some(self.id_dlv);
        }
        (self.other_id_dlv != NONE).then_some(self.other_id_dlv)
    }

    /// The delivery from the message's own queue at another position than its
    /// `SendOk`'s.
    fn wrong_position(&self, m: &Msg) -> Option<u32> {
        if !m.acked() || m.retried_after_unknown || m.delay_level > 0 || self.pos_dlv == NONE {
            return None;
        }
        if (self.queue, self.offset) != (m.queue, m.offset) {
            return Some(self.pos_dlv);
        }
        (self.other_pos_dlv != NONE).then_some(self.other_pos_dlv)
    }
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
            reconsume: d.reconsume != 0
                && !d.retry
                && !d.rehand
                && d.suspended_at_count.is_none_or(|n| d.reconsume != n + 1),
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
        if !m.acked() {
            self.early.entry(d.msg).or_insert(Early::EMPTY).add(d);
            return;
        }
        if d.msg_id != 0 && d.msg_id != m.msg_id {
            self.wrong_id.push((d.entry, d.msg));
        }
        if !d.retry
            && !m.retried_after_unknown
            && m.delay_level == 0
            && (d.queue, d.offset) != (m.queue, m.offset)
        {
            self.wrong_position.push((d.entry, d.msg));
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        let mut all: Vec<(u64, u32, Finding)> = Vec::new();
        for d in self.found.iter().chain(&self.later) {
            let m = &ix.msgs[d.msg as usize];
            if !m.invoked() {
                continue; // never sent: phantom's
            }
            let mut diffs = Diffs::of(d, m);
            if diffs.fields && m.born_host_unknown {
                // A delivery met before its send was digested with its born host.
                if let Entry::Deliver {
                    fields: Some(f), ..
                } = &ix.entries[d.entry as usize]
                {
                    diffs.fields = fields_digest_without_host(f) != m.fields;
                }
            }
            if diffs.any() {
                all.push((d.at_ms, d.entry, Finding::Fields(d, diffs)));
            }
        }
        let at = |e: u32| ix.entries[e as usize].at_ms();
        for &(e, m) in &self.wrong_id {
            all.push((at(e), e, Finding::MsgId(m)));
        }
        for &(e, m) in &self.wrong_position {
            all.push((at(e), e, Finding::Position(m)));
        }
        // Map order is arbitrary; the findings are sorted below.
        for (&m, early) in &self.early {
            let msg = &ix.msgs[m as usize];
            if let Some(e) = early.wrong_id(msg) {
                all.push((at(e), e, Finding::MsgId(m)));
            }
            if let Some(e) = early.wrong_position(msg) {
                all.push((at(e), e, Finding::Position(m)));
            }
        }
        let rank = |f: &Finding| match f {
            Finding::Fields(..) => 0,
            Finding::MsgId(_) => 1,
            Finding::Position(_) => 2,
        };
        all.sort_by_key(|(at_ms, entry, f)| (*at_ms, *entry, rank(f)));
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
    let crc = |c: Option<u32>| c.map_or("none".to_string(), |c| format!("crc {c:#010x}"));
    let mut out = Vec::new();
    if got.keys_crc != sent.keys_crc {
        out.push(format!(
            "keys ({}) other than sent ({})",
            crc(got.keys_crc),
            crc(sent.keys_crc)
        ));
    }
    if got.props_crc != sent.props_crc {
        out.push(format!(
            "user properties (crc {:#010x}) other than sent (crc {:#010x})",
            got.props_crc, sent.props_crc
        ));
    }
    if got.born_ms != sent.born_ms {
        out.push(format!(
            "born timestamp {}ms instead of {}ms",
            got.born_ms, sent.born_ms
        ));
    }
    // 0: the producer did not know its born host (see `Msg::born_host_unknown`).
    if got.born_host_crc != sent.born_host_crc && sent.born_host_crc != 0 {
        out.push(format!(
            "born host (crc {:#010x}) other than sent (crc {:#010x})",
            got.born_host_crc, sent.born_host_crc
        ));
    }
    out
}

fn msg_id_diff(ix: &Index, entry: u32, m: &Msg) -> String {
    let got = delivered_id(&ix.entries[entry as usize]);
    if m.msg_id != 0 {
        let given = match &ix.entries[m.ok as usize] {
            Entry::SendOk { msg_id, .. } => msg_id.as_str(),
            _ => "",
        };
        format!(
            "a message id (crc {got:#010x}) other than {given} (crc {:#010x}), the id the \
             producer was given",
            crc32fast::hash(given.as_bytes())
        )
    } else {
        format!("a message id (crc {got:#010x}) other than its first delivery's")
    }
}

fn delivered_id(e: &Entry) -> u32 {
    match e {
        Entry::Deliver {
            fields: Some(f), ..
        } => f.msg_id_crc.unwrap_or(0),
        _ => 0,
    }
}
