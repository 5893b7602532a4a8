//! **owners**: in a clustering group, one consumer holds a queue at a time, but for a
//! bounded rebalance hand-over.
//!
//! A consumer *holds* a queue from its `Own` to the end of that span (the next
//! `Own`/`Disown` of the key, or a crash or restart of its node: see `tables.rs`).
//! When consumer B takes a queue that consumer A (another client) still holds, the
//! two hold it together until the first of their spans ends. That overlap may last
//! the declared hand-over window ([`Promise::handover_window_ms`] of `Meta.promise`:
//! 35 s with RocketMQ's values): A gives the queue up at its next rebalance (at once
//! on NOTIFY_CONSUMER_IDS_CHANGED, at the latest one `rebalance_interval_ms` later),
//! and its pull in flight may be held one long poll (`broker_suspend_max_time_ms`).
//! An overlap lasting longer is a violation, unless a link fault (partition, clog)
//! touched A or B, or a fault (other than a clock skew or a heal) touched a node that
//! is no client — no consumer of `Meta` and no producer (a `SendInvoke`'s client) —
//! that is, a broker or a name server: consumers that see different
//! consumer lists (a restarted broker learns the consumers at their next heartbeat)
//! or different routes (a restarted name server learns a broker at its next
//! registration, a client the route at its next poll) allocate queues differently.
//! Then the overlap is judged only from the views' convergence window
//! ([`Promise::view_convergence_ms`]: `registerNameServerPeriod` plus
//! `pollNameServerInterval`, at least `heartbeatBrokerInterval` — 60 s with
//! RocketMQ's values) after the last such fault within it. An orderly group's spans
//! are judged the same way; that no two of its consumers process one queue at once
//! while the broker lock is held is the `exclusivity` rule's (`exclusivity.rs`),
//! judged on the listener calls themselves, since the history records no lock.
//!
//! Linear in the spans (bucketed by group and queue; each bucket is swept in time
//! order, with the spans still open).
//!
//! [`Promise::handover_window_ms`]: crate::history::Promise::handover_window_ms
//! [`Promise::view_convergence_ms`]: crate::history::Promise::view_convergence_ms

use super::faults::{bit, Kinds, NETWORK};
use super::tables::Index;
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::FaultKind;

/// Fault kinds on a broker or name server that can make consumers' views differ (not
/// clock skews or heals).
const VIEW_FAULTS: Kinds = !(bit(FaultKind::ClockSkew) | bit(FaultKind::Heal));
/// Fault kinds on a holder that can leave views stale: a link fault (its heartbeats
/// and route polls lost, the broker keeping its channel until it expires). A holder's
/// process ending ends its span, and a restarted consumer heartbeats and rebalances at
/// once (the others learn it through NOTIFY_CONSUMER_IDS_CHANGED or their next
/// rebalance): the hand-over alone bounds that.
const HOLDER_VIEW_FAULTS: Kinds = NETWORK;

pub(crate) fn check(ix: &Index, sink: &mut Sink) {
    let mut buckets: FastMap<(u32, u32), Vec<u32>> = FastMap::default();
    for (i, sp) in ix.spans.iter().enumerate() {
        let info = &ix.group_info[sp.group as usize];
        if sp.start.is_none() || info.meta.is_none() || info.broadcasting {
            continue;
        }
        buckets
            .entry((sp.group, sp.queue))
            .or_default()
            .push(i as u32);
    }
    let mut keys: Vec<(u32, u32)> = buckets.keys().copied().collect();
    keys.sort_unstable();
    let run_end = ix.end_ms;
    // Consumers of Meta and producers: a fault of theirs changes no one's routes or
    // consumer lists.
    let clients = ix.client_nodes();
    for key in keys {
        // (span, end) of the spans still open at the current start.
        let mut open: Vec<(u32, u64)> = Vec::new();
        for &s in &buckets[&key] {
            let sp = &ix.spans[s as usize];
            let end = ix.span_end_ms(s).min(run_end);
            open.retain(|&(_, e)| e > sp.at_ms);
            for &(o, o_end) in &open {
                let old = &ix.spans[o as usize];
                if old.client == sp.client {
                    continue;
                }
                let overlap_end = o_end.min(end);
                judge(ix, sink, &clients, o, s, overlap_end);
            }
            open.push((s, end));
        }
    }
}

/// Judges the overlap of spans `old` and `new` (which began later) up to `end_ms`.
fn judge(ix: &Index, sink: &mut Sink, clients: &[u32], old: u32, new: u32, end_ms: u64) {
    let (o, n) = (&ix.spans[old as usize], &ix.spans[new as usize]);
    let from = n.at_ms;
    let handover_ms = ix.promise.handover_window_ms();
    let view_ms = ix.promise.view_convergence_ms();
    if end_ms <= from.saturating_add(handover_ms) {
        return;
    }
    let holders = [o.client, n.client];
    let excused_until = ix
        .faults
        .last_matching(from.saturating_sub(view_ms), end_ms, |f| {
            f.node.is_some_and(|node| {
                if holders.contains(&node) {
                    bit(f.kind) & HOLDER_VIEW_FAULTS != 0
                } else {
                    bit(f.kind) & VIEW_FAULTS != 0 && clients.binary_search(&node).is_err()
                }
            })
        })
        .map(|f| (f.at_ms.saturating_add(view_ms), f.label()));
    let judged_from = excused_until.as_ref().map_or(from, |(t, _)| (*t).max(from));
    if end_ms <= judged_from.saturating_add(handover_ms) {
        if let Some((t, label)) = &excused_until {
            sink.excuses.record(Rule::Owners, "route_refresh", || {
                format!(
                    "n{} and n{} on {} until {end_ms}ms, excused until {t}ms by {label}",
                    o.client,
                    n.client,
                    ix.queue_name(n.queue)
                )
            });
        }
        return;
    }
    sink.report(
        Rule::Owners,
        format!("{} {}", ix.group_name(n.group), ix.queue_name(n.queue)),
        || {
            let excuse = match &excused_until {
                Some((t, label)) => {
                    format!(" (excused until {t}ms by {label})")
                }
                None => String::new(),
            };
            format!(
                "group {}: n{} (since {}ms) and n{} (since {from}ms) both held {} until \
                 {end_ms}ms, {}ms together{excuse}, beyond a {handover_ms}ms hand-over; {}",
                ix.group_name(n.group),
                o.client,
                o.at_ms,
                n.client,
                ix.queue_name(n.queue),
                end_ms - from,
                ix.faults.before(ix.entries, from)
            )
        },
    );
}
