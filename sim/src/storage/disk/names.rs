//! The names the page cache shows: in path order, for listings, and hashed, for the
//! lookup every read, write and sync request makes.
//!
//! Store paths share long prefixes (`consumequeue/TopicTest/3/0000…`), so a search of
//! the ordered map compared a few dozen bytes at each of its levels; the hash index
//! answers with one comparison. Nothing iterates the index: listings and anything
//! else that depends on order go through the ordered map.

use std::collections::BTreeMap;

use super::InodeId;
use crate::hasher::FastMap;

#[derive(Clone, Debug, Default)]
pub(super) struct Names {
    ordered: BTreeMap<String, InodeId>,
    index: FastMap<String, InodeId>,
}

impl Names {
    pub(super) fn get(&self, path: &str) -> Option<&InodeId> {
        self.index.get(path)
    }

    pub(super) fn contains_key(&self, path: &str) -> bool {
        self.index.contains_key(path)
    }

    /// Names `path` as `id`; returns the inode it named before, if any.
    pub(super) fn insert(&mut self, path: String, id: InodeId) -> Option<InodeId> {
        self.index.insert(path.clone(), id);
        self.ordered.insert(path, id)
    }

    pub(super) fn remove(&mut self, path: &str) -> Option<InodeId> {
        self.index.remove(path);
        self.ordered.remove(path)
    }

    pub(super) fn clear(&mut self) {
        self.index.clear();
        self.ordered.clear();
    }

    pub(super) fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Paths in order.
    pub(super) fn keys(&self) -> impl Iterator<Item = &String> {
        self.ordered.keys()
    }

    /// Inodes in path order.
    pub(super) fn values(&self) -> impl Iterator<Item = &InodeId> {
        self.ordered.values()
    }
}

impl From<BTreeMap<String, InodeId>> for Names {
    fn from(ordered: BTreeMap<String, InodeId>) -> Names {
        let index = ordered.iter().map(|(p, &id)| (p.clone(), id)).collect();
        Names { ordered, index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_order_agree_through_inserts_renames_and_removes() {
        let mut names = Names::default();
        assert_eq!(names.insert("b".into(), InodeId(1)), None);
        assert_eq!(names.insert("a".into(), InodeId(2)), None);
        assert_eq!(names.insert("b".into(), InodeId(3)), Some(InodeId(1)));
        assert_eq!(names.get("b"), Some(&InodeId(3)));
        assert_eq!(names.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(names.remove("a"), Some(InodeId(2)));
        assert!(!names.contains_key("a"));
        assert_eq!(names.get("a"), None);
        assert_eq!(names.len(), 1);
        let copy = Names::from(BTreeMap::from([("c".to_string(), InodeId(4))]));
        assert_eq!(copy.get("c"), Some(&InodeId(4)));
        assert_eq!(copy.values().collect::<Vec<_>>(), [&InodeId(4)]);
        names.clear();
        assert_eq!(names.len(), 0);
        assert!(!names.contains_key("b"));
    }
}
