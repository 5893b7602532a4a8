//! Planted bugs in the broker's flush (`broker/flush.rs`): durability weaker than the
//! scenario declares (and the history's Meta records), so a power cut takes more than
//! the declared flush window allows.

use rmq_model::broker::FlushDiskType;

use super::tamper::broker_config;
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![
        Mutant {
            name: "flush-sync-acks-before-fsync",
            component: Component::BrokerFlush,
            description:
                "declared SYNC_FLUSH but flushes asynchronously: SEND_OK before the covering fsync",
            scenario: "case4_power_cut",
            variant: "flush=sync_flush",
            seeds: 40,
            expected: Rule::Lost,
            nodes: || broker_config(|c| c.flush_disk_type = FlushDiskType::AsyncFlush),
        },
        Mutant {
            name: "flush-async-every-30s",
            component: Component::BrokerFlush,
            description: "ASYNC_FLUSH flushing every 30 s instead of 500 ms (thorough every 10 s): past the declared flush window",
            scenario: "case4_power_cut",
            variant: "flush=async_flush",
            seeds: 40,
            expected: Rule::Lost,
            nodes: || {
                broker_config(|c| {
                    c.flush_interval_commit_log_ms = 30_000;
                    c.flush_commit_log_thorough_interval_ms = 30_000;
                })
            },
        },
    ]
}
