//! **commits**: a clustering group's committed offsets keep up with what it consumed,
//! and do not go back across a broker restart by more than the broker may lose.
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
//! 2. **Stay put across a broker restart.** A new owner's start offset read from a
//!    master (`Own.offset_from_broker_id == 0`) after that master's process ended
//!    (crash, kill, stop: [`STOPS`]) is at least the highest commit the group made on
//!    the queue more than [`PERSIST_INTERVAL_MS`] + [`FSYNC_MS`] before that stop:
//!    the broker persists `consumerOffset.json` every 5 s, so what was committed one
//!    interval and one fsync earlier, in the master's last run (after its last
//!    restart before the stop: a commit made while it was down never arrived), is on
//!    its disk (or a commit made after that and
//!    before the stop, so the bound is the lowest of those). A commit after the
//!    restart and before the `Own` replaced it: then `offsets` judges instead. A loss of the master's page cache
//!    (OS crash, power cut, lost machine) or media loses the unsynced file, and a
//!    network fault on the committer or the master around the commit may have dropped
//!    the oneway commit: those stops are not judged.
//!
//! Linear: deliveries fold into a per-(group, queue) high-water mark as they stream
//! by; commits and spans are walked once in history order.

use super::faults::{bit, CACHE_LOSS, MEDIA_LOSS, NETWORK};
use super::hasher::FastMap;
use super::index::{Dlv, Index, NONE};
use super::{Rule, Sink};
use crate::history::FaultKind;

/// RocketMQ's `flushConsumerOffsetInterval` (broker): consumer offsets are persisted
/// every 5 s.
pub(crate) const PERSIST_INTERVAL_MS: u64 = 5_000;
/// One fsync of the offsets file: a generous bound on a disk sync's latency.
pub(crate) const FSYNC_MS: u64 = 1_000;

/// Faults that end a broker's process (its in-memory offset table is lost).
const STOPS: u16 = bit(FaultKind::ProcessCrash);

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
        stay_put(ix, sink);
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
    let mut last: FastMap<(u32, u32), (u64, u64)> = FastMap::default();
    for cm in &ix.commits {
        last.insert((cm.group, cm.queue), (cm.offset, cm.at_ms));
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
        let committed = last.get(&(g, q)).copied();
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
            // highest one was delivered (the loss allowance judges those messages).
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

fn stay_put(ix: &Index, sink: &mut Sink) {
    // Commits of each (group, queue), in time order.
    let mut commits: FastMap<(u32, u32), Vec<u32>> = FastMap::default();
    for (i, cm) in ix.commits.iter().enumerate() {
        if clustering(ix, cm.group) {
            commits
                .entry((cm.group, cm.queue))
                .or_default()
                .push(i as u32);
        }
    }
    for sp in &ix.spans {
        let Some(start) = sp.start else { continue };
        if sp.from_replica || sp.moved || !clustering(ix, sp.group) {
            continue;
        }
        let Some(bg) = ix.broker_group(ix.queues[sp.queue as usize].broker) else {
            continue;
        };
        let master = bg.master_node;
        // The master's last stop (of any kind) before the span began.
        let Some(stop) = ix
            .faults
            .on_from(master, 0)
            .take_while(|f| f.at_ms <= sp.at_ms)
            .filter(|f| bit(f.kind) & (STOPS | CACHE_LOSS | MEDIA_LOSS) != 0)
            .last()
        else {
            continue;
        };
        if bit(stop.kind) & STOPS == 0 {
            continue; // the page cache or the disk went too: not judged
        }
        let Some(list) = commits.get(&(sp.group, sp.queue)) else {
            continue;
        };
        let safe_until = stop.at_ms.saturating_sub(PERSIST_INTERVAL_MS + FSYNC_MS);
        let at = |i: usize| &ix.commits[list[i] as usize];
        // The broker keeps the last commit it received. A commit after the restart
        // replaced what it recovered (`offsets` judges that); a commit in the last
        // persist interval and fsync before the stop may or may not be on disk, so
        // the bound is the lowest of those and the last one before.
        let n = list.partition_point(|&c| ix.commits[c as usize].at_ms <= safe_until);
        let after_stop = list.partition_point(|&c| ix.commits[c as usize].at_ms <= stop.at_ms);
        if n == 0 || (after_stop < list.len() && at(after_stop).at_ms <= sp.at_ms) {
            continue;
        }
        let cm = at(n - 1);
        // Only a commit the master received in its last run before the stop counts:
        // one made while it was down never arrived, and one from an earlier run may
        // have been lost at that run's end.
        let up_since = ix
            .faults
            .on_from(master, 0)
            .take_while(|f| f.at_ms <= stop.at_ms)
            .filter(|f| f.kind == FaultKind::Restart)
            .last()
            .map_or(0, |f| f.at_ms);
        if cm.at_ms < up_since {
            continue;
        }
        let bound = (n..after_stop)
            .map(|i| at(i).offset)
            .fold(cm.offset, u64::min);
        if start >= bound {
            continue;
        }
        // A oneway commit a network fault around it may have dropped proves nothing.
        let client = ix.spans.get(cm.span as usize).map_or(NONE, |s| s.client);
        let window_end = cm.at_ms + PERSIST_INTERVAL_MS;
        if let Some(f) = ix.faults.last_touching(
            &[master, client],
            NETWORK,
            cm.at_ms.saturating_sub(FSYNC_MS),
            window_end,
        ) {
            let label = f.label();
            sink.excuses
                .record(Rule::Commits, "commit_maybe_dropped", || {
                    format!(
                        "{} commit {bound} at {}ms: {label}",
                        ix.queue_name(sp.queue),
                        cm.at_ms
                    )
                });
            continue;
        }
        sink.report(
            Rule::Commits,
            format!("{} {}", ix.group_name(sp.group), ix.queue_name(sp.queue)),
            || {
                format!(
                    "group {}: n{} took {} at {}ms from offset {start}, but offset {bound} was \
                     committed by n{client} at {}ms, at least one persist interval and an \
                     fsync before {}; {}",
                    ix.group_name(sp.group),
                    sp.client,
                    ix.queue_name(sp.queue),
                    sp.at_ms,
                    cm.at_ms,
                    stop.label(),
                    ix.faults.before(ix.entries, sp.at_ms)
                )
            },
        );
    }
}
