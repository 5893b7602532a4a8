//! The checker has teeth: every planted bug of the mutant registry
//! (`rmq_sim::mutants`), plugged in through the node factories with every scenario
//! unchanged, is caught within its seed budget by the rule it breaks, and the reference
//! passes every seed of those budgets. The same campaign as `sim mutants`.

use std::path::{Path, PathBuf};

use rmq_sim::check::Rule;
use rmq_sim::cluster::runner::{self, Nodes, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::history::Promise;
use rmq_sim::mutants::tamper::{tamper_brokers, tamper_consumers, tamper_name_servers, Tamper};
use rmq_sim::mutants::{campaign, registry, Component, Mutant, Verdict};

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

#[test]
fn every_mutant_is_caught_by_its_rule_and_the_reference_passes_the_same_seeds() {
    let mutants = registry();
    assert!(mutants.len() >= 20, "{} mutants", mutants.len());
    let report = campaign(&scenario_dir(), &mutants, None).unwrap_or_else(|e| panic!("{e}"));
    let mut problems = String::new();
    for m in &report.mutants {
        if m.verdict != Verdict::Caught {
            problems.push_str(&format!(
                "\n{} {} (expects {}, {} seeds of {}{}): {}",
                m.name,
                m.verdict.name(),
                m.expected.name(),
                m.budget,
                m.scenario,
                if m.variant.is_empty() {
                    String::new()
                } else {
                    format!(" {}", m.variant)
                },
                m.description
            ));
            if let Some(f) = &m.failure {
                problems.push_str(&format!(
                    "\n  seed {} violated {:?}\n  {}\n  replay: {}",
                    f.seed,
                    f.rules,
                    f.violations.join("\n  "),
                    f.replay
                ));
            }
        }
    }
    for r in &report.reference {
        for f in &r.failures {
            problems.push_str(&format!(
                "\nthe reference fails {} seed {}: {:?}\n  {}\n  replay: {}",
                r.scenario,
                f.seed,
                f.rules,
                f.violations.join("\n  "),
                f.replay
            ));
        }
    }
    assert!(report.passed(), "{problems}");
    assert_eq!(report.mutants.len(), mutants.len());
    for m in &report.mutants {
        let f = m
            .failure
            .as_ref()
            .expect("a caught mutant has a failing seed");
        assert!(
            f.replay.ends_with(&format!("--broker {}", m.name)),
            "{}",
            f.replay
        );
    }
    // Every rule but liveness has a planted bug that it alone catches (its first failing
    // seed violates that rule only), so no rule is carried by another. Liveness is the
    // summary of lost: a group starved after the heal always owes unexcused messages.
    for rule in Rule::ALL {
        if rule == Rule::Liveness {
            continue;
        }
        assert!(
            report.mutants.iter().any(
                |m| m.expected == rule && m.failure.as_ref().is_some_and(|f| f.rules == [rule])
            ),
            "no mutant is caught by {} alone",
            rule.name()
        );
    }
    let reference_seeds: u64 = report.reference.iter().map(|r| r.seeds).sum();
    assert!(reference_seeds >= report.mutants.len() as u64);
    for m in &report.mutants {
        eprintln!(
            "{:<34} {:<8} seed {:>3}, {}/{} seeds",
            m.name,
            m.expected.name(),
            m.failure.as_ref().map_or(0, |f| f.seed),
            m.seeds_to_detection,
            m.budget
        );
    }
}

/// The campaign itself can fail: a "mutant" that plants nothing is missed, and a real
/// one registered under the wrong rule is reported as caught by another rule.
#[test]
fn the_campaign_reports_missed_mutants_and_wrong_rules() {
    let honest = Mutant {
        name: "no-bug",
        component: Component::BrokerPull,
        description: "the reference itself",
        scenario: "case1_kill",
        variant: "",
        seeds: 1,
        expected: Rule::Lost,
        nodes: Nodes::reference,
    };
    let mut wrong_rule = registry()
        .into_iter()
        .find(|m| m.name == "pull-corrupt-body")
        .expect("registered");
    wrong_rule.expected = Rule::Order;
    let report = campaign(&scenario_dir(), &[honest, wrong_rule], None).unwrap();
    assert!(!report.passed());
    assert_eq!(report.mutants[0].verdict, Verdict::Missed);
    assert!(report.mutants[0].failure.is_none());
    assert_eq!(report.mutants[0].seeds_to_detection, 1);
    assert_eq!(report.mutants[1].verdict, Verdict::CaughtByAnotherRule);
    assert!(report.mutants[1]
        .failure
        .as_ref()
        .unwrap()
        .rules
        .contains(&Rule::Corrupt));
    assert!(report.reference.iter().all(|r| r.failures.is_empty()));
}

/// Tampers with nothing, through every hook (the disk's too).
struct PassThrough;

impl Tamper for PassThrough {
    fn tampers_disk(&self) -> bool {
        true
    }
}

/// The wrapper a mutant plants its bug in is transparent: every role wrapped with a
/// tamper that changes nothing runs exactly as the reference (same events, same trace
/// fingerprint), so what a mutant breaks is its bug, not the wrapping.
#[test]
fn a_wrapper_that_tampers_with_nothing_changes_nothing() {
    let loaded = LoadedScenario::load(&scenario_dir().join("case4_power_cut.toml")).unwrap();
    for seed in 0..2 {
        let variant = loaded.variant_for(seed);
        let reference = runner::run(variant, seed, Nodes::reference(), RunOptions::default());
        let wrapped = Nodes {
            broker: tamper_brokers(|_| Some(PassThrough)).broker,
            name_server: tamper_name_servers(|| PassThrough).name_server,
            consumer: tamper_consumers(|_| Some(PassThrough)).consumer,
            ..Nodes::default()
        };
        let out = runner::run(variant, seed, wrapped, RunOptions::default());
        assert!(
            reference.report.passed(),
            "{:?}",
            reference.report.violations
        );
        assert!(reference.events > 1_000, "{} events", reference.events);
        assert_eq!(out.events, reference.events, "seed {seed}");
        assert_eq!(out.fingerprint, reference.fingerprint, "seed {seed}");
        assert_eq!(out.history.entries.len(), reference.history.entries.len());
    }
}

/// The flush and replication mutants are judged against RocketMQ's documented windows,
/// not against the mutant broker's own configuration: their scenarios declare no
/// `[promise]`, so the checker holds every broker to the defaults.
#[test]
fn flush_and_ha_mutants_are_held_to_the_default_promise() {
    for m in registry()
        .iter()
        .filter(|m| matches!(m.component, Component::BrokerFlush | Component::BrokerHa))
    {
        let loaded =
            LoadedScenario::load(&scenario_dir().join(format!("{}.toml", m.scenario))).unwrap();
        assert_eq!(loaded.file.promise, Promise::default(), "{}", m.name);
    }
}
