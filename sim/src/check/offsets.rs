//! **offsets**: each `(broker, topic, queue)` is a linearizable, append-only log.
//!
//! 1. **One offset, one message**: every `SendOk` and every first-hand delivery of a
//!    position `(broker, topic, queue, offset)` names the same wid, forever (this also
//!    covers "the acked offset is the offset consumers saw"). Exception: when the
//!    message first seen there may have been lost (the [`super::allowance`] covers it
//!    with a fault before the other message was seen), the broker truncated its log in
//!    a crash and reused the offset — as RocketMQ does.
//! 2. **Real-time order**: if send A's `SendOk` came strictly before send B's
//!    `SendInvoke`, and both went to the same queue, then offset(A) < offset(B). One
//!    sweep in time order keeping, per queue, the highest offset of completed sends.
//!    Same exception as above for A (its offset may have been reused after a crash
//!    before B's ack). Only the highest completed A per queue is compared.
//! 3. **Commits never go back**, per clustering group and queue (the commits of all
//!    clients of the group form one sequence; broadcasting groups keep offsets per
//!    client and are not judged). A commit below the highest commit so far is a
//!    violation unless it is explained:
//!    - a broker node crashed or restarted ([`RESTARTS`]) between the two commits:
//!      brokers persist consumer offsets every 5 s, so newer commits may be lost;
//!    - the higher commit came from another ownership span and was made later than
//!      [`HANDOVER_GRACE_MS`] before the lower committer's span began: during a
//!      rebalance the new owner may read the offset before the old owner's last
//!      (oneway) commit arrived, and old and new owner briefly overlap;
//!    - the higher commit came from another span and a partition or clog happened
//!      between it and the start of the lower committer's span: oneway commits may
//!      be dropped;
//!    - the higher commit came from another span and its client's process ended (a
//!      crash or a shutdown, [`RESTARTS`]) less than [`HANDOVER_GRACE_MS`] after
//!      it: the commit is recorded when it is sent (oneway, or carried on a pull),
//!      and a packet still in flight when its sender's process ends is lost with the
//!      connection. A commit that had a grace period to arrive is not excused;
//!    - the lower committer's span started from an offset a *slave* answered (its
//!      route listed no master: see `Own.offset_from_broker_id`) and the higher
//!      commit was made less than [`replica_lag_ms`] before that span began: a slave
//!      learns its master's offsets by SlaveSynchronize, every 10 s, so it may not
//!      have the master's latest (RocketMQ's documented behaviour; avoiding it would
//!      take a consensus on offsets). A higher commit older than that, or one the
//!      master answered, is not excused.
//!
//!    Each explanation fires an excuse of that name (`broker_restart`,
//!    `broker_state_lost`, `handover_grace`, `network_fault`, `committer_ended`,
//!    `replica_lag`; `offset_reused` for the exceptions of 1 and 2), recorded with
//!    the fault it used.
//!
//!    After a commit going back (explained or not) the sequence continues from it, so
//!    one regression is reported once.

use std::collections::BTreeMap;

use super::allowance::{allowance, allowance_at};
use super::faults::{CACHE_LOSS, MEDIA_LOSS, NETWORK, RESTARTS};
use super::hasher::FastMap;
use super::index::{Index, NONE};
use super::queue_log::{Conflict, Holder, QueueLog};
use super::{Rule, Sink};
use crate::history::Entry;

/// How long an old owner's last commit may still be in flight when a new owner reads
/// the committed offset. Simulated network latency is milliseconds; a second is far
/// beyond it yet far below RocketMQ's 20 s rebalance interval.
pub(crate) const HANDOVER_GRACE_MS: u64 = 1_000;

/// How far a slave's consumer offsets may lag its master's: one declared
/// SlaveSynchronize interval (`Meta.promise`), plus the grace for the commit and the
/// sync to travel.
pub(crate) fn replica_lag_ms(ix: &Index) -> u64 {
    ix.promise
        .slave_synchronize_interval_ms
        .saturating_add(HANDOVER_GRACE_MS)
}

pub(crate) fn check(ix: &Index, log: &QueueLog, sink: &mut Sink) {
    one_message_per_offset(ix, log, sink);
    real_time_order(ix, sink);
    commits_never_go_back(ix, sink);
}

fn observer(ix: &Index, h: &Holder) -> String {
    match &ix.entries[h.entry as usize] {
        Entry::SendOk { client, .. } => {
            format!("SendOk to producer n{client} at {}ms", h.at_ms)
        }
        Entry::Deliver { group, client, .. } => {
            format!("delivery to n{client} of group {group} at {}ms", h.at_ms)
        }
        _ => format!("entry {} at {}ms", h.entry, h.at_ms),
    }
}

fn one_message_per_offset(ix: &Index, log: &QueueLog, sink: &mut Sink) {
    let mut by_position: BTreeMap<(u32, u64), Vec<&Conflict>> = BTreeMap::new();
    for c in &log.conflicts {
        by_position.entry((c.queue, c.offset)).or_default().push(c);
    }
    for ((q, offset), conflicts) in by_position {
        let first = conflicts[0].first;
        let mut others: Vec<&Holder> = Vec::new();
        for c in &conflicts {
            if others.iter().any(|o| o.msg == c.other.msg) {
                continue;
            }
            let broker = ix.queues[q as usize].broker;
            if let Some(a) = allowance_at(ix, first.msg, broker, c.other.at_ms) {
                // The first message may have been truncated away first.
                sink.excuses
                    .record(Rule::Offsets, "offset_reused", || a.reason());
                continue;
            }
            others.push(&c.other);
        }
        if others.is_empty() {
            continue;
        }
        let label = format!("{} offset {offset}", ix.queue_name(q));
        sink.report(Rule::Offsets, label, || {
            let seen: Vec<String> = others
                .iter()
                .map(|o| format!("{} by {}", ix.describe_msg(o.msg), observer(ix, o)))
                .collect();
            format!(
                "two messages at one offset: {} offset {offset} was first {} by {}, \
                 later {}; {}",
                ix.queue_name(q),
                ix.describe_msg(first.msg),
                observer(ix, &first),
                seen.join("; "),
                ix.faults.before(ix.entries, others[0].at_ms),
            )
        });
    }
}

fn real_time_order(ix: &Index, sink: &mut Sink) {
    // Sends with a result, by invoke time; `acks` is already in ack-time order. Both
    // sorts are stable and the input nearly sorted, so this stays close to linear.
    //
    // Messages are numbered in the order they were first seen, which for sent ones
    // is their invoke order, and acks are recorded in time order: so both orders are
    // usually there already, and are only sorted when they are not.
    let by_invoke = |m: &u32| ix.msgs[*m as usize].invoke_ms;
    let by_ack = |m: &u32| ix.msgs[*m as usize].ok_ms;
    let mut invoked: Vec<u32> = (0..ix.msgs.len() as u32)
        .filter(|&m| ix.msgs[m as usize].invoked() && ix.msgs[m as usize].acked())
        .collect();
    if !invoked.is_sorted_by_key(by_invoke) {
        invoked.sort_by_key(by_invoke);
    }
    let sorted_acks;
    let acks: &[u32] = if ix.acks.is_sorted_by_key(by_ack) {
        &ix.acks
    } else {
        let mut v = ix.acks.clone();
        v.sort_by_key(by_ack);
        sorted_acks = v;
        &sorted_acks
    };
    // Per queue: the highest offset among sends completed so far, and whose.
    let mut done: Vec<(u64, u32)> = vec![(0, NONE); ix.queues.len()];
    let mut next_ack = 0;
    for &b in &invoked {
        let mb = &ix.msgs[b as usize];
        while next_ack < acks.len() && ix.msgs[acks[next_ack] as usize].ok_ms < mb.invoke_ms {
            let a = acks[next_ack];
            let ma = &ix.msgs[a as usize];
            let slot = &mut done[ma.queue as usize];
            if slot.1 == NONE || ma.offset > slot.0 {
                *slot = (ma.offset, a);
            }
            next_ack += 1;
        }
        let (max, a) = done[mb.queue as usize];
        if a == NONE || mb.offset > max {
            continue;
        }
        if let Some(al) = allowance(ix, a, mb.ok_ms) {
            sink.excuses
                .record(Rule::Offsets, "offset_reused", || al.reason());
            continue;
        }
        let label = format!("wid {}", mb.wid);
        sink.report(Rule::Offsets, label, || {
            let ma = &ix.msgs[a as usize];
            format!(
                "offsets against real-time order on {}: {} was acked at {}ms with offset \
                 {max}, before {} was invoked at {}ms, yet the later send got offset {} \
                 (acked at {}ms); {}",
                ix.queue_name(mb.queue),
                ix.describe_msg(a),
                ma.ok_ms,
                ix.describe_msg(b),
                mb.invoke_ms,
                mb.offset,
                mb.ok_ms,
                ix.faults.before(ix.entries, mb.ok_ms),
            )
        });
    }
}

/// The highest commit of a sequence so far.
#[derive(Clone, Copy)]
struct High {
    offset: u64,
    at_ms: u64,
    entry: u32,
    span: u32,
}

fn commits_never_go_back(ix: &Index, sink: &mut Sink) {
    let mut high: FastMap<(u32, u32), High> = FastMap::default();
    for c in &ix.commits {
        if ix.group_info[c.group as usize].broadcasting {
            continue;
        }
        let cur = High {
            offset: c.offset,
            at_ms: c.at_ms,
            entry: c.entry,
            span: c.span,
        };
        let h = high.entry((c.group, c.queue)).or_insert(cur);
        if c.offset >= h.offset {
            *h = cur;
            continue;
        }
        let prev = *h;
        *h = cur;
        let faults = &ix.faults;
        if let Some(f) = faults.first_on_any(&ix.broker_nodes, RESTARTS, prev.at_ms, c.at_ms) {
            sink.excuses
                .record(Rule::Offsets, "broker_restart", || f.label());
            continue;
        }
        // The queue's broker group lost state at some earlier time (a lost machine, a
        // damaged disk, a page cache gone): its slave or its recovered log may not
        // know the newer offset, and sends the consumer back.
        if let Some(bg) = ix.broker_group(ix.queues[c.queue as usize].broker) {
            let nodes: Vec<u32> = std::iter::once(bg.master_node)
                .chain(bg.slave_node)
                .collect();
            if let Some(f) = faults.first_on_any(&nodes, CACHE_LOSS | MEDIA_LOSS, 0, c.at_ms) {
                sink.excuses
                    .record(Rule::Offsets, "broker_state_lost", || f.label());
                continue;
            }
        }
        if prev.span != c.span {
            let span_start = ix.spans[c.span as usize].at_ms;
            if prev.at_ms.saturating_add(HANDOVER_GRACE_MS) > span_start {
                sink.excuses.record(Rule::Offsets, "handover_grace", || {
                    format!("commit at {}ms, new span at {span_start}ms", prev.at_ms)
                });
                continue;
            }
            if let Some(f) = faults.first_kind(NETWORK, prev.at_ms, span_start) {
                sink.excuses
                    .record(Rule::Offsets, "network_fault", || f.label());
                continue;
            }
            if let Entry::Commit { client, .. } = &ix.entries[prev.entry as usize] {
                let ended_by = prev.at_ms.saturating_add(HANDOVER_GRACE_MS - 1);
                if let Some(f) =
                    faults.first_on(*client, RESTARTS, prev.at_ms, ended_by.min(span_start))
                {
                    sink.excuses
                        .record(Rule::Offsets, "committer_ended", || f.label());
                    continue;
                }
            }
            if ix.spans[c.span as usize].from_replica
                && prev.at_ms.saturating_add(replica_lag_ms(ix)) > span_start
            {
                sink.excuses.record(Rule::Offsets, "replica_lag", || {
                    format!(
                        "commit at {}ms, span at {span_start}ms from a slave's offset",
                        prev.at_ms
                    )
                });
                continue;
            }
        }
        let label = format!("{} commit {}", ix.queue_name(c.queue), c.offset);
        sink.report(Rule::Offsets, label, || {
            let by = |entry: u32| match &ix.entries[entry as usize] {
                Entry::Commit { client, .. } => format!("client n{client}"),
                _ => "?".to_string(),
            };
            let span = &ix.spans[c.span as usize];
            format!(
                "committed offset went back for group {} on {}: {} committed {} at {}ms \
                 (its span began at {}ms), after {} had committed {} at {}ms; no broker \
                 crash or restart in between; {}",
                ix.group_name(c.group),
                ix.queue_name(c.queue),
                by(c.entry),
                c.offset,
                c.at_ms,
                span.at_ms,
                by(prev.entry),
                prev.offset,
                prev.at_ms,
                ix.faults.before(ix.entries, c.at_ms),
            )
        });
    }
}
