//! **duplicates**: at-least-once allows a redelivery only for a cause RocketMQ
//! documents, and the cause must be in the history on the redelivery's own queue and
//! group. A *duplicate* is a delivery of a (message, slot) that slot already received —
//! slot being the group for clustering and the consumer for broadcasting; deliveries
//! without a workload id are not judged (phantom's business). Each duplicate is
//! compared with the slot's delivery of the same message just before it:
//!
//! - `retry`: the redelivery is a handed-back message (from the `%RETRY%` topic, which
//!   the retry rule holds to a recorded failure) or the consumer's own re-hand of a
//!   message it failed at that very position with a count one lower (its hand-back
//!   failed): the consumer asked for it again.
//! - `suspended`: an orderly group's consumer redelivers a message its listener
//!   answered SUSPEND_CURRENT_QUEUE_A_MOMENT for since that consumer's last delivery
//!   of it (a `Consumed` with that status, same client, queue and offset): RocketMQ's
//!   orderly consumer retries the same message in place.
//! - `producer_retry`: it sits at another (broker, topic, queue, offset) than the
//!   delivery before, and the producer's send made an attempt after one whose
//!   outcome was unknown (`retried_after_unknown` on its `SendOk`/`SendFail`), or the
//!   send has no outcome at all and its producer's process ended after invoking it
//!   (its attempts died with it unreported): a second copy, not a redelivery.
//!   Otherwise a message stored twice is unexplained.
//! - `delay_redelivered`: it sits at another position than the delivery before, the
//!   message was sent with a delay level, and the master of the broker group that
//!   stored it restarted (any crash or restart) after the send, before this delivery
//!   and no later than [`delay_progress_window_ms`] after the delivery before: the
//!   broker re-stored the copies it had made since it last persisted its delay offsets
//!   (`delayOffset.json`), as RocketMQ's `ScheduleMessageService` does. The earlier
//!   copy was made no later than it was delivered, so a restart later than that window
//!   found its progress persisted: a level re-delivered from further back is a broker
//!   that did not persist it.
//! - otherwise it is a redelivery of one position, and needs an ownership change: it
//!   was made in another span (see `tables.rs`) than the delivery before. The span it
//!   was made in says which change:
//!   - `offset_moved`: the span began at a PULL_OFFSET_MOVED (`Own.offset_moved`);
//!   - `consumer_restart`: the same client, in a later incarnation (its node crashed
//!     or restarted before its commit was persisted);
//!   - `commit_rolled_back`: the span's start offset is below the highest offset the
//!     group had committed on the queue before it began, and the last commit was
//!     made at least `offsets::COMMIT_IN_FLIGHT_MS` before it (the broker lost or
//!     rolled back the commit: crash, failover to a slave, reset — `offsets`,
//!     `order` and `commits` bound how far); a commit made later may still have been
//!     in flight, which is the hand-over race of a `rebalance`;
//!   - `rebalance`: another client, or a new `Own` of the same one.
//!
//!   A redelivery in the very span of the delivery before it has no cause: a
//!   violation (e.g. a pull answered with a `nextBeginOffset` behind the request).
//!
//! The verdict counts duplicates by cause ([`super::CheckStats::duplicates_by_cause`])
//! and, as before, by group. One pass over the duplicates the index collected.

use super::faults::{CACHE_LOSS, RESTARTS};
use super::offsets::COMMIT_IN_FLIGHT_MS;
use super::tables::{Dup, Index, Msg, NONE};
use super::{CheckStats, Rule, Sink};
use crate::history::{BrokerGroupMeta, Entry, FlushMode};

/// Why a redelivery happened.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    Retry,
    ProducerRetry,
    OffsetMoved,
    ConsumerRestart,
    CommitRolledBack,
    Rebalance,
    DelayRedelivered,
    Suspended,
}

impl Cause {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cause::Retry => "retry",
            Cause::ProducerRetry => "producer_retry",
            Cause::OffsetMoved => "offset_moved",
            Cause::ConsumerRestart => "consumer_restart",
            Cause::CommitRolledBack => "commit_rolled_back",
            Cause::Rebalance => "rebalance",
            Cause::DelayRedelivered => "delay_redelivered",
            Cause::Suspended => "suspended",
        }
    }
}

/// Where a `Deliver` entry took its message from.
fn position(e: &Entry) -> Option<(&str, &str, i32, u64)> {
    match e {
        Entry::Deliver {
            broker,
            topic,
            queue_id,
            queue_offset,
            ..
        } => Some((broker, topic, *queue_id, *queue_offset)),
        _ => None,
    }
}

/// A send with no outcome at all whose producer's process ended after invoking it:
/// the attempts it made before dying (a retry after an unanswered one included) are
/// unknown, so a second copy at another position is its own.
fn unfinished_by_a_crash(ix: &Index, m: &Msg) -> bool {
    if m.invoke == NONE || m.ok != NONE || m.fail != NONE {
        return false;
    }
    let Entry::SendInvoke { client, .. } = &ix.entries[m.invoke as usize] else {
        return false;
    };
    ix.faults
        .first_on(*client, RESTARTS, m.invoke_ms, ix.end_ms)
        .is_some()
}

/// How long after a delayed message's copy was made a restart of its master may still
/// re-deliver it: the copy becomes durable (at once under SYNC_FLUSH; under
/// ASYNC_FLUSH within the thorough flush interval), the next persist of the delay
/// offsets records it (`flushDelayOffsetInterval`), and that file's write, its fsync
/// and the renames' directory sync complete.
pub(crate) fn delay_progress_window_ms(ix: &Index, group: &BrokerGroupMeta) -> u64 {
    let p = &ix.promise;
    let durable_ms = match group.flush {
        FlushMode::SyncFlush => p.fsync_max_ms,
        FlushMode::AsyncFlush => p.flush_commit_log_thorough_interval_ms + p.fsync_max_ms,
    };
    durable_ms + p.flush_delay_offset_interval_ms + 3 * p.fsync_max_ms
}

/// A delayed message whose storing master crashed or restarted after its send, before
/// `at_ms` and within [`delay_progress_window_ms`] of `prev_at_ms` (the delivery of
/// the copy before): the master may have re-stored it from its schedule queue.
fn delay_master_restarted(ix: &Index, m: &Msg, prev_at_ms: u64, at_ms: u64) -> bool {
    if m.delay_level == 0 {
        return false;
    }
    let Some(group) = ix.stored_broker(m).and_then(|b| ix.broker_group(b)) else {
        return false;
    };
    let until_ms = at_ms.min(prev_at_ms.saturating_add(delay_progress_window_ms(ix, group)));
    ix.faults
        .first_on(
            group.master_node,
            RESTARTS | CACHE_LOSS,
            m.invoke_ms,
            until_ms,
        )
        .is_some()
}

/// The cause of one duplicate, or why it has none.
fn cause(ix: &Index, d: &Dup) -> Result<Cause, &'static str> {
    if d.retry {
        return Ok(Cause::Retry);
    }
    if d.after_suspend {
        return Ok(Cause::Suspended);
    }
    let here = position(&ix.entries[d.entry as usize]);
    let before = position(&ix.entries[d.prev_entry as usize]);
    if here != before {
        let m = &ix.msgs[d.msg as usize];
        return if m.retried_after_unknown || unfinished_by_a_crash(ix, m) {
            Ok(Cause::ProducerRetry)
        } else if delay_master_restarted(
            ix,
            m,
            ix.entries[d.prev_entry as usize].at_ms(),
            ix.entries[d.entry as usize].at_ms(),
        ) {
            Ok(Cause::DelayRedelivered)
        } else {
            Err("the message sits at two positions and its producer never retried after an unknown outcome")
        };
    }
    if d.span == d.prev_span || d.span == NONE {
        return Err("redelivered in the same ownership span, with no rebalance, restart or offset move between");
    }
    let span = &ix.spans[d.span as usize];
    if span.moved {
        return Ok(Cause::OffsetMoved);
    }
    if let Some(prev) = ix.spans.get(d.prev_span as usize) {
        if prev.client == span.client && prev.incarnation != span.incarnation {
            return Ok(Cause::ConsumerRestart);
        }
    }
    if let (Some(start), Some(c)) = (span.start, span.prev_commit) {
        // A commit made just before the new owner read the offset may still have been
        // in flight: that is the hand-over race of a rebalance, not a lost commit.
        if start < c.high && c.at_ms + COMMIT_IN_FLIGHT_MS <= span.at_ms {
            return Ok(Cause::CommitRolledBack);
        }
    }
    Ok(Cause::Rebalance)
}

pub(crate) fn check(ix: &Index, duplicates: &[u64], sink: &mut Sink, stats: &mut CheckStats) {
    for g in 0..ix.group_info.len() {
        let n = duplicates.get(g).copied().unwrap_or(0);
        if n > 0 || ix.group_info[g].meta.is_some() {
            *stats
                .duplicates_by_group
                .entry(ix.group_name(g as u32).to_string())
                .or_insert(0) += n;
        }
    }
    for d in &ix.dups {
        match cause(ix, d) {
            Ok(c) => {
                *stats
                    .duplicates_by_cause
                    .entry(c.name().into())
                    .or_insert(0) += 1
            }
            Err(why) => {
                *stats
                    .duplicates_by_cause
                    .entry("unexplained".into())
                    .or_insert(0) += 1;
                let wid = ix.msgs[d.msg as usize].wid;
                sink.report(Rule::Duplicates, format!("wid {wid}"), || {
                    let at = ix.entries[d.entry as usize].at_ms();
                    let describe = |e: u32| match &ix.entries[e as usize] {
                        Entry::Deliver {
                            at_ms,
                            client,
                            broker,
                            topic,
                            queue_id,
                            queue_offset,
                            ..
                        } => format!(
                            "at {at_ms}ms to n{client} from {broker}/{topic}/q{queue_id} \
                             offset {queue_offset}"
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "group {}: {} delivered again {} after {}: {why}; {}",
                        ix.group_name(d.group),
                        ix.describe_msg(d.msg),
                        describe(d.entry),
                        describe(d.prev_entry),
                        ix.faults.before(ix.entries, at)
                    )
                });
            }
        }
    }
}
