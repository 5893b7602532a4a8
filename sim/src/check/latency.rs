//! **latency**: how long a message takes from its `SendInvoke` to its first delivery
//! to each slot (the group, or each consumer of a broadcasting group), and a bound on
//! it once the faults have healed.
//!
//! Every first delivery of a sent message (not a `%RETRY%` one) counts in its group's
//! statistics for its phase: `faults` (delivered before `heal_at_ms`) or `quiet`.
//! The verdict reports count, p50, p99 and max per group and phase
//! ([`super::CheckStats::latency_ms`]).
//!
//! When the run has a quiet period (`heal_at_ms < end_ms`), a first delivery made in
//! it must come by a deadline, from the bounds the scenario declares (`Meta.promise`):
//! - a message sent before the cluster settled (`heal_at_ms` plus the settle window,
//!   [`Promise::settle_window_ms`]) is delivered by `max(sent, heal_at_ms)` plus that
//!   window: the declared `settle_after_heal_ms`, by default one route poll
//!   (`pollNameServerInterval`), one rebalance interval and one long-poll wake-up
//!   (`BROKER_SUSPEND_MAX_TIME`) after the heal — 65 s with RocketMQ's values. (Issue
//!   8 proposed a long poll plus a rebalance interval; the reference shows a consumer
//!   needs its next route poll too — a broker restarted at the heal, or a name server
//!   lost, is learnt only then, as RocketMQ documents.)
//! - a message sent after the cluster settled is delivered within the declared
//!   `settled_delivery_ms` (5 s by default) of its send: a held pull is woken by the
//!   message's arrival, so a broker that answers held pulls only at their timeout
//!   fails.
//!
//! [`Promise::settle_window_ms`]: crate::history::Promise::settle_window_ms
//!
//! Linear: first deliveries are folded as they stream by; percentiles are selected
//! (not sorted) per group and phase.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tables::{Dlv, Index};
use super::{Rule, Sink};

/// p50/p99/max of one group's send-to-delivery times in one phase.
#[derive(Serialize, Default, Clone, Debug, PartialEq, Eq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
}

/// A quiet-phase delivery past its deadline.
struct Late {
    entry: u32,
    msg: u32,
    group: u32,
    deadline_ms: u64,
}

#[derive(Default)]
pub(crate) struct Latency {
    /// `[group][phase]`: phase 0 = faults, 1 = quiet.
    samples: Vec<[Vec<u32>; 2]>,
    late: Vec<Late>,
}

impl Latency {
    /// A first delivery of `d.msg` to its slot.
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, ix: &Index) {
        let (heal_at_ms, end_ms, promise) = (ix.heal_at_ms, ix.end_ms, &ix.promise);
        let m = &ix.msgs[d.msg as usize];
        if d.retry || !m.invoked() {
            return;
        }
        let g = d.group as usize;
        if g >= self.samples.len() {
            self.samples.resize_with(g + 1, Default::default);
        }
        let took = d.at_ms.saturating_sub(m.invoke_ms);
        let quiet = d.at_ms >= heal_at_ms;
        self.samples[g][usize::from(quiet)].push(took.min(u64::from(u32::MAX)) as u32);
        if quiet && heal_at_ms < end_ms {
            let settle_ms = promise.settle_window_ms();
            let settled = heal_at_ms.saturating_add(settle_ms);
            let deadline_ms = if m.invoke_ms >= settled {
                m.invoke_ms.saturating_add(promise.settled_delivery_ms)
            } else {
                m.invoke_ms.max(heal_at_ms).saturating_add(settle_ms)
            };
            if d.at_ms > deadline_ms {
                self.late.push(Late {
                    entry: d.entry,
                    msg: d.msg,
                    group: d.group,
                    deadline_ms,
                });
            }
        }
    }

    pub(crate) fn finish(
        mut self,
        ix: &Index,
        sink: &mut Sink,
    ) -> BTreeMap<String, BTreeMap<String, Percentiles>> {
        for l in &self.late {
            sink.report(
                Rule::Latency,
                format!("wid {}", ix.msgs[l.msg as usize].wid),
                || {
                    let at = ix.entries[l.entry as usize].at_ms();
                    format!(
                        "group {}: {} first delivered at {at}ms, after its deadline {}ms (heal at \
                     {}ms; settled {}ms later; {}ms after a send once settled); {}",
                        ix.group_name(l.group),
                        ix.describe_msg(l.msg),
                        l.deadline_ms,
                        ix.heal_at_ms,
                        ix.promise.settle_window_ms(),
                        ix.promise.settled_delivery_ms,
                        ix.faults.before(ix.entries, at)
                    )
                },
            );
        }
        let mut out = BTreeMap::new();
        for (g, phases) in self.samples.iter_mut().enumerate() {
            for (phase, v) in ["faults", "quiet"].iter().zip(phases.iter_mut()) {
                if v.is_empty() {
                    continue;
                }
                out.entry(ix.group_name(g as u32).to_string())
                    .or_insert_with(BTreeMap::new)
                    .insert(phase.to_string(), percentiles(v));
            }
        }
        out
    }
}

/// Nearest-rank percentiles by selection: linear, and `v` is reordered.
fn percentiles(v: &mut [u32]) -> Percentiles {
    let n = v.len();
    let rank = |p: usize| ((n * p).div_ceil(100)).clamp(1, n) - 1;
    let mut pick = |k: usize| u64::from(*v.select_nth_unstable(k).1);
    Percentiles {
        count: n as u64,
        p50_ms: pick(rank(50)),
        p99_ms: pick(rank(99)),
        max_ms: pick(n - 1),
    }
}
