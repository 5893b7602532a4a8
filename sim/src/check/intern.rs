//! Names (groups, topics, brokers, tags) to dense ids, so the rules compare integers
//! and index `Vec`s instead of hashing strings for every history entry.

#[derive(Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    /// Per name its [`Key`].
    keys: Vec<Key>,
    /// Open addressing on the key's hash. At most half full, so a lookup nearly
    /// always reads one slot and compares one key.
    slots: Slots,
}

/// An open-addressed table of dense ids (0, 1, 2, ... in the order they were added),
/// placed by their hash's high bits: each slot an id, or [`EMPTY`]. It stays at most
/// half full, so a probe rarely goes past its first slot.
#[derive(Default)]
pub(crate) struct Slots(Vec<u32>);

impl Slots {
    /// The first id along `hash`'s probe sequence that `is` accepts; `None` at the
    /// first empty slot.
    #[inline]
    pub(crate) fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.0.is_empty() {
            return None;
        }
        let mask = self.0.len() - 1;
        let mut i = (hash >> 32) as usize & mask;
        loop {
            let id = self.0[i];
            if id == EMPTY {
                return None;
            }
            if is(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Places id `ids - 1`, the newest of `ids`; when that would leave the table more
    /// than half full, it doubles and places every id again (`hash_of` each).
    pub(crate) fn add(&mut self, ids: usize, hash_of: impl Fn(u32) -> u64) {
        if self.0.len() < 2 * ids {
            let size = (4 * ids).next_power_of_two().max(16);
            self.0 = vec![EMPTY; size];
            for id in 0..ids as u32 {
                self.place(id, hash_of(id));
            }
        } else {
            let id = ids as u32 - 1;
            self.place(id, hash_of(id));
        }
    }

    fn place(&mut self, id: u32, hash: u64) {
        let mask = self.0.len() - 1;
        let mut i = (hash >> 32) as usize & mask;
        while self.0[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.0[i] = id;
    }
}

const EMPTY: u32 = u32::MAX;

/// A name's length and two overlapping loads of its bytes (the first and the last
/// eight, or four, or three single bytes). For a name of up to [`WHOLE`] bytes the
/// loads cover every byte, so equal keys mean equal names; longer names also compare
/// their bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    len: usize,
    head: u64,
    tail: u64,
}

/// The longest name its [`Key`] holds whole.
const WHOLE: usize = 16;

#[inline]
pub(crate) fn key(name: &str) -> Key {
    let b = name.as_bytes();
    let len = b.len();
    // Fixed-size chunks of the first and last bytes: one length check each, no
    // slice-to-array conversion to fail.
    let (head, tail) = match len {
        8.. => match (b.first_chunk::<8>(), b.last_chunk::<8>()) {
            (Some(h), Some(t)) => (u64::from_le_bytes(*h), u64::from_le_bytes(*t)),
            _ => unreachable!("eight bytes or more"),
        },
        4..=7 => match (b.first_chunk::<4>(), b.last_chunk::<4>()) {
            (Some(h), Some(t)) => (
                u64::from(u32::from_le_bytes(*h)),
                u64::from(u32::from_le_bytes(*t)),
            ),
            _ => unreachable!("four bytes or more"),
        },
        1..=3 => (
            u64::from(b[0]) | u64::from(b[len / 2]) << 8 | u64::from(b[len - 1]) << 16,
            0,
        ),
        0 => (0, 0),
    };
    Key { len, head, tail }
}

/// Odd multiplier: 2^64 divided by the golden ratio.
pub(crate) const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Key {
    /// The key's bytes mixed into one word (take the high bits).
    #[inline]
    pub(crate) fn hash(&self) -> u64 {
        (self.head ^ self.tail.rotate_left(31) ^ self.len as u64).wrapping_mul(MIX)
    }

    /// Equal keys mean equal names: the name is no longer than the key holds whole.
    #[inline]
    pub(crate) fn is_whole(&self) -> bool {
        self.len <= WHOLE
    }
}

impl Interner {
    // Called several times per history entry: the common path (a known name, found
    // in its first slot) is small; adding a name stays out of line.

    #[inline]
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        match self.get(name) {
            Some(id) => id,
            None => self.add(name),
        }
    }

    #[cold]
    #[inline(never)]
    fn add(&mut self, name: &str) -> u32 {
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 names");
        self.names.push(name.into());
        self.keys.push(key(name));
        let keys = &self.keys;
        self.slots.add(keys.len(), |id| keys[id as usize].hash());
        id
    }

    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        let k = key(name);
        self.slots.find(k.hash(), |id| {
            self.keys[id as usize] == k && (k.len <= WHOLE || *self.names[id as usize] == *name)
        })
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// Tags: id 0 is "no tags", so that a message without tags has an id like any other.
#[derive(Default)]
pub(crate) struct TagInterner {
    inner: Interner,
}

pub(crate) const NO_TAGS: u32 = 0;

impl TagInterner {
    #[inline]
    pub(crate) fn intern(&mut self, tags: Option<&str>) -> u32 {
        match tags {
            None => NO_TAGS,
            Some(t) => self.inner.intern(t) + 1,
        }
    }

    /// The tag string of an id; `None` for [`NO_TAGS`].
    pub(crate) fn name(&self, id: u32) -> Option<&str> {
        (id != NO_TAGS).then(|| self.inner.name(id - 1))
    }

    /// Number of ids, counting [`NO_TAGS`].
    pub(crate) fn len(&self) -> usize {
        self.inner.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::{Interner, TagInterner, NO_TAGS};

    #[test]
    fn ids_are_stable_as_the_table_grows() {
        let names = [
            "a",
            "ab",
            "",
            "broker-a",
            "broker-ab",
            "broker-ac",
            "broker-a\u{e9}",
            "b",
            "g-all",
            "g-ab",
            "T",
            "%RETRY%g",
        ];
        let mut i = Interner::default();
        for (k, n) in names.iter().enumerate() {
            assert_eq!(i.intern(n), k as u32, "{n:?}");
            // Every earlier name still resolves after the table is rebuilt larger.
            for (j, m) in names[..=k].iter().enumerate() {
                assert_eq!(i.get(m), Some(j as u32), "{m:?} after {n:?}");
            }
        }
        assert_eq!(i.get("broker-"), None);
        assert_eq!(i.get("broker-ad"), None);
        assert_eq!(i.name(4), "broker-ab");
    }

    #[test]
    fn names_its_loads_could_confuse_stay_apart() {
        // Pairs differing only in a byte the key's loads read once (the middle of a
        // short name), in the last eight, or past them (longer than the key holds).
        let names = [
            "abc",
            "acc",
            "abcd",
            "abdd",
            "%RETRY%g_all",
            "%RETRY%g_alk",
            "SCHEDULE_TOPIC_XXXX",
            "SCHEDULE_TOPIC_XXYX",
        ];
        let mut i = Interner::default();
        for n in names {
            i.intern(n);
        }
        for (k, n) in names.iter().enumerate() {
            assert_eq!(i.get(n), Some(k as u32), "{n:?}");
        }
        for absent in ["ab", "abd", "%RETRY%g_al", "SCHEDULE_TOPIC_XXZX", ""] {
            assert_eq!(i.get(absent), None, "{absent:?}");
        }
    }

    #[test]
    fn no_tags_is_its_own_id() {
        let mut t = TagInterner::default();
        assert_eq!(t.intern(None), NO_TAGS);
        let a = t.intern(Some("a"));
        assert_ne!(a, NO_TAGS);
        assert_eq!(t.intern(Some("")), a + 1);
        assert_eq!((t.name(a), t.name(NO_TAGS)), (Some("a"), None));
    }
}
