//! **commits**: a clustering group's committed offsets keep up with what it consumed,
//! (not going back across a broker restart is the `offsets` rule's lower bound).
//!
//! 1. **Keep up.** When the run has a quiet period (`heal_at_ms < end_ms`), for every
//!    clustering group of `Meta` and every queue it consumed from, the last `Commit`
//!    of the group on that queue (by any of its consumers) is at least *consumed*: one
//!    past the highest offset the group was delivered from the queue (not counting
//!    `%RETRY%` deliveries). A PULL_OFFSET_MOVED (`Own.offset_moved`) resets consumed
//!    to the corrected offset: the broker moved the group back on purpose. A consumer
//!    commits every owned queue every persist interval (`persistConsumerOffsetInterval`,
//!    5 s), so seconds of quiet suffice. Excused only when the queue's master is down
//!    at `end_ms` (there is nowhere to commit to), or when the page cache or disk of
//!    the queue's broker group (master or slave) was lost after the highest offset
//!    was first delivered (the served tail may have been truncated and its offsets
//!    handed to other messages; the loss allowance judges those).
//! 2. **Stay put across a broker restart** is judged by `offsets`: its lower bound on a
//!    new owner's start is the group's commit as of one declared persist interval
//!    (`Meta.promise`) plus an fsync before a restart of the queue's broker group.
//!
//! Linear: deliveries fold into a per-(group, queue) high-water mark as they stream
//! by; commits and spans are walked once in history order.

use super::faults::{CACHE_LOSS, MEDIA_LOSS};
use super::tables::{Dlv, Index, NONE};
use super::{Rule, Sink};

/// Per (group, queue): one past the highest offset delivered (reset by an offset
/// move), and when that offset was first delivered.
/// Dense by group, then queue: it is touched on every delivery.
#[derive(Default)]
pub(crate) struct Commits {
    consumed: Vec<Vec<(u64, u64)>>,
}

impl Commits {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv) {
        if d.retry || d.span == NONE {
            return;
        }
        let c = self.slot(d.group, d.queue);
        if d.offset + 1 > c.0 {
            *c = (d.offset + 1, d.at_ms);
        }
    }

    pub(crate) fn own(&mut self, group: u32, queue: u32, start: u64, moved: bool) {
        if moved {
            *self.slot(group, queue) = (start, 0);
        }
    }

    #[inline]
    fn slot(&mut self, group: u32, queue: u32) -> &mut (u64, u64) {
        let (g, q) = (group as usize, queue as usize);
        if g >= self.consumed.len() {
            self.consumed.resize_with(g + 1, Vec::new);
        }
        let row = &mut self.consumed[g];
        if q >= row.len() {
            row.resize(q + 1, (0, 0));
        }
        &mut row[q]
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        keep_up(self, ix, sink);
    }
}

fn clustering(ix: &Index, g: u32) -> bool {
    let info = &ix.group_info[g as usize];
    info.meta.is_some() && !info.broadcasting
}

fn keep_up(c: &Commits, ix: &Index, sink: &mut Sink) {
    if ix.heal_at_ms >= ix.end_ms {
        return;
    }
    // The last commit of each (group, queue) the groups consumed from.
    let mut last: Vec<Vec<Option<(u64, u64)>>> =
        c.consumed.iter().map(|row| vec![None; row.len()]).collect();
    for cm in &ix.commits {
        let slot = last
            .get_mut(cm.group as usize)
            .and_then(|row| row.get_mut(cm.queue as usize));
        if let Some(slot) = slot {
            *slot = Some((cm.offset, cm.at_ms));
        }
    }
    let keys = c.consumed.iter().enumerate().flat_map(|(g, row)| {
        row.iter()
            .enumerate()
            .map(move |(q, &v)| ((g as u32, q as u32), v))
    });
    for ((g, q), (consumed, consumed_at_ms)) in keys {
        if !clustering(ix, g) || consumed == 0 {
            continue;
        }
        let committed = last[g as usize][q as usize];
        if committed.is_some_and(|(o, _)| o >= consumed) {
            continue;
        }
        let broker = ix.queues[q as usize].broker;
        if let Some(bg) = ix.broker_group(broker) {
            if ix.faults.down_at(bg.master_node, ix.end_ms) {
                let m = bg.master_node;
                sink.excuses
                    .record(Rule::Commits, "master_down_at_end", || {
                        format!("{}: master n{m} down at the end", ix.queue_name(q))
                    });
                continue;
            }
            // The records served past the commit may have been truncated since: the
            // page cache or the disk of the queue's broker group was lost after the
            // highest one was delivered (the loss allowance judges those messages). For
            // an orderly group, after it was sent: its listener may take a message long
            // after the pull that served it.
            let nodes: Vec<u32> = std::iter::once(bg.master_node)
                .chain(bg.slave_node)
                .collect();
            if let Some(f) =
                ix.faults
                    .first_on_any(&nodes, CACHE_LOSS | MEDIA_LOSS, consumed_at_ms, ix.end_ms)
            {
                sink.excuses.record(Rule::Commits, "served_tail_lost", || {
                    format!("{} up to {consumed}: {}", ix.queue_name(q), f.label())
                });
                continue;
            }
        }
        sink.report(
            Rule::Commits,
            format!("{} {}", ix.group_name(g), ix.queue_name(q)),
            || {
                let what = match committed {
                    Some((o, at)) => format!("its last commit is offset {o} at {at}ms"),
                    None => "it never committed".to_string(),
                };
                format!(
                    "group {} consumed {} up to offset {consumed} but by the end ({}ms) {what}; {}",
                    ix.group_name(g),
                    ix.queue_name(q),
                    ix.end_ms,
                    ix.faults.before(ix.entries, ix.end_ms)
                )
            },
        );
    }
}
