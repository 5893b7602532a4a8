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
//! **What the checker may read**: the history, and nothing else. Every window a rule
//! uses (flush, replication, offset propagation) is a declared promise recorded in
//! `Meta.promise` ([`crate::history::Promise`]), never the configuration or the code
//! of the broker under test: a broker that flushes or replicates less often than
//! declared then fails, instead of widening its own allowance. So nothing under
//! `check/` imports the model crate (a test reads these files to keep it so), and any system
//! that writes the history format is judged the same way (`sim check --history`).
//! Checker-side tolerances that are not RocketMQ promises (network grace) are
//! constants next to the rule that uses them.
//!
//! **Excuses**: whenever a rule lets something pass on evidence (a fault on the same
//! broker group, queue or client), it records the excuse through
//! `Sink::excuses.record(rule, excuse, evidence)` (`excuses.rs`); the verdict names
//! each excuse that fired with the faults it used ([`Report::excuses`]) and the stats
//! count them by kind ([`CheckStats::excuses`]).
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
mod excuses;
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

pub use excuses::{ExcuseTally, EVIDENCE_SHOWN};
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
/// allowance* is derived from `Meta.brokers`, the windows `Meta.promise` declares and
/// the faults that happened (see
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
    /// `rule/excuse` -> how many times that excuse fired (see [`Report::excuses`]).
    pub excuses: BTreeMap<String, u64>,
    /// History entries read.
    pub history_ops: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub violations: Vec<Violation>,
    /// Every excuse that fired: rule, excuse, count and the evidence it rested on.
    pub excuses: Vec<ExcuseTally>,
    pub stats: CheckStats,
}

/// The verdict as `sim replay` and `sim check` print it: the counts, every excuse
/// that fired, then `PASS` or one `VIOLATION` line per violation.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "{} sends ({} acknowledged, {} failed, {} unknown), {} deliveries, duplicates {:?}, \
             {} losses explained by the allowance {:?}",
            s.sends,
            s.acked,
            s.failed,
            s.unknown,
            s.deliveries,
            s.duplicates_by_group,
            s.allowed_lost,
            s.allowance_reasons
        )?;
        if self.excuses.is_empty() {
            writeln!(f, "excuses: none")?;
        } else {
            writeln!(f, "excuses:")?;
            for t in &self.excuses {
                writeln!(f, "  {t}")?;
            }
        }
        if self.passed() {
            writeln!(f, "PASS")
        } else {
            for v in &self.violations {
                writeln!(f, "VIOLATION {v}")?;
            }
            Ok(())
        }
    }
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
    let (violations, excuses) = sink.finish();
    stats.excuses = excuses.iter().map(|t| (t.key(), t.count)).collect();
    Report {
        violations,
        excuses,
        stats,
    }
}

/// Collects violations, detailing the first [`MAX_DETAILED`] of each rule, and the
/// excuses that fired.
#[derive(Default)]
pub(crate) struct Sink {
    shown: [Vec<Violation>; Rule::ALL.len()],
    hidden: [u64; Rule::ALL.len()],
    hidden_labels: [Vec<String>; Rule::ALL.len()],
    /// Every rule's excuses go through [`Excuses::record`](excuses::Excuses::record).
    pub(crate) excuses: excuses::Excuses,
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

    fn finish(self) -> (Vec<Violation>, Vec<ExcuseTally>) {
        let mut out = Vec::new();
        let Sink {
            shown,
            hidden,
            hidden_labels,
            excuses,
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
        (out, excuses.finish())
    }
}

#[cfg(test)]
mod tests {
    /// The checker judges against declared promises only: no file under `check/`
    /// may reach into the system under test.
    #[test]
    fn the_checker_never_names_the_model() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/check");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).expect("src/check is readable") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("a source file");
                let needle = concat!("rmq", "_model");
                assert!(
                    !text.contains(needle),
                    "{} names {needle}: the checker must read only the history",
                    path.display()
                );
                files += 1;
            }
        }
        assert!(files > 10, "only {files} files found in {}", dir.display());
    }
}
