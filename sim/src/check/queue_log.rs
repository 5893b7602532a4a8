//! What each queue holds at each offset, as far as anyone observed: every `SendOk`
//! (the producer was told "your message is at offset o") and every first-hand
//! delivery (a consumer read it at offset o), observed in time order as the index
//! pass streams them. Deliveries from the retry topic and deliveries without a
//! workload id are left out (they name no original position, or no message to
//! compare).
//!
//! The first observer of an offset defines it for the order rule, which asks which
//! known offsets in a range hold a message a group subscribes to. Every observer
//! naming another message than the one last seen there is recorded as a conflict
//! (the holder it replaced, and itself) for the offsets rule to judge: a second reuse
//! of a position is judged against the first reuse, not only against the first
//! holder, and a holder that comes back after another is judged again.

use std::collections::BTreeMap;

use super::tables::NONE;
use crate::history::Entry;

/// An offset more than this beyond a queue's dense table goes to its sparse map, so
/// a garbage offset cannot make the checker allocate gigabytes.
const DENSE_SLACK: u64 = 1 << 16;

/// Who is at an offset: the message and the history entry that first said so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub msg: u32,
    pub entry: u32,
    pub at_ms: u64,
}

#[derive(Default)]
pub(crate) struct Positions {
    base: u64,
    /// `dense[o - base]`: message index + 1, 0 when unknown.
    dense: Vec<u32>,
    dense_entry: Vec<u32>,
    sparse: BTreeMap<u64, Holder>,
    /// Offsets seen holding more than one message -> the holder seen there last.
    /// Conflicts are rare, so this stays small.
    latest: BTreeMap<u64, Holder>,
}

impl Positions {
    #[inline]
    fn dense_index(&mut self, offset: u64) -> Option<usize> {
        if self.dense.is_empty() && self.sparse.is_empty() {
            self.base = offset;
        }
        if offset < self.base {
            return None;
        }
        let i = offset - self.base;
        if i >= self.dense.len() as u64 + DENSE_SLACK {
            return None;
        }
        let i = i as usize;
        if i >= self.dense.len() {
            self.dense.resize(i + 1, 0);
            self.dense_entry.resize(i + 1, NONE);
        }
        Some(i)
    }

    /// Records `h` at `offset`; returns the holder seen there last if it was another
    /// message.
    #[inline]
    fn observe(&mut self, entries: &[Entry], offset: u64, h: Holder) -> Option<Holder> {
        if !self.latest.is_empty() {
            if let Some(last) = self.latest.get_mut(&offset) {
                if last.msg == h.msg {
                    return None;
                }
                return Some(std::mem::replace(last, h));
            }
        }
        let replaced = self.observe_first(entries, offset, h);
        if replaced.is_some() {
            self.latest.insert(offset, h);
        }
        replaced
    }

    /// Records `h` at `offset` if nothing was there; returns the first holder if it
    /// was another message.
    #[inline]
    fn observe_first(&mut self, entries: &[Entry], offset: u64, h: Holder) -> Option<Holder> {
        match self.dense_index(offset) {
            Some(i) => {
                let cur = self.dense[i];
                if cur == 0 {
                    self.dense[i] = h.msg + 1;
                    self.dense_entry[i] = h.entry;
                    None
                } else if cur - 1 == h.msg {
                    None
                } else {
                    // Conflicts are rare: look the time up instead of storing it.
                    let entry = self.dense_entry[i];
                    Some(Holder {
                        msg: cur - 1,
                        entry,
                        at_ms: entries[entry as usize].at_ms(),
                    })
                }
            }
            None => {
                let cur = *self.sparse.entry(offset).or_insert(h);
                (cur.msg != h.msg).then_some(cur)
            }
        }
    }

    /// Known holders with `from <= offset < to`, in offset order.
    pub(crate) fn range(&self, from: u64, to: u64) -> impl Iterator<Item = (u64, u32)> + '_ {
        let lo = from.max(self.base).saturating_sub(self.base) as usize;
        let hi = (to.saturating_sub(self.base) as usize).min(self.dense.len());
        let dense = self.dense[lo.min(hi)..hi]
            .iter()
            .enumerate()
            .filter(|(_, &m)| m != 0)
            .map(move |(k, &m)| (self.base + (lo + k) as u64, m - 1));
        let sparse = self
            .sparse
            .range(from..to.max(from))
            .map(|(&o, h)| (o, h.msg));
        // The sparse map only holds offsets outside the dense table, so the two
        // parts never overlap; chaining them keeps each part in order, which is all
        // callers need (they look for any match, and sort what they report).
        dense.chain(sparse)
    }

    /// Dense view for prefix counts: `(base, message index + 1 per offset)`.
    pub(crate) fn dense(&self) -> (u64, &[u32]) {
        (self.base, &self.dense)
    }

    pub(crate) fn sparse(&self) -> &BTreeMap<u64, Holder> {
        &self.sparse
    }
}

/// Two messages named at one position, one after the other.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conflict {
    pub queue: u32,
    pub offset: u64,
    /// The holder seen there last before `other`.
    pub first: Holder,
    pub other: Holder,
}

#[derive(Default)]
pub(crate) struct QueueLog {
    pub queues: Vec<Positions>,
    pub conflicts: Vec<Conflict>,
}

impl QueueLog {
    /// `h` says queue `queue` holds its message at `offset`.
    #[inline]
    pub(crate) fn observe(&mut self, entries: &[Entry], queue: u32, offset: u64, h: Holder) {
        let q = queue as usize;
        if q >= self.queues.len() {
            self.queues.resize_with(q + 1, Positions::default);
        }
        if let Some(first) = self.queues[q].observe(entries, offset, h) {
            self.conflicts.push(Conflict {
                queue,
                offset,
                first,
                other: h,
            });
        }
    }

    /// The positions of a queue (empty if nothing was observed there).
    pub(crate) fn queue(&self, queue: u32) -> Option<&Positions> {
        self.queues.get(queue as usize)
    }
}
