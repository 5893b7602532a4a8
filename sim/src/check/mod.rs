//! The checker: reads a [`History`] and reports which of RocketMQ's promises broke.
//!
//! One module per promise; each is a linear scan over the tables the single indexing
//! pass ([`index`]) builds, so checking stays linear in the history's size (it runs
//! on every seed). Output is deterministic: everything is iterated in history order or
//! through `BTreeMap`s, never through a hash table.
//!
//! | rule | module | in one line |
//! |------|--------|-------------|
//! | [`Rule::Lost`] | [`lost`] | a stored message never reached a subscribed group (or broadcasting consumer), outside the [`allowance`] |
//! | [`Rule::Phantom`] | [`phantom`] | a delivery of something never sent |
//! | [`Rule::Corrupt`] | [`corrupt`] | a delivery whose body, topic or tags differ from the send |
//! | [`Rule::Order`] | [`order`] | inside an ownership span, a new offset behind one already delivered; a span (or a new owner) starting past a subscribed message |
//! | [`Rule::Offsets`] | [`offsets`] | two messages at one position; offsets against real-time order; a committed offset going back |
//! | [`Rule::Liveness`] | [`liveness`] | after the heal, a group that still owed messages received nothing at all |
//!
//! Duplicates ([`duplicates`]) are counted, never a violation (at-least-once).
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

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Rule {
    Lost,
    Phantom,
    Corrupt,
    Order,
    Offsets,
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
    let owed = lost::check(&ix, &obs.table, &mut sink, &mut stats);
    liveness::check(&ix, &obs.table, &owed, &mut sink);
    obs.order.finish(&ix, &obs.queue_log, &mut sink);
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
