//! A client's table of per-queue state (`ConcurrentMap<MessageQueue, …>` in RocketMQ's
//! `RebalanceImpl.processQueueTable` and `OffsetStore.offsetTable`): looked up by queue
//! at every pull, delivery, answer and commit, walked in queue order at rebalances and
//! commits.
//!
//! Entries sit in a `Vec` sorted by [`MessageQueue`]'s order, so walks see the order a
//! `BTreeMap` would give (rebalance, commit and shutdown order decide what is sent
//! first). A table holds a few dozen queues, so a lookup scans: beside each entry sits
//! a one-word fingerprint of its queue (queue id, the names' lengths and last bytes),
//! and only an entry whose fingerprint matches is compared in full. Hashing the two
//! names of every key, and comparing them again at the hit, cost several times the
//! scan (a binary search of the entries compared names at every step, too); an insert
//! or removal just shifts the entries behind it.
//!
//! Lookups come in runs on one queue (a pull's answer checks the queue's generation,
//! delivers, advances its offset, pulls again: each a lookup of the same queue), so
//! the table remembers where its last lookup landed and tries that entry, and the one
//! after it (a walk of another table in queue order), first. The remembered position
//! is only a guess, checked against the key every time, so a table that changed since
//! needs no care.

use std::cell::Cell;
use std::ops::Index;

use crate::message_queue::MessageQueue;

#[derive(Clone, Debug)]
pub(crate) struct QueueTable<V> {
    /// Sorted by queue, each queue once.
    entries: Vec<(MessageQueue, V)>,
    /// `fingerprint` of each entry's queue, position for position.
    fingerprints: Vec<u64>,
    /// Where the last lookup found its queue: tried first by the next one.
    last_hit: Cell<usize>,
}

impl<V> Default for QueueTable<V> {
    fn default() -> Self {
        QueueTable {
            entries: Vec::new(),
            fingerprints: Vec::new(),
            last_hit: Cell::new(0),
        }
    }
}

/// What tells a client's queues apart, in one word: the queue id, and each name's
/// length and last byte (broker groups are named alike up to their last letter; a
/// topic and its retry topic differ in length). Equal queues have equal fingerprints.
#[inline]
fn fingerprint(mq: &MessageQueue) -> u64 {
    let tail = |name: &str| {
        let last = name.as_bytes().last().copied().unwrap_or(0);
        (u64::from(last) << 8) | (name.len() as u64 & 0xff)
    };
    u64::from(mq.queue_id as u32) | (tail(&mq.broker_name) << 32) | (tail(&mq.topic) << 48)
}

/// `a == b` for queues whose fingerprints match: the names compared in line (a
/// library call per name cost more than these short names take to compare).
#[inline]
fn same_queue(a: &MessageQueue, b: &MessageQueue) -> bool {
    a.queue_id == b.queue_id
        && same_bytes(a.broker_name.as_bytes(), b.broker_name.as_bytes())
        && same_bytes(a.topic.as_bytes(), b.topic.as_bytes())
}

/// `a == b`, eight bytes at a time; the last word read ends at the last byte (it may
/// overlap the one before), so no byte is compared alone unless the names are short.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 8 {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8"));
    let mut at = 0;
    while at + 8 < len {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    word(a, len - 8) == word(b, len - 8)
}

impl<V> QueueTable<V> {
    pub(crate) fn new() -> Self {
        QueueTable::default()
    }

    /// The position of `mq` in `entries`: the last lookup's if it is that queue again,
    /// or the one after it, else the scan's.
    fn position(&self, mq: &MessageQueue) -> Option<usize> {
        let last = self.last_hit.get();
        let wanted = fingerprint(mq);
        for at in [last, last + 1] {
            if self.fingerprints.get(at) == Some(&wanted) {
                let queue = &self.entries[at].0;
                if std::ptr::eq(queue, mq) || same_queue(queue, mq) {
                    self.last_hit.set(at);
                    return Some(at);
                }
            }
        }
        let at = self
            .fingerprints
            .iter()
            .enumerate()
            .filter(|&(_, &f)| f == wanted)
            .map(|(at, _)| at)
            .find(|&at| same_queue(&self.entries[at].0, mq))?;
        self.last_hit.set(at);
        Some(at)
    }

    pub(crate) fn get(&self, mq: &MessageQueue) -> Option<&V> {
        let at = self.position(mq)?;
        Some(&self.entries[at].1)
    }

    pub(crate) fn get_mut(&mut self, mq: &MessageQueue) -> Option<&mut V> {
        let at = self.position(mq)?;
        Some(&mut self.entries[at].1)
    }

    pub(crate) fn contains_key(&self, mq: &MessageQueue) -> bool {
        self.position(mq).is_some()
    }

    /// Sets `mq`'s value; returns the one it replaces, if any.
    pub(crate) fn insert(&mut self, mq: MessageQueue, value: V) -> Option<V> {
        if let Some(at) = self.position(&mq) {
            return Some(std::mem::replace(&mut self.entries[at].1, value));
        }
        let at = self.entries.partition_point(|(q, _)| *q < mq);
        self.fingerprints.insert(at, fingerprint(&mq));
        self.entries.insert(at, (mq, value));
        None
    }

    /// Sets `mq`'s value, cloning the queue only when it is new.
    pub(crate) fn set(&mut self, mq: &MessageQueue, value: V) {
        match self.get_mut(mq) {
            Some(v) => *v = value,
            None => {
                self.insert(mq.clone(), value);
            }
        }
    }

    pub(crate) fn remove(&mut self, mq: &MessageQueue) -> Option<V> {
        let at = self.position(mq)?;
        self.fingerprints.remove(at);
        let (_, value) = self.entries.remove(at);
        Some(value)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.fingerprints.clear();
    }

    /// Queues in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &MessageQueue> {
        self.entries.iter().map(|(mq, _)| mq)
    }

    /// Values in queue order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// (queue, value) in queue order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MessageQueue, &V)> {
        self.entries.iter().map(|(mq, v)| (mq, v))
    }

    /// (queue, value) in queue order, the values mutable.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&MessageQueue, &mut V)> {
        self.entries.iter_mut().map(|(mq, v)| (&*mq, v))
    }
}

impl<V> Index<&MessageQueue> for QueueTable<V> {
    type Output = V;

    fn index(&self, mq: &MessageQueue) -> &V {
        self.get(mq).expect("queue in the table")
    }
}

impl<V> FromIterator<(MessageQueue, V)> for QueueTable<V> {
    fn from_iter<I: IntoIterator<Item = (MessageQueue, V)>>(items: I) -> Self {
        let mut table = QueueTable::new();
        for (mq, value) in items {
            table.insert(mq, value);
        }
        table
    }
}

impl<V> IntoIterator for QueueTable<V> {
    type Item = (MessageQueue, V);
    type IntoIter = std::vec::IntoIter<(MessageQueue, V)>;

    /// (queue, value) in queue order.
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn mq(topic: &str, broker_name: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: topic.to_string(),
            broker_name: broker_name.to_string(),
            queue_id,
        }
    }

    #[test]
    fn walks_in_queue_order_and_finds_each_queue() {
        let mut table = QueueTable::new();
        assert_eq!(table.insert(mq("T", "b", 1), 1), None);
        assert_eq!(table.insert(mq("%RETRY%g", "a", 0), 2), None);
        assert_eq!(table.insert(mq("T", "a", 3), 3), None);
        assert_eq!(table.insert(mq("T", "b", 1), 4), Some(1));
        let order: Vec<_> = table.keys().cloned().collect();
        assert_eq!(
            order,
            [mq("%RETRY%g", "a", 0), mq("T", "a", 3), mq("T", "b", 1)]
        );
        assert_eq!(table[&mq("T", "b", 1)], 4);
        assert_eq!(table.remove(&mq("T", "a", 3)), Some(3));
        assert_eq!(table.get(&mq("T", "a", 3)), None);
        assert_eq!(table.get(&mq("T", "b", 1)), Some(&4));
        table.set(&mq("T", "c", 0), 5);
        *table.get_mut(&mq("%RETRY%g", "a", 0)).unwrap() += 10;
        assert_eq!(table.values().copied().collect::<Vec<_>>(), [12, 4, 5]);
        assert_eq!(table.keys().count(), 3);
        table.clear();
        assert_eq!(table.iter().count(), 0);
        assert!(!table.contains_key(&mq("T", "b", 1)));
    }

    #[test]
    fn a_remembered_position_that_moved_is_not_trusted() {
        let mut table: QueueTable<u32> = [(mq("T", "a", 0), 0), (mq("T", "a", 1), 1)]
            .into_iter()
            .collect();
        // Remembers position 1, then the queue there moves to 0 and another takes 1.
        assert_eq!(table.get(&mq("T", "a", 1)), Some(&1));
        table.remove(&mq("T", "a", 0));
        table.insert(mq("T", "b", 0), 2);
        assert_eq!(table.get(&mq("T", "b", 0)), Some(&2));
        assert_eq!(table.get(&mq("T", "a", 1)), Some(&1));
        assert_eq!(table.get(&mq("T", "a", 0)), None);
        // Names that differ only past their first eight bytes, or only in length.
        table.insert(mq("TopicLongName1", "a", 1), 3);
        assert_eq!(table.get(&mq("TopicLongName2", "a", 1)), None);
        assert_eq!(table.get(&mq("TopicLongName1", "a", 1)), Some(&3));
        assert_eq!(table.get(&mq("TopicLongName", "a", 1)), None);
        // The same fingerprint (length, last byte, queue id), other names.
        assert_eq!(table.get(&mq("TopicLongNbme1", "a", 1)), None);
        assert_eq!(table.get(&mq("TopicLongName1", "b", 1)), None);
    }

    proptest! {
        /// The word-wise comparison agrees with `==` for names of any length that
        /// differ anywhere, or nowhere.
        #[test]
        fn same_bytes_is_equality(a in proptest::collection::vec(0u8..3, 0..40),
                                  flip in any::<prop::sample::Index>()) {
            prop_assert!(same_bytes(&a, &a.clone()));
            let mut b = a.clone();
            if !b.is_empty() {
                let at = flip.index(b.len());
                b[at] ^= 1;
            }
            prop_assert_eq!(same_bytes(&a, &b), a == b);
            prop_assert_eq!(same_bytes(&a, &a[..a.len() / 2]), a.len() == a.len() / 2);
        }

        /// Any sequence of sets and removals leaves the table agreeing with a
        /// `BTreeMap` given the same operations: same entries, same order.
        #[test]
        fn agrees_with_an_ordered_map(ops in proptest::collection::vec(
            (any::<bool>(), 0usize..3, 0usize..3, 0i32..4, any::<u8>()), 0..60)) {
            let topics = ["T", "%RETRY%g", "Ta"];
            let brokers = ["a", "b", "broker-a"];
            let mut table = QueueTable::new();
            let mut map = BTreeMap::new();
            for (insert, t, b, q, v) in ops {
                let key = mq(topics[t], brokers[b], q);
                if insert {
                    prop_assert_eq!(table.insert(key.clone(), v), map.insert(key, v));
                } else {
                    prop_assert_eq!(table.remove(&key), map.remove(&key));
                }
                for (k, v) in &map {
                    prop_assert_eq!(table.get(k), Some(v));
                }
            }
            let walked: Vec<_> = table.into_iter().collect();
            let expected: Vec<_> = map.into_iter().collect();
            prop_assert_eq!(walked, expected);
        }
    }
}
