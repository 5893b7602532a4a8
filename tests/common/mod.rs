//! What the root test files share: loading a scenario of `scenarios/` and sweeping it
//! with the reference broker, asserting that the runs did something and that every seed
//! passed (with the first failures, their excuses and replay lines in the message).

#![allow(dead_code)] // each test file uses its part

use std::path::Path;

use rmq_sim::cluster::runner::reference_broker;
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::cluster::sweep::{sweep, SweepSummary};

/// `scenarios/NAME.toml`, named by that relative path in replay lines.
pub fn load(name: &str) -> LoadedScenario {
    load_path(&format!("scenarios/{name}.toml"))
}

/// The scenario file at `relative` (to the repository root), named so in replay lines.
pub fn load_path(relative: &str) -> LoadedScenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let mut loaded = LoadedScenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    loaded.path = relative.to_string();
    loaded
}

/// Seeds `0..n` of `loaded` with the reference: messages went out and came back, and
/// every seed passed. `label` names the sweep in messages.
pub fn sweep_passes(loaded: &LoadedScenario, label: &str, n: u64) -> SweepSummary {
    let summary = sweep(loaded, 0..n, reference_broker);
    assert_eq!(summary.seeds, n);
    assert!(
        summary.acked > n,
        "{label}: only {} acknowledged sends",
        summary.acked
    );
    assert!(
        summary.deliveries > summary.acked,
        "{label}: {} deliveries",
        summary.deliveries
    );
    let mut report = String::new();
    for f in summary.failures.iter().take(5) {
        report.push_str(&format!(
            "\nseed {} ({}) {:?}\n  {}\n  excuses: {:?}\n  replay: {}",
            f.seed,
            f.variant,
            f.rules,
            f.violations.join("\n  "),
            f.excuses,
            f.replay
        ));
    }
    assert_eq!(
        summary.failed, 0,
        "{label}: {} of {n} seeds failed{report}",
        summary.failed
    );
    summary
}
