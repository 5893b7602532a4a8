//! A planted durability bug, compiled only with the cargo feature `planted-bugs`
//! (`cargo build -p rmq-real --features planted-bugs --bin mqbroker`): commit-log writes
//! are held in the process's memory until that file is synced, the window RocketMQ's
//! `transientStorePoolEnable` opens (data in an off-heap buffer until its commit).
//! Under ASYNC_FLUSH a broker acknowledges before the flush, so a `kill -9` then loses
//! acknowledged messages the page cache would have kept — which `mqchaos` must report.
//! Reads see the held bytes, so the broker behaves normally until it is killed.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One held write: where, and what.
type Held = (u64, Vec<u8>);

/// Writes held per file, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct WriteBehind {
    held: Mutex<BTreeMap<String, Vec<Held>>>,
}

impl WriteBehind {
    /// Whether a write to `path` is held (the commit log's files only).
    pub(crate) fn holds(path: &str) -> bool {
        path.starts_with("commitlog/")
    }

    pub(crate) fn hold(&self, path: &str, offset: u64, data: &[u8]) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.entry(path.to_string())
            .or_default()
            .push((offset, data.to_vec()));
    }

    /// `bytes` (what the file holds at `offset`) with the held writes laid over it.
    pub(crate) fn overlay<'a>(
        &self,
        path: &str,
        offset: u64,
        bytes: Cow<'a, [u8]>,
    ) -> Cow<'a, [u8]> {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let Some(writes) = held.get(path) else {
            return bytes;
        };
        let end = offset + bytes.len() as u64;
        let mut out = bytes;
        for (at, data) in writes {
            let (from, to) = ((*at).max(offset), (at + data.len() as u64).min(end));
            if from < to {
                let dst = (from - offset) as usize..(to - offset) as usize;
                let src = (from - at) as usize..(to - at) as usize;
                out.to_mut()[dst].copy_from_slice(&data[src]);
            }
        }
        out
    }

    /// The writes held for `path`, taken to be written now (before its sync).
    pub(crate) fn take(&self, path: &str) -> Vec<Held> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.remove(path).unwrap_or_default()
    }
}
