//! A fixed, unseeded hasher for hot maps and sets: the checker's (message ids, queues,
//! spans) and the world's armed timers.
//!
//! std's default hasher is randomly seeded (banned in sim/ by clippy.toml) and slow
//! for small integer keys. Nothing iterates these maps or sets to produce output or to
//! decide anything (the checker iterates `Vec`s in history order or `BTreeMap`s; the
//! world only asks whether a timer is armed), so a fixed seed costs no determinism, and
//! nothing in a history is adversarial enough to need SipHash.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Odd multiplier: 2^64 divided by the golden ratio, so consecutive ids spread out.
const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Rotate, xor, multiply per word; `finish` folds the high half down because hashbrown
/// takes the bucket from the low bits and the high bits of a product mix better.
#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher {
    state: u64,
}

impl MixHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(26) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.add(u64::from(i as u32));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.state ^ (self.state >> 29)
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<MixHasher>>;

/// For workload ids only. Ids are mostly sequential, and the checker touches a
/// message's entry a few times shortly after its send. A mixing hash scatters those
/// touches over a table far larger than the caches (a miss each); this one keeps the
/// id's low 57 bits as they are, so hashbrown's bucket (taken from the low bits)
/// follows the id and consecutive sends share cache lines. The top 7 bits, which
/// hashbrown keeps as the per-slot tag, are mixed so tags still tell ids apart.
#[derive(Default, Clone, Copy)]
pub(crate) struct WidHasher {
    id: u64,
}

impl Hasher for WidHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not used for u64 keys; fold anything else in rather than fail.
        for &b in bytes {
            self.id = (self.id.rotate_left(8) ^ u64::from(b)).wrapping_mul(MIX);
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.id = i;
    }
    #[inline]
    fn finish(&self) -> u64 {
        const TAG_BITS: u64 = 0xFE00_0000_0000_0000;
        self.id ^ (self.id.wrapping_mul(MIX) & TAG_BITS)
    }
}

pub(crate) type WidMap<V> = HashMap<u64, V, BuildHasherDefault<WidHasher>>;
