//! **lost**: a message that must be delivered never was.
//!
//! A message *must be delivered* when it was sent (`SendInvoke`) and is known to be
//! stored: it has a `SendOk` (any status), or some group received it. A send that
//! failed (definitely or not) and was never delivered is not required.
//!
//! It must reach every group of `Meta.groups` whose topic is the message's topic and
//! whose tag expression takes the message's tags ([`super::subscription`]): for a
//! clustering group, at least one `Deliver` of that group (any consumer); for a
//! broadcasting group, at least one `Deliver` to every consumer listed in
//! `GroupMeta.consumers` (a broadcasting group listing no consumers owes nothing).
//! "By the end" means anywhere in the history.
//!
//! A message missing somewhere is covered if the [`super::allowance`] allows its loss
//! (counted in `allowed_lost` and `allowance_reasons`); otherwise it is one Lost
//! violation naming every group (or consumer) that never received it.
//!
//! One consequence of an allowed loss is covered too (reason `offset_reused`): when a
//! broker lost the tail of a queue (say offsets 26..30) and reassigned those offsets to
//! new messages, a consumer that had already consumed past 30 skips the new messages
//! at 26..29 — RocketMQ consumers track positions, not messages. A message is covered
//! this way only if its position was first observed holding another message whose
//! loss the allowance covers by the time the new one was observed there.
//!
//! The same consequence is covered, per delivery slot, without observing the first
//! holder (reason `offset_reassigned`): a slot that had received the position (or a
//! later one) before a fault that may truncate the master's log, for a message sent
//! after that fault ([`reassigned_after_passing`]).

use std::collections::BTreeMap;

use super::allowance::{allowance, allowance_at};
use super::deliveries::DeliveryTable;
use super::faults::{CACHE_LOSS, CONTEXT_MS, MEDIA_LOSS};
use super::index::Index;
use super::queue_log::QueueLog;
use super::{CheckStats, Rule, Sink};
use crate::history::FlushMode;

/// The required, unexcused messages a delivery slot never received.
#[derive(Default, Clone)]
pub(crate) struct Owing {
    pub count: u64,
    /// The first few of them.
    pub first: Vec<u32>,
}

/// `Owed[group][slot]`, for the groups of `Meta`.
pub(crate) type Owed = Vec<Vec<Owing>>;

/// How many owed messages per slot are remembered by name.
const OWED_NAMED: usize = 5;

/// Messages observed at a position that an earlier, allowably lost message held.
pub(crate) fn reused_after_loss(ix: &Index, log: &QueueLog) -> Vec<bool> {
    let mut reused = vec![false; ix.msgs.len()];
    for c in &log.conflicts {
        let broker = ix.queues[c.queue as usize].broker;
        if !reused[c.other.msg as usize]
            && allowance_at(ix, c.first.msg, broker, c.other.at_ms).is_some()
        {
            reused[c.other.msg as usize] = true;
        }
    }
    reused
}

/// Was message `m`'s position handed out to it after delivery slot `(g, slot)` had
/// already consumed past it? Proven by the history alone: before a fault of the
/// master that may truncate its log (a MEDIA fault; under ASYNC_FLUSH a CACHE fault
/// too) the slot received offset `o` or higher of the queue, and `m` was sent after
/// that fault and acked at `o`. Queue offsets are dense, so the master lost its tail
/// and reassigned `o`; the consumer, past the new end, is moved to the max offset
/// (PULL_OFFSET_MOVED for OFFSET_OVERFLOW_BADLY, reference C.1) and never sees `o`.
/// Unlike `offset_reused` this needs no observation of the position's first holder
/// (which the group may have filtered out, as in seed 39646), but it excuses only the
/// slots that had passed the position. Under SYNC_FLUSH a CACHE fault never excuses.
fn reassigned_after_passing(ix: &Index, table: &DeliveryTable, m: u32, g: u32, slot: u32) -> bool {
    let msg = &ix.msgs[m as usize];
    if !msg.acked() {
        return false;
    }
    let (q, o) = (msg.queue, msg.offset);
    let Some(bg) = ix.broker_group(ix.queues[q as usize].broker) else {
        return false;
    };
    let kinds = if bg.flush == FlushMode::AsyncFlush {
        CACHE_LOSS | MEDIA_LOSS
    } else {
        MEDIA_LOSS
    };
    let Some(f) = ix.faults.last_on(bg.master_node, kinds, 0, msg.since_ms()) else {
        return false;
    };
    table
        .high_before(g, slot, q, f.at_ms)
        .is_some_and(|high| high >= o)
}

pub(crate) fn check(
    ix: &Index,
    table: &DeliveryTable,
    reused: &[bool],
    sink: &mut Sink,
    stats: &mut CheckStats,
) -> Owed {
    let meta_groups = ix.groups_meta.len().min(ix.group_info.len()) as u32;
    let mut owed: Owed = (0..meta_groups as usize)
        .map(|g| vec![Owing::default(); ix.group_info[g].slots()])
        .collect();
    // (group, consumer or None for a clustering group, slot in the group)
    let mut missing: Vec<(u32, Option<u32>, u32)> = Vec::new();
    for (m, msg) in ix.msgs.iter().enumerate() {
        if !msg.invoked() {
            continue;
        }
        // Walking every message anyway: count the sends by outcome.
        stats.sends += 1;
        if msg.acked() {
            stats.acked += 1;
        } else if msg.failed_definite && !msg.failed_unknown {
            stats.failed += 1;
        } else {
            stats.unknown += 1;
        }
        if !(msg.acked() || msg.delivered()) {
            continue;
        }
        let m = m as u32;
        missing.clear();
        for g in 0..meta_groups {
            if !ix.subscribes(g, msg) {
                continue;
            }
            let info = &ix.group_info[g as usize];
            if info.broadcasting {
                for (pos, &client) in info.clients[..info.meta_clients].iter().enumerate() {
                    if !table.received(g, pos as u32, m) {
                        missing.push((g, Some(client), pos as u32));
                    }
                }
            } else if !table.received(g, 0, m) {
                missing.push((g, None, 0));
            }
        }
        if missing.is_empty() {
            continue;
        }
        if let Some(a) = allowance(ix, m, u64::MAX) {
            stats.allowed_lost += 1;
            *stats.allowance_reasons.entry(a.reason).or_insert(0) += 1;
            continue;
        }
        if reused[m as usize] {
            stats.allowed_lost += 1;
            *stats
                .allowance_reasons
                .entry("offset_reused".to_string())
                .or_insert(0) += 1;
            continue;
        }
        missing.retain(|&(g, _, slot)| !reassigned_after_passing(ix, table, m, g, slot));
        if missing.is_empty() {
            stats.allowed_lost += 1;
            *stats
                .allowance_reasons
                .entry("offset_reassigned".to_string())
                .or_insert(0) += 1;
            continue;
        }
        for &(g, _, slot) in &missing {
            let o = &mut owed[g as usize][slot as usize];
            o.count += 1;
            if o.first.len() < OWED_NAMED {
                o.first.push(m);
            }
        }
        sink.report(Rule::Lost, format!("wid {}", msg.wid), || {
            // Group the missing slots by group for the wording.
            let mut by_group: BTreeMap<u32, Vec<Option<u32>>> = BTreeMap::new();
            for &(g, c, _) in &missing {
                by_group.entry(g).or_default().push(c);
            }
            let whom: Vec<String> = by_group
                .iter()
                .map(|(&g, clients)| {
                    let name = ix.group_name(g);
                    if clients.iter().all(Option::is_none) {
                        format!("group {name} (clustering)")
                    } else {
                        let cs: Vec<String> =
                            clients.iter().flatten().map(|c| format!("n{c}")).collect();
                        format!("consumers {} of group {name} (broadcasting)", cs.join(", "))
                    }
                })
                .collect();
            let broker = match ix.stored_broker(msg).and_then(|b| ix.broker_group(b)) {
                Some(bg) => format!(
                    "broker group {} (master n{}, slave {}, {:?}, replication {:?})",
                    bg.broker_name,
                    bg.master_node,
                    bg.slave_node
                        .map_or("none".to_string(), |s| format!("n{s}")),
                    bg.flush,
                    bg.replication
                ),
                None => "a broker group Meta does not describe".to_string(),
            };
            let t = if msg.acked() {
                msg.ok_ms
            } else {
                msg.since_ms()
            };
            format!(
                "{} was never delivered to {}; it was stored on {broker} and no loss \
                 allowance covers it; {}",
                ix.describe_msg(m),
                whom.join(" and "),
                ix.faults
                    .describe(ix.entries, t.saturating_sub(CONTEXT_MS), t + CONTEXT_MS),
            )
        });
    }
    owed
}
