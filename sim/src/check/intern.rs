//! Names (groups, topics, brokers, tags) to dense ids, so the rules compare integers
//! and index `Vec`s instead of hashing strings for every history entry.

use crate::hasher::FastMap;

/// Below this many names a linear scan beats hashing the string: a history names a
/// handful of groups, topics and brokers, so this is the path nearly every lookup takes.
const SCAN_LIMIT: usize = 8;

#[derive(Default)]
pub(crate) struct Interner {
    names: Vec<Box<str>>,
    /// Per name: its length and first 8 bytes, so the scan compares integers and
    /// only touches the bytes of a name longer than 8 when length and prefix agree.
    keys: Vec<(usize, u64)>,
    ids: FastMap<Box<str>, u32>,
}

/// Length and first (up to) 8 bytes of a name.
#[inline]
fn key(name: &str) -> (usize, u64) {
    let b = name.as_bytes();
    if let Some(head) = b.first_chunk::<8>() {
        return (b.len(), u64::from_le_bytes(*head));
    }
    let mut p = 0u64;
    for (i, &c) in b.iter().enumerate() {
        p |= u64::from(c) << (8 * i);
    }
    (b.len(), p)
}

impl Interner {
    // Called several times per history entry: the common path (a known name, found
    // by a short scan) is small and inlined; adding a name and the hashed lookup of
    // a long list stay out of line, so the callers do not pay for their registers.

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
        self.ids.insert(name.into(), id);
        id
    }

    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        if self.names.len() > SCAN_LIMIT {
            return self.get_hashed(name);
        }
        let k = key(name);
        if k.0 <= 8 {
            // The key is the whole name. Scan every key without stopping at the
            // match: which name comes next is data, so an early exit would be a
            // branch mispredicted about as often as not; a select never is.
            let mut found = None;
            for (i, nk) in self.keys.iter().enumerate() {
                found = if *nk == k { Some(i as u32) } else { found };
            }
            return found;
        }
        self.keys
            .iter()
            .zip(&self.names)
            .position(|(nk, n)| *nk == k && n.as_bytes()[8..] == name.as_bytes()[8..])
            .map(|i| i as u32)
    }

    #[inline(never)]
    fn get_hashed(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
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
    fn ids_are_stable_across_the_scan_and_the_map() {
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
            // Every earlier name still resolves, whichever lookup serves it now.
            for (j, m) in names[..=k].iter().enumerate() {
                assert_eq!(i.get(m), Some(j as u32), "{m:?} after {n:?}");
            }
        }
        assert_eq!(i.get("broker-"), None);
        assert_eq!(i.get("broker-ad"), None);
        assert_eq!(i.name(4), "broker-ab");
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
