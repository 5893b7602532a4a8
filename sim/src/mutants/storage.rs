//! Planted bugs in the store (`store/`): an fsync of the wrong file, consume-queue
//! entries with the wrong tag code, reads that return other bytes than were written.
//! Tampered through the running broker's disk; recovery at boot reads it untampered.

use super::tamper::{position_in, tamper_brokers, view, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, scenario, variant, seeds, expected, nodes| Mutant {
        name,
        component: Component::Storage,
        description,
        scenario,
        variant,
        seeds,
        expected,
        nodes,
    };
    vec![
        m(
            "store-fsync-first-file",
            "every commit-log fsync syncs the first mapped file instead of the one written",
            "case4_power_cut",
            "flush=sync_flush",
            // First caught at seed 96 once the workload starts at 6 s (49 of 400 seeds).
            150,
            Rule::Lost,
            || tamper_brokers(|_| Some(Store::FsyncFirstFile)),
        ),
        m(
            "store-cq-wrong-tags-code",
            "writes consume-queue entries whose tag hash code is off by one, so tag filters miss them",
            "case1_kill",
            "",
            4,
            Rule::Lost,
            || tamper_brokers(|_| Some(Store::WrongTagsCode)),
        ),
        m(
            "store-read-flips-body",
            "commit-log reads return the record's body with one bit flipped (the store's CRC check then skips it)",
            "case1_kill",
            "",
            4,
            Rule::Lost,
            || tamper_brokers(|_| Some(Store::ReadFlipsBody)),
        ),
    ]
}

enum Store {
    FsyncFirstFile,
    WrongTagsCode,
    ReadFlipsBody,
}

const FIRST_COMMIT_LOG_FILE: &str = "commitlog/00000000000000000000";
/// A consume-queue entry: commit-log offset (8), size (4), tag code (8).
const CQ_ENTRY_BYTES: usize = 20;

impl Tamper for Store {
    fn tampers_disk(&self) -> bool {
        true
    }

    fn sync_instead(&mut self, path: &str) -> Option<&'static str> {
        match self {
            Store::FsyncFirstFile if path.starts_with("commitlog/") => Some(FIRST_COMMIT_LOG_FILE),
            _ => None,
        }
    }

    fn write(&mut self, path: &str, _offset: u64, data: &[u8]) -> Option<Vec<u8>> {
        match self {
            Store::WrongTagsCode
                if path.starts_with("consumequeue/") && data.len() == CQ_ENTRY_BYTES =>
            {
                let mut entry = data.to_vec();
                let code = i64::from_be_bytes(entry[12..20].try_into().expect("8 bytes"));
                entry[12..20].copy_from_slice(&code.wrapping_add(1).to_be_bytes());
                Some(entry)
            }
            _ => None,
        }
    }

    fn read(&self, path: &str, _offset: u64, data: &mut Vec<u8>) {
        if !matches!(self, Store::ReadFlipsBody) || !path.starts_with("commitlog/") {
            return;
        }
        let at = view(data)
            .filter(|v| !v.body.is_empty() && v.bytes.len() == data.len())
            .map(|v| position_in(data, v.body));
        if let Some(at) = at {
            data[at] ^= 0x40;
        }
    }
}
