//! Who received what: for every delivery *slot* (a clustering group is one slot; a
//! broadcasting group has one slot per consumer) the set of messages it received, and
//! when it last received anything. Filled while the index pass streams deliveries;
//! lost, liveness and the duplicate count read it.

use super::tables::{Dlv, NONE};

/// The delivery before a redelivery: its entry and ownership span.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PrevDelivery {
    pub entry: u32,
    pub span: u32,
}

#[derive(Default, Clone)]
pub(crate) struct Slot {
    /// Per message index: `((entry + 1) << 32) | span` of its last delivery to the
    /// slot not from a retry topic (its first, if all were); 0 if it never got it.
    last: Vec<u64>,
    /// Last delivery of anything (phantoms included), if any.
    pub last_ms: Option<u64>,
}

#[derive(Default)]
pub(crate) struct DeliveryTable {
    /// `slots[group][slot]`.
    slots: Vec<Vec<Slot>>,
    /// Per group: deliveries of a (message, slot) already delivered before.
    pub duplicates: Vec<u64>,
}

impl DeliveryTable {
    /// Records a delivery; for a redelivery, returns the slot's delivery before it.
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv) -> Option<PrevDelivery> {
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
        if d.msg == NONE {
            return None;
        }
        let m = d.msg as usize;
        if m >= slot.last.len() {
            slot.last.resize((m + 1).max(slot.last.len() * 2), 0);
        }
        let before = slot.last[m];
        // A retry sits in the retry topic, not at the message's own position: a later
        // redelivery from that position is compared with the delivery made there.
        if before == 0 || !d.retry {
            slot.last[m] = ((u64::from(d.entry) + 1) << 32) | u64::from(d.span);
        }
        if before == 0 {
            return None;
        }
        self.duplicates[g] += 1;
        Some(PrevDelivery {
            entry: ((before >> 32) - 1) as u32,
            span: before as u32,
        })
    }

    /// The slot's state; an empty one if nothing was ever delivered to it.
    pub(crate) fn slot(&self, group: u32, slot: u32) -> Option<&Slot> {
        self.slots.get(group as usize)?.get(slot as usize)
    }

    pub(crate) fn received(&self, group: u32, slot: u32, m: u32) -> bool {
        self.slot(group, slot)
            .is_some_and(|s| s.last.get(m as usize).is_some_and(|&v| v != 0))
    }

    pub(crate) fn last_ms(&self, group: u32, slot: u32) -> Option<u64> {
        self.slot(group, slot).and_then(|s| s.last_ms)
    }
}
