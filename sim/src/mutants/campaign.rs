//! The campaign: every registered mutant over its scenario, seed after seed until the
//! checker fails one or the budget runs out, then the reference over every seed any
//! mutant ran. The engine behind `sim mutants` and tests/mutants.rs.
//!
//! A mutant is *caught* when a seed fails and its expected rule is among that seed's
//! rules; *caught by another rule* when a seed fails without it (the bug shows, but not
//! where the registry says it should: either the registry or a rule is wrong); *missed*
//! when every seed of its budget passes. The reference must pass every seed of every
//! mutant's budget, or a "caught" mutant proves nothing.
//!
//! Sequential, like every sweep in `sim/` (no threads): the whole campaign takes
//! seconds, and its report is the same on every machine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{BlindSpot, Component, Mutant, REFERENCE};
use crate::check::Rule;
use crate::cluster::runner::Nodes;
use crate::cluster::scenario::{LoadedScenario, ScenarioError};
use crate::cluster::sweep::{self, SeedFailure};

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Caught,
    CaughtByAnotherRule,
    Missed,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Caught => "caught",
            Verdict::CaughtByAnotherRule => "caught by another rule",
            Verdict::Missed => "MISSED",
        }
    }
}

/// One mutant's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct MutantResult {
    pub name: &'static str,
    pub component: Component,
    pub description: &'static str,
    pub scenario: &'static str,
    pub variant: &'static str,
    pub expected: Rule,
    /// Seeds (of the kept variant) it had to be caught within.
    pub budget: u64,
    pub verdict: Verdict,
    /// The failing seed, its rules, its first violations and its replay command.
    pub failure: Option<SeedFailure>,
    /// Seeds run up to and including the first failing one (the whole budget if none).
    pub seeds_to_detection: u64,
    /// Every seed it ran.
    #[serde(skip)]
    pub seeds_run: Vec<u64>,
}

/// The reference over the seeds of the mutants' budgets on one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ReferenceResult {
    pub scenario: String,
    pub seeds: u64,
    pub failures: Vec<SeedFailure>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CampaignReport {
    pub mutants: Vec<MutantResult>,
    pub reference: Vec<ReferenceResult>,
}

impl CampaignReport {
    /// Every mutant caught by its rule, and the reference clean.
    pub fn passed(&self) -> bool {
        self.mutants.iter().all(|m| m.verdict == Verdict::Caught)
            && self.reference.iter().all(|r| r.failures.is_empty())
    }
}

/// The seeds (of `loaded`'s variants, filtered by `variant`) a mutant with `budget` may
/// run, in order: the first `budget` seeds whose variant name contains `variant`.
fn candidate_seeds<'a>(
    loaded: &'a LoadedScenario,
    variant: &'a str,
    budget: u64,
) -> impl Iterator<Item = u64> + 'a {
    (0u64..)
        .filter(move |&s| loaded.variant_for(s).name.contains(variant))
        .take(usize::try_from(budget).unwrap_or(usize::MAX))
}

/// Runs one mutant until caught or out of budget.
pub fn judge(loaded: &LoadedScenario, mutant: &Mutant, budget: u64) -> MutantResult {
    let mut seeds_run = Vec::new();
    let mut failure = None;
    for seed in candidate_seeds(loaded, mutant.variant, budget) {
        seeds_run.push(seed);
        let s = sweep::sweep_named(loaded, seed..seed + 1, mutant.name, mutant.nodes);
        if let Some(f) = s.failures.into_iter().next() {
            failure = Some(f);
            break;
        }
    }
    let verdict = match &failure {
        None => Verdict::Missed,
        Some(f) if f.rules.contains(&mutant.expected) => Verdict::Caught,
        Some(_) => Verdict::CaughtByAnotherRule,
    };
    MutantResult {
        name: mutant.name,
        component: mutant.component,
        description: mutant.description,
        scenario: mutant.scenario,
        variant: mutant.variant,
        expected: mutant.expected,
        budget,
        verdict,
        failure,
        seeds_to_detection: seeds_run.len() as u64,
        seeds_run,
    }
}

/// Runs `mutants` (each with its own budget, or `budget` for all when given) over their
/// scenarios from `scenario_dir`, then the reference over every seed of their budgets.
pub fn campaign(
    scenario_dir: &Path,
    mutants: &[Mutant],
    budget: Option<u64>,
) -> Result<CampaignReport, ScenarioError> {
    let mut scenarios: BTreeMap<&str, LoadedScenario> = BTreeMap::new();
    for m in mutants {
        if !scenarios.contains_key(m.scenario) {
            let path = scenario_dir.join(format!("{}.toml", m.scenario));
            scenarios.insert(m.scenario, LoadedScenario::load(&path)?);
        }
    }
    let results: Vec<MutantResult> = mutants
        .iter()
        .map(|m| judge(&scenarios[m.scenario], m, budget.unwrap_or(m.seeds)))
        .collect();
    // The reference runs every seed of every mutant's budget, not only those a mutant
    // needed: a budget is a claim that these seeds are clean for the reference.
    let mut seeds: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for m in mutants {
        let budget = budget.unwrap_or(m.seeds);
        seeds.entry(m.scenario).or_default().extend(candidate_seeds(
            &scenarios[m.scenario],
            m.variant,
            budget,
        ));
    }
    let reference = seeds
        .iter()
        .map(|(scenario, set)| {
            let loaded = &scenarios[scenario];
            let mut failures = Vec::new();
            for &seed in set {
                let run = sweep::sweep_named(loaded, seed..seed + 1, REFERENCE, Nodes::reference);
                failures.extend(run.failures);
            }
            ReferenceResult {
                scenario: scenario.to_string(),
                seeds: set.len() as u64,
                failures,
            }
        })
        .collect();
    Ok(CampaignReport {
        mutants: results,
        reference,
    })
}

/// A known blind spot tried again: does some rule catch it now?
#[derive(Clone, Debug, Serialize)]
pub struct BlindSpotResult {
    pub name: &'static str,
    pub component: Component,
    pub description: &'static str,
    pub scenario: &'static str,
    pub awaits: &'static str,
    pub seeds: u64,
    /// The first failing seed, if any: then it belongs in the registry, with its rule.
    pub failure: Option<SeedFailure>,
}

/// Runs every blind spot over the first `seeds` seeds of its scenario, stopping at the
/// first failure (the integrator's check after a rule lands: `sim mutants
/// --blind-spots`).
pub fn probe_blind_spots(
    scenario_dir: &Path,
    spots: &[BlindSpot],
    seeds: u64,
) -> Result<Vec<BlindSpotResult>, ScenarioError> {
    let mut out = Vec::new();
    for b in spots {
        let loaded = LoadedScenario::load(&scenario_dir.join(format!("{}.toml", b.scenario)))?;
        let mut failure = None;
        let mut ran = 0;
        for seed in 0..seeds {
            ran += 1;
            let s = sweep::sweep_named(&loaded, seed..seed + 1, b.name, b.nodes);
            if let Some(f) = s.failures.into_iter().next() {
                failure = Some(f);
                break;
            }
        }
        out.push(BlindSpotResult {
            name: b.name,
            component: b.component,
            description: b.description,
            scenario: b.scenario,
            awaits: b.awaits,
            seeds: ran,
            failure,
        });
    }
    Ok(out)
}
