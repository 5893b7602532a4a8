//! The world's event queue: events ordered by virtual time, and by the order they
//! were queued among events due at the same millisecond.
//!
//! A timing wheel: virtual time never goes back (nothing is queued before the last
//! event taken), and almost every event is due within a few seconds (packets, fsyncs,
//! the clients' and brokers' timers). Those go to the wheel, one FIFO slot per
//! millisecond of the next [`WHEEL_MS`], with a bitmap of the slots in use, so a push
//! is an append and a pop finds the next slot by a few word scans. Events due later
//! wait in a binary heap keyed by (time, sequence) and move to the wheel as time
//! reaches them. (The binary heap alone, holding every event and sifting a dozen
//! levels on each push and pop, was the simulator's largest single cost.)
//!
//! The wheel's events live in one slab, each slot a linked list through it, and a
//! taken event's cell goes back on a free list: a push reuses a cell instead of
//! allocating (a queue per slot grew its own buffer the first time each slot was used,
//! thousands of allocations and copies per run).
//!
//! Ties: an event due at `t` moves from the heap to the wheel, in (time, sequence)
//! order, as soon as the wheel covers `t` and before anything can be pushed for `t`
//! directly; a direct push appends. So events due at the same millisecond come out in
//! the order they were queued: the order is total and the same on every run.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// The wheel's span (ms), a power of two.
const WHEEL_MS: u64 = 8192;
const WORDS: usize = (WHEEL_MS / 64) as usize;
/// No cell: the end of a slot's list or of the free list.
const NIL: u32 = u32::MAX;

/// A slab cell: an event queued in the wheel (or none, on the free list) and the next
/// cell of its list.
struct Link<E> {
    event: Option<E>,
    next: u32,
}

/// The first and last cells of a slot's events (NIL when it has none).
#[derive(Clone, Copy)]
struct Slot {
    head: u32,
    tail: u32,
}

const EMPTY_SLOT: Slot = Slot {
    head: NIL,
    tail: NIL,
};

/// An event due past the wheel's span.
struct Far<E> {
    at_ms: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Far<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}

impl<E> Eq for Far<E> {}

impl<E> PartialOrd for Far<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Far<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // (at_ms, seq) is unique: the sequence never repeats.
        (self.at_ms, self.seq).cmp(&(other.at_ms, other.seq))
    }
}

pub(super) struct EventQueue<E> {
    /// The due time of the last event taken: nothing is queued before it, and the
    /// wheel covers `[base_ms, base_ms + WHEEL_MS)`.
    base_ms: u64,
    /// Slot `t % WHEEL_MS` holds the events due at `t`, in the order queued.
    slots: Vec<Slot>,
    /// The cells of the slots' lists and the free list.
    cells: Vec<Link<E>>,
    /// The first free cell.
    free: u32,
    /// Bit `i` set: slot `i` is not empty.
    occupied: [u64; WORDS],
    /// Events due at or after `base_ms + WHEEL_MS`.
    far: BinaryHeap<Reverse<Far<E>>>,
    next_seq: u64,
    len: usize,
}

impl<E> EventQueue<E> {
    pub(super) fn new() -> Self {
        EventQueue {
            base_ms: 0,
            slots: vec![EMPTY_SLOT; WHEEL_MS as usize],
            cells: Vec::new(),
            free: NIL,
            occupied: [0; WORDS],
            far: BinaryHeap::new(),
            next_seq: 0,
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Queues `event` at `at_ms`, after every event already queued for that time.
    pub(super) fn push(&mut self, at_ms: u64, event: E) {
        assert!(
            at_ms >= self.base_ms,
            "queued at {at_ms} ms, before the last event taken ({} ms)",
            self.base_ms
        );
        self.len += 1;
        if at_ms - self.base_ms < WHEEL_MS {
            self.put_in_wheel(at_ms, event);
        } else {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.far.push(Reverse(Far { at_ms, seq, event }));
        }
    }

    fn put_in_wheel(&mut self, at_ms: u64, event: E) {
        let cell = if self.free == NIL {
            let cell = u32::try_from(self.cells.len()).expect("fewer than 2^32 events queued");
            assert!(cell != NIL, "fewer than 2^32 - 1 events queued");
            self.cells.push(Link {
                event: Some(event),
                next: NIL,
            });
            cell
        } else {
            let cell = self.free;
            let c = &mut self.cells[cell as usize];
            self.free = c.next;
            c.event = Some(event);
            c.next = NIL;
            cell
        };
        let index = (at_ms % WHEEL_MS) as usize;
        let slot = &mut self.slots[index];
        if slot.tail == NIL {
            slot.head = cell;
        } else {
            self.cells[slot.tail as usize].next = cell;
        }
        slot.tail = cell;
        self.occupied[index / 64] |= 1 << (index % 64);
    }

    /// Takes the first event of a slot in use.
    fn take_from_wheel(&mut self, index: usize) -> E {
        let slot = &mut self.slots[index];
        let cell = slot.head;
        assert!(cell != NIL, "the slot found is in use");
        let c = &mut self.cells[cell as usize];
        let event = c.event.take().expect("a queued cell holds its event");
        slot.head = c.next;
        c.next = self.free;
        self.free = cell;
        if slot.head == NIL {
            slot.tail = NIL;
            self.occupied[index / 64] &= !(1 << (index % 64));
        }
        event
    }

    /// The due time of the first event in the wheel.
    fn next_in_wheel(&self) -> Option<u64> {
        let start = (self.base_ms % WHEEL_MS) as usize;
        // Scan from the base's slot to the wheel's end, then from its start around to
        // the base's slot: slot order from `start` on is due-time order.
        let first_word = self.occupied[start / 64] & (u64::MAX << (start % 64));
        let found = std::iter::once((start / 64, first_word))
            .chain((start / 64 + 1..WORDS).map(|w| (w, self.occupied[w])))
            .chain((0..=start / 64).map(|w| (w, self.occupied[w])))
            .find(|(_, bits)| *bits != 0)?;
        let slot = found.0 * 64 + found.1.trailing_zeros() as usize;
        let ahead_ms = (slot as u64 + WHEEL_MS - start as u64) % WHEEL_MS;
        Some(self.base_ms + ahead_ms)
    }

    /// Moves the wheel's base to `to_ms` and the far events it now covers into it.
    fn advance(&mut self, to_ms: u64) {
        self.base_ms = to_ms;
        while let Some(Reverse(far)) = self.far.peek() {
            if far.at_ms - self.base_ms >= WHEEL_MS {
                break;
            }
            let Reverse(far) = self.far.pop().expect("peeked");
            self.put_in_wheel(far.at_ms, far.event);
        }
    }

    /// The next event and its due time, if it is due at or before `until_ms`.
    pub(super) fn pop_due(&mut self, until_ms: u64) -> Option<(u64, E)> {
        let at_ms = match self.next_in_wheel() {
            Some(at_ms) => at_ms,
            None => self.far.peek()?.0.at_ms,
        };
        if at_ms > until_ms {
            // Left as it is: the caller may still queue events before `at_ms`.
            return None;
        }
        self.advance(at_ms);
        let event = self.take_from_wheel((at_ms % WHEEL_MS) as usize);
        self.len -= 1;
        Some((at_ms, event))
    }

    /// The next event and its due time.
    pub(super) fn pop(&mut self) -> Option<(u64, E)> {
        self.pop_due(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_by_time_then_in_the_order_queued() {
        let mut queue = EventQueue::new();
        queue.push(5, "a");
        queue.push(3, "b");
        queue.push(5, "c");
        queue.push(3, "d");
        assert_eq!(queue.pop_due(2), None, "nothing due at 2 ms");
        assert_eq!(queue.pop(), Some((3, "b")));
        assert_eq!(queue.pop(), Some((3, "d")));
        queue.push(4, "e");
        queue.push(5, "f");
        let rest: Vec<_> = std::iter::from_fn(|| queue.pop()).collect();
        assert_eq!(rest, vec![(4, "e"), (5, "a"), (5, "c"), (5, "f")]);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_queue_left_alone_by_pop_due_still_takes_earlier_events() {
        let mut queue = EventQueue::new();
        queue.push(100, "late");
        assert_eq!(queue.pop_due(10), None);
        queue.push(20, "early");
        assert_eq!(queue.pop(), Some((20, "early")));
        assert_eq!(queue.pop(), Some((100, "late")));
    }

    #[test]
    #[should_panic(expected = "before the last event taken")]
    fn refuses_an_event_in_the_past() {
        let mut queue = EventQueue::new();
        queue.push(10, ());
        queue.pop();
        queue.push(9, ());
    }

    /// Against a binary heap keyed by (time, sequence), the order the world relied on
    /// before: random pushes interleaved with pops, times clustered so ties are common.
    #[test]
    fn agrees_with_a_heap_ordered_by_time_then_sequence() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut queue = EventQueue::new();
        let mut heap = BinaryHeap::new();
        let mut now_ms = 0u64;
        for seq in 0u64..50_000 {
            let delay_ms = match rng.random_range(0..4) {
                0 => 0,
                1 => rng.random_range(0..3),
                2 => rng.random_range(0..1_000),
                _ => rng.random_range(0..100_000),
            };
            queue.push(now_ms + delay_ms, seq);
            heap.push(std::cmp::Reverse((now_ms + delay_ms, seq)));
            if rng.random_bool(0.5) {
                let std::cmp::Reverse(expected) = heap.pop().unwrap();
                assert_eq!(queue.pop(), Some(expected));
                now_ms = expected.0;
            }
        }
        while let Some(std::cmp::Reverse(expected)) = heap.pop() {
            assert_eq!(queue.pop(), Some(expected));
        }
        assert_eq!(queue.pop(), None);
    }
}
