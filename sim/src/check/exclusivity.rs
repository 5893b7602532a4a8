//! **exclusivity**: in an orderly clustering group, a queue is in the listener of one
//! consumer at a time, one message at a time (`ConsumeMessageOrderlyService` consumes a
//! queue on one thread, only while its broker lock is held).
//!
//! A *listener call* begins at a `Deliver` to the group (not from `%RETRY%`) and ends at
//! the `Consumed` that answers it (same group, client, queue and offset, the first one
//! after it). One without an answer never returned: it lasts until its client's node
//! crashed or restarted, or to the end of the run. A history with no `Consumed` at all
//! (written before listener results were recorded) has listeners that return at once.
//! Two calls on one queue of the group that overlap in true time are a violation, one
//! per pair of clients and queue (calls of one client overlapping each other too: the
//! queue is consumed on one thread).
//!
//! Excuse (`lock_lost_with_broker`), only where the scenario declares RocketMQ's
//! exception (`Promise::orderly_lock_lost_with_broker`): a broker keeps its locks in
//! memory, so a restart of the queue's master within one lock lifetime
//! (`Promise::lock_max_live_time_ms`) before the overlap began lets a second consumer
//! lock a queue whose holder still consumes until its next renewal fails.
//!
//! Linear after one sort of the calls by (group, queue, begin).

use super::faults::{bit, FaultRec, RESTARTS};
use super::tables::{Dlv, Index, NONE};
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::FaultKind;

/// One listener call.
#[derive(Clone, Copy)]
struct Call {
    group: u32,
    queue: u32,
    client: u32,
    offset: u64,
    begin_ms: u64,
    /// `u64::MAX` until its `Consumed` is seen.
    end_ms: u64,
    entry: u32,
}

#[derive(Default)]
pub(crate) struct Exclusivity {
    calls: Vec<Call>,
    /// (group, client, queue, offset) → the call waiting for its `Consumed`.
    open: FastMap<(u32, u32, u32, u64), u32>,
    /// A `Consumed` was seen: listener calls have ends.
    answered: bool,
}

impl Exclusivity {
    /// A delivery to an orderly clustering group: a listener call begins.
    #[inline]
    pub(crate) fn begin(&mut self, d: &Dlv) {
        if d.retry {
            return;
        }
        let i = self.calls.len() as u32;
        self.calls.push(Call {
            group: d.group,
            queue: d.queue,
            client: d.client,
            offset: d.offset,
            begin_ms: d.at_ms,
            end_ms: u64::MAX,
            entry: d.entry,
        });
        self.open.insert((d.group, d.client, d.queue, d.offset), i);
    }

    /// The listener returned for the delivery of (`group`, `client`, `queue`, `offset`).
    #[inline]
    pub(crate) fn end(&mut self, group: u32, client: u32, queue: u32, offset: u64, at_ms: u64) {
        self.answered = true;
        if let Some(i) = self.open.remove(&(group, client, queue, offset)) {
            self.calls[i as usize].end_ms = at_ms;
        }
    }

    pub(crate) fn finish(mut self, ix: &Index, sink: &mut Sink) {
        if self.calls.is_empty() {
            return;
        }
        for c in &mut self.calls {
            if c.end_ms != u64::MAX {
                continue;
            }
            c.end_ms = if self.answered {
                ix.faults
                    .first_on(c.client, RESTARTS, c.begin_ms, ix.end_ms)
                    .map_or(ix.end_ms.max(c.begin_ms), |f| f.at_ms)
            } else {
                c.begin_ms
            };
        }
        self.calls
            .sort_unstable_by_key(|c| (c.group, c.queue, c.begin_ms, c.entry));
        let mut reported: Vec<(u32, u32, u32, u32)> = Vec::new();
        let mut start = 0;
        while start < self.calls.len() {
            let (g, q) = (self.calls[start].group, self.calls[start].queue);
            let end = start + self.calls[start..].partition_point(|c| (c.group, c.queue) == (g, q));
            // The call that ends last among those begun so far.
            let mut longest: Option<Call> = None;
            for c in &self.calls[start..end] {
                if let Some(l) = longest {
                    if c.begin_ms < l.end_ms {
                        let pair = (g, q, l.client.min(c.client), l.client.max(c.client));
                        if !reported.contains(&pair) && !excused(ix, sink, &l, c) {
                            reported.push(pair);
                            report(ix, sink, &l, c);
                        }
                    }
                }
                if longest.is_none_or(|l| c.end_ms > l.end_ms) {
                    longest = Some(*c);
                }
            }
            start = end;
        }
    }
}

/// Where the scenario declares RocketMQ's exception: the restart of `queue`'s master
/// within one lock lifetime before `at_ms` (its locks were lost with it).
pub(crate) fn lock_lost_with_broker<'a>(
    ix: &'a Index,
    queue: u32,
    at_ms: u64,
) -> Option<&'a FaultRec> {
    if !ix.promise.orderly_lock_lost_with_broker {
        return None;
    }
    let bg = ix.broker_group(ix.queues[queue as usize].broker)?;
    let from = at_ms.saturating_sub(ix.promise.lock_max_live_time_ms);
    let kinds = RESTARTS | bit(FaultKind::DiskDamaged);
    ix.faults.first_on(bg.master_node, kinds, from, at_ms)
}

fn excused(ix: &Index, sink: &mut Sink, a: &Call, b: &Call) -> bool {
    let Some(f) = lock_lost_with_broker(ix, b.queue, b.begin_ms) else {
        return false;
    };
    let evidence = format!(
        "n{} and n{} on {} at {}ms: {}",
        a.client,
        b.client,
        ix.queue_name(b.queue),
        b.begin_ms,
        f.label()
    );
    sink.excuses
        .record(Rule::Exclusivity, "lock_lost_with_broker", || evidence);
    true
}

fn report(ix: &Index, sink: &mut Sink, a: &Call, b: &Call) {
    debug_assert!(a.entry != NONE && b.entry != NONE);
    sink.report(
        Rule::Exclusivity,
        format!("{} {}", ix.group_name(b.group), ix.queue_name(b.queue)),
        || {
            let end = |c: &Call| {
                if c.end_ms == ix.end_ms {
                    "never returned".to_string()
                } else {
                    format!("until {}ms", c.end_ms)
                }
            };
            format!(
                "group {}: {} was in the orderly listener of n{} (offset {}, from {}ms, {}) \
                 and of n{} (offset {}, from {}ms, {}) at once; {}",
                ix.group_name(b.group),
                ix.queue_name(b.queue),
                a.client,
                a.offset,
                a.begin_ms,
                end(a),
                b.client,
                b.offset,
                b.begin_ms,
                end(b),
                ix.faults.before(ix.entries, b.begin_ms)
            )
        },
    );
}
