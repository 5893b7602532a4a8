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
//! it must come by a deadline:
//! - a message sent before the cluster settled (`heal_at_ms +` [`SETTLE_MS`]) is
//!   delivered by `max(sent, heal_at_ms) +` [`SETTLE_MS`]: one route poll, one
//!   rebalance interval and one long-poll wake-up after the heal. (Issue 8 proposed
//!   a long poll plus a rebalance interval; the reference shows a consumer needs its
//!   next route poll too — a broker restarted at the heal, or a name server lost,
//!   is learnt only then, as RocketMQ documents.)
//! - a message sent after the cluster settled is delivered within
//!   [`SETTLED_BOUND_MS`] of its send: a held pull is woken by the message's arrival,
//!   so a broker that answers held pulls only at their timeout fails.
//!
//! Linear: first deliveries are folded as they stream by; percentiles are selected
//! (not sorted) per group and phase.

use std::collections::BTreeMap;

use serde::Serialize;

use super::tables::{Dlv, Index, Msg};
use super::{Rule, Sink};

/// RocketMQ's `brokerSuspendMaxTimeMillis`: the broker holds a push consumer's pull
/// for at most 15 s.
pub(crate) const LONG_POLL_MS: u64 = 15_000;
/// RocketMQ's `rebalanceInterval` (client): every consumer rebalances every 20 s.
pub(crate) const REBALANCE_INTERVAL_MS: u64 = 20_000;
/// RocketMQ's `pollNameServerInterval` (client): routes are refreshed every 30 s.
pub(crate) const ROUTE_POLL_MS: u64 = 30_000;
/// After the heal, the cluster is settled once a route poll, a rebalance interval
/// and a long-poll wake-up have passed.
pub(crate) const SETTLE_MS: u64 = ROUTE_POLL_MS + REBALANCE_INTERVAL_MS + LONG_POLL_MS;
/// Send to delivery in a settled cluster: a send, a woken pull and a delivery take
/// milliseconds; a third of a long poll is far beyond that and far below a pull held
/// to its timeout.
pub(crate) const SETTLED_BOUND_MS: u64 = 5_000;

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
    pub(crate) fn deliver(&mut self, d: &Dlv, msgs: &[Msg], heal_at_ms: u64, end_ms: u64) {
        let m = &msgs[d.msg as usize];
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
            let settled = heal_at_ms + SETTLE_MS;
            let deadline_ms = if m.invoke_ms >= settled {
                m.invoke_ms + SETTLED_BOUND_MS
            } else {
                m.invoke_ms.max(heal_at_ms) + SETTLE_MS
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
                        SETTLE_MS,
                        SETTLED_BOUND_MS,
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
