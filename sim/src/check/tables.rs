//! The tables every rule reads: the ground floor of the checker.
//!
//! [`build`](super::build) fills them in one pass over the history; the rules only
//! read them. Names become dense ids ([`Interner`]), every workload id a [`Msg`],
//! every offset commit a [`Cmt`], every ownership of a queue a [`Span`]: a span of
//! `(group, client, queue)` starts at an `Own` (or, with no `Own`, implicitly at the
//! first delivery or commit) and ends at the next `Own` or `Disown` of the same key,
//! or when the client's node crashes or restarts ([`RESTARTS`]), which ends every
//! span of that client at once. A crash also starts a new *incarnation* of the client.
//! Deliveries are not stored: each one is a transient [`Dlv`] handed to the rules
//! that fold over deliveries as they stream by.

use crate::history::{BrokerGroupMeta, Entry, GroupMeta, MessageFields, Promise, SendStatus};

use super::faults::{FaultLog, RESTARTS};
use super::intern::{Interner, TagInterner};
use super::subscription::TagExpr;
use crate::hasher::{FastMap, MixHasher};

/// "No such thing" for `u32` ids and entry indexes.
pub(crate) const NONE: u32 = u32::MAX;

/// Something per node (a client's incarnation, its delivery awaiting an answer). Node
/// ids are small, so those below [`NodeMap::DENSE_LIMIT`] sit in a vector (an index,
/// no hashing); any larger id a foreign history uses goes to a map.
pub(crate) struct NodeMap<T> {
    dense: Vec<Option<T>>,
    sparse: FastMap<u32, T>,
}

impl<T> Default for NodeMap<T> {
    fn default() -> Self {
        NodeMap {
            dense: Vec::new(),
            sparse: FastMap::default(),
        }
    }
}

impl<T> NodeMap<T> {
    const DENSE_LIMIT: u32 = 1 << 16;

    #[inline]
    pub(crate) fn get(&self, node: u32) -> Option<&T> {
        if node < Self::DENSE_LIMIT {
            self.dense.get(node as usize).and_then(Option::as_ref)
        } else {
            self.sparse.get(&node)
        }
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, node: u32) -> Option<&mut T> {
        if node < Self::DENSE_LIMIT {
            self.dense.get_mut(node as usize).and_then(Option::as_mut)
        } else {
            self.sparse.get_mut(&node)
        }
    }

    #[inline]
    pub(crate) fn insert(&mut self, node: u32, value: T) -> Option<T> {
        if node < Self::DENSE_LIMIT {
            let i = node as usize;
            if self.dense.len() <= i {
                self.dense.resize_with(i + 1, || None);
            }
            self.dense[i].replace(value)
        } else {
            self.sparse.insert(node, value)
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, node: u32) -> Option<T> {
        if node < Self::DENSE_LIMIT {
            self.dense.get_mut(node as usize).and_then(Option::take)
        } else {
            self.sparse.remove(&node)
        }
    }
}

/// Deliveries of a redelivered message from the retry topic carry the retry queue's
/// id and offset (RocketMQ restores only the topic name), so they say nothing about
/// the original queue's log.
pub(crate) const RETRY_PREFIX: &str = "%RETRY%";

/// Where a broker keeps a delayed message until it is due (RocketMQ's
/// `SCHEDULE_TOPIC_XXXX`, queue = level − 1): the queue and offset its `SendOk` names.
pub(crate) const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";

/// Everything the history says about one workload id.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    pub wid: u64,
    /// The `SendInvoke` entry, or [`NONE`]: the id only appears in results/deliveries.
    pub invoke: u32,
    /// The invoke time; until (unless) there is one, when the id first appeared.
    pub invoke_ms: u64,
    pub topic: u32,
    pub tags: u32,
    pub crc: u32,
    /// The first `SendOk` entry, or [`NONE`].
    pub ok: u32,
    pub ok_ms: u64,
    pub status: Option<SendStatus>,
    pub queue: u32,
    pub offset: u64,
    pub failed_definite: bool,
    pub failed_unknown: bool,
    /// The first `SendFail` entry, or [`NONE`].
    pub fail: u32,
    /// A send attempt followed one whose outcome is unknown: two copies may exist.
    pub retried_after_unknown: bool,
    /// The `Deliver` entry of the first delivery (to any group), or [`NONE`].
    pub first_dlv: u32,
    /// [`digest`] of the `SendInvoke`'s fields (keys, user properties, born time and
    /// host); 0 when it recorded none.
    pub fields: u64,
    /// [`digest`] of the message id the producer was given (`SendOk.msg_id`), 0 if none.
    pub msg_id: u64,
    /// The `SendInvoke`'s delay level (0: delivered at once).
    pub delay_level: u32,
    /// The producer recorded no born host (`born_host_crc` 0): the broker reads it off
    /// the connection, and a real client's port is ephemeral. Deliveries of the
    /// message are then compared without theirs.
    pub born_host_unknown: bool,
}

impl Msg {
    pub(crate) fn new(wid: u64, at_ms: u64) -> Msg {
        Msg {
            wid,
            invoke: NONE,
            invoke_ms: at_ms,
            topic: NONE,
            tags: super::intern::NO_TAGS,
            crc: 0,
            ok: NONE,
            ok_ms: 0,
            status: None,
            queue: NONE,
            offset: 0,
            failed_definite: false,
            failed_unknown: false,
            fail: NONE,
            retried_after_unknown: false,
            first_dlv: NONE,
            fields: 0,
            msg_id: 0,
            delay_level: 0,
            born_host_unknown: false,
        }
    }
    pub(crate) fn invoked(&self) -> bool {
        self.invoke != NONE
    }
    pub(crate) fn acked(&self) -> bool {
        self.ok != NONE
    }
    pub(crate) fn delivered(&self) -> bool {
        self.first_dlv != NONE
    }
    /// Acknowledged with SEND_OK itself (not one of the stored-on-master statuses).
    pub(crate) fn strong_ack(&self) -> bool {
        self.status == Some(SendStatus::SendOk)
    }
    /// The earliest moment the message can have existed anywhere.
    pub(crate) fn since_ms(&self) -> u64 {
        self.invoke_ms
    }
}

/// One `Deliver` entry, as the streaming rules see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dlv {
    pub at_ms: u64,
    pub offset: u64,
    pub entry: u32,
    /// [`NONE`] when the delivered message carries no workload id.
    pub msg: u32,
    pub group: u32,
    pub client: u32,
    pub queue: u32,
    /// [`NONE`] for retry deliveries (they take no part in ownership spans).
    pub span: u32,
    /// Position of the client in [`GroupInfo::clients`] (0 for clustering groups).
    pub slot: u32,
    pub crc: u32,
    pub topic: u32,
    pub tags: u32,
    /// Delivered from a retry topic (`%RETRY%...`): the message was handed back.
    pub retry: bool,
    /// A consumer's own re-hand of a message it failed and could not hand back: the
    /// same client, queue and offset as a failed delivery with a count one lower
    /// (`retry.rs`).
    pub rehand: bool,
    pub reconsume: i32,
    /// An orderly group's redelivery of a message its same consumer's listener
    /// answered SUSPEND_CURRENT_QUEUE_A_MOMENT since the last delivery of that offset:
    /// the reconsume count that delivery had. `None` otherwise.
    pub suspended_at_count: Option<i32>,
    /// [`digest`] of the delivered fields (keys, user properties, born time and
    /// host), 0 when the entry recorded none.
    pub fields: u64,
    /// [`id_digest`] of the delivered message id, 0 when the entry recorded none.
    pub msg_id: u64,
    /// The group's expression takes the delivered tags (always, for a group `Meta`
    /// does not declare).
    pub tags_taken: bool,
}

/// A non-zero 64-bit digest of the fields a producer sets (keys, user properties, born
/// timestamp and host), without the message id a delivery also names: equal fields,
/// equal digests; a collision would hide a difference with probability 2^-63.
#[inline]
pub(crate) fn sent_fields_digest(f: &MessageFields) -> u64 {
    fields_digest(f, f.born_host_crc)
}

/// [`sent_fields_digest`] of a delivery of a message whose producer recorded no born
/// host: the delivery's own born host left out as well.
#[inline]
pub(crate) fn fields_digest_without_host(f: &MessageFields) -> u64 {
    fields_digest(f, 0)
}

#[inline]
fn fields_digest(f: &MessageFields, born_host_crc: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = MixHasher::default();
    (f.keys_crc, f.props_crc, f.born_ms, born_host_crc).hash(&mut h);
    h.finish() | 1
}

/// A message id's CRC32 as a non-zero `u64` (0 means "no id recorded").
#[inline]
pub(crate) fn id_digest(crc: u32) -> u64 {
    u64::from(crc) | 1 << 32
}

/// The last commit of a commit key, as an `Own` saw it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CommitMark {
    pub offset: u64,
    pub at_ms: u64,
    pub client: u32,
    pub incarnation: u32,
    /// The highest offset any commit of the key has carried up to this one.
    pub high: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct Span {
    pub group: u32,
    pub client: u32,
    pub queue: u32,
    /// The committed-offset sequence its commits go to (see [`Cmt::seq`]).
    pub commit_seq: u32,
    pub incarnation: u32,
    /// The `Own`'s start offset; `None` for an implicit span.
    pub start: Option<u64>,
    /// When the span began (the `Own`, or the first event of an implicit span).
    pub at_ms: u64,
    /// The last commit of the span's commit key before the `Own`.
    pub prev_commit: Option<CommitMark>,
    /// The start offset was answered by a slave (broker id > 0): the consumer's route
    /// listed no master for the group.
    pub from_replica: bool,
    /// The `Own` came from PULL_OFFSET_MOVED: the broker corrected the position.
    pub moved: bool,
    /// When the span ended by a later `Own`/`Disown` of its key; `u64::MAX` if none
    /// did (a crash of the client ends it too: see [`Index::span_end_ms`]).
    pub end_ms: u64,
}

/// One `Commit` entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cmt {
    pub at_ms: u64,
    pub offset: u64,
    pub entry: u32,
    pub group: u32,
    pub queue: u32,
    pub span: u32,
    /// Its committed-offset sequence, below [`Index::commit_seqs`]: one per (group,
    /// queue) of a clustering group, per (group, client, queue) of a broadcasting one.
    pub seq: u32,
}

impl GroupInfo {
    /// Whether a `DeadLetter` of the group with reconsume count `reconsume` is one made
    /// at its maximum: count max + 1 (the broker raises the stored count of the last
    /// failed delivery). An orderly consumer's copy carries its own count + 1, which a
    /// copy that failed and was retried raised further: max + 1 or more.
    pub fn dead_lettered_at_maximum(&self, reconsume: i32) -> bool {
        self.max_reconsume_times.is_some_and(|max| {
            let at = i64::from(max) + 1;
            let n = i64::from(reconsume);
            n == at || (self.orderly && n > at)
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct QueueKey {
    pub broker: u32,
    pub topic: u32,
    pub queue_id: i32,
}

pub(crate) struct GroupInfo {
    /// Index into `Meta.groups`; `None` for a group only deliveries name.
    pub meta: Option<usize>,
    pub broadcasting: bool,
    /// `Meta` declares the group orderly: its consumptions are judged by key order.
    pub orderly: bool,
    /// The group's maximum of reconsumes: its own (`GroupMeta::max_reconsume_times`),
    /// else `Promise::max_reconsume_times`; `None` for an orderly group without one,
    /// which retries without end and never dead-letters.
    pub max_reconsume_times: Option<u32>,
    /// Subscribed topic id, [`NONE`] for groups not in `Meta`.
    pub topic: u32,
    pub expr: TagExpr,
    /// Broadcasting groups: the consumers of `Meta` first, then clients only
    /// deliveries name. Clustering groups: empty (one slot for the whole group).
    pub clients: Vec<u32>,
    pub meta_clients: usize,
}

impl GroupInfo {
    /// The delivery slot of `client` (0 for clustering; for a broadcasting client the
    /// group has never seen, a slot that holds nothing).
    pub(crate) fn slot_of(&self, client: u32) -> u32 {
        if !self.broadcasting {
            return 0;
        }
        self.clients
            .iter()
            .position(|&c| c == client)
            .map_or(u32::MAX, |p| p as u32)
    }

    /// Delivery slots: one per consumer for broadcasting, one for the group otherwise.
    pub(crate) fn slots(&self) -> usize {
        if self.broadcasting {
            self.clients.len()
        } else {
            1
        }
    }
}

pub(crate) struct Index<'h> {
    pub entries: &'h [Entry],
    pub brokers_meta: &'h [BrokerGroupMeta],
    pub groups_meta: &'h [GroupMeta],
    pub heal_at_ms: u64,
    pub end_ms: u64,
    /// The declared timing promises (`Meta.promise`): every window a rule uses.
    pub promise: Promise,
    pub groups: Interner,
    pub group_info: Vec<GroupInfo>,
    pub topics: Interner,
    pub brokers: Interner,
    /// Broker id -> index into `brokers_meta`.
    pub broker_meta: Vec<Option<usize>>,
    /// Every node of every broker group (masters and slaves).
    pub broker_nodes: Vec<u32>,
    pub tags: TagInterner,
    /// `tag_match[group][tag]`: does the group's expression take messages with `tag`.
    pub tag_match: Vec<Vec<bool>>,
    pub queues: Vec<QueueKey>,
    pub msgs: Vec<Msg>,
    /// Messages in the order their `SendOk` happened.
    pub acks: Vec<u32>,
    /// Number of `Deliver` entries.
    pub deliveries: u64,
    pub spans: Vec<Span>,
    pub commits: Vec<Cmt>,
    /// How many committed-offset sequences the commits and spans name.
    pub commit_seqs: usize,
    pub faults: FaultLog,
    /// Per broadcasting/clustering slot redeliveries, in history order.
    pub dups: Vec<Dup>,
}

/// A delivery of a (message, slot) the slot already received, with the delivery
/// before it: what the duplicates rule judges.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dup {
    pub entry: u32,
    pub msg: u32,
    pub group: u32,
    pub span: u32,
    pub retry: bool,
    /// The redelivery follows a SUSPEND answer for it (`Dlv::suspended_at_count`).
    pub after_suspend: bool,
    pub prev_entry: u32,
    pub prev_span: u32,
}

impl<'h> Index<'h> {
    /// When span `s` ended: its closing `Own`/`Disown`, or a crash or restart of its
    /// client's node, whichever came first; `u64::MAX` if it never ended.
    pub(crate) fn span_end_ms(&self, s: u32) -> u64 {
        let sp = &self.spans[s as usize];
        let crash = self
            .faults
            .first_on(sp.client, RESTARTS, sp.at_ms + 1, sp.end_ms)
            .map_or(u64::MAX, |f| f.at_ms);
        sp.end_ms.min(crash)
    }

    /// The client nodes, sorted: the consumers of `Meta` and every `SendInvoke`'s
    /// producer. Any other node is a broker or a name server.
    pub(crate) fn client_nodes(&self) -> Vec<u32> {
        let mut clients: Vec<u32> = self
            .groups_meta
            .iter()
            .flat_map(|g| g.consumers.iter().copied())
            .chain(
                self.msgs
                    .iter()
                    .filter_map(|m| match self.entries.get(m.invoke as usize) {
                        Some(Entry::SendInvoke { client, .. }) => Some(*client),
                        _ => None,
                    }),
            )
            .collect();
        clients.sort_unstable();
        clients.dedup();
        clients
    }

    pub(crate) fn queue_name(&self, q: u32) -> String {
        let k = self.queues[q as usize];
        format!(
            "{}/{}/q{}",
            self.brokers.name(k.broker),
            self.topics.name(k.topic),
            k.queue_id
        )
    }

    pub(crate) fn group_name(&self, g: u32) -> &str {
        self.groups.name(g)
    }

    pub(crate) fn tag_name(&self, t: u32) -> String {
        match self.tags.name(t) {
            Some(s) => format!("{s:?}"),
            None => "no tags".to_string(),
        }
    }

    /// Does group `g` subscribe to message `m` (topic and tags)?
    pub(crate) fn subscribes(&self, g: u32, m: &Msg) -> bool {
        let info = &self.group_info[g as usize];
        (info.topic == NONE || info.topic == m.topic) && self.tag_match[g as usize][m.tags as usize]
    }

    /// The broker the message is stored on: the one that acknowledged it, or the one
    /// it was first delivered from.
    pub(crate) fn stored_broker(&self, m: &Msg) -> Option<u32> {
        if m.acked() {
            Some(self.queues[m.queue as usize].broker)
        } else if let Some(Entry::Deliver { broker, .. }) = self.entries.get(m.first_dlv as usize) {
            self.brokers.get(broker)
        } else {
            None
        }
    }

    pub(crate) fn broker_group(&self, broker: u32) -> Option<&'h BrokerGroupMeta> {
        self.broker_meta
            .get(broker as usize)
            .copied()
            .flatten()
            .map(|i| &self.brokers_meta[i])
    }

    /// One line about a message: what was sent and what the producer was told.
    pub(crate) fn describe_msg(&self, m: u32) -> String {
        let msg = &self.msgs[m as usize];
        let mut s = format!("wid {}", msg.wid);
        if msg.invoked() {
            if let Entry::SendInvoke {
                client,
                topic,
                tags,
                ..
            } = &self.entries[msg.invoke as usize]
            {
                let tags = tags
                    .as_deref()
                    .map_or("no tags".into(), |t| format!("tags {t:?}"));
                s += &format!(
                    " (topic {topic}, {tags}, sent by client n{client} at {}ms",
                    msg.invoke_ms
                );
            }
        } else {
            s += &format!(" (never sent; first seen at {}ms", msg.invoke_ms);
        }
        if msg.acked() {
            let status = match msg.status {
                Some(SendStatus::SendOk) | None => "SEND_OK",
                Some(SendStatus::FlushDiskTimeout) => "FLUSH_DISK_TIMEOUT",
                Some(SendStatus::FlushSlaveTimeout) => "FLUSH_SLAVE_TIMEOUT",
                Some(SendStatus::SlaveNotAvailable) => "SLAVE_NOT_AVAILABLE",
            };
            s += &format!(
                ", acked {status} at {}ms as {} offset {}",
                msg.ok_ms,
                self.queue_name(msg.queue),
                msg.offset
            );
        } else if msg.failed_definite {
            s += ", send failed (refused)";
        } else if msg.failed_unknown {
            s += ", send outcome unknown";
        }
        if let Some(Entry::Deliver {
            at_ms,
            group,
            topic,
            broker,
            queue_id,
            queue_offset,
            ..
        }) = self.entries.get(msg.first_dlv as usize)
        {
            s += &format!(
                ", first delivered at {at_ms}ms to group {group} from \
                 {broker}/{topic}/q{queue_id} offset {queue_offset}"
            );
        }
        s.push(')');
        s
    }
}
