//! **key_order**: an orderly group consumes each sharding key's messages in the order
//! they were sent (`Meta.groups[].orderly`, `SendInvoke.sharding_key`).
//!
//! A key's *sequence* is its acknowledged messages (a `SendOk`) in `SendInvoke` order:
//! the workload's orderly producers send a key's next message only after the previous
//! one's outcome, so that is their send order. A *consumption* is a `Consumed` of the
//! orderly group answering CONSUME_SUCCESS (not from `%RETRY%`); in a history with no
//! `Consumed` at all (listeners not recorded), a delivery. Two judgements, per group
//! and key:
//!
//! - **first consumptions go forward**: of two messages of the sequence, each consumed
//!   at some time, the one sent later is never consumed first; and a message whose
//!   listener failed it (a `Consumed` answering SUSPEND_CURRENT_QUEUE_A_MOMENT) and
//!   that was never consumed after is never followed by the consumption of a later one:
//!   the orderly consumer skipped it. A message never delivered is the lost rule's
//!   business, not this one's.
//! - **re-runs are contiguous**: a queue's consumption may go back (a redelivery, whose
//!   cause the duplicates rule judges) and then runs forward again message by message:
//!   going forward past a message of the key stored in the same queue that was
//!   consumed before (a re-run that skips it) is a violation.
//!
//! Excuses, each resting on evidence no wider than the pair judged:
//! - `dead_lettered`: the skipped message (or, judged out of order, the earlier message
//!   first consumed only in a later re-run of its queue), failed by the group, is in the group's
//!   dead-letter queue (a `DeadLetter` of the group with its workload id) with the count
//!   of a message dead-lettered at the group's maximum (max + 1, or more after a copy
//!   that failed; the retry rule judges that it failed that often): an orderly consumer with a maximum commits past a
//!   message only once the broker stored its dead-letter copy. A failed message skipped
//!   without such a copy is a violation.
//! - `dead_letter_lost`: the skipped message failed as often as the group's maximum
//!   allows, and the broker group of its queue (where its consumer sends the copy)
//!   lost its page cache or media after the failure that reached the maximum: the copy
//!   may have been stored unflushed and lost before the reader got to it.
//! - `queue_changed`: the two messages were stored in different queues and a fault
//!   (other than a clock skew or a heal) hit a node that is no client — a broker or a
//!   name server — from one view-convergence window (`Promise::view_convergence_ms`)
//!   before the earlier message's send to the later one's. RocketMQ's producer maps a
//!   key over the route's writable queues, which lose a broker group whose master is
//!   gone or unregistered (documented: strict order holds only while the queues do not
//!   change), so the key moved.
//! - `lost_tail`: the skipped message's queue's broker group crashed or lost its cache
//!   or media between the message's send and the later consumption: the message may be
//!   gone from there (a consumer that still held it may have crashed meanwhile).
//!
//! - `lock_lost_with_broker`: only where the scenario declares RocketMQ's exception
//!   (`Promise::orderly_lock_lost_with_broker`, see `exclusivity.rs`): two clients
//!   consumed the key's queue while its master had lost its locks in a restart within
//!   one lock lifetime before.
//!
//! Linear in the consumptions plus the keyed messages (one sort of each).

use super::exclusivity::lock_lost_with_broker;
use super::faults::{bit, Kinds, CACHE_LOSS, MEDIA_LOSS, RESTARTS};
use super::tables::{Dlv, Index, NONE};
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::{Entry, FaultKind};

/// Faults that can take a broker group's master out of the route.
const ROUTE_FAULTS: Kinds = !(bit(FaultKind::ClockSkew) | bit(FaultKind::Heal));
/// Faults after which a broker group may no longer hold a message it served.
const TAIL_LOSS: Kinds = RESTARTS | CACHE_LOSS | MEDIA_LOSS;

#[derive(Clone, Copy)]
struct Consumption {
    group: u32,
    client: u32,
    msg: u32,
    queue: u32,
    at_ms: u64,
}

/// The deliveries to orderly groups and their listeners' successes, in history order.
#[derive(Default)]
pub(crate) struct KeyOrder {
    delivered: Vec<Consumption>,
    succeeded: Vec<Consumption>,
    /// Listener answers other than success (SUSPEND_CURRENT_QUEUE_A_MOMENT).
    failed: Vec<Consumption>,
    /// A `Consumed` of an orderly group was seen: consumptions are its successes.
    answered: bool,
    /// `DeadLetter`s: (group, message, reconsume count, read at).
    dead_letters: Vec<(u32, u32, i32, u64)>,
}

impl KeyOrder {
    /// A delivery to an orderly group.
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv) {
        if d.msg != NONE && !d.retry {
            self.delivered.push(Consumption {
                group: d.group,
                client: d.client,
                msg: d.msg,
                queue: d.queue,
                at_ms: d.at_ms,
            });
        }
    }

    /// An orderly group's listener answered for message `msg` (success or not).
    #[inline]
    pub(crate) fn answer(
        &mut self,
        group: u32,
        client: u32,
        msg: u32,
        queue: u32,
        at_ms: u64,
        success: bool,
    ) {
        self.answered = true;
        if msg == NONE {
            return;
        }
        let c = Consumption {
            group,
            client,
            msg,
            queue,
            at_ms,
        };
        if success {
            self.succeeded.push(c);
        } else {
            self.failed.push(c);
        }
    }

    /// Message `msg` was read from `group`'s dead-letter queue with count `reconsume`.
    pub(crate) fn dead_letter(&mut self, group: u32, msg: u32, reconsume: i32, at_ms: u64) {
        self.dead_letters.push((group, msg, reconsume, at_ms));
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        if self.delivered.is_empty() {
            return;
        }
        let mut dead_letters: FastMap<(u32, u32), (i32, u64)> = FastMap::default();
        for &(g, m, reconsume, at_ms) in &self.dead_letters {
            if ix.group_info[g as usize].dead_lettered_at_maximum(reconsume) {
                dead_letters.entry((g, m)).or_insert((reconsume, at_ms));
            }
        }
        let keys = Keys::of(ix);
        let consumed = if self.answered {
            &self.succeeded
        } else {
            &self.delivered
        };
        let consumed = by_group_and_key(&keys, consumed);
        let delivered = by_group_and_key(&keys, &self.failed);
        // Walk both lists (sorted by group and key) together.
        let mut d = 0;
        let mut start = 0;
        while start < consumed.len() {
            let (g, k, _) = consumed[start];
            let end = run_end(&consumed, start);
            while d < delivered.len() && (delivered[d].0, delivered[d].1) < (g, k) {
                d = run_end(&delivered, d);
            }
            let d_end = if d < delivered.len() && (delivered[d].0, delivered[d].1) == (g, k) {
                run_end(&delivered, d)
            } else {
                d
            };
            let run: Vec<&Consumption> = consumed[start..end].iter().map(|&(_, _, c)| c).collect();
            let seen: Vec<&Consumption> = delivered[d..d_end].iter().map(|&(_, _, c)| c).collect();
            let j = Judged {
                ix,
                keys: &keys,
                g,
                k,
                run: &run,
                dead_letters: &dead_letters,
            };
            judge(&j, sink, &seen);
            start = end;
        }
    }
}

/// The consumptions of sequenced messages by (group, key), each in history order.
fn by_group_and_key<'c>(keys: &Keys, list: &'c [Consumption]) -> Vec<(u32, u32, &'c Consumption)> {
    let mut out: Vec<(u32, u32, usize)> = list
        .iter()
        .enumerate()
        .filter(|(_, c)| keys.rank[c.msg as usize] != NONE)
        .map(|(i, c)| (c.group, keys.key[c.msg as usize], i))
        .collect();
    out.sort_unstable();
    out.into_iter().map(|(g, k, i)| (g, k, &list[i])).collect()
}

/// One past the last entry of `list` with `list[start]`'s group and key.
fn run_end(list: &[(u32, u32, &Consumption)], start: usize) -> usize {
    let (g, k) = (list[start].0, list[start].1);
    start + list[start..].partition_point(|&(g2, k2, _)| (g2, k2) == (g, k))
}

/// Each keyed, acknowledged message's key and rank in its key's sequence.
struct Keys<'h> {
    /// Per message: its key id, or [`NONE`].
    key: Vec<u32>,
    /// Per message: its position in its key's sequence, or [`NONE`] (no key, no ack).
    rank: Vec<u32>,
    /// Per key: its sequence (message ids, in send order).
    seqs: Vec<Vec<u32>>,
    names: Vec<&'h str>,
    /// The client nodes (consumers of `Meta`, producers), sorted: a fault on any
    /// other node (a broker or a name server) can change a producer's route.
    clients: Vec<u32>,
}

impl<'h> Keys<'h> {
    fn of(ix: &Index<'h>) -> Keys<'h> {
        let mut ids: FastMap<&'h str, u32> = FastMap::default();
        let mut names = Vec::new();
        let mut key = vec![NONE; ix.msgs.len()];
        let mut sequenced: Vec<(u32, u32, u32)> = Vec::new();
        for (m, msg) in ix.msgs.iter().enumerate() {
            let Some(Entry::SendInvoke {
                sharding_key: Some(name),
                ..
            }) = ix.entries.get(msg.invoke as usize)
            else {
                continue;
            };
            let id = *ids.entry(name.as_str()).or_insert_with(|| {
                names.push(name.as_str());
                (names.len() - 1) as u32
            });
            key[m] = id;
            if msg.ok != NONE {
                sequenced.push((id, msg.invoke, m as u32));
            }
        }
        sequenced.sort_unstable();
        let mut rank = vec![NONE; ix.msgs.len()];
        let mut seqs: Vec<Vec<u32>> = vec![Vec::new(); names.len()];
        for (k, _, m) in sequenced {
            let seq = &mut seqs[k as usize];
            rank[m as usize] = seq.len() as u32;
            seq.push(m);
        }
        let clients = ix.client_nodes();
        Keys {
            key,
            rank,
            seqs,
            names,
            clients,
        }
    }
}

/// Group `g`'s consumptions `run` (history order) of key `k`, being judged.
struct Judged<'a, 'h> {
    ix: &'a Index<'h>,
    keys: &'a Keys<'h>,
    g: u32,
    k: u32,
    run: &'a [&'a Consumption],
    /// The dead-lettered messages at their group's maximum: (group, message) → (count,
    /// read at).
    dead_letters: &'a FastMap<(u32, u32), (i32, u64)>,
}

/// `seen`: the group's deliveries of the key when listeners' answers are recorded.
fn judge(j: &Judged, sink: &mut Sink, seen: &[&Consumption]) {
    let (ix, keys, k, run) = (j.ix, j.keys, j.k, j.run);
    let seq = &keys.seqs[k as usize];
    let rank = |c: &Consumption| keys.rank[c.msg as usize] as usize;
    // The first consumption of each rank (index into `run`).
    let mut first = vec![u32::MAX; seq.len()];
    for (i, c) in run.iter().enumerate() {
        let r = rank(c);
        if first[r] == u32::MAX {
            first[r] = i as u32;
        }
    }
    // Delivered, never consumed: the first such delivery of each rank.
    let mut failed: Vec<Option<&Consumption>> = vec![None; seq.len()];
    // Per rank: its failures so far, and when the one that reached the group's
    // maximum (failure number max + 1, after which its consumer sends the dead-letter
    // copy) came.
    let mut failures = vec![0u64; seq.len()];
    let mut copy_sent_ms: Vec<Option<u64>> = vec![None; seq.len()];
    let max = ix.group_info[j.g as usize].max_reconsume_times;
    for c in seen {
        let r = rank(c);
        if first[r] == u32::MAX && failed[r].is_none() {
            failed[r] = Some(c);
        }
        failures[r] += 1;
        if max.is_some_and(|max| failures[r] == u64::from(max) + 1) {
            copy_sent_ms[r] = Some(c.at_ms);
        }
    }
    // First consumptions go forward, and none follows a message skipped.
    let mut prev: Option<usize> = None;
    let mut skipped_failed: Option<(&Consumption, Option<u64>)> = None;
    for r in 0..seq.len() {
        if first[r] == u32::MAX {
            if skipped_failed.is_none() {
                skipped_failed = failed[r].map(|f| (f, copy_sent_ms[r]));
            }
            continue;
        }
        if let Some((f, copy_sent_ms)) = skipped_failed.take() {
            j.failed_then_skipped(sink, f, copy_sent_ms, first[r]);
        }
        if let Some(p) = prev {
            if first[r] < first[p] {
                j.out_of_order(sink, first[p], first[r]);
            }
        }
        prev = Some(r);
    }
    // Re-runs are contiguous within a queue.
    // Per queue: the rank consumed last, and that consumption.
    let mut pos: Vec<(u32, usize, u32)> = Vec::new();
    for (i, c) in run.iter().enumerate() {
        let r = rank(c);
        let Some(slot) = pos.iter_mut().find(|(q, _, _)| *q == c.queue) else {
            pos.push((c.queue, r, i as u32));
            continue;
        };
        let (p, by) = (slot.1, slot.2);
        (slot.1, slot.2) = (r, i as u32);
        for s in p + 1..r {
            let fs = first[s];
            if fs == u32::MAX || fs as usize >= i || ix.msgs[seq[s] as usize].queue != c.queue {
                continue;
            }
            j.skipped(sink, fs, by, i as u32);
        }
    }
}

impl Judged<'_, '_> {
    fn label(&self) -> String {
        format!(
            "group {} key {:?}",
            self.ix.group_name(self.g),
            self.keys.names[self.k as usize]
        )
    }

    /// Excuse `dead_lettered`: the failed message `skipped` is in the group's
    /// dead-letter queue, dead-lettered at the group's maximum.
    fn dead_lettered(&self, sink: &mut Sink, skipped: &Consumption) -> bool {
        let Some(&(reconsume, at_ms)) = self.dead_letters.get(&(self.g, skipped.msg)) else {
            return false;
        };
        let evidence = format!(
            "wid {}: read from the dead-letter queue of group {} at {at_ms}ms with count \
             {reconsume}",
            self.ix.msgs[skipped.msg as usize].wid,
            self.ix.group_name(self.g)
        );
        sink.excuses
            .record(Rule::KeyOrder, "dead_lettered", || evidence);
        true
    }

    /// Excuse `dead_letter_lost`: `failed` failed as often as its group's maximum
    /// allows (its consumer then sends the copy to its own broker group, which stores
    /// it to the dead-letter queue) and that broker group lost its page cache or media
    /// after: a copy stored without a flush (ASYNC_FLUSH) may be gone, never read.
    fn dead_letter_lost(
        &self,
        sink: &mut Sink,
        failed: &Consumption,
        copy_sent_ms: Option<u64>,
    ) -> bool {
        let Some(sent_ms) = copy_sent_ms else {
            return false;
        };
        let ix = self.ix;
        let nodes = self.broker_nodes(failed.queue);
        let Some(f) = ix
            .faults
            .first_on_any(&nodes, CACHE_LOSS | MEDIA_LOSS, sent_ms, ix.end_ms)
        else {
            return false;
        };
        let evidence = format!(
            "wid {}, its copy sent at {sent_ms}ms: {}",
            ix.msgs[failed.msg as usize].wid,
            f.label()
        );
        sink.excuses
            .record(Rule::KeyOrder, "dead_letter_lost", || evidence);
        true
    }

    /// Excuse `lost_tail`: the broker group of `skipped`'s queue crashed or lost data
    /// between the message's send and `now`, so it may be gone from there.
    fn lost_tail(&self, sink: &mut Sink, skipped: &Consumption, now: &Consumption) -> bool {
        let ix = self.ix;
        let nodes = self.broker_nodes(skipped.queue);
        let sent_ms = ix.msgs[skipped.msg as usize].invoke_ms;
        let Some(f) = ix
            .faults
            .first_on_any(&nodes, TAIL_LOSS, sent_ms, now.at_ms)
        else {
            return false;
        };
        let evidence = format!("wid {}: {}", ix.msgs[skipped.msg as usize].wid, f.label());
        sink.excuses
            .record(Rule::KeyOrder, "lost_tail", || evidence);
        true
    }

    /// Excuse `lock_lost_with_broker` (declared by the scenario, as for exclusivity):
    /// two clients consumed one queue of the key while the queue's master had lost its
    /// locks in a restart within one lock lifetime before.
    fn lock_lost(&self, sink: &mut Sink, a: &Consumption, b: &Consumption) -> bool {
        if a.client == b.client {
            return false;
        }
        let Some(f) = lock_lost_with_broker(self.ix, b.queue, b.at_ms) else {
            return false;
        };
        let evidence = format!(
            "n{} and n{} on {}: {}",
            a.client,
            b.client,
            self.ix.queue_name(b.queue),
            f.label()
        );
        sink.excuses
            .record(Rule::KeyOrder, "lock_lost_with_broker", || evidence);
        true
    }

    /// Every node of the broker group of `queue`.
    fn broker_nodes(&self, queue: u32) -> Vec<u32> {
        self.ix
            .broker_group(self.ix.queues[queue as usize].broker)
            .map(|bg| bg.slave_node.into_iter().chain([bg.master_node]).collect())
            .unwrap_or_default()
    }

    /// `run[later]` (sent later) was first consumed before `run[earlier]` was.
    fn out_of_order(&self, sink: &mut Sink, earlier: u32, later: u32) {
        let ix = self.ix;
        let (a, b) = (self.run[earlier as usize], self.run[later as usize]);
        let (ma, mb) = (&ix.msgs[a.msg as usize], &ix.msgs[b.msg as usize]);
        if ma.queue == mb.queue && self.lock_lost(sink, a, b) {
            return;
        }
        // The earlier one was dead-lettered at the maximum, so its consumer went on
        // without it; a re-run of the queue (a commit rolled back) consumed it after.
        if self.dead_lettered(sink, a) {
            return;
        }
        if ma.queue != mb.queue {
            let from = ma
                .invoke_ms
                .saturating_sub(ix.promise.view_convergence_ms());
            let clients = &self.keys.clients;
            if let Some(f) = ix.faults.last_matching(from, mb.invoke_ms, |f| {
                bit(f.kind) & ROUTE_FAULTS != 0
                    && f.node.is_some_and(|n| clients.binary_search(&n).is_err())
            }) {
                let evidence = format!(
                    "wid {} in {} and wid {} in {}: {}",
                    ma.wid,
                    ix.queue_name(ma.queue),
                    mb.wid,
                    ix.queue_name(mb.queue),
                    f.label()
                );
                sink.excuses
                    .record(Rule::KeyOrder, "queue_changed", || evidence);
                return;
            }
        }
        sink.report(Rule::KeyOrder, format!("wid {}", mb.wid), || {
            format!(
                "{}: {} was consumed (n{} at {}ms, from {}) before {}, sent before it (first \
                 consumed by n{} at {}ms, from {}); {}",
                self.label(),
                ix.describe_msg(b.msg),
                b.client,
                b.at_ms,
                ix.queue_name(b.queue),
                ix.describe_msg(a.msg),
                a.client,
                a.at_ms,
                ix.queue_name(a.queue),
                ix.faults.before(ix.entries, b.at_ms)
            )
        });
    }

    /// `failed`'s listener failed it, it was never consumed, and `run[later]`, sent
    /// after it, was.
    /// `copy_sent_ms`: when its failure number max + 1 came (its consumer then sent
    /// the dead-letter copy), if it failed that often.
    fn failed_then_skipped(
        &self,
        sink: &mut Sink,
        failed: &Consumption,
        copy_sent_ms: Option<u64>,
        later: u32,
    ) {
        let ix = self.ix;
        let l = self.run[later as usize];
        if self.dead_lettered(sink, failed)
            || self.dead_letter_lost(sink, failed, copy_sent_ms)
            || self.lost_tail(sink, failed, l)
        {
            return;
        }
        sink.report(
            Rule::KeyOrder,
            format!("wid {}", ix.msgs[l.msg as usize].wid),
            || {
                format!(
                    "{}: {}'s listener on n{} failed it at {}ms and it was never consumed, \
                     yet {}, sent after it, was consumed by n{} at {}ms from {}: the failed \
                     message was skipped; {}",
                    self.label(),
                    ix.describe_msg(failed.msg),
                    failed.client,
                    failed.at_ms,
                    ix.describe_msg(l.msg),
                    l.client,
                    l.at_ms,
                    ix.queue_name(l.queue),
                    ix.faults.before(ix.entries, l.at_ms)
                )
            },
        );
    }

    /// `run[now]` went forward past `run[skipped]`'s message, consumed before in the
    /// same queue.
    /// `run[before]` is the queue's consumption just before `run[now]`.
    fn skipped(&self, sink: &mut Sink, skipped: u32, before: u32, now: u32) {
        let ix = self.ix;
        let (s, n) = (self.run[skipped as usize], self.run[now as usize]);
        let b = self.run[before as usize];
        if self.lost_tail(sink, s, n) || self.lock_lost(sink, s, n) || self.lock_lost(sink, b, n) {
            return;
        }
        sink.report(
            Rule::KeyOrder,
            format!("wid {}", ix.msgs[n.msg as usize].wid),
            || {
                format!(
                    "{}: a re-run of {} by n{} consumed {} at {}ms but skipped {}, consumed \
                     there before at {}ms; {}",
                    self.label(),
                    ix.queue_name(n.queue),
                    n.client,
                    ix.describe_msg(n.msg),
                    n.at_ms,
                    ix.describe_msg(s.msg),
                    s.at_ms,
                    ix.faults.before(ix.entries, n.at_ms)
                )
            },
        );
    }
}
