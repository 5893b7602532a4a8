//! The checker: reads a [`History`] and reports which of RocketMQ's promises broke.
//!
//! One module per promise; each is a fold over the deliveries as the single indexing
//! pass (`index.rs`) streams them, or a linear scan over the tables that pass builds,
//! so checking stays linear in the history's size (it runs on every seed). Output is
//! deterministic: everything is iterated in history order or through `BTreeMap`s,
//! never through a hash table. Each [`Rule`] variant documents its exact definition;
//! the modules (`lost.rs`, `allowance.rs`, `liveness.rs`, `phantom.rs`, `corrupt.rs`,
//! `order.rs`, `offsets.rs`, `duplicates.rs`) say the same with the reasons.
//!
//! Duplicates are counted ([`CheckStats::duplicates_by_group`]), never a violation
//! (at-least-once).
//!
//! Every violation's detail names the messages (wid), group, broker/topic/queue,
//! offsets and times, and the faults in the 30 s before the problem (for a lost
//! message, which has no single moment, the 30 s on either side of its ack). Each rule
//! details at most [`MAX_DETAILED`] violations; the rest are summed up in one more
//! violation of the same rule, so a badly broken run still gives a readable report.

mod allowance;
mod corrupt;
mod deliveries;
mod duplicates;
mod faults;
mod hasher;
mod index;
mod intern;
mod liveness;
mod lost;
mod offsets;
mod order;
mod phantom;
mod queue_log;
mod subscription;
mod synthetic;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::history::History;

#[doc(hidden)]
pub use synthetic::synthetic_history;

/// Violations detailed per rule; the rest are counted in one summary violation.
pub const MAX_DETAILED: usize = 10;
/// Labels (e.g. "wid 17") listed in a summary violation.
const MAX_SUMMARY_LABELS: usize = 20;

/// The promises. Terms: a message *must be delivered* when it was sent and is known
/// to be stored (a `SendOk` of any status, or a delivery to any group); a *span* is
/// one consumer's ownership of one queue (`Own` to the next `Own`/`Disown` of the same
/// group, client and queue, or to a crash/restart of the client's node); the *loss
/// allowance* is derived from `Meta.brokers` and the faults that happened (see
/// `allowance.rs`: single copy lost, master and slave lost, unflushed page cache lost
/// within the flush window, unreplicated within the replication window).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Rule {
    /// A message that must be delivered never reached a group of `Meta.groups` whose
    /// topic and tag expression take it (every listed consumer, for a broadcasting
    /// group), and the loss allowance does not cover it. One violation per message.
    Lost,
    /// A delivery without a workload id, or of an id no `SendInvoke` names.
    Phantom,
    /// A delivery whose body CRC, topic or tags differ from its `SendInvoke` (a
    /// `%RETRY%` topic is not a difference).
    Corrupt,
    /// In a span, a new offset delivered behind the highest one delivered (a gap
    /// filled behind; redelivering a seen offset is fine); a span whose first delivery
    /// is past its `Own.start_offset`, or an `Own.start_offset` past the last commit
    /// of another consumer incarnation, when a known message the group subscribes to
    /// (and the allowance does not cover) lies in between.
    Order,
    /// Two messages at one (broker, topic, queue, offset), every message seen there
    /// compared with the one seen just before it (a reuse after an allowed loss of
    /// that one is not a violation); a send acked before another was invoked that got
    /// the higher-or-equal offset; a clustering group's new owner starting below the
    /// lower bound of the group's commits on the queue: the lowest of the latest
    /// commit the broker surely holds (made one propagation window before — 1 s in
    /// flight, 11 s when a slave answered — with no fault on the committing client or
    /// the queue's broker group that could have lost it: cut link, crash in flight,
    /// broker down, restart within the 5 s persist interval plus an fsync, media loss,
    /// a lost log tail within 45 s before) and every commit that may have reached the
    /// broker after it. Committed offsets going back is not in itself a violation.
    Offsets,
    /// After `heal_at_ms` (when it is before `end_ms`), a group with consumers that
    /// still owed unexcused messages received no delivery at all. One per group.
    Liveness,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Lost,
        Rule::Phantom,
        Rule::Corrupt,
        Rule::Order,
        Rule::Offsets,
        Rule::Liveness,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Lost => "lost",
            Rule::Phantom => "phantom",
            Rule::Corrupt => "corrupt",
            Rule::Order => "order",
            Rule::Offsets => "offsets",
            Rule::Liveness => "liveness",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule.name(), self.detail)
    }
}

#[derive(Serialize, Default, Clone, Debug)]
pub struct CheckStats {
    /// Distinct workload ids with a `SendInvoke`: `acked + failed + unknown`.
    pub sends: u64,
    /// Sends with a `SendOk` (any status).
    pub acked: u64,
    /// Sends without a `SendOk` whose failure was definite.
    pub failed: u64,
    /// Sends without a `SendOk` whose outcome is unknown (timeout, or no result yet).
    pub unknown: u64,
    /// `Deliver` entries.
    pub deliveries: u64,
    /// Per group: deliveries of a (message, consumer slot) already delivered before.
    pub duplicates_by_group: BTreeMap<String, u64>,
    /// Messages missing somewhere, but covered by the loss allowance.
    pub allowed_lost: u64,
    /// Allowance reason -> messages it covered.
    pub allowance_reasons: BTreeMap<String, u64>,
    /// History entries read.
    pub history_ops: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub stats: CheckStats,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Judges a history. Linear in its size; the same history gives the same report.
pub fn check(history: &History) -> Report {
    let (ix, obs) = index::Index::build(history);
    let mut stats = CheckStats {
        history_ops: history.entries.len() as u64,
        deliveries: ix.deliveries,
        ..CheckStats::default()
    };
    let mut sink = Sink::default();
    obs.phantom.finish(&ix, &mut sink);
    obs.corrupt.finish(&ix, &mut sink);
    let reused = lost::reused_after_loss(&ix, &obs.queue_log);
    let owed = lost::check(
        &ix,
        &obs.table,
        &obs.queue_log,
        &reused,
        &mut sink,
        &mut stats,
    );
    liveness::check(&ix, &obs.table, &owed, &mut sink);
    obs.order
        .finish(&ix, &obs.queue_log, &obs.table, &reused, &mut sink);
    offsets::check(&ix, &obs.queue_log, &mut sink);
    duplicates::count(&ix, &obs.table, &mut stats);
    Report {
        violations: sink.finish(),
        stats,
    }
}

/// Collects violations, detailing the first [`MAX_DETAILED`] of each rule.
#[derive(Default)]
pub(crate) struct Sink {
    shown: [Vec<Violation>; 6],
    hidden: [u64; 6],
    hidden_labels: [Vec<String>; 6],
}

impl Sink {
    /// `label` names the violation in a summary (e.g. "wid 17"); `detail` is only
    /// built when the violation is shown.
    pub(crate) fn report(&mut self, rule: Rule, label: String, detail: impl FnOnce() -> String) {
        let r = rule as usize;
        if self.shown[r].len() < MAX_DETAILED {
            self.shown[r].push(Violation {
                rule,
                detail: detail(),
            });
        } else {
            self.hidden[r] += 1;
            if self.hidden_labels[r].len() < MAX_SUMMARY_LABELS {
                self.hidden_labels[r].push(label);
            }
        }
    }

    fn finish(self) -> Vec<Violation> {
        let mut out = Vec::new();
        let Sink {
            shown,
            hidden,
            hidden_labels,
        } = self;
        for ((rule, shown), (hidden, labels)) in Rule::ALL
            .iter()
            .zip(shown)
            .zip(hidden.iter().zip(hidden_labels))
        {
            out.extend(shown);
            if *hidden > 0 {
                let more = if *hidden as usize > labels.len() {
                    ", ..."
                } else {
                    ""
                };
                out.push(Violation {
                    rule: *rule,
                    detail: format!(
                        "{hidden} more {} violations not detailed: {}{more}",
                        rule.name(),
                        labels.join(", ")
                    ),
                });
            }
        }
        out
    }
}
