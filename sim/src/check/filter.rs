//! **filter**: a listener receives exactly what its group subscribed to. A delivery to
//! a group of `Meta.groups` breaks it when the group's tag expression does not take
//! the tags the delivery carries, or the message as it was sent: its tags, or its topic
//! unless the delivery came from a retry topic (`%RETRY%{group}`, which RocketMQ
//! subscribes with `*` and fills only with messages the group itself handed back).
//!
//! RocketMQ's broker filters by tag hash code and its client re-filters by the exact
//! tag string, so a hash-colliding tag (`Aa`/`BB`) or an unsubscribed one reaching a
//! listener is a client or broker bug either way. Expressions are parsed by the
//! checker's own parser (`subscription.rs`), independent of the one the broker and the
//! client share, so a bug in theirs cannot hide itself.
//!
//! Judged while deliveries stream by; a delivery of a message not sent yet in the pass
//! is kept and judged at the end.

use super::tables::{Dlv, Index};
use super::{Rule, Sink};

#[derive(Default)]
pub(crate) struct Filter {
    /// Deliveries the group's expression does not take.
    found: Vec<Dlv>,
    /// Deliveries whose message was not sent (yet) when they were delivered.
    later: Vec<Dlv>,
}

impl Filter {
    /// `sent_taken`: whether the group takes the message as sent (`None`: not sent
    /// yet in this pass).
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, sent_taken: Option<bool>) {
        match (d.tags_taken, sent_taken) {
            (true, Some(true)) => {}
            (true, None) => self.later.push(*d),
            _ => self.found.push(*d),
        }
    }

    /// Does the group take message `d.msg` as sent? (A message never sent has only
    /// the delivered tags, judged already.)
    fn sent_taken(ix: &Index, d: &Dlv) -> bool {
        let m = &ix.msgs[d.msg as usize];
        if !m.invoked() {
            return true;
        }
        if d.retry {
            ix.tag_match[d.group as usize][m.tags as usize]
        } else {
            ix.subscribes(d.group, m)
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        let later = self.later.iter().filter(|d| !Self::sent_taken(ix, d));
        let mut all: Vec<&Dlv> = self.found.iter().chain(later).collect();
        all.sort_by_key(|d| (d.at_ms, d.entry));
        for d in all {
            let info = &ix.group_info[d.group as usize];
            let expression = info
                .meta
                .map_or("*", |i| ix.groups_meta[i].tag_expression.as_str());
            let label = format!("group {} at {}ms", ix.group_name(d.group), d.at_ms);
            sink.report(Rule::Filter, label, || {
                let why = if d.tags_taken {
                    let m = &ix.msgs[d.msg as usize];
                    if !d.retry && info.topic != m.topic {
                        format!(
                            "it was sent to topic {}, not the subscribed {}",
                            ix.topics.name(m.topic),
                            ix.topics.name(info.topic)
                        )
                    } else {
                        format!(
                            "it was sent with {}, which the expression does not take",
                            ix.tag_name(m.tags)
                        )
                    }
                } else {
                    format!(
                        "it came with {}, which the expression does not take",
                        ix.tag_name(d.tags)
                    )
                };
                let what = if d.msg == super::tables::NONE {
                    "a message without a workload id".to_string()
                } else {
                    ix.describe_msg(d.msg)
                };
                format!(
                    "group {} (expression {expression:?}) client n{} received {what} at {}ms \
                     from {} offset {}: {why}; {}",
                    ix.group_name(d.group),
                    d.client,
                    d.at_ms,
                    ix.queue_name(d.queue),
                    d.offset,
                    ix.faults.before(ix.entries, d.at_ms),
                )
            });
        }
    }
}
