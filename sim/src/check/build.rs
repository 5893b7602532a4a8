//! The one pass over the history that fills the [tables](super::tables).
//!
//! It walks the entries once, in time order, and turns them into dense, compact
//! tables: names become ids ([`Interner`]), every workload id becomes a [`Msg`], every
//! offset commit a [`Cmt`]. It also follows queue ownership, because which *span* a
//! delivery or commit belongs to depends on what happened before it (see
//! [`Span`]).
//!
//! Deliveries are the bulk of a history, so they are not stored: each one becomes a
//! transient [`Dlv`] handed to the rules that fold over deliveries as they stream by
//! ([`Observers`]: the delivery table, the queue log, phantom, corrupt and order).
//! Everything else is judged after the pass from these tables, so each rule is one
//! linear scan, and memory stays proportional to messages, not to entries. This is
//! the only module that knows the observers; no rule imports it.
//!
//! Here: the builder, its names and ids, and the walk, which hands each entry to its
//! part: `send.rs` (sends and their results), `delivery.rs` (deliveries and the
//! observers they stream to), `consumed.rs` (listener answers, dead letters),
//! `ownership.rs` (ownership spans and commits). Faults are filed here.

use crate::history::{Entry, FaultKind, History, Promise};

use super::commits::Commits;
use super::corrupt::Corrupt;
use super::delay::Delay;
use super::deliveries::DeliveryTable;
use super::exclusivity::Exclusivity;
use super::faults::{bit, FaultLog, FaultRec, NETWORK, RESTARTS};
use super::filter::Filter;
use super::intern::{Interner, TagInterner};
use super::key_order::KeyOrder;
use super::latency::Latency;
use super::order::Order;
use super::phantom::Phantom;
use super::process_queues::{Name, ProcessQueue, ProcessQueues};
use super::queue_log::QueueLog;
use super::retry::Retry;
use super::subscription::TagExpr;
use super::tables::{CommitMark, GroupInfo, Index, Msg, NodeMap, QueueKey, NONE, RETRY_PREFIX};
use crate::hasher::{FastMap, WidMap};

mod consumed;
mod delivery;
mod ownership;
mod send;

/// Builds the tables and runs the observers over the deliveries: what [`check`](super::check)
/// judges from.
pub(crate) fn build(history: &History) -> (Index<'_>, Observers) {
    let mut b = Builder::new(history);
    if b.walk_in_order() {
        return b.finish();
    }
    // Histories are written in time order; one from elsewhere might not be. Then
    // start over, walking a (stable) time-sorted permutation of the entries.
    let mut b = Builder::new(history);
    b.walk_sorted();
    b.finish()
}

/// Crash/restart count per node: a consumer's incarnation.
#[derive(Default)]
struct Epochs(NodeMap<u32>);

impl Epochs {
    #[inline]
    fn get(&self, node: u32) -> u32 {
        self.0.get(node).copied().unwrap_or(0)
    }

    fn bump(&mut self, node: u32) {
        match self.0.get_mut(node) {
            Some(n) => *n += 1,
            None => {
                self.0.insert(node, 1);
            }
        }
    }
}

/// Workload id -> message index. Workloads number their sends, so ids are mostly
/// consecutive: those within reach of the first id seen live in a plain array (no
/// hashing, and neighbouring sends share cache lines); the rest in a hash map. The
/// array only grows while it stays proportional to the number of messages, so sparse
/// or random ids cost no more than the map would.
#[derive(Default)]
struct Wids {
    base: u64,
    dense: Vec<u32>,
    sparse: WidMap<u32>,
}

impl Wids {
    /// How far past its end (and past 4 slots per message) the array may grow.
    const SLACK: u64 = 1 << 16;

    #[inline]
    fn get_or_insert(&mut self, wid: u64, msgs: usize, make: impl FnOnce() -> u32) -> u32 {
        if self.dense.is_empty() && self.sparse.is_empty() {
            self.base = wid;
        }
        if wid >= self.base {
            let i = wid - self.base;
            let limit = (self.dense.len() as u64).max(4 * msgs as u64) + Self::SLACK;
            if i < limit {
                let i = i as usize;
                if i >= self.dense.len() {
                    let len = (i + 1).max(self.dense.len() * 2).min(limit as usize);
                    self.dense.resize(len, NONE);
                }
                if self.dense[i] == NONE {
                    self.dense[i] = make();
                }
                return self.dense[i];
            }
        }
        *self.sparse.entry(wid).or_insert_with(make)
    }
}

/// (group, client for broadcasting groups or [`NONE`], queue): whose offsets one
/// committed-offset sequence holds.
pub(crate) type CommitKey = (u32, u32, u32);

/// The rules that fold over deliveries while the pass streams them.
#[derive(Default)]
pub(crate) struct Observers {
    pub table: DeliveryTable,
    pub queue_log: QueueLog,
    pub phantom: Phantom,
    pub delay: Delay,
    pub corrupt: Corrupt,
    pub filter: Filter,
    pub order: Order,
    pub key_order: KeyOrder,
    pub exclusivity: Exclusivity,
    pub commits: Commits,
    pub latency: Latency,
    pub retry: Retry,
}

struct Builder<'h> {
    ix: Index<'h>,
    obs: Observers,
    wids: Wids,
    queue_ids: FastMap<QueueKey, u32>,
    process_queues: ProcessQueues,
    /// Each committed-offset sequence's index (in `last_commit`), looked up once per
    /// process queue.
    commit_seqs: FastMap<CommitKey, u32>,
    /// Per committed-offset sequence, its last commit.
    last_commit: Vec<Option<CommitMark>>,
    epochs: Epochs,
    /// `takes[group][tag]`: 0 not judged yet, 1 the expression rejects, 2 takes.
    takes: Vec<Vec<u8>>,
    /// Orderly groups: (group, client, queue, offset) → the reconsume count of its
    /// last delivery.
    orderly_counts: FastMap<(u32, u32, u32, u64), i32>,
    /// Orderly groups: (group, client, queue, offset) whose listener answered
    /// SUSPEND_CURRENT_QUEUE_A_MOMENT since its last delivery → that delivery's count.
    suspended: FastMap<(u32, u32, u32, u64), i32>,
}

impl<'h> Builder<'h> {
    fn new(history: &'h History) -> Builder<'h> {
        let entries = history.entries.as_slice();
        let meta = entries.iter().find_map(|e| match e {
            Entry::Meta {
                brokers,
                groups,
                heal_at_ms,
                end_ms,
                promise,
                ..
            } => Some((
                brokers.as_slice(),
                groups.as_slice(),
                *heal_at_ms,
                *end_ms,
                Promise::clone(promise),
            )),
            _ => None,
        });
        let (brokers_meta, groups_meta, heal_at_ms, end_ms, promise) =
            meta.unwrap_or((&[], &[], 0, 0, Promise::default()));
        let mut ix = Index {
            entries,
            brokers_meta,
            groups_meta,
            heal_at_ms,
            end_ms,
            promise,
            groups: Interner::default(),
            group_info: Vec::new(),
            topics: Interner::default(),
            brokers: Interner::default(),
            broker_meta: Vec::new(),
            broker_nodes: Vec::new(),
            tags: TagInterner::default(),
            tag_match: Vec::new(),
            queues: Vec::new(),
            msgs: Vec::new(),
            acks: Vec::new(),
            deliveries: 0,
            spans: Vec::new(),
            commits: Vec::new(),
            commit_seqs: 0,
            faults: FaultLog::default(),
            dups: Vec::new(),
        };
        // Meta's groups take ids 0..n in order, so rules can walk them by id.
        for (i, g) in groups_meta.iter().enumerate() {
            let id = ix.groups.intern(&g.group);
            if id as usize != i {
                continue; // a duplicated group name: the first one counts
            }
            let topic = ix.topics.intern(&g.topic);
            ix.group_info.push(GroupInfo {
                meta: Some(i),
                broadcasting: g.broadcasting,
                orderly: g.orderly,
                max_reconsume_times: g
                    .max_reconsume_times
                    .or((!g.orderly).then_some(ix.promise.max_reconsume_times)),
                topic,
                expr: TagExpr::parse(&g.tag_expression),
                clients: if g.broadcasting {
                    g.consumers.clone()
                } else {
                    Vec::new()
                },
                meta_clients: if g.broadcasting { g.consumers.len() } else { 0 },
            });
        }
        for (i, b) in brokers_meta.iter().enumerate() {
            let id = ix.brokers.intern(&b.broker_name) as usize;
            if ix.broker_meta.len() <= id {
                ix.broker_meta.resize(id + 1, None);
            }
            ix.broker_meta[id].get_or_insert(i);
            ix.broker_nodes.push(b.master_node);
            ix.broker_nodes.extend(b.slave_node);
        }
        ix.broker_nodes.sort_unstable();
        ix.broker_nodes.dedup();
        Builder {
            ix,
            obs: Observers::default(),
            wids: Wids::default(),
            queue_ids: FastMap::default(),
            process_queues: ProcessQueues::default(),
            commit_seqs: FastMap::default(),
            last_commit: Vec::new(),
            epochs: Epochs::default(),
            takes: Vec::new(),
            orderly_counts: FastMap::default(),
            suspended: FastMap::default(),
        }
    }

    /// Processes the entries in their order; false (and a half-built index) as soon
    /// as one is earlier than the one before.
    fn walk_in_order(&mut self) -> bool {
        let entries = self.ix.entries;
        // Room for what a typical history holds, so the big tables are not regrown
        // and copied; unused reservation is never touched, so it costs no memory.
        self.ix.msgs.reserve(entries.len() / 3);
        self.ix.acks.reserve(entries.len() / 3);
        // Commits are the most frequent entry: a third or more of a history.
        self.ix.commits.reserve(entries.len() / 2);
        // An ownership span per few dozen entries, a duplicate per few dozen.
        self.ix.spans.reserve(entries.len() / 32);
        self.ix.dups.reserve(entries.len() / 32);
        let mut last = 0u64;
        // Entries hold their names inline (`history::Name`): walking them in order
        // reads memory in order, with nothing to prefetch.
        for (i, e) in entries.iter().enumerate() {
            let at = e.at_ms();
            if at < last {
                return false;
            }
            last = at;
            self.entry(i as u32, e);
        }
        true
    }

    fn walk_sorted(&mut self) {
        let entries = self.ix.entries;
        let mut order: Vec<u32> = (0..entries.len() as u32).collect();
        order.sort_by_key(|&i| entries[i as usize].at_ms());
        for i in order {
            self.entry(i, &entries[i as usize]);
        }
    }

    fn msg(&mut self, wid: u64, at_ms: u64) -> u32 {
        let msgs = &mut self.ix.msgs;
        self.wids.get_or_insert(wid, msgs.len(), || {
            msgs.push(Msg::new(wid, at_ms));
            (msgs.len() - 1) as u32
        })
    }

    /// Does group `g`'s expression take messages tagged `t`? Judged once per pair.
    #[inline]
    fn takes(&mut self, g: u32, t: u32) -> bool {
        let (g, t) = (g as usize, t as usize);
        if self.takes.len() <= g {
            self.takes.resize(g + 1, Vec::new());
        }
        let row = &mut self.takes[g];
        if row.len() <= t {
            row.resize(t + 1, 0);
        }
        if row[t] == 0 {
            let taken = self.ix.group_info[g]
                .expr
                .matches(self.ix.tags.name(t as u32));
            row[t] = if taken { 2 } else { 1 };
        }
        row[t] == 2
    }

    #[inline]
    fn group(&mut self, name: &str) -> u32 {
        let id = self.ix.groups.intern(name);
        if id as usize == self.ix.group_info.len() {
            self.ix.group_info.push(GroupInfo {
                meta: None,
                broadcasting: false,
                orderly: false,
                max_reconsume_times: Some(self.ix.promise.max_reconsume_times),
                topic: NONE,
                expr: TagExpr::All,
                clients: Vec::new(),
                meta_clients: 0,
            });
        }
        id
    }

    #[inline]
    fn queue(&mut self, broker: &str, topic: &str, queue_id: i32) -> u32 {
        let key = QueueKey {
            broker: self.ix.brokers.intern(broker),
            topic: self.ix.topics.intern(topic),
            queue_id,
        };
        self.queue_key(key)
    }

    #[inline]
    fn queue_key(&mut self, key: QueueKey) -> u32 {
        let queues = &mut self.ix.queues;
        *self.queue_ids.entry(key).or_insert_with(|| {
            queues.push(key);
            (queues.len() - 1) as u32
        })
    }

    fn commit_key(&self, group: u32, client: u32, queue: u32) -> CommitKey {
        let by_client = self.ix.group_info[group as usize].broadcasting;
        (group, if by_client { client } else { NONE }, queue)
    }

    /// The process queue these name: one probe for a known one; a new one interns
    /// the names as [`Self::group`] and [`Self::queue`] do.
    #[inline]
    fn process_queue(&mut self, name: Name) -> ProcessQueue {
        let p = match self.process_queues.get(name) {
            Some(p) => p,
            None => self.add_process_queue(name),
        };
        self.process_queues.at(p)
    }

    #[cold]
    #[inline(never)]
    fn add_process_queue(&mut self, name: Name) -> u32 {
        let (group, client, broker, topic, queue_id) = name;
        let g = self.group(group);
        let q = self.queue(broker, topic, queue_id);
        let key = self.commit_key(g, client, q);
        let last_commit = &mut self.last_commit;
        let commits = *self.commit_seqs.entry(key).or_insert_with(|| {
            last_commit.push(None);
            (last_commit.len() - 1) as u32
        });
        let pq = ProcessQueue {
            id: NONE,
            group: g,
            client,
            queue: q,
            topic: self.ix.queues[q as usize].topic,
            retry_topic: topic.starts_with(RETRY_PREFIX),
            open_span: NONE,
            commits,
            slot: NONE,
        };
        self.process_queues.add(name, pq)
    }

    fn entry(&mut self, i: u32, e: &'h Entry) {
        match e {
            Entry::Meta { .. } => {}
            Entry::Consumed { .. } => self.consumed(i, e),
            Entry::DeadLetter { .. } => self.dead_letter(i, e),
            Entry::Fault {
                at_ms,
                kind,
                node,
                detail,
            } => {
                // A link fault's or a link heal's other end.
                let peer = if bit(*kind) & (NETWORK | bit(FaultKind::Heal)) != 0 {
                    super::faults::nth_node_in(detail, 1)
                } else {
                    None
                };
                self.ix.faults.push(FaultRec {
                    at_ms: *at_ms,
                    entry: i,
                    kind: *kind,
                    node: *node,
                    peer,
                });
                if let Some(n) = node {
                    if bit(*kind) & RESTARTS != 0 {
                        self.epochs.bump(*n);
                    }
                }
            }
            Entry::SendInvoke { .. } => self.send_invoke(i, e),
            Entry::SendOk { .. } => self.send_ok(i, e),
            Entry::SendFail { .. } => self.send_fail(i, e),
            Entry::Deliver { .. } => self.delivered(i, e),
            Entry::Own { .. } => self.own(e),
            Entry::Disown { .. } => self.disown(e),
            Entry::Commit { .. } => self.commit(i, e),
        }
    }

    fn finish(mut self) -> (Index<'h>, Observers) {
        self.ix.faults.finish();
        let ix = &mut self.ix;
        ix.commit_seqs = self.last_commit.len();
        ix.broker_meta.resize(ix.brokers.len(), None);
        let n_tags = ix.tags.len();
        ix.tag_match = ix
            .group_info
            .iter()
            .map(|g| {
                (0..n_tags as u32)
                    .map(|t| g.expr.matches(ix.tags.name(t)))
                    .collect()
            })
            .collect();
        (self.ix, self.obs)
    }
}
