//! Many seeds of one scenario: the engine behind `sim run`, `sim bench` and the test
//! suite. Each seed is an independent, deterministic run. Sweeps of disjoint ranges
//! (other threads, other machines) [`merge`] into the same summary in seed order, so
//! nothing depends on how a sweep was split. No threads here: `sim` stays
//! single-threaded; only the CLI spreads ranges over cores.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;

use crate::check::{Rule, Violation};
use crate::cluster::runner::{self, Nodes, RunOptions};
use crate::cluster::scenario::LoadedScenario;

/// One failing seed: what broke, and how to see it again.
#[derive(Clone, Debug, Serialize)]
pub struct SeedFailure {
    pub seed: u64,
    pub variant: String,
    /// The registered implementation that ran (`sim --broker NAME`), when it has a name.
    pub broker: Option<String>,
    pub rules: Vec<Rule>,
    pub violations: Vec<String>,
    /// The excuses the seed's verdict took (`rule/excuse xN: evidence`).
    pub excuses: Vec<String>,
    pub replay: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SweepSummary {
    pub scenario: String,
    pub seeds: u64,
    pub passed: u64,
    pub failed: u64,
    pub events: u64,
    pub virtual_ms: u64,
    pub sends: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub duplicates: u64,
    /// Duplicates by cause (see `check::Rule::Duplicates`).
    pub duplicates_by_cause: std::collections::BTreeMap<String, u64>,
    pub allowed_lost: u64,
    /// `rule/excuse` -> times it fired over every seed (see `check::Report::excuses`).
    pub excuses: BTreeMap<String, u64>,
    pub history_ops: u64,
    pub failures: Vec<SeedFailure>,
}

/// The command that replays `seed` of the scenario file at `path` with the registered
/// implementation `broker` (`None`: a factory the CLI does not know; the reference's
/// command is printed, to be run with that factory through the library).
pub fn replay_command(path: &str, seed: u64, broker: Option<&str>) -> String {
    let mut cmd = format!(
        "cargo run --release -p rmq-sim --bin sim -- replay --scenario {path} --seed {seed}"
    );
    if let Some(name) = broker {
        cmd.push_str(" --broker ");
        cmd.push_str(name);
    }
    cmd
}

fn run_seed(
    loaded: &LoadedScenario,
    seed: u64,
    broker: Option<&str>,
    nodes: &Nodes,
) -> (SweepSummary, Option<SeedFailure>) {
    let variant = loaded.variant_for(seed);
    let out = runner::run(variant, seed, nodes.clone(), RunOptions::default());
    let stats = &out.report.stats;
    let mut s = SweepSummary {
        seeds: 1,
        events: out.events,
        virtual_ms: out.virtual_ms,
        sends: stats.sends,
        acked: stats.acked,
        deliveries: stats.deliveries,
        duplicates: stats.duplicates_by_group.values().sum(),
        duplicates_by_cause: stats.duplicates_by_cause.clone(),
        allowed_lost: stats.allowed_lost,
        excuses: stats.excuses.clone(),
        history_ops: stats.history_ops,
        ..SweepSummary::default()
    };
    if out.report.passed() {
        s.passed = 1;
        return (s, None);
    }
    s.failed = 1;
    let failure = SeedFailure {
        seed,
        variant: variant.name.clone(),
        broker: broker.map(str::to_string),
        rules: {
            let mut r: Vec<Rule> = out
                .report
                .violations
                .iter()
                .map(|v: &Violation| v.rule)
                .collect();
            r.sort();
            r.dedup();
            r
        },
        violations: out
            .report
            .violations
            .iter()
            .take(5)
            .map(|v| v.to_string())
            .collect(),
        excuses: out.report.excuses.iter().map(|t| t.to_string()).collect(),
        replay: replay_command(&loaded.path, seed, broker),
    };
    (s, Some(failure))
}

fn add(total: &mut SweepSummary, s: &SweepSummary) {
    total.seeds += s.seeds;
    total.passed += s.passed;
    total.failed += s.failed;
    total.events += s.events;
    total.virtual_ms += s.virtual_ms;
    total.sends += s.sends;
    total.acked += s.acked;
    total.deliveries += s.deliveries;
    total.duplicates += s.duplicates;
    for (cause, n) in &s.duplicates_by_cause {
        *total.duplicates_by_cause.entry(cause.clone()).or_insert(0) += n;
    }
    total.allowed_lost += s.allowed_lost;
    for (k, n) in &s.excuses {
        *total.excuses.entry(k.clone()).or_insert(0) += n;
    }
    total.history_ops += s.history_ops;
}

/// Runs every seed in `seeds`, one after another, with the nodes `make_nodes` builds (a
/// [`crate::cluster::runner::BrokerFactory`] alone, or a whole [`Nodes`]). The factory is a
/// function so that a sweep can run on any thread.
pub fn sweep<N: Into<Nodes>>(
    loaded: &LoadedScenario,
    seeds: Range<u64>,
    make_nodes: fn() -> N,
) -> SweepSummary {
    sweep_nodes(loaded, seeds, None, make_nodes().into())
}

/// [`sweep`] with the registered implementation `broker` (its name goes into every
/// replay command).
pub fn sweep_named(
    loaded: &LoadedScenario,
    seeds: Range<u64>,
    broker: &str,
    make_nodes: fn() -> Nodes,
) -> SweepSummary {
    sweep_nodes(loaded, seeds, Some(broker), make_nodes())
}

fn sweep_nodes(
    loaded: &LoadedScenario,
    seeds: Range<u64>,
    broker: Option<&str>,
    nodes: Nodes,
) -> SweepSummary {
    let mut total = SweepSummary {
        scenario: loaded.stem.clone(),
        ..SweepSummary::default()
    };
    for seed in seeds {
        let (s, f) = run_seed(loaded, seed, broker, &nodes);
        add(&mut total, &s);
        total.failures.extend(f);
    }
    total
}

/// Sums sweeps of disjoint seed ranges (a sharded sweep); failures in seed order, so
/// the result does not depend on how the range was split.
pub fn merge(parts: Vec<SweepSummary>) -> SweepSummary {
    let mut total = SweepSummary::default();
    for p in parts {
        if total.scenario.is_empty() {
            total.scenario = p.scenario.clone();
        }
        add(&mut total, &p);
        total.failures.extend(p.failures);
    }
    total.failures.sort_by_key(|f| f.seed);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_sweeps_total_excuses_by_kind() {
        let part = |seed: u64, excuses: &[(&str, u64)]| SweepSummary {
            scenario: "s".into(),
            seeds: 1,
            excuses: excuses.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            failures: vec![SeedFailure {
                seed,
                variant: "s".into(),
                broker: None,
                rules: Vec::new(),
                violations: Vec::new(),
                excuses: Vec::new(),
                replay: String::new(),
            }],
            ..SweepSummary::default()
        };
        let total = merge(vec![
            part(7, &[("lost/async_flush", 3), ("offsets/broker_restart", 1)]),
            part(2, &[("lost/async_flush", 2)]),
        ]);
        assert_eq!(total.seeds, 2);
        assert_eq!(total.excuses.get("lost/async_flush"), Some(&5));
        assert_eq!(total.excuses.get("offsets/broker_restart"), Some(&1));
        assert_eq!(total.failures[0].seed, 2);
    }

    #[test]
    fn replay_commands_name_the_implementation() {
        let named = replay_command("scenarios/x.toml", 3, Some("pull-reverse-batch"));
        assert!(
            named.ends_with("--seed 3 --broker pull-reverse-batch"),
            "{named}"
        );
        let unnamed = replay_command("scenarios/x.toml", 3, None);
        assert!(unnamed.ends_with("--seed 3"), "{unnamed}");
    }
}
