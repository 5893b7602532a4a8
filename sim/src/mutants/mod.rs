//! The mutant campaign: planted-bug variants of the reference nodes, each judged on a
//! scenario within a seed budget, that the checker must catch — each by the rule the bug
//! breaks. A checker that lets one through has a blind spot; `sim mutants` and the
//! default `cargo test` (tests/mutants.rs) prove it has none for the bugs listed here.
//!
//! A mutant is a wrapper at the Node boundary ([`tamper`]: what a node sends, receives,
//! reads or writes is rewritten on the way) or a reference node booted from a config
//! that breaks what the scenario declares (a broker flushing asynchronously while the
//! history's Meta says SYNC_FLUSH). The reference code is never edited; a run without
//! mutants never touches this module.
//!
//! One file per component (`storage`, `broker_send`, `broker_flush`, `broker_ha`,
//! `broker_pull`, `broker_offsets`, `broker_schedule`, `broker_send_back`,
//! `broker_rebalance_lock`, `name_server`, `client_rebalance`, `client_rebalance_lock`,
//! `client_offset_store`, `client_filter`, `client_consume`, `client_producer`), each
//! with a `mutants()` list. Adding a
//! mutant is one [`Mutant`] entry in that list (plus its tamper, if it needs a new
//! one); [`registry`] collects the lists, and `sim run --broker NAME` can run it at once.

mod blind_spots;
mod broker_flush;
mod broker_ha;
mod broker_offsets;
mod broker_pull;
mod broker_rebalance_lock;
mod broker_schedule;
mod broker_send;
mod broker_send_back;
mod campaign;
mod client_consume;
mod client_filter;
mod client_offset_store;
mod client_producer;
mod client_rebalance;
mod client_rebalance_lock;
mod name_server;
mod storage;
pub mod tamper;

use std::fmt;

use serde::Serialize;

use crate::check::Rule;
use crate::cluster::runner::Nodes;

pub use blind_spots::{blind_spots, BlindSpot};
pub use campaign::{
    campaign, judge, probe_blind_spots, BlindSpotResult, CampaignReport, MutantResult,
    ReferenceResult, Verdict,
};

/// Which part of the system a mutant plants its bug in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The store: commit log, consume queues, fsync.
    Storage,
    /// The broker's SEND_MESSAGE handling.
    BrokerSend,
    /// The broker's flush (SYNC_FLUSH / ASYNC_FLUSH).
    BrokerFlush,
    /// Master–slave replication (HA).
    BrokerHa,
    /// The broker's PULL_MESSAGE handling.
    BrokerPull,
    /// The broker's consumer offsets and consumer registry.
    BrokerOffsets,
    /// The broker's delivery of delayed messages.
    BrokerSchedule,
    /// The broker's retry and dead-letter handling (CONSUMER_SEND_MSG_BACK).
    BrokerSendBack,
    /// The broker's queue locks for orderly consumers.
    BrokerRebalanceLock,
    /// The name server's routes.
    NameServer,
    /// The push consumer's rebalance.
    ClientRebalance,
    /// An orderly consumer's queue locks.
    ClientRebalanceLock,
    /// The push consumer's offset store.
    ClientOffsetStore,
    /// The push consumer's subscription / tag filter.
    ClientFilter,
    /// The push consumer's process queue and consume service.
    ClientConsume,
    /// The producer.
    ClientProducer,
}

impl Component {
    pub fn name(self) -> &'static str {
        match self {
            Component::Storage => "storage",
            Component::BrokerSend => "broker/send",
            Component::BrokerFlush => "broker/flush",
            Component::BrokerHa => "broker/ha",
            Component::BrokerPull => "broker/pull",
            Component::BrokerOffsets => "broker/offsets",
            Component::BrokerSchedule => "broker/schedule",
            Component::BrokerSendBack => "broker/send-back",
            Component::BrokerRebalanceLock => "broker/locks",
            Component::NameServer => "name server",
            Component::ClientRebalance => "client/rebalance",
            Component::ClientRebalanceLock => "client/locks",
            Component::ClientOffsetStore => "client/offset store",
            Component::ClientFilter => "client/filter",
            Component::ClientConsume => "client/consume",
            Component::ClientProducer => "client/producer",
        }
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One planted bug and how it is judged.
#[derive(Clone, Copy)]
pub struct Mutant {
    /// Unique, kebab-case: `sim run --broker NAME`.
    pub name: &'static str,
    pub component: Component,
    /// The bug it plants, in one line.
    pub description: &'static str,
    /// The scenario it is judged on: a file stem of `scenarios/`.
    pub scenario: &'static str,
    /// Only seeds whose derived variant name contains this (e.g. `flush=sync_flush`);
    /// empty: every seed.
    pub variant: &'static str,
    /// Seeds (of those the variant filter keeps) within which it must be caught.
    pub seeds: u64,
    /// The rule that must catch it (among the rules of its first failing seed).
    pub expected: Rule,
    /// Builds the nodes of a run: the reference with the bug planted.
    pub nodes: fn() -> Nodes,
}

/// Every registered mutant, in campaign order. Names are unique.
pub fn registry() -> Vec<Mutant> {
    let mut all = Vec::new();
    all.extend(storage::mutants());
    all.extend(broker_send::mutants());
    all.extend(broker_flush::mutants());
    all.extend(broker_ha::mutants());
    all.extend(broker_pull::mutants());
    all.extend(broker_offsets::mutants());
    all.extend(broker_schedule::mutants());
    all.extend(broker_send_back::mutants());
    all.extend(broker_rebalance_lock::mutants());
    all.extend(name_server::mutants());
    all.extend(client_rebalance::mutants());
    all.extend(client_rebalance_lock::mutants());
    all.extend(client_offset_store::mutants());
    all.extend(client_filter::mutants());
    all.extend(client_consume::mutants());
    all.extend(client_producer::mutants());
    all
}

/// The name of the reference implementation.
pub const REFERENCE: &str = "reference";

/// The implementations `sim run/replay/bench --broker NAME` can run: the reference,
/// every mutant, and every known blind spot.
pub fn implementation_names() -> Vec<&'static str> {
    std::iter::once(REFERENCE)
        .chain(registry().iter().map(|m| m.name))
        .chain(blind_spots().iter().map(|b| b.name))
        .collect()
}

/// An unknown `--broker NAME`: the message lists every registered name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown broker implementation {name:?}; registered: {}", implementation_names().join(", "))]
pub struct UnknownImplementation {
    pub name: String,
}

/// The factory of the registered implementation `name`.
pub fn implementation(name: &str) -> Result<fn() -> Nodes, UnknownImplementation> {
    if name == REFERENCE {
        return Ok(Nodes::reference);
    }
    registry()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.nodes)
        .or_else(|| {
            blind_spots()
                .into_iter()
                .find(|b| b.name == name)
                .map(|b| b.nodes)
        })
        .ok_or_else(|| UnknownImplementation {
            name: name.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_the_registry_covers_every_rule_and_component() {
        let all = registry();
        assert!(all.len() >= 20, "{} mutants", all.len());
        let mut names = implementation_names();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate implementation names");
        assert!(all.iter().all(|m| m.name != REFERENCE));
        // Every rule has a mutant it must catch.
        for rule in Rule::ALL {
            assert!(
                all.iter().any(|m| m.expected == rule),
                "no mutant for rule {}",
                rule.name()
            );
        }
        for c in [
            Component::Storage,
            Component::BrokerSend,
            Component::BrokerFlush,
            Component::BrokerHa,
            Component::BrokerPull,
            Component::BrokerOffsets,
            Component::NameServer,
            Component::ClientRebalance,
            Component::ClientOffsetStore,
            Component::ClientFilter,
            Component::ClientConsume,
            Component::ClientProducer,
        ] {
            assert!(all.iter().any(|m| m.component == c), "no mutant in {c}");
        }
        for m in &all {
            assert!(m.seeds > 0, "{}", m.name);
            assert!(!m.description.is_empty(), "{}", m.name);
        }
    }

    #[test]
    fn unknown_names_list_the_registered_ones() {
        assert!(implementation(REFERENCE).is_ok());
        assert!(implementation(registry()[0].name).is_ok());
        let e = implementation("nope").unwrap_err().to_string();
        assert!(e.contains("\"nope\""), "{e}");
        assert!(e.contains(REFERENCE), "{e}");
        assert!(e.contains(registry()[0].name), "{e}");
    }
}
