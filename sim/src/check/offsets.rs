//! **offsets**: each `(broker, topic, queue)` is a linearizable, append-only log.
//!
//! 1. **One offset, one message**: every `SendOk` and every first-hand delivery of a
//!    position `(broker, topic, queue, offset)` names the same wid, forever (this also
//!    covers "the acked offset is the offset consumers saw"). Every message seen at a
//!    position is compared with the one seen there just before it, so a second reuse
//!    is judged too. Exception: when the message it replaced may have been lost (the
//!    [`super::allowance`] covers it with a fault before the replacement was seen),
//!    the broker truncated its log in a crash and reused the offset — as RocketMQ
//!    does.
//! 2. **Real-time order**: if send A's `SendOk` came strictly before send B's
//!    `SendInvoke`, and both went to the same queue, then offset(A) < offset(B). One
//!    sweep in time order keeping, per queue, the highest offset of completed sends.
//!    Same exception as above for A (its offset may have been reused after a crash
//!    before B's ack). Only the highest completed A per queue is compared.
//! 3. **A new owner starts within the bounds the group's commits set**, per
//!    clustering group and queue (broadcasting groups keep offsets per client and are
//!    not judged). RocketMQ does not promise that committed offsets never go back:
//!    commits are oneway and asynchronous, a consumer that still believes it owns a
//!    queue persists its older offset, and a new owner can read an older commit. What
//!    it promises is that nothing is skipped, so the rule judges the offset a new
//!    owner was answered (`Own.start_offset`, at time `t`) against the group's commits
//!    on that queue made up to `t`:
//!    - **upper bound**: no later than the last commit — a start past it that skips
//!      a message the group subscribes to is judged by the order rule (`order.rs`,
//!      "new owner starts after the committed offset"), which knows what lies between;
//!      a start past it over nothing the group wants skips nothing;
//!    - **lower bound**: no earlier than the lowest of the *anchor* and every commit
//!      after it, where the anchor is the latest commit the broker surely holds: made
//!      one propagation window before `t` ([`COMMIT_IN_FLIGHT_MS`]; when a slave
//!      answered, [`replica_lag_ms`]), and with no fault that could have
//!      lost it — the committing client crashing or cut off (a partition or clog on
//!      it) while the commit was in flight; a node of *that queue's* broker group down
//!      or cut off when it was made, restarting before it was persisted
//!      (the declared `flushConsumerOffsetInterval` plus [`OFFSET_FSYNC_GRACE_MS`] after it
//!      arrived), losing its media between the commit and `t`, or having lost its
//!      page cache or media within [`offset_clamp_reach_ms`] before the commit (or
//!      before the committer's route may have listed no master ever since, when it
//!      pulled at the slave, which corrects no offset: `route_without_master_since`), or
//!      (ASYNC_FLUSH) its page cache between the commit and `t` (a master clamps
//!      commits past a queue end that went back). A commit such a
//!      fault may have lost is passed over for an older one, so each fault widens
//!      the bound only by what it can have lost, and never from time zero. Commits
//!      made shortly before the anchor count as "after" it when they may have
//!      arrived later: [`COMMIT_IN_FLIGHT_MS`], or [`replica_lag_ms`] for a
//!      consumer whose own span started from a slave's answer (its route listed no
//!      master, so it commits at the slave, which passes commits on, at worst again
//!      after its next sync), or — held up by a clog or partition on its client or
//!      the broker group — any time within that lag.
//!
//!    The violation names the anchor commit, its client and time. When a start below
//!    the group's latest commit passes only because a commit above it was passed
//!    over, the reason fires an excuse of that name with its evidence:
//!    `handover_grace` (in flight), `replica_lag` (not yet synced to the slave
//!    asked), `committer_ended`, `network_fault`, `broker_down`, `broker_restart`,
//!    `broker_state_lost` (media), `tail_clamped`, or `commit_overtaken` (an older,
//!    lower commit that may have arrived after it). `offset_reused` names the
//!    exceptions of 1 and 2; `served_before_reuse` the exception of an orderly
//!    group's listener handed, after the reuse, a record its consumer pulled before
//!    the broker lost it (the one it holds may be gone: the allowance's evidence).

use std::collections::BTreeMap;

use super::allowance::{allowance, allowance_at};
use super::faults::{bit, CACHE_LOSS, MEDIA_LOSS, NETWORK, RESTARTS};
use super::queue_log::{Conflict, Holder, QueueLog};
use super::tables::{Cmt, Index, NONE};
use super::{Rule, Sink};
use crate::history::{Entry, FlushMode};

/// How long a oneway commit (UPDATE_CONSUMER_OFFSET, or the commit a pull carries)
/// may take to reach the broker and how long a query answer may take back. Not a
/// RocketMQ setting: simulated latency is milliseconds (clogs aside, which count as
/// network faults); a second is far beyond it, far below the 20 s rebalance interval.
pub(crate) const COMMIT_IN_FLIGHT_MS: u64 = 1_000;

/// The fsync of the persisted offsets file after the persist interval. Not a
/// RocketMQ setting: far beyond a simulated fsync.
pub(crate) const OFFSET_FSYNC_GRACE_MS: u64 = 1_000;

/// How stale a slave's copy of the consumer offsets may be: one declared
/// SlaveSynchronize interval (`Meta.promise`, RocketMQ: 10 s) plus a commit in flight.
pub(crate) fn replica_lag_ms(ix: &Index) -> u64 {
    ix.promise
        .slave_synchronize_interval_ms
        .saturating_add(COMMIT_IN_FLIGHT_MS)
}

/// How long a commit may go unpersisted on its broker: the declared
/// `flushConsumerOffsetInterval` (`Meta.promise`, RocketMQ: 5 s) plus the fsync.
fn persist_window_ms(ix: &Index) -> u64 {
    ix.promise
        .flush_consumer_offset_interval_ms
        .saturating_add(OFFSET_FSYNC_GRACE_MS)
}

/// The part of [`offset_clamp_reach_ms`] that is no promise: a broker down for up to
/// 15 s (the scenarios' longest down time; the history could tell, the rule does not
/// ask) and the pull's timeout before the consumer asks again (15 s).
const OFFSET_CLAMP_DOWN_AND_RETRY_MS: u64 = 30_000;

/// How long after its broker group lost a log tail (page cache or media) a commit
/// may be clamped: a master stores no offset past a queue's end, and consumers keep
/// committing their older, higher offsets until a pull there corrects them — a
/// broker down, then a held pull's suspend (the declared
/// `broker_suspend_max_time_ms`, RocketMQ: 15 s) and the pull's timeout before the
/// consumer asks again ([`OFFSET_CLAMP_DOWN_AND_RETRY_MS`]): 45 s by default.
pub(crate) fn offset_clamp_reach_ms(ix: &Index) -> u64 {
    ix.promise
        .broker_suspend_max_time_ms
        .saturating_add(OFFSET_CLAMP_DOWN_AND_RETRY_MS)
}

/// How many commits back the lower bound looks for one the broker surely holds;
/// past that the span is not judged (keeps the rule linear).
const MAX_COMMITS_BACK: usize = 256;

pub(crate) fn check(ix: &Index, log: &QueueLog, sink: &mut Sink) {
    one_message_per_offset(ix, log, sink);
    real_time_order(ix, sink);
    start_within_commit_bounds(ix, sink);
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

/// Whether `h` is a delivery to an orderly group.
fn orderly_delivery(ix: &Index, h: &Holder) -> bool {
    match &ix.entries[h.entry as usize] {
        Entry::Deliver { group, .. } => ix
            .groups
            .get(group)
            .is_some_and(|g| ix.group_info[g as usize].orderly),
        _ => false,
    }
}

fn one_message_per_offset(ix: &Index, log: &QueueLog, sink: &mut Sink) {
    // Per position, the replacements nothing excuses, in the order they were seen.
    let mut by_position: BTreeMap<(u32, u64), Vec<&Conflict>> = BTreeMap::new();
    for c in &log.conflicts {
        let broker = ix.queues[c.queue as usize].broker;
        // The holder replaced may have been truncated away first.
        if let Some(a) = allowance_at(ix, c.first.msg, broker, c.other.at_ms) {
            sink.excuses
                .record(Rule::Offsets, "offset_reused", || a.reason());
            continue;
        }
        // An orderly listener takes what its pull served long before, in queue order
        // behind a suspended message: the record it is handed may have been served
        // before the broker lost it, and the position reused since.
        if orderly_delivery(ix, &c.other) {
            if let Some(a) = allowance_at(ix, c.other.msg, broker, c.other.at_ms) {
                sink.excuses
                    .record(Rule::Offsets, "served_before_reuse", || a.reason());
                continue;
            }
        }
        let seen = by_position.entry((c.queue, c.offset)).or_default();
        if !seen.iter().any(|o| o.other.msg == c.other.msg) {
            seen.push(c);
        }
    }
    for ((q, offset), conflicts) in by_position {
        let label = format!("{} offset {offset}", ix.queue_name(q));
        sink.report(Rule::Offsets, label, || {
            let seen: Vec<String> = conflicts
                .iter()
                .map(|c| {
                    format!(
                        "{} by {} (replacing {} seen by {})",
                        ix.describe_msg(c.other.msg),
                        observer(ix, &c.other),
                        ix.describe_msg(c.first.msg),
                        observer(ix, &c.first),
                    )
                })
                .collect();
            format!(
                "two messages at one offset: {} offset {offset} held {}; {}",
                ix.queue_name(q),
                seen.join("; then "),
                ix.faults.before(ix.entries, conflicts[0].other.at_ms),
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

/// Why a commit may not be held by the broker a new owner asked: the excuse's name
/// and its evidence.
type NotHeld = (&'static str, String);

/// Whether commit `c` is surely held by the broker a new owner asked at `at_ms`.
fn commit_held(
    ix: &Index,
    c: &Cmt,
    bg_nodes: &[u32],
    name_server: &dyn Fn(u32) -> bool,
    async_flush: bool,
    at_ms: u64,
    reach_ms: u64,
) -> Result<(), NotHeld> {
    let faults = &ix.faults;
    if c.at_ms.saturating_add(reach_ms) > at_ms {
        // Still on its way, or not yet synced to the slave asked.
        let why = if reach_ms > COMMIT_IN_FLIGHT_MS {
            "replica_lag"
        } else {
            "handover_grace"
        };
        return Err((why, format!("commit at {}ms, asked at {at_ms}ms", c.at_ms)));
    }
    let client = match &ix.entries[c.entry as usize] {
        Entry::Commit { client, .. } => *client,
        _ => NONE,
    };
    let arrived_by = c.at_ms.saturating_add(COMMIT_IN_FLIGHT_MS);
    // A oneway commit dies with its sender's process or on a cut link to the queue's
    // broker group.
    if let Some(f) = faults.first_on(client, RESTARTS, c.at_ms, arrived_by) {
        return Err(("committer_ended", f.label()));
    }
    if let Some(f) = faults.first_link(client, bg_nodes, c.at_ms, arrived_by) {
        return Err(("network_fault", f.label()));
    }
    if faults.cut_between(client, bg_nodes, c.at_ms) {
        return Err((
            "network_fault",
            format!("n{client} cut off at {}ms", c.at_ms),
        ));
    }
    let persisted_by = c
        .at_ms
        .saturating_add(reach_ms.saturating_add(persist_window_ms(ix)));
    let route_since = route_without_master_since(ix, bg_nodes, name_server, c.at_ms);
    let lost_from = route_since.saturating_sub(offset_clamp_reach_ms(ix));
    // A slave answered: its copy comes by the master's SlaveSynchronize, which a cut
    // between master and slave holds back — one that began before the sync due within
    // the reach after the commit (a later cut finds the commit already synced).
    if reach_ms > COMMIT_IN_FLIGHT_MS {
        if let [master, slave] = bg_nodes {
            let sync_due_ms = c.at_ms.saturating_add(reach_ms).min(at_ms);
            if let Some(f) = faults.first_link(*master, &[*slave], c.at_ms, sync_due_ms) {
                return Err(("network_fault", f.label()));
            }
        }
    }
    for &n in bg_nodes {
        if faults.down_at(n, c.at_ms) {
            return Err(("broker_down", format!("n{n} down at {}ms", c.at_ms)));
        }
        // Its links to the committer and within the group (a commit made at a slave is
        // passed on to the master).
        let links: Vec<u32> = std::iter::once(client)
            .chain(bg_nodes.iter().copied().filter(|&o| o != n))
            .collect();
        if faults.cut_between(n, &links, c.at_ms) {
            return Err(("network_fault", format!("n{n} cut off at {}ms", c.at_ms)));
        }
        if let Some(f) = faults.first_link(n, &links, c.at_ms, arrived_by) {
            return Err(("network_fault", f.label()));
        }
        // Not yet persisted when the broker lost its memory.
        if let Some(f) = faults.first_on(n, RESTARTS, c.at_ms, persisted_by.min(at_ms)) {
            return Err(("broker_restart", f.label()));
        }
        // The offsets file itself damaged or gone.
        if let Some(f) = faults.first_on(n, MEDIA_LOSS, c.at_ms, at_ms) {
            return Err(("broker_state_lost", f.label()));
        }
        // Clamped to a queue end that went back when the log lost its tail: before the
        // commit (consumers keep committing their older, higher offsets), or after it
        // under ASYNC_FLUSH (what it counted may have lived only in the page cache; a
        // master restarting below a stored offset answers the queue's end).
        let clamp_to = if async_flush { at_ms } else { c.at_ms };
        if let Some(f) = faults.first_on(n, CACHE_LOSS | MEDIA_LOSS, lost_from, clamp_to) {
            let mut why = f.label();
            if route_since < c.at_ms {
                why.push_str(&format!(
                    ", the committer's route may have listed no master from {route_since}ms \
                     to the commit at {}ms",
                    c.at_ms
                ));
            }
            return Err(("tail_clamped", why));
        }
    }
    Ok(())
}

/// Since when a client's route may have listed no master of the broker group
/// `bg_nodes` (its master first) continuously up to `at_ms`: `at_ms` itself, or the
/// time of a fault that can leave a route without the master, chained back through
/// such faults: a name server restarting or going down within one views' convergence
/// window ([`Promise::view_convergence_ms`]: `registerNameServerPeriod` plus
/// `pollNameServerInterval`) before (it learns the master at its next registration),
/// or the master crashing or restarting within one `pollNameServerInterval` before
/// (it registers as it starts). A consumer
/// whose route lists no master pulls at the slave, which does not correct an offset
/// past a queue's end (RocketMQ's `offsetCheckInSlave` is off), so it keeps
/// committing its old offset, which the master clamps, for that long.
///
/// [`Promise::view_convergence_ms`]: crate::history::Promise::view_convergence_ms
fn route_without_master_since(
    ix: &Index,
    bg_nodes: &[u32],
    name_server: &dyn Fn(u32) -> bool,
    at_ms: u64,
) -> u64 {
    let Some(&master) = bg_nodes.first() else {
        return at_ms;
    };
    let view_ms = ix.promise.view_convergence_ms();
    // The master registers as it starts: a route lacks it at most one poll after.
    let poll_ms = ix.promise.poll_name_server_interval_ms;
    let mut since = at_ms;
    // Each step moves `since` strictly back to a fault's time: at most one step per
    // fault.
    while let Some(f) = ix
        .faults
        .recs
        .iter()
        .skip(
            ix.faults
                .recs
                .partition_point(|r| r.at_ms < since.saturating_sub(view_ms)),
        )
        .take_while(|r| r.at_ms < since)
        .find(|r| {
            bit(r.kind) & RESTARTS != 0
                && r.node.is_some_and(|n| {
                    name_server(n) || (n == master && r.at_ms.saturating_add(poll_ms) >= since)
                })
        })
    {
        since = f.at_ms;
    }
    since
}

/// Whether commit `c` may have been held up on the way (a clog or partition on its
/// client or the queue's broker group), so it may arrive after later commits.
fn delayed(ix: &Index, c: &Cmt, bg_nodes: &[u32]) -> bool {
    let faults = &ix.faults;
    let arrived_by = c.at_ms.saturating_add(COMMIT_IN_FLIGHT_MS);
    let client = match &ix.entries[c.entry as usize] {
        Entry::Commit { client, .. } => *client,
        _ => NONE,
    };
    std::iter::once(client)
        .chain(bg_nodes.iter().copied())
        .any(|n| {
            faults.cut_at(n, c.at_ms) || faults.first_on(n, NETWORK, c.at_ms, arrived_by).is_some()
        })
}

/// How long commit `c` may take to reach the master: in flight, or — made by a
/// consumer whose route listed no master (its span started from a slave's answer) —
/// passed on by the slave, at worst again after its next SlaveSynchronize.
fn path_ms(ix: &Index, c: &Cmt) -> u64 {
    if ix.spans[c.span as usize].from_replica {
        replica_lag_ms(ix)
    } else {
        COMMIT_IN_FLIGHT_MS
    }
}

fn client_of(ix: &Index, entry: u32) -> String {
    match &ix.entries[entry as usize] {
        Entry::Commit { client, .. } => format!("n{client}"),
        _ => "?".to_string(),
    }
}

/// Rule 3: every new owner's start offset lies within the bounds the group's commits
/// set (see the module doc).
fn start_within_commit_bounds(ix: &Index, sink: &mut Sink) {
    // Per committed-offset sequence of a clustering group (its group and queue): the
    // commits in time order, `by_seq[seq_start[s]..seq_start[s + 1]]` (a counting
    // sort by sequence of the commits in time order).
    let mut order: Vec<u32> = (0..ix.commits.len() as u32).collect();
    if !order.is_sorted_by_key(|&c| ix.commits[c as usize].at_ms) {
        order.sort_by_key(|&c| ix.commits[c as usize].at_ms);
    }
    let clustering = |g: u32| !ix.group_info[g as usize].broadcasting;
    let mut seq_start = vec![0u32; ix.commit_seqs + 1];
    for cm in &ix.commits {
        if clustering(cm.group) {
            seq_start[cm.seq as usize + 1] += 1;
        }
    }
    for s in 0..ix.commit_seqs {
        seq_start[s + 1] += seq_start[s];
    }
    let mut next = seq_start.clone();
    let mut by_seq = vec![NONE; seq_start[ix.commit_seqs] as usize];
    for c in order {
        let cm = &ix.commits[c as usize];
        if clustering(cm.group) {
            by_seq[next[cm.seq as usize] as usize] = c;
            next[cm.seq as usize] += 1;
        }
    }
    // Name servers are the nodes that are no broker and no client (a consumer of
    // `Meta` or a producer).
    let mut not_name_servers: Vec<u32> = ix
        .brokers_meta
        .iter()
        .flat_map(|b| std::iter::once(b.master_node).chain(b.slave_node))
        .chain(
            ix.groups_meta
                .iter()
                .flat_map(|g| g.consumers.iter().copied()),
        )
        .chain(
            ix.msgs
                .iter()
                .filter_map(|m| match ix.entries.get(m.invoke as usize) {
                    Some(Entry::SendInvoke { client, .. }) => Some(*client),
                    _ => None,
                }),
        )
        .collect();
    not_name_servers.sort_unstable();
    not_name_servers.dedup();
    for span in &ix.spans {
        let Some(start) = span.start else { continue };
        if !clustering(span.group) {
            continue;
        }
        let s = span.commit_seq as usize;
        let list = &by_seq[seq_start[s] as usize..seq_start[s + 1] as usize];
        let t = span.at_ms;
        let n = list.partition_point(|&c| ix.commits[c as usize].at_ms <= t);
        if n == 0 {
            continue; // no commit yet: the consumer's ConsumeFromWhere decides
        }
        let bg = ix.broker_group(ix.queues[span.queue as usize].broker);
        let bg_nodes: Vec<u32> = bg
            .map(|bg| {
                std::iter::once(bg.master_node)
                    .chain(bg.slave_node)
                    .collect()
            })
            .unwrap_or_default();
        let async_flush = bg.is_some_and(|bg| bg.flush == FlushMode::AsyncFlush);
        let name_server = |n: u32| not_name_servers.binary_search(&n).is_err();
        // Lower bound: the latest commit the broker surely holds, or any commit after
        // it (one of them may have overwritten it, a lower one too).
        let reach_ms = if span.from_replica {
            replica_lag_ms(ix)
        } else {
            COMMIT_IN_FLIGHT_MS
        };
        let latest = ix.commits[list[n - 1] as usize].offset;
        let mut later_min = u64::MAX;
        let mut anchor = None;
        // Why the first commit above the start passed over may be missing.
        let mut excuse: Option<NotHeld> = None;
        let mut back = list[..n].iter().rev().take(MAX_COMMITS_BACK);
        for &c in back.by_ref() {
            let cm = &ix.commits[c as usize];
            match commit_held(
                ix,
                cm,
                &bg_nodes,
                &name_server,
                async_flush,
                t,
                reach_ms.max(path_ms(ix, cm)),
            ) {
                Ok(()) => {
                    anchor = Some(cm);
                    break;
                }
                Err(why) => {
                    if cm.offset > start && excuse.is_none() {
                        excuse = Some(why);
                    }
                    later_min = later_min.min(cm.offset);
                }
            }
        }
        let Some(anchor) = anchor else {
            if let Some((name, ev)) = excuse.filter(|_| start < latest) {
                sink.excuses.record(Rule::Offsets, name, || ev);
            }
            continue;
        };
        // A commit made a little before the anchor may still have arrived after it.
        let overtake_from = anchor.at_ms.saturating_sub(replica_lag_ms(ix));
        for &c in back {
            let cm = &ix.commits[c as usize];
            if cm.at_ms < overtake_from {
                break;
            }
            if cm.at_ms.saturating_add(path_ms(ix, cm)) > anchor.at_ms || delayed(ix, cm, &bg_nodes)
            {
                if cm.offset <= start && excuse.is_none() {
                    excuse = Some((
                        "commit_overtaken",
                        format!(
                            "commit of {} at {}ms may have arrived after the commit at {}ms",
                            cm.offset, cm.at_ms, anchor.at_ms
                        ),
                    ));
                }
                later_min = later_min.min(cm.offset);
            }
        }
        let bound = anchor.offset.min(later_min);
        if start >= bound {
            if start < latest {
                if let Some((name, ev)) = excuse {
                    sink.excuses.record(Rule::Offsets, name, || ev);
                }
            }
            continue;
        }
        let label = format!("{} owned from {start}", ix.queue_name(span.queue));
        sink.report(Rule::Offsets, label, || {
            let answered = if span.from_replica {
                "a slave"
            } else {
                "the master"
            };
            format!(
                "committed offset went back for group {} on {}: new owner n{} started at \
                 offset {start} at {t}ms ({answered} answered), behind {bound}: client {} \
                 committed {} at {}ms, at least {reach_ms}ms before, with no fault on the \
                 client or the queue's broker group to lose it, and no commit that may \
                 have reached the broker after it was lower than {bound}; {}",
                ix.group_name(span.group),
                ix.queue_name(span.queue),
                span.client,
                client_of(ix, anchor.entry),
                anchor.offset,
                anchor.at_ms,
                ix.faults.before(ix.entries, t),
            )
        });
    }
}
