//! The checker: reads a [`History`] and reports which of RocketMQ's promises broke.
//!
//! Three floors. On the ground, the tables (`tables.rs`, with `faults.rs`, `intern.rs`
//! and `hasher.rs`): what the history says, in dense ids. Above them, one module per
//! promise; each is a fold over the deliveries as the single pass (`build.rs`) streams
//! them, or a linear scan over the tables that pass fills. On top, that pass and
//! [`check`], which run the rules; no rule imports either. So checking stays linear in the history's size (it runs on every seed). Output is
//! deterministic: everything is iterated in history order or through `BTreeMap`s,
//! never through a hash table. Each [`Rule`] variant documents its exact definition;
//! the modules (`lost.rs`, `allowance.rs`, `liveness.rs`, `phantom.rs`, `corrupt.rs`,
//! `order.rs`, `offsets.rs`, `refused.rs`, `filter.rs`, `duplicates.rs`, `owners.rs`,
//! `commits.rs`, `acks.rs`, `latency.rs`, `delay.rs`, `retry.rs`, `key_order.rs`,
//! `exclusivity.rs`) say the same with the reasons.
//!
//! **What the checker may read**: the history, and nothing else. Every window a rule
//! uses (flush, replication, offset propagation, rebalance hand-over, route and
//! consumer-list refresh, the bounds after the heal) is a declared promise recorded in
//! `Meta.promise` ([`crate::history::Promise`]) or derived from those by one of its
//! methods, never the configuration or the code of the broker under test: a broker
//! that flushes or replicates less often than declared then fails, instead of
//! widening its own allowance. So nothing under `check/` imports the model crate (a
//! test reads these files to keep it so), and any system that writes the history
//! format is judged the same way (`sim check --history`). Checker-side tolerances
//! that are not RocketMQ promises (network grace, an fsync's grace) are constants next
//! to the rule that uses them, each saying why.
//!
//! **Excuses**: whenever a rule lets something pass on evidence (a fault on the same
//! broker group, queue or client), it records the excuse through
//! `Sink::excuses.record(rule, excuse, evidence)` (`excuses.rs`); the verdict names
//! each excuse that fired with the faults it used ([`Report::excuses`]) and the stats
//! count them by kind ([`CheckStats::excuses`]).
//!
//! Duplicates are counted by group and by cause ([`CheckStats::duplicates_by_cause`]);
//! one without a cause is a violation.
//!
//! Every violation's detail names the messages (wid), group, broker/topic/queue,
//! offsets and times, and the faults in the 30 s before the problem (for a lost
//! message, which has no single moment, the 30 s on either side of its ack). Each rule
//! details at most [`MAX_DETAILED`] violations; the rest are summed up in one more
//! violation of the same rule, so a badly broken run still gives a readable report.

mod acks;
mod allowance;
mod build;
mod commits;
mod corrupt;
mod delay;
mod deliveries;
mod duplicates;
mod exclusivity;
mod excuses;
mod faults;
mod filter;
mod intern;
mod key_order;
mod latency;
mod liveness;
mod lost;
mod offsets;
mod order;
mod owners;
mod phantom;
mod process_queues;
mod queue_log;
mod refused;
mod retry;
mod subscription;
mod synthetic;
mod tables;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::history::History;

pub use latency::Percentiles;

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
    /// A delivery that differs from what was sent, each difference named: body CRC,
    /// topic (a `%RETRY%` topic is not a difference) or tags other than its
    /// `SendInvoke`'s; keys, user-properties CRC, born timestamp or born host other
    /// than its `SendInvoke`'s (when both entries recorded them); a reconsume count
    /// other than 0 on a delivery that is not from a `%RETRY%` topic (the message was
    /// never handed back), but for an orderly group's redelivery after its consumer's
    /// listener answered SUSPEND_CURRENT_QUEUE_A_MOMENT, which counts one more than
    /// the suspended delivery (or 0, pulled afresh); a message id other than its `SendOk.msg_id` (without a
    /// `SendOk`: other than its first delivery's); a delivery from its own topic at a
    /// broker/queue/offset other than its `SendOk`'s, unless that `SendOk` is
    /// `retried_after_unknown` (an earlier attempt went unanswered, so a second copy may
    /// exist). Per delivery for the fields; per message for id and position.
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
    /// flight; when a slave answered, `slave_synchronize_interval_ms` more — with no
    /// fault on the committing client or the queue's broker group that could have
    /// lost it: cut link, crash in flight, broker down, restart within
    /// `flush_consumer_offset_interval_ms` plus an fsync, media loss, a lost log tail
    /// within `broker_suspend_max_time_ms` plus 30 s before) and every commit that may
    /// have reached the broker after it. Committed offsets going back is not in itself
    /// a violation.
    Offsets,
    /// After `heal_at_ms` (when it is before `end_ms`), a group with consumers that
    /// still owed unexcused messages received no delivery at all. One per group.
    Liveness,
    /// A delivery of a message whose send failed definitely (`SendFail` with
    /// `definite: true`: every attempt refused, nothing stored) and that has no
    /// `SendOk` and no unknown-outcome `SendFail`. One per message. Unknown outcomes
    /// (timeouts) are never judged here.
    Refused,
    /// A delivery to a group of `Meta.groups` whose tag expression (parsed by the
    /// checker's own parser: `*` or empty takes everything; else `a || b`, each part
    /// trimmed, matched exactly; untagged only by `*`) does not take the delivered
    /// tags, or the tags the message was sent with, or whose sent topic is not the
    /// group's topic (except for deliveries from a `%RETRY%` topic). One per delivery.
    Filter,
    /// A redelivery without a cause. A *duplicate* is a delivery of a (message,
    /// slot) the slot already received; compared with the slot's delivery just before
    /// it, its cause is: `retry` (reconsume count > 0 or `%RETRY%` topic); `suspended`
    /// (an orderly group's redelivery after its consumer's listener answered
    /// SUSPEND_CURRENT_QUEUE_A_MOMENT for it since its last delivery);
    /// `producer_retry` (another position, and the send's `retried_after_unknown`, or
    /// no outcome and its producer's process ended after the invoke);
    /// for the same position, a different span: `offset_moved` (its `Own` has
    /// `offset_moved`), `consumer_restart` (same client, later incarnation),
    /// `commit_rolled_back` (its start is below the group's highest earlier commit of
    /// the queue, the last one made 1 s or more before) or `rebalance`. Same span, or another position without a producer
    /// retry: a violation. Counted by cause in the verdict.
    Duplicates,
    /// In a clustering group of `Meta`, two clients' spans (from `Own`) on one queue
    /// overlap for more than the hand-over window (`Promise::handover_window_ms`:
    /// `rebalance_interval_ms` plus `broker_suspend_max_time_ms`, 35 s by default),
    /// counted from the views' convergence window (`Promise::view_convergence_ms`:
    /// `register_name_server_period_ms` plus `poll_name_server_interval_ms`, at least
    /// `heartbeat_broker_interval_ms`, 60 s by default) after the last fault within
    /// the overlap that can set views apart: a link fault (partition, clog) on either
    /// client, or any fault but a clock skew or heal on a node that is no client (no
    /// consumer of `Meta`, no producer).
    Owners,
    /// With a quiet period: a clustering group's last `Commit` on a queue is below one
    /// past the highest offset it was delivered there (not from `%RETRY%`; reset by an
    /// `offset_moved` `Own`), unless the queue's master is down at `end_ms` or a
    /// cache or media loss hit its broker group after that offset was first
    /// delivered. (A commit going back across a broker restart is judged by `Offsets`.)
    Commits,
    /// A `SendOk` weaker than SEND_OK without a recorded cause: SLAVE_NOT_AVAILABLE /
    /// FLUSH_SLAVE_TIMEOUT need SYNC replication and the slave down, or a fault
    /// touching the slave (or restarting the master, or jumping the master's clock
    /// forward by more than `ha_housekeeping_interval_ms` minus
    /// `ha_send_heartbeat_interval_ms`) within `ha_housekeeping_interval_ms` (20 s by
    /// default) before the send up to its result; FLUSH_DISK_TIMEOUT needs SYNC_FLUSH and the master crashing/stopping
    /// between send and result. With a quiet period, a send invoked the ack grace
    /// (`Promise::ack_grace_window_ms`: the declared `ack_grace_ms`, by default one
    /// `poll_name_server_interval_ms`, 30 s) after the heal that fails or gets a weaker
    /// status (slave statuses excused only by a down slave) is a violation.
    Acks,
    /// With a quiet period: a first delivery (to its slot; not `%RETRY%`) made after
    /// the heal later than `max(sent, heal) + settle` for a message sent before the
    /// cluster settled (`heal + settle`), or later than `sent +
    /// settled_delivery_ms` (5 s by default) for one sent after. `settle` is
    /// `Promise::settle_window_ms`: the declared `settle_after_heal_ms`, by default a
    /// route poll, a rebalance interval and a long poll (65 s). Percentiles per group
    /// and phase are in the verdict.
    Latency,
    /// A delivery of a message sent with a delay level earlier than its `SendInvoke`
    /// plus that level's declared delay (`Promise::delay_levels_ms`; the store time,
    /// from which the broker counts, is never before the invoke). Excused by a clock
    /// skew on the broker group it was delivered from (`delay.rs`).
    Delay,
    /// A handed-back message (`Consumed` RECONSUME_LATER) that came back unraised
    /// (a `%RETRY%` delivery with reconsume count 0), without as many failures as its
    /// count, to another group, before its retry delay (level 3 + count − 1 since the
    /// first failure that could have caused it; clock skew on its broker group
    /// excuses), past the group's maximum (`GroupMeta::max_reconsume_times`, else
    /// `Promise::max_reconsume_times`; an orderly group without one has none; a
    /// consumer's own re-hand of the same position excepted), or never again and not in
    /// the group's dead-letter queue once the run had time; or a `DeadLetter` with a
    /// count other than the maximum + 1 (more for an orderly copy sent again), after
    /// fewer failures than its count, or of a group without a maximum (`retry.rs`).
    Retry,
    /// In an orderly group of `Meta`, per sharding key (`SendInvoke.sharding_key`):
    /// of two acknowledged messages of the key, the one invoked later is first
    /// consumed (delivered, not from `%RETRY%`) before the other is; or a queue's
    /// consumption of the key goes forward past a message of the key in that queue that
    /// it had consumed before (a re-run that skips). Excused when the two were stored
    /// in different queues after a fault on either's broker group (`queue_changed`),
    /// or the skipped one's broker group crashed or lost data since (`lost_tail`); a
    /// failed message is skipped only when it is in the group's dead-letter queue at
    /// the group's maximum (`dead_lettered`).
    KeyOrder,
    /// In an orderly clustering group of `Meta`, two listener calls on one queue
    /// overlap in true time: a call runs from a `Deliver` (not from `%RETRY%`) to the
    /// `Consumed` answering it (same group, client, queue and offset), or, unanswered,
    /// to its client's crash or restart or the run's end (in a history without any
    /// `Consumed`, listeners return at once). Excused only where the scenario declares
    /// `Promise::orderly_lock_lost_with_broker` and the queue's master restarted within
    /// `lock_max_live_time_ms` before (`lock_lost_with_broker`).
    Exclusivity,
}

impl Rule {
    pub const ALL: [Rule; 17] = [
        Rule::Lost,
        Rule::Phantom,
        Rule::Corrupt,
        Rule::Order,
        Rule::Offsets,
        Rule::Liveness,
        Rule::Refused,
        Rule::Filter,
        Rule::Duplicates,
        Rule::Owners,
        Rule::Commits,
        Rule::Acks,
        Rule::Latency,
        Rule::Delay,
        Rule::Retry,
        Rule::KeyOrder,
        Rule::Exclusivity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Lost => "lost",
            Rule::Phantom => "phantom",
            Rule::Corrupt => "corrupt",
            Rule::Order => "order",
            Rule::Offsets => "offsets",
            Rule::Liveness => "liveness",
            Rule::Refused => "refused",
            Rule::Filter => "filter",
            Rule::Duplicates => "duplicates",
            Rule::Owners => "owners",
            Rule::Commits => "commits",
            Rule::Acks => "acks",
            Rule::Latency => "latency",
            Rule::Delay => "delay",
            Rule::Retry => "retry",
            Rule::KeyOrder => "key_order",
            Rule::Exclusivity => "exclusivity",
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
    /// Duplicates by cause (`retry`, `producer_retry`, `offset_moved`,
    /// `consumer_restart`, `commit_rolled_back`, `rebalance`, `unexplained`).
    pub duplicates_by_cause: BTreeMap<String, u64>,
    /// Group -> phase (`faults`, `quiet`) -> send-to-first-delivery times.
    pub latency_ms: BTreeMap<String, BTreeMap<String, Percentiles>>,
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
        writeln!(f, "duplicates by cause {:?}", s.duplicates_by_cause)?;
        for (group, phases) in &s.latency_ms {
            for (phase, p) in phases {
                writeln!(
                    f,
                    "latency {group} {phase}: {} deliveries, p50 {} ms, p99 {} ms, max {} ms",
                    p.count, p.p50_ms, p.p99_ms, p.max_ms
                )?;
            }
        }
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
    let (ix, obs) = build::build(history);
    let mut stats = CheckStats {
        history_ops: history.entries.len() as u64,
        deliveries: ix.deliveries,
        ..CheckStats::default()
    };
    let mut sink = Sink::default();
    obs.phantom.finish(&ix, &mut sink);
    obs.corrupt.finish(&ix, &mut sink);
    obs.delay.finish(&ix, &mut sink);
    obs.retry.finish(&ix, &mut sink);
    refused::check(&ix, &mut sink);
    obs.filter.finish(&ix, &mut sink);
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
    obs.key_order.finish(&ix, &mut sink);
    obs.exclusivity.finish(&ix, &mut sink);
    offsets::check(&ix, &obs.queue_log, &mut sink);
    duplicates::check(&ix, &obs.table.duplicates, &mut sink, &mut stats);
    owners::check(&ix, &mut sink);
    obs.commits.finish(&ix, &mut sink);
    acks::check(&ix, &mut sink);
    stats.latency_ms = obs.latency.finish(&ix, &mut sink);
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
