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

use crate::history::{ConsumeOutcome, Entry, FaultKind, History, Promise};

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
use super::queue_log::{Holder, QueueLog};
use super::retry::Retry;
use super::subscription::TagExpr;
use super::tables::{
    fields_digest_without_host, id_digest, sent_fields_digest, Cmt, CommitMark, Dlv, Dup,
    GroupInfo, Index, Msg, NodeMap, QueueKey, Span, NONE, RETRY_PREFIX, SCHEDULE_TOPIC,
};
use crate::hasher::{FastMap, WidMap};

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

/// Entries whose names are touched together before they are processed.
const WARM_BLOCK: usize = 32;

/// Reads the first byte of each name an entry holds. The names live in separate heap
/// allocations, and interning them one entry at a time waits for one cache miss after
/// another. Touching a whole block's names first, in a tight loop of independent
/// loads, lets those misses overlap; processing the block then finds them cached (a
/// software prefetch without unsafe).
#[inline]
pub(crate) fn first_bytes(e: &Entry) -> u8 {
    let b = |s: &str| s.as_bytes().first().copied().unwrap_or(0);
    match e {
        Entry::Deliver {
            group,
            topic,
            broker,
            tags,
            ..
        } => b(group) ^ b(topic) ^ b(broker) ^ tags.as_deref().map_or(0, b),
        Entry::SendInvoke { topic, tags, .. } => b(topic) ^ tags.as_deref().map_or(0, b),
        Entry::SendOk { broker, msg_id, .. } => b(broker) ^ b(msg_id),
        Entry::Commit {
            group,
            topic,
            broker,
            ..
        } => b(group) ^ b(topic) ^ b(broker),
        _ => 0,
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
                promise.clone(),
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
        self.ix.commits.reserve(entries.len() / 3);
        let mut last = 0u64;
        for (b, block) in entries.chunks(WARM_BLOCK).enumerate() {
            let warm = block.iter().fold(0u8, |acc, e| acc ^ first_bytes(e));
            std::hint::black_box(warm);
            for (k, e) in block.iter().enumerate() {
                let at = e.at_ms();
                if at < last {
                    return false;
                }
                last = at;
                self.entry((b * WARM_BLOCK + k) as u32, e);
            }
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

    #[inline]
    /// For a delivery to an orderly group (not from `%RETRY%`): the reconsume count of
    /// the delivery before it that its listener suspended, if one did since.
    fn orderly_redelivery(
        &mut self,
        g: u32,
        client: u32,
        q: u32,
        offset: u64,
        retry: bool,
        reconsume: i32,
    ) -> Option<i32> {
        if retry || !self.ix.group_info[g as usize].orderly {
            return None;
        }
        let key = (g, client, q, offset);
        self.orderly_counts.insert(key, reconsume);
        self.suspended.remove(&key)
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

    /// The open span of the process queue, or a new implicit one if none is open (or
    /// the client crashed since it opened).
    #[inline]
    fn span(&mut self, pq: &ProcessQueue, at_ms: u64) -> u32 {
        let s = pq.open_span;
        if s != NONE && self.ix.spans[s as usize].incarnation == self.epochs.get(pq.client) {
            return s;
        }
        self.open_span(pq, at_ms, None, false, false)
    }

    fn open_span(
        &mut self,
        pq: &ProcessQueue,
        at_ms: u64,
        start: Option<u64>,
        from_replica: bool,
        moved: bool,
    ) -> u32 {
        let prev_commit = if start.is_some() {
            self.last_commit[pq.commits as usize]
        } else {
            None
        };
        let id = self.ix.spans.len() as u32;
        self.ix.spans.push(Span {
            group: pq.group,
            client: pq.client,
            queue: pq.queue,
            commit_seq: pq.commits,
            incarnation: self.epochs.get(pq.client),
            start,
            at_ms,
            prev_commit,
            from_replica,
            moved,
            end_ms: u64::MAX,
        });
        let old = std::mem::replace(&mut self.process_queues.get_mut(pq.id).open_span, id);
        if old != NONE {
            let old = &mut self.ix.spans[old as usize];
            old.end_ms = old.end_ms.min(at_ms);
        }
        id
    }

    fn entry(&mut self, i: u32, e: &'h Entry) {
        match e {
            Entry::Meta { .. } => {}
            Entry::Consumed {
                at_ms,
                group,
                client,
                broker,
                topic,
                queue_id,
                queue_offset,
                wid,
                status,
            } => {
                let pq = self.process_queue((group, *client, broker, topic, *queue_id));
                let (g, q) = (pq.group, pq.queue);
                // consumeTimeout is a concurrent consumer's: an orderly one never gives
                // up on its listener.
                let consume_timeout_ms = if self.ix.group_info[g as usize].orderly {
                    u64::MAX
                } else {
                    self.ix.promise.consume_timeout_ms
                };
                self.obs.retry.consumed(
                    i,
                    *client,
                    q,
                    *queue_offset,
                    *status,
                    *at_ms,
                    consume_timeout_ms,
                );
                let info = &self.ix.group_info[g as usize];
                if !info.orderly || topic.starts_with(RETRY_PREFIX) {
                    return;
                }
                if !info.broadcasting {
                    self.obs
                        .exclusivity
                        .end(g, *client, q, *queue_offset, *at_ms);
                }
                let msg = wid.map_or(NONE, |w| self.msg(w, *at_ms));
                let success = *status == ConsumeOutcome::ConsumeSuccess;
                if *status == ConsumeOutcome::SuspendCurrentQueueAMoment {
                    let key = (g, *client, q, *queue_offset);
                    let count = self.orderly_counts.get(&key).copied().unwrap_or(0);
                    self.suspended.insert(key, count);
                }
                self.obs
                    .key_order
                    .answer(g, *client, msg, q, *at_ms, success);
            }
            Entry::DeadLetter {
                at_ms,
                group,
                wid,
                reconsume_times,
                ..
            } => {
                if let Some(w) = wid {
                    let m = self.msg(*w, *at_ms);
                    let g = self.group(group);
                    self.obs
                        .retry
                        .dead_letter(m, g, *reconsume_times, i, &self.ix);
                    self.obs
                        .key_order
                        .dead_letter(g, m, *reconsume_times, *at_ms);
                }
            }
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
            Entry::SendInvoke {
                at_ms,
                wid,
                topic,
                tags,
                body_crc,
                fields,
                delay_level,
                ..
            } => {
                let m = self.msg(*wid, *at_ms) as usize;
                if self.ix.msgs[m].invoked() {
                    return; // a reused wid: the first send defines the message
                }
                self.ix.msgs[m].delay_level = *delay_level;
                self.ix.msgs[m].fields = fields.as_ref().map_or(0, sent_fields_digest);
                self.ix.msgs[m].born_host_unknown =
                    fields.as_ref().is_some_and(|f| f.born_host_crc == 0);
                let topic = self.ix.topics.intern(topic);
                let tags = self.ix.tags.intern(tags.as_deref());
                let msg = &mut self.ix.msgs[m];
                msg.invoke = i;
                msg.invoke_ms = *at_ms;
                msg.topic = topic;
                msg.tags = tags;
                msg.crc = *body_crc;
            }
            Entry::SendOk {
                at_ms,
                wid,
                status,
                broker,
                queue_id,
                queue_offset,
                msg_id,
                retried_after_unknown,
                ..
            } => {
                let m = self.msg(*wid, *at_ms);
                self.ix.msgs[m as usize].retried_after_unknown |= *retried_after_unknown;
                if self.ix.msgs[m as usize].acked() {
                    return;
                }
                // The queue's topic is the sent topic; a result for a wid never sent
                // has no topic to name, so it files under the empty topic.
                // A delayed message's result names its place in the schedule queue of
                // its level (RocketMQ answers with the queue asked for and the schedule
                // queue's offset); its copy reaches its own queue when due.
                let (topic, queue_id) = match self.ix.msgs[m as usize] {
                    Msg { delay_level, .. } if delay_level > 0 => {
                        let levels = self.ix.promise.delay_levels_ms.len().max(1) as u32;
                        let level = delay_level.min(levels);
                        (self.ix.topics.intern(SCHEDULE_TOPIC), level as i32 - 1)
                    }
                    Msg { topic: NONE, .. } => (self.ix.topics.intern(""), *queue_id),
                    Msg { topic, .. } => (topic, *queue_id),
                };
                let broker = self.ix.brokers.intern(broker);
                let q = self.queue_key(QueueKey {
                    broker,
                    topic,
                    queue_id,
                });
                let msg = &mut self.ix.msgs[m as usize];
                msg.ok = i;
                msg.ok_ms = *at_ms;
                msg.status = Some(*status);
                msg.queue = q;
                msg.offset = *queue_offset;
                msg.msg_id = id_digest(crc32fast::hash(msg_id.as_bytes()));
                self.ix.acks.push(m);
                let holder = Holder {
                    msg: m,
                    entry: i,
                    at_ms: *at_ms,
                };
                self.obs
                    .queue_log
                    .observe(self.ix.entries, q, *queue_offset, holder);
            }
            Entry::SendFail {
                at_ms,
                wid,
                definite,
                retried_after_unknown,
                ..
            } => {
                let m = self.msg(*wid, *at_ms) as usize;
                let msg = &mut self.ix.msgs[m];
                if msg.fail == NONE {
                    msg.fail = i;
                }
                msg.retried_after_unknown |= *retried_after_unknown;
                if *definite {
                    msg.failed_definite = true;
                } else {
                    msg.failed_unknown = true;
                }
            }
            Entry::Deliver {
                at_ms,
                group,
                client,
                topic,
                broker,
                queue_id,
                queue_offset,
                wid,
                reconsume_times,
                body_crc,
                tags,
                fields,
            } => {
                let pq = self.process_queue((group, *client, broker, topic, *queue_id));
                let (g, q, topic_id) = (pq.group, pq.queue, pq.topic);
                let tag_id = self.ix.tags.intern(tags.as_deref());
                // Only a delivery from a retry topic was handed back; a raised
                // reconsume count elsewhere is a corrupt field, and the delivery still
                // counts for order and offsets.
                let retry = pq.retry_topic;
                let dlv_id = fields
                    .as_ref()
                    .and_then(|f| f.msg_id_crc)
                    .map_or(0, id_digest);
                self.ix.deliveries += 1;
                let msg = match wid {
                    Some(w) => {
                        let m = self.msg(*w, *at_ms);
                        let msg = &mut self.ix.msgs[m as usize];
                        if msg.first_dlv == NONE {
                            msg.first_dlv = i;
                            if !msg.invoked() {
                                // Never sent: what the delivery says is all there is.
                                msg.topic = topic_id;
                                msg.tags = tag_id;
                                msg.crc = *body_crc;
                            }
                        }
                        m
                    }
                    None => NONE,
                };
                let tags_taken = self.takes(g, tag_id);
                // Does the group take the message as it was sent (topic and tags)?
                // `None`: not sent yet in this pass, judged at the end.
                let sent_taken = if self.ix.group_info[g as usize].meta.is_none() || msg == NONE {
                    Some(true)
                } else if self.ix.msgs[msg as usize].invoked() {
                    let m = &self.ix.msgs[msg as usize];
                    let (m_topic, m_tags) = (m.topic, m.tags);
                    let topic_ok = retry || self.ix.group_info[g as usize].topic == m_topic;
                    Some(topic_ok && self.takes(g, m_tags))
                } else {
                    None
                };
                let info = &mut self.ix.group_info[g as usize];
                let slot = if !info.broadcasting {
                    0
                } else if pq.slot != NONE {
                    pq.slot
                } else {
                    let slot = match info.clients.iter().position(|c| c == client) {
                        Some(p) => p as u32,
                        None => {
                            info.clients.push(*client);
                            (info.clients.len() - 1) as u32
                        }
                    };
                    // A client keeps its slot: the group's clients are only appended.
                    self.process_queues.get_mut(pq.id).slot = slot;
                    slot
                };
                let span = if retry { NONE } else { self.span(&pq, *at_ms) };
                let rehand = !retry
                    && *reconsume_times > 0
                    && self
                        .obs
                        .retry
                        .is_rehand(*client, q, *queue_offset, *reconsume_times);
                let d = Dlv {
                    at_ms: *at_ms,
                    offset: *queue_offset,
                    entry: i,
                    msg,
                    group: g,
                    client: *client,
                    queue: q,
                    span,
                    slot,
                    crc: *body_crc,
                    topic: topic_id,
                    tags: tag_id,
                    retry,
                    rehand,
                    reconsume: *reconsume_times,
                    suspended_at_count: self.orderly_redelivery(
                        g,
                        *client,
                        q,
                        *queue_offset,
                        retry,
                        *reconsume_times,
                    ),
                    fields: match fields {
                        Some(f) if msg != NONE && self.ix.msgs[msg as usize].born_host_unknown => {
                            fields_digest_without_host(f)
                        }
                        Some(f) => sent_fields_digest(f),
                        None => 0,
                    },
                    tags_taken,
                    msg_id: dlv_id,
                };
                self.deliver(&d, sent_taken);
            }
            Entry::Own {
                at_ms,
                group,
                client,
                broker,
                topic,
                queue_id,
                start_offset,
                offset_from_broker_id,
                offset_moved,
            } => {
                let pq = self.process_queue((group, *client, broker, topic, *queue_id));
                let (g, q) = (pq.group, pq.queue);
                let from_replica = offset_from_broker_id.is_some_and(|id| id != 0);
                self.open_span(
                    &pq,
                    *at_ms,
                    Some(*start_offset),
                    from_replica,
                    *offset_moved,
                );
                self.obs.commits.own(g, q, *start_offset, *offset_moved);
            }
            Entry::Disown {
                at_ms,
                group,
                client,
                broker,
                topic,
                queue_id,
            } => {
                let pq = self.process_queue((group, *client, broker, topic, *queue_id));
                let old =
                    std::mem::replace(&mut self.process_queues.get_mut(pq.id).open_span, NONE);
                if old != NONE {
                    let old = &mut self.ix.spans[old as usize];
                    old.end_ms = old.end_ms.min(*at_ms);
                }
            }
            Entry::Commit {
                at_ms,
                group,
                client,
                broker,
                topic,
                queue_id,
                offset,
            } => {
                let pq = self.process_queue((group, *client, broker, topic, *queue_id));
                let span = self.span(&pq, *at_ms);
                let mark = CommitMark {
                    offset: *offset,
                    at_ms: *at_ms,
                    client: *client,
                    incarnation: self.epochs.get(*client),
                    high: *offset,
                };
                // Keep the highest offset committed so far.
                let last = &mut self.last_commit[pq.commits as usize];
                *last = Some(match *last {
                    Some(c) => CommitMark {
                        high: c.high.max(*offset),
                        ..mark
                    },
                    None => mark,
                });
                self.ix.commits.push(Cmt {
                    at_ms: *at_ms,
                    offset: *offset,
                    entry: i,
                    group: pq.group,
                    queue: pq.queue,
                    span,
                    seq: pq.commits,
                });
            }
        }
    }

    /// Hands one delivery to every rule that streams deliveries.
    #[inline]
    fn deliver(&mut self, d: &Dlv, sent_taken: Option<bool>) {
        let obs = &mut self.obs;
        let prev = obs.table.deliver(d);
        if d.msg != NONE && prev.is_none() {
            obs.latency.deliver(d, &self.ix);
        }
        if let Some(prev) = prev {
            self.ix.dups.push(Dup {
                entry: d.entry,
                msg: d.msg,
                group: d.group,
                span: d.span,
                retry: d.retry || d.rehand,
                after_suspend: d.suspended_at_count.is_some(),
                prev_entry: prev.entry,
                prev_span: prev.span,
            });
        }
        if self.ix.group_info[d.group as usize].orderly && d.msg != NONE {
            // An orderly listener may take a message long after its pull served it:
            // the record is known to have been served only after it was sent.
            let served = Dlv {
                at_ms: self.ix.msgs[d.msg as usize].invoke_ms.min(d.at_ms),
                ..*d
            };
            obs.commits.deliver(&served);
        } else {
            obs.commits.deliver(d);
        }
        let msg = (d.msg != NONE).then(|| &self.ix.msgs[d.msg as usize]);
        obs.phantom.deliver(d, msg);
        obs.corrupt.deliver(d, msg);
        obs.delay.deliver(d, msg, &self.ix.promise);
        obs.retry.deliver(d, &self.ix);
        obs.filter.deliver(d, sent_taken);
        // A consumer's own re-hand comes from its memory, not from the position.
        if !d.retry && !d.rehand && d.msg != NONE {
            let holder = Holder {
                msg: d.msg,
                entry: d.entry,
                at_ms: d.at_ms,
            };
            obs.queue_log
                .observe(self.ix.entries, d.queue, d.offset, holder);
        }
        if d.span != NONE {
            obs.order.deliver(d);
        }
        let info = &self.ix.group_info[d.group as usize];
        if info.orderly {
            obs.key_order.deliver(d);
            if !info.broadcasting {
                obs.exclusivity.begin(d);
            }
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
