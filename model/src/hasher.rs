//! A fixed, unseeded hasher for hot lookup tables: the clients' request tables here, and
//! the simulator's (its checker's maps, the world's armed timers, the disk's names).
//!
//! std's default hasher is randomly seeded (banned in model/ and sim/ by clippy.toml)
//! and slow for small keys. Tables hashed with this one are only ever looked up, never
//! iterated to produce output or to decide anything (anything ordered goes through a
//! `BTreeMap` or a sorted `Vec`), so a fixed seed costs no determinism, and nothing the
//! keys come from is adversarial enough to need SipHash.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Odd multiplier: 2^64 divided by the golden ratio, so consecutive ids spread out.
pub const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

/// Rotate, xor, multiply per word; `finish` folds the high half down because hashbrown
/// takes the bucket from the low bits and the high bits of a product mix better.
#[derive(Default, Clone, Copy)]
pub struct MixHasher {
    state: u64,
}

impl MixHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(26) ^ word).wrapping_mul(MIX);
    }
}

impl Hasher for MixHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The last eight bytes in one load, overlapping the last whole word, where
            // there are eight (paths and topics): copying the remainder into a buffer
            // was a call to memcpy per hash. The remainder's length goes in too, or
            // keys one byte apart that end in eight equal bytes would collide.
            let last = match bytes.len().checked_sub(8) {
                Some(at) => u64::from_le_bytes(bytes[at..].try_into().expect("8 bytes")),
                None => rest.iter().fold(0, |word, &b| (word << 8) | u64::from(b)),
            };
            self.add(last ^ (rest.len() as u64).wrapping_mul(MIX));
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

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;
pub type FastSet<K> = HashSet<K, BuildHasherDefault<MixHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(key: &str) -> u64 {
        BuildHasherDefault::<MixHasher>::default().hash_one(key)
    }

    #[test]
    fn every_byte_of_a_key_counts_short_or_long() {
        // A path differing only in its last byte (the tail read overlapping the last
        // whole word), and keys shorter than a word.
        let keys = [
            "consumequeue/TopicTest/0/00000000000000000000",
            "consumequeue/TopicTest/1/00000000000000000000",
            "consumequeue/TopicTest/0/00000000000000000001",
            "consumequeue/TopicTest/0/0000000000000000000",
            "",
            "a",
            "b",
            "ab",
            "ba",
            "abcdefg",
            "abcdefgh",
            "abcdefghi",
        ];
        let hashes: std::collections::BTreeSet<u64> = keys.iter().map(|k| hash(k)).collect();
        assert_eq!(hashes.len(), keys.len());
        assert_eq!(hash("abcdefghi"), hash("abcdefghi"));
    }
}
