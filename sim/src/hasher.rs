//! Fixed, unseeded hashers for hot maps and sets: the checker's (message ids, queues,
//! spans) and the world's armed timers. The mixing one lives in the model
//! (`rmq_model::hasher`), which hashes the clients' queue tables with it.
//!
//! std's default hasher is randomly seeded (banned in sim/ by clippy.toml) and slow
//! for small integer keys. Nothing iterates these maps or sets to produce output or to
//! decide anything (the checker iterates `Vec`s in history order or `BTreeMap`s; the
//! world only asks whether a timer is armed), so a fixed seed costs no determinism, and
//! nothing in a history is adversarial enough to need SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The model's fixed hasher: one piece for the clients' tables and the simulator's.
pub(crate) use rmq_model::hasher::{FastMap, FastSet, MixHasher, MIX};

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
