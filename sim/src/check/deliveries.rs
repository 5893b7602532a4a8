//! Who received what: for every delivery *slot* (a clustering group is one slot; a
//! broadcasting group has one slot per consumer) the set of messages it received, and
//! when it last received anything. Filled while the index pass streams deliveries;
//! lost, liveness and the duplicate count read it.

use std::collections::BTreeMap;

use super::index::{Dlv, NONE};

/// A growable set of message indexes.
#[derive(Default, Clone)]
pub(crate) struct MsgSet {
    words: Vec<u64>,
}

impl MsgSet {
    /// Adds `m`; false if it was already there.
    #[inline]
    fn insert(&mut self, m: u32) -> bool {
        let (w, b) = ((m / 64) as usize, m % 64);
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        let had = self.words[w] & (1 << b) != 0;
        self.words[w] |= 1 << b;
        !had
    }

    #[inline]
    pub(crate) fn contains(&self, m: u32) -> bool {
        self.words
            .get((m / 64) as usize)
            .is_some_and(|w| w & (1 << (m % 64)) != 0)
    }
}

#[derive(Default, Clone)]
pub(crate) struct Slot {
    pub received: MsgSet,
    /// Last delivery of anything (phantoms included), if any.
    pub last_ms: Option<u64>,
    /// Per queue, each time the highest offset delivered from it (retries aside) rose:
    /// `(at_ms, offset)`, in history order.
    highs: BTreeMap<u32, Vec<(u64, u64)>>,
}

#[derive(Default)]
pub(crate) struct DeliveryTable {
    /// `slots[group][slot]`.
    slots: Vec<Vec<Slot>>,
    /// Per group: deliveries of a (message, slot) already delivered before.
    pub duplicates: Vec<u64>,
}

impl DeliveryTable {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv) {
        let g = d.group as usize;
        if g >= self.slots.len() {
            self.slots.resize(g + 1, Vec::new());
            self.duplicates.resize(g + 1, 0);
        }
        let slots = &mut self.slots[g];
        let s = d.slot as usize;
        if s >= slots.len() {
            slots.resize(s + 1, Slot::default());
        }
        let slot = &mut slots[s];
        slot.last_ms = Some(slot.last_ms.map_or(d.at_ms, |t| t.max(d.at_ms)));
        if d.msg != NONE && !slot.received.insert(d.msg) {
            self.duplicates[g] += 1;
        }
        if !d.retry {
            let highs = slot.highs.entry(d.queue).or_default();
            if highs.last().is_none_or(|&(_, high)| d.offset > high) {
                highs.push((d.at_ms, d.offset));
            }
        }
    }

    /// The highest offset of `queue` the slot received (retries aside) before
    /// `before_ms`, if any.
    pub(crate) fn high_before(
        &self,
        group: u32,
        slot: u32,
        queue: u32,
        before_ms: u64,
    ) -> Option<u64> {
        let highs = self.slot(group, slot)?.highs.get(&queue)?;
        let n = highs.partition_point(|&(at, _)| at < before_ms);
        n.checked_sub(1).map(|i| highs[i].1)
    }

    /// The slot's state; an empty one if nothing was ever delivered to it.
    pub(crate) fn slot(&self, group: u32, slot: u32) -> Option<&Slot> {
        self.slots.get(group as usize)?.get(slot as usize)
    }

    pub(crate) fn received(&self, group: u32, slot: u32, m: u32) -> bool {
        self.slot(group, slot)
            .is_some_and(|s| s.received.contains(m))
    }

    pub(crate) fn last_ms(&self, group: u32, slot: u32) -> Option<u64> {
        self.slot(group, slot).and_then(|s| s.last_ms)
    }
}
