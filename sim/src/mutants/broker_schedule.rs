//! Planted bugs in the delivery of delayed messages
//! (`broker/schedule_message_service.rs`, `store/delay_level.rs`).

use rmq_model::store::delay_level::MessageDelayLevel;

use super::tamper::broker_config;
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    vec![
        Mutant {
            name: "delay-progress-not-persisted",
            component: Component::BrokerSchedule,
            description: "never persists how far each delay level delivered (delayOffset.json) while running: a crashed master re-delivers every level from its last clean shutdown",
            scenario: "delay",
            variant: "flush=sync_flush",
            seeds: 40,
            expected: Rule::Duplicates,
            nodes: || broker_config(|c| c.flush_delay_offset_interval_ms = 24 * 3_600_000),
        },
        Mutant {
        name: "delay-one-level-early",
        component: Component::BrokerSchedule,
        description: "delivers a delayed message one level early: level n waits level n − 1's delay (level 1 none)",
        scenario: "delay",
        variant: "",
        seeds: 4,
        expected: Rule::Delay,
        nodes: || broker_config(|c| {
            let table = &c.store.message_delay_level;
            let shifted: Vec<u64> = std::iter::once(0)
                .chain(table.levels().map(|(_, delay_ms)| delay_ms))
                .take(table.max_level() as usize)
                .collect();
            c.store.message_delay_level =
                MessageDelayLevel::from_delays_ms(shifted).expect("as many levels as before");
        }),
    },
    ]
}
