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
//! Where the scenario declares `Promise::orderly_needs_master`, an orderly group's miss
//! is covered (reason `orderly_master_lost`) by the machine loss of the master of the
//! broker group that stored the message, at or after the send: RocketMQ's orderly
//! consumers lock queues only at their master, so nobody consumes that group orderly
//! again, its slave's copy included. Other groups still owe the message.
//!
//! One consequence of an allowed loss is covered too (reason `offset_reused`): when a
//! broker lost the tail of a queue (say offsets 26..30) and reassigned those offsets to
//! new messages, a consumer that had already consumed past 30 skips the new messages
//! at 26..29 — RocketMQ consumers track positions, not messages. A message is covered
//! this way only if its position was first observed holding another message whose
//! loss the allowance covers by the time the new one was observed there — under
//! SYNC_FLUSH only by a media loss, since a page-cache loss takes only unflushed
//! records and a broker keeping the promise serves none (RocketMQ serves its page
//! cache; `pull-serves-page-cache` is that broker); or, when no one observed the
//! earlier holder, if the group (for a broadcasting group, the
//! consumer) committed an offset past the position before the message was sent and
//! the queue's broker lost its page cache or media between that commit and the ack
//! (the earlier holder was then an unacknowledged copy, whose allowance that is).
//!
//! A delayed message (sent with a delay level) is covered too (reason
//! `delay_master_lost`) when the master of the broker group that stored it lost its
//! media at or after the send: only a master delivers delayed messages (a RocketMQ
//! 4.x slave keeps the replicated schedule queue but never re-stores from it), so
//! what it had not delivered yet is stranded on the slave.
//!
//! Each covered message fires one excuse (see `excuses.rs`): `lost/<allowance>` (e.g.
//! `lost/async_flush`) with the fault(s) the allowance used, or `lost/offset_reused`
//! with the earlier holder and its allowance (or the commit and the fault).

use std::collections::BTreeMap;

use super::allowance::{allowance, allowance_at_by, Allowed};
use super::deliveries::DeliveryTable;
use super::faults::{bit, FaultRec, CACHE_LOSS, CONTEXT_MS, MEDIA_LOSS};
use super::queue_log::QueueLog;
use super::tables::{Index, Msg, NONE};
use super::{CheckStats, Rule, Sink};
use crate::history::{FaultKind, FlushMode};

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

/// Messages observed at a position that an earlier, allowably lost message held, and
/// the allowance of that earlier holder (the evidence of the `offset_reused` excuse).
pub(crate) struct Reused {
    /// Per message: index into `why`, or [`NONE`].
    of: Vec<u32>,
    /// (the earlier holder, its allowance).
    why: Vec<(u32, Allowed)>,
}

impl Reused {
    /// Was message `m` observed at a position an allowably lost message held?
    pub(crate) fn is(&self, m: u32) -> bool {
        self.of.get(m as usize).is_some_and(|&i| i != NONE)
    }

    /// The excuse's evidence: which message held the position, and why it may be gone.
    pub(crate) fn evidence(&self, ix: &Index, m: u32) -> String {
        match self
            .of
            .get(m as usize)
            .and_then(|&i| self.why.get(i as usize))
        {
            Some((first, a)) => format!(
                "wid {} held the position before, lost by {}",
                ix.msgs[*first as usize].wid,
                a.reason()
            ),
            None => "no earlier holder".to_string(),
        }
    }
}

pub(crate) fn reused_after_loss(ix: &Index, log: &QueueLog) -> Reused {
    let mut reused = Reused {
        of: vec![NONE; ix.msgs.len()],
        why: Vec::new(),
    };
    for c in &log.conflicts {
        let broker = ix.queues[c.queue as usize].broker;
        if reused.of[c.other.msg as usize] != NONE {
            continue;
        }
        // Under SYNC_FLUSH a page-cache loss takes only records not yet flushed, and
        // a broker that keeps the promise hands out none of them: a consumer that got
        // past the position must have been served an unflushed record (RocketMQ serves
        // its page cache; the reference does not). Only a media loss excuses it there,
        // as in `consumed_past_before_send`. An unacknowledged earlier holder is asked
        // for a media loss directly: a power cut before it (which left the flushed copy
        // in place) must not hide the damaged disk that took it (seed 90 of swarm.toml
        // with a 6 s warm-up).
        let sync_flush = ix
            .broker_group(broker)
            .is_some_and(|bg| bg.flush == FlushMode::SyncFlush);
        let copy_kinds = if sync_flush {
            MEDIA_LOSS
        } else {
            CACHE_LOSS | MEDIA_LOSS
        };
        let Some(a) = allowance_at_by(ix, c.first.msg, broker, c.other.at_ms, copy_kinds) else {
            continue;
        };
        let media = |f: &FaultRec| bit(f.kind) & MEDIA_LOSS != 0;
        if sync_flush && !media(&a.fault) && !a.also.as_ref().is_some_and(media) {
            continue;
        }
        reused.of[c.other.msg as usize] = reused.why.len() as u32;
        reused.why.push((c.first.msg, a));
    }
    reused
}

/// The other face of `offset_reused`, when nobody observed the earlier holder of the
/// position (a first send attempt whose answer was lost, filtered out by the group, or
/// never read by anyone else): group `g` (for a broadcasting group, its consumer
/// `client`) committed an offset past message `m`'s position before `m` was even
/// sent, so the position held another message then; and a page-cache or media loss of
/// the queue's broker (a page-cache loss only under ASYNC_FLUSH) between that commit
/// and `m`'s ack can have taken that holder
/// with it (the allowance of an unacknowledged copy), so the broker reassigned the
/// position to `m` behind the consumer's in-memory position. Seed 19102 of chaos.toml:
/// a TagC first attempt at broker-b q3 offset 22, filtered by g_ab (which committed 23),
/// lost to the master's power cut, its retry acked elsewhere; the next message took 22.
///
/// Returns the evidence: the commit and the fault.
fn consumed_past_before_send(
    ix: &Index,
    log: &QueueLog,
    m: u32,
    g: u32,
    client: Option<u32>,
) -> Option<String> {
    let msg = &ix.msgs[m as usize];
    if !msg.acked() || msg.queue == NONE {
        return None;
    }
    // An observed earlier holder is judged by `reused_after_loss` (and the offsets
    // rule), not here.
    let first_holder = log
        .queue(msg.queue)
        .and_then(|p| p.range(msg.offset, msg.offset + 1).next());
    if first_holder.is_some_and(|(_, h)| h != m) {
        return None;
    }
    let bg = ix.broker_group(ix.queues[msg.queue as usize].broker)?;
    let nodes: Vec<u32> = [Some(bg.master_node), bg.slave_node]
        .into_iter()
        .flatten()
        .collect();
    // Under SYNC_FLUSH a page-cache loss takes only unacknowledged records, but it may
    // not excuse a skipped *acknowledged* one: that is the promise cases 3 and 4 check.
    // Only a media loss (lost machine, damaged disk) excuses it there.
    let kinds = if bg.flush == FlushMode::AsyncFlush {
        CACHE_LOSS | MEDIA_LOSS
    } else {
        MEDIA_LOSS
    };
    ix.commits.iter().find_map(|c| {
        if !(c.group == g
            && c.queue == msg.queue
            && c.offset > msg.offset
            && c.at_ms < msg.since_ms()
            && client.is_none_or(|cl| ix.spans[c.span as usize].client == cl))
        {
            return None;
        }
        let f = ix.faults.first_on_any(&nodes, kinds, c.at_ms, msg.ok_ms)?;
        Some(format!(
            "commit of {} at {}ms, then {}",
            c.offset,
            c.at_ms,
            f.label()
        ))
    })
}

pub(crate) fn check(
    ix: &Index,
    table: &DeliveryTable,
    log: &QueueLog,
    reused: &Reused,
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
            *stats.allowance_reasons.entry(a.reason()).or_insert(0) += 1;
            sink.excuses.record(Rule::Lost, a.kind, || a.evidence());
            continue;
        }
        if let Some(f) = stranded_on_a_slave(ix, msg) {
            stats.allowed_lost += 1;
            *stats
                .allowance_reasons
                .entry("delay_master_lost".to_string())
                .or_insert(0) += 1;
            let ev = f.label();
            sink.excuses.record(Rule::Lost, "delay_master_lost", || ev);
            continue;
        }
        let mut consumed_past = None;
        missing.retain(
            |&(g, c, _)| match consumed_past_before_send(ix, log, m, g, c) {
                Some(ev) => {
                    consumed_past.get_or_insert(ev);
                    false
                }
                None => true,
            },
        );
        let master_lost = orderly_master_lost(ix, msg).filter(|_| !missing.is_empty());
        if let Some(f) = master_lost {
            missing.retain(|&(g, _, _)| !ix.group_info[g as usize].orderly);
            if missing.is_empty() {
                stats.allowed_lost += 1;
                *stats
                    .allowance_reasons
                    .entry("orderly_master_lost".to_string())
                    .or_insert(0) += 1;
                let ev = f.label();
                sink.excuses
                    .record(Rule::Lost, "orderly_master_lost", || ev);
                continue;
            }
        }
        if reused.is(m) || missing.is_empty() {
            stats.allowed_lost += 1;
            *stats
                .allowance_reasons
                .entry("offset_reused".to_string())
                .or_insert(0) += 1;
            let ev = match consumed_past {
                Some(ev) if !reused.is(m) => ev,
                _ => reused.evidence(ix, m),
            };
            sink.excuses.record(Rule::Lost, "offset_reused", || ev);
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

/// Where the scenario declares `Promise::orderly_needs_master`: the machine loss of the
/// master of the broker group that stored `msg`, at or after the send. Orderly groups
/// lock queues only at their master, so they never consume what that group holds again.
fn orderly_master_lost<'a>(ix: &'a Index, msg: &Msg) -> Option<&'a FaultRec> {
    if !ix.promise.orderly_needs_master {
        return None;
    }
    let group = ix.broker_group(ix.stored_broker(msg)?)?;
    ix.faults.first_on(
        group.master_node,
        bit(FaultKind::MachineLost),
        msg.since_ms(),
        u64::MAX,
    )
}

/// A delayed message waits in its master's schedule queue, and only a master delivers
/// it: a RocketMQ 4.x slave keeps the replicated schedule queue but never re-stores
/// from it, and nothing promotes a slave. So the media loss of the master that stored
/// it (at or after the send) strands what it had not delivered yet on the slave.
fn stranded_on_a_slave<'a>(ix: &'a Index, msg: &Msg) -> Option<&'a FaultRec> {
    if msg.delay_level == 0 {
        return None;
    }
    let group = ix.broker_group(ix.stored_broker(msg)?)?;
    ix.faults
        .first_on(group.master_node, MEDIA_LOSS, msg.since_ms(), u64::MAX)
}
