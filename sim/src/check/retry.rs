//! **retry**: what a group's listener fails (`RECONSUME_LATER`, a `Consumed` entry)
//! comes back to that group only, raised, not early, and after the maximum lands in the
//! group's dead-letter queue (`DeadLetter` entries, read by a reader outside the
//! group). Per (message, group), with *failures* the `RECONSUME_LATER` (or orderly
//! SUSPEND_CURRENT_QUEUE_A_MOMENT) answers the group gave the message so far, and `max`
//! the group's maximum (`GroupMeta::max_reconsume_times`, else the declared
//! `Promise::max_reconsume_times`; an orderly group without one has none):
//!
//! - **raised**: a delivery from `%RETRY%{group}` has reconsume count ≥ 1 (the broker
//!   raises it on every hand-back);
//! - **caused**: a delivery with reconsume count n > 0 comes after at least n
//!   failures (a success is never handed back; a consumer that could not hand a
//!   message back re-hands it itself with its count raised by one, still ≤ failures);
//! - **same group**: a delivery from `%RETRY%{g}` goes to group g only;
//! - **not early**: a delivery from the retry topic with count n comes no earlier than
//!   the first failure of a delivery whose count was at least n − 1 plus the delay of
//!   level 3 + (n − 1) (`Promise::retry_delay_ms`; the broker stores the copy after the
//!   failure and counts the delay from then). Excused (`clock_skew`) by a clock skew on
//!   the broker group it came from, which measures the delay with its own clock;
//! - **dead-lettered at the maximum**: a `DeadLetter` has reconsume count max + 1 and
//!   comes after at least that many failures; a group without a maximum (orderly, by
//!   default) has none. An orderly consumer's copy (its own send to `%RETRY%{group}`
//!   past its maximum) carries the count of the delivery that failed last plus one:
//!   max + 1, or more when an earlier copy failed and the message was suspended again
//!   (each raise follows a failure, so it still comes after at least count failures);
//! - **never past the maximum**: no delivery to the group has a reconsume count above
//!   max, except a consumer's own re-hand (the same client, queue and offset as a
//!   failed delivery with count one lower: its hand-back — or an orderly consumer's
//!   dead-letter copy — failed, and the message is dead-lettered once one succeeds):
//!   a dead-lettered message is never delivered to the group again;
//! - **not lost**: in a clustering group (RocketMQ never retries a broadcast message),
//!   the last failure of a message the group never consumed (a redelivered copy that
//!   failed after another consumer of the group consumed it may be dropped with its
//!   queue at a rebalance) is followed by another delivery of it to the group or by its
//!   `DeadLetter`, when the run lasted long enough after it (and
//!   after the heal): the retry delay of its count, one hand-back re-try
//!   ([`LOCAL_RETRY_MS`]) and the settle window. Excused (`retry_copy_lost`) by a loss of
//!   page cache or media in the broker group the last failed delivery came from (where
//!   the consumer hands it back and its retry copy lives), at or after the first
//!   delivery of that copy: the broker stores a retry copy without waiting for a flush
//!   (RocketMQ's `WAIT=false`), and a consumer whose hand-back fails re-hands the copy
//!   it holds only while its queue lives (a lost master's queues are dropped, and the
//!   message with them, as RocketMQ's `ConsumeRequest` does for a dropped queue).
//!
//! A listener that held a message past `Promise::consume_timeout_ms` failed it, whatever
//! it answered at last: its consumer may have given up on it and handed the message back
//! (consumeTimeout); past twice that, it surely did, and the message must come back.
//!
//! A `Consumed` entry names the delivery it answers by client, queue and offset; the
//! reconsume count is that delivery's. Only deliveries with a workload id count.

use super::delay::clock_skew_before;
use super::faults::{CACHE_LOSS, MEDIA_LOSS};
use super::tables::{Dlv, Index, NodeMap, NONE, RETRY_PREFIX};
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::ConsumeOutcome;

/// RocketMQ's `submitConsumeRequestLater`: a consumer that could not hand a message back
/// consumes it again this much later.
pub(crate) const LOCAL_RETRY_MS: u64 = 5_000;

/// A delivery whose listener has not answered yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    queue: u32,
    offset: u64,
    msg: u32,
    group: u32,
    reconsume: i32,
    at_ms: u64,
}

/// What one group did with one message that it failed at least once.
#[derive(Clone, Debug, Default)]
struct Failures {
    count: u32,
    /// `first_ms[n]`: the first failure of a delivery with reconsume count n.
    first_ms: Vec<u64>,
    last_ms: u64,
    last_count: i32,
    /// The queue and offset of the last failed delivery: its broker group's master is
    /// where the consumer hands the message back, and where its retry copy lives.
    last_queue: u32,
    last_offset: u64,
    /// Since when the group has had the copy at (`last_queue`, `last_offset`): its
    /// first delivery there. A consumer that cannot hand the message back re-hands that
    /// copy itself, and drops it with its queue when the queue's broker is gone.
    copy_since_ms: u64,
    /// The last failure was a listener held past consumeTimeout: `last_ms` is the
    /// earliest the consumer could give up on it, and it may have done so up to one
    /// sweep period later.
    last_timed_out: bool,
    /// The last delivery of the message to the group.
    last_delivery_ms: u64,
    dead_lettered: bool,
    /// Some failure was a RECONSUME_LATER: the message was handed back to the broker
    /// and must come back or be dead-lettered. An orderly SUSPEND alone is re-handed in
    /// place, from its own queue position: whether it comes back is the lost and
    /// key_order rules' question, not this one's.
    handed_back: bool,
}

impl Failures {
    /// The first failure of a delivery whose count was at least `n`.
    fn first_at_least(&self, n: i32) -> Option<u64> {
        let from = usize::try_from(n).unwrap_or(0);
        self.first_ms.get(from..)?.iter().copied().min()
    }
}

/// Something the rule found while the deliveries streamed by.
#[derive(Clone, Copy, Debug)]
enum Found {
    NotRaised(Dlv),
    Uncaused(Dlv, u32),
    OtherGroup(Dlv),
    Early(Dlv, u64),
    PastMaximum(Dlv),
    DeadLetterCount {
        entry: u32,
        msg: u32,
        group: u32,
        reconsume: i32,
        failures: u32,
    },
    /// A consumer gave up on a listener (TIME_OUT) before consumeTimeout.
    GaveUpEarly {
        entry: u32,
        msg: u32,
        group: u32,
        held_ms: u64,
    },
}

#[derive(Default)]
pub(crate) struct Retry {
    /// Per client, its latest delivery still waiting for the listener; older ones
    /// move to `awaiting` (a listener that answers at once never needs it).
    last: NodeMap<Pending>,
    awaiting: FastMap<(u32, u32, u64), Pending>,
    failed: FastMap<(u32, u32), Failures>,
    /// Failed deliveries by (client, queue, offset): what a consumer's own re-hand of
    /// the same message is.
    failed_at: FastMap<(u32, u32, u64), i32>,
    /// `succeeded[group]`: a bit per message the group's listener consumed.
    succeeded: Vec<Vec<u64>>,
    found: Vec<Found>,
}

impl Retry {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, ix: &Index) {
        if d.msg == NONE {
            return;
        }
        let pending = Pending {
            queue: d.queue,
            offset: d.offset,
            msg: d.msg,
            group: d.group,
            reconsume: d.reconsume,
            at_ms: d.at_ms,
        };
        if let Some(old) = self.last.insert(d.client, pending) {
            self.awaiting.insert((d.client, old.queue, old.offset), old);
        }
        if d.retry {
            if d.reconsume < 1 {
                self.found.push(Found::NotRaised(*d));
            }
            let topic = ix.topics.name(d.topic);
            let owner = &topic[RETRY_PREFIX.len()..];
            if owner != ix.group_name(d.group) {
                self.found.push(Found::OtherGroup(*d));
            }
        }
        let max = ix.group_info[d.group as usize].max_reconsume_times;
        if max.is_some_and(|max| i64::from(d.reconsume) > i64::from(max))
            && !self.is_rehand(d.client, d.queue, d.offset, d.reconsume)
        {
            self.found.push(Found::PastMaximum(*d));
        }
        let failures = self.failed.get_mut(&(d.msg, d.group));
        if d.reconsume <= 0 && failures.is_none() {
            return;
        }
        let count = failures.as_ref().map_or(0, |f| f.count);
        if i64::from(d.reconsume) > i64::from(count) {
            self.found.push(Found::Uncaused(*d, count));
        }
        let Some(f) = failures else { return };
        f.last_delivery_ms = f.last_delivery_ms.max(d.at_ms);
        if d.retry && d.reconsume >= 1 {
            if let Some(failed_ms) = f.first_at_least(d.reconsume - 1) {
                let due_ms =
                    failed_ms.saturating_add(ix.promise.retry_delay_ms(d.reconsume as u32 - 1));
                if d.at_ms < due_ms {
                    self.found.push(Found::Early(*d, due_ms));
                }
            }
        }
    }

    /// Whether a delivery to `client` of (`queue`, `offset`) with count `reconsume` is
    /// that client's own re-hand of a delivery it failed there with a count one lower.
    pub(crate) fn is_rehand(&self, client: u32, queue: u32, offset: u64, reconsume: i32) -> bool {
        self.failed_at
            .get(&(client, queue, offset))
            .is_some_and(|&n| n + 1 == reconsume)
    }

    /// The listener of `client` answered `status` for its delivery at (`queue`,
    /// `offset`) (history entry `entry`). A failure: RECONSUME_LATER, an orderly
    /// SUSPEND (its consumer hands the message again in place with the count raised,
    /// as a concurrent one does after a failed send-back), or the consumer's TIME_OUT;
    /// handed back to the broker: RECONSUME_LATER and TIME_OUT. An answer more than
    /// `consume_timeout_ms` after the delivery may have come after the consumer gave up
    /// on the listener and handed the message back, whatever it says: a failure, dated
    /// at the earliest such hand-back; more than twice that, the hand-back surely
    /// happened (the consumeTimeout sweep runs that often).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn consumed(
        &mut self,
        entry: u32,
        client: u32,
        queue: u32,
        offset: u64,
        status: ConsumeOutcome,
        mut at_ms: u64,
        consume_timeout_ms: u64,
    ) {
        let answered = match self.last.get(client) {
            Some(p) if p.queue == queue && p.offset == offset => self.last.remove(client),
            _ => self.awaiting.remove(&(client, queue, offset)),
        };
        let Some(p) = answered else { return };
        let mut handed_back = matches!(
            status,
            ConsumeOutcome::ReconsumeLater | ConsumeOutcome::TimeOut
        );
        let mut failed = handed_back || status == ConsumeOutcome::SuspendCurrentQueueAMoment;
        let held_ms = at_ms.saturating_sub(p.at_ms);
        if status == ConsumeOutcome::TimeOut && held_ms < consume_timeout_ms {
            self.found.push(Found::GaveUpEarly {
                entry,
                msg: p.msg,
                group: p.group,
                held_ms,
            });
        }
        let timed_out = held_ms > consume_timeout_ms;
        if timed_out {
            failed = true;
            handed_back |= held_ms > consume_timeout_ms.saturating_mul(2);
            at_ms = p.at_ms.saturating_add(consume_timeout_ms);
        }
        if !failed {
            let g = p.group as usize;
            if self.succeeded.len() <= g {
                self.succeeded.resize(g + 1, Vec::new());
            }
            let bits = &mut self.succeeded[g];
            let word = p.msg as usize / 64;
            if bits.len() <= word {
                bits.resize(word + 1, 0);
            }
            bits[word] |= 1 << (p.msg % 64);
            return;
        }
        let f = self.failed.entry((p.msg, p.group)).or_default();
        f.count += 1;
        f.handed_back |= handed_back;
        let n = usize::try_from(p.reconsume).unwrap_or(0);
        if f.first_ms.len() <= n {
            f.first_ms.resize(n + 1, u64::MAX);
        }
        f.first_ms[n] = f.first_ms[n].min(at_ms);
        if f.count == 1 || (f.last_queue, f.last_offset) != (p.queue, p.offset) {
            f.copy_since_ms = p.at_ms;
        }
        f.last_ms = at_ms;
        f.last_timed_out = timed_out;
        f.last_count = p.reconsume;
        f.last_queue = p.queue;
        f.last_offset = p.offset;
        self.failed_at.insert((client, queue, offset), p.reconsume);
    }

    /// A `DeadLetter` of message `msg` in `group`'s dead-letter queue.
    pub(crate) fn dead_letter(
        &mut self,
        msg: u32,
        group: u32,
        reconsume: i32,
        entry: u32,
        ix: &Index,
    ) {
        let f = self.failed.entry((msg, group)).or_default();
        f.dead_lettered = true;
        let at_the_maximum = ix.group_info[group as usize].dead_lettered_at_maximum(reconsume)
            && i64::from(f.count) >= i64::from(reconsume);
        if !at_the_maximum {
            self.found.push(Found::DeadLetterCount {
                entry,
                msg,
                group,
                reconsume,
                failures: f.count,
            });
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        let max_of = |g: u32| ix.group_info[g as usize].max_reconsume_times;
        for found in &self.found {
            match *found {
                Found::NotRaised(d) => report(ix, sink, &d, || {
                    format!(
                        "came back from the retry topic with reconsume count {}, not raised",
                        d.reconsume
                    )
                }),
                Found::Uncaused(d, failures) => report(ix, sink, &d, || {
                    format!(
                        "came with reconsume count {} after only {failures} failure(s) in the group \
                         (a success is never handed back)",
                        d.reconsume
                    )
                }),
                Found::OtherGroup(d) => report(ix, sink, &d, || {
                    "is another group's retry: a handed-back message goes to its own group only"
                        .to_string()
                }),
                Found::Early(d, due_ms) => {
                    if let Some(evidence) = clock_skew_before(ix, &d) {
                        sink.excuses.record(Rule::Retry, "clock_skew", || evidence);
                        continue;
                    }
                    report(ix, sink, &d, || {
                        format!(
                            "came back with reconsume count {} {} ms before its retry delay \
                             (level {}) had passed since the failure it answers (due at {due_ms}ms)",
                            d.reconsume,
                            due_ms - d.at_ms,
                            crate::history::RETRY_FIRST_DELAY_LEVEL as i32 + d.reconsume - 1,
                        )
                    })
                }
                Found::PastMaximum(d) => report(ix, sink, &d, || {
                    format!(
                        "came with reconsume count {}, past the maximum {}: it should have \
                         been dead-lettered, not delivered again",
                        d.reconsume,
                        max_of(d.group).unwrap_or(u32::MAX),
                    )
                }),
                Found::DeadLetterCount {
                    entry,
                    msg,
                    group,
                    reconsume,
                    failures,
                } => {
                    let at_ms = ix.entries[entry as usize].at_ms();
                    let expected = match max_of(group) {
                        Some(max) => format!(
                            "a message is dead-lettered at its failure number {} (count {})",
                            u64::from(max) + 1,
                            u64::from(max) + 1
                        ),
                        None => "the group has no maximum: it never dead-letters".to_string(),
                    };
                    sink.report(
                        Rule::Retry,
                        format!("wid {}", ix.msgs[msg as usize].wid),
                        || {
                            format!(
                            "{} was read from the dead-letter queue of group {} at {at_ms}ms with \
                             reconsume count {reconsume} after {failures} failure(s); {expected}; {}",
                            ix.describe_msg(msg),
                            ix.group_name(group),
                            ix.faults.before(ix.entries, at_ms),
                        )
                        },
                    );
                }
                Found::GaveUpEarly {
                    entry,
                    msg,
                    group,
                    held_ms,
                } => {
                    let at_ms = ix.entries[entry as usize].at_ms();
                    let timeout_ms = ix.promise.consume_timeout_ms;
                    let wid = if msg == NONE {
                        "no wid".to_string()
                    } else {
                        format!("wid {}", ix.msgs[msg as usize].wid)
                    };
                    sink.report(Rule::Retry, wid, || {
                        format!(
                            "a consumer of group {} gave up on its listener (TIME_OUT) at {at_ms}ms, \
                             {held_ms} ms after the delivery; consumeTimeout is {timeout_ms} ms",
                            ix.group_name(group),
                        )
                    });
                }
            }
        }
        self.lost(ix, sink);
    }

    /// Whether the group's listener consumed `msg` at some time.
    fn succeeded(&self, msg: u32, group: u32) -> bool {
        self.succeeded
            .get(group as usize)
            .and_then(|bits| bits.get(msg as usize / 64))
            .is_some_and(|w| w & (1 << (msg % 64)) != 0)
    }

    /// **not lost**: each message's last failure is followed by a delivery or a
    /// dead letter, given the time.
    fn lost(&self, ix: &Index, sink: &mut Sink) {
        let mut keys: Vec<&(u32, u32)> = self.failed.keys().collect();
        keys.sort_unstable();
        for &(msg, group) in keys {
            let f = &self.failed[&(msg, group)];
            // RocketMQ never retries a broadcast message.
            let broadcasting = ix
                .group_info
                .get(group as usize)
                .is_some_and(|g| g.broadcasting);
            if broadcasting
                || f.count == 0
                || !f.handed_back
                || f.dead_lettered
                || f.last_delivery_ms > f.last_ms
                || self.succeeded(msg, group)
            {
                continue;
            }
            let sweep_ms = if f.last_timed_out {
                ix.promise.consume_timeout_ms
            } else {
                0
            };
            let bound_ms = ix
                .promise
                .retry_delay_ms(f.last_count.max(0) as u32)
                .saturating_add(LOCAL_RETRY_MS)
                .saturating_add(sweep_ms)
                .saturating_add(ix.promise.settle_window_ms());
            if f.last_ms.max(ix.heal_at_ms).saturating_add(bound_ms) > ix.end_ms {
                continue;
            }
            // Evidence only on the broker group the message was handed back to, since
            // the group had the copy it last failed: a loss elsewhere, or before the
            // copy was delivered from there, cannot have taken it.
            let group_nodes: Vec<u32> = ix
                .broker_group(ix.queues[f.last_queue as usize].broker)
                .map(|g| std::iter::once(g.master_node).chain(g.slave_node).collect())
                .unwrap_or_default();
            if let Some(loss) = ix.faults.first_on_any(
                &group_nodes,
                CACHE_LOSS | MEDIA_LOSS,
                f.copy_since_ms,
                ix.end_ms,
            ) {
                let evidence = loss.label();
                sink.excuses
                    .record(Rule::Retry, "retry_copy_lost", || evidence);
                continue;
            }
            sink.report(
                Rule::Retry,
                format!("wid {}", ix.msgs[msg as usize].wid),
                || {
                    format!(
                    "{} failed in group {} at {}ms (reconsume count {}) and never came back to \
                     the group nor reached its dead-letter queue by the end at {}ms ({bound_ms} ms \
                     allowed after the failure or the heal); {}",
                    ix.describe_msg(msg),
                    ix.group_name(group),
                    f.last_ms,
                    f.last_count,
                    ix.end_ms,
                    ix.faults.before(ix.entries, f.last_ms),
                )
                },
            );
        }
    }
}

fn report(ix: &Index, sink: &mut Sink, d: &Dlv, what: impl FnOnce() -> String) {
    sink.report(
        Rule::Retry,
        format!("wid {}", ix.msgs[d.msg as usize].wid),
        || {
            format!(
                "{} delivered to group {} client n{} at {}ms from {} offset {} {}; {}",
                ix.describe_msg(d.msg),
                ix.group_name(d.group),
                d.client,
                d.at_ms,
                ix.queue_name(d.queue),
                d.offset,
                what(),
                ix.faults.before(ix.entries, d.at_ms),
            )
        },
    );
}
