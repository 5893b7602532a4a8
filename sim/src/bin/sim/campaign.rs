//! `sim mutants` (the campaign) and `sim blind-spots`.

use std::path::Path;
use std::process::ExitCode;

use rmq_sim::mutants::{self, Verdict};

use crate::wall_clock;

pub(crate) fn mutants_command(
    seeds: Option<u64>,
    only: Option<&str>,
    dir: &Path,
    json: bool,
) -> ExitCode {
    let selected: Vec<_> = mutants::registry()
        .into_iter()
        .filter(|m| only.is_none_or(|o| m.name.contains(o)))
        .collect();
    if selected.is_empty() {
        eprintln!(
            "error: --only {only:?} matches no mutant; registered: {}",
            mutants::implementation_names()[1..].join(", ")
        );
        return ExitCode::from(2);
    }
    let started = wall_clock();
    let report = match mutants::campaign(dir, &selected, seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    if json {
        let mut v = serde_json::to_value(&report).expect("report serializes");
        v["passed"] = serde_json::json!(report.passed());
        v["wall_s"] = serde_json::json!(wall_s);
        println!("{v}");
    } else {
        print_campaign(&report, wall_s);
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn print_campaign(report: &mutants::CampaignReport, wall_s: f64) {
    println!(
        "{:<32} {:<19} {:<8} {:<10} {:>5} {:<22} {:>12}  scenario",
        "mutant", "component", "expects", "verdict", "seed", "rules", "seeds/budget"
    );
    for m in &report.mutants {
        let (seed, rules) = match &m.failure {
            Some(f) => (
                f.seed.to_string(),
                f.rules
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            None => ("-".to_string(), "-".to_string()),
        };
        let scenario = if m.variant.is_empty() {
            m.scenario.to_string()
        } else {
            format!("{} ({})", m.scenario, m.variant)
        };
        let verdict = match m.verdict {
            Verdict::Caught => "caught",
            Verdict::CaughtByAnotherRule => "OTHER RULE",
            Verdict::Missed => "MISSED",
        };
        println!(
            "{:<32} {:<19} {:<8} {:<10} {:>5} {:<22} {:>12}  {}",
            m.name,
            m.component.name(),
            m.expected.name(),
            verdict,
            seed,
            rules,
            format!("{}/{}", m.seeds_to_detection, m.budget),
            scenario
        );
    }
    let caught = report
        .mutants
        .iter()
        .filter(|m| m.verdict == Verdict::Caught)
        .count();
    println!(
        "\n{caught} of {} mutants caught by their rule",
        report.mutants.len()
    );
    for r in &report.reference {
        println!(
            "reference on {}: {} seeds, {} failed",
            r.scenario,
            r.seeds,
            r.failures.len()
        );
        for f in &r.failures {
            println!("  seed {} ({}) violated {:?}", f.seed, f.variant, f.rules);
            println!("    replay: {}", f.replay);
        }
    }
    for m in report
        .mutants
        .iter()
        .filter(|m| m.verdict != Verdict::Caught)
    {
        println!("\n{} ({}): {}", m.name, m.verdict.name(), m.description);
        if let Some(f) = &m.failure {
            for v in &f.violations {
                println!("  - {v}");
            }
            println!("  replay: {}", f.replay);
        }
    }
    println!("wall time {wall_s:.2} s");
    println!("{}", if report.passed() { "PASS" } else { "FAIL" });
}

pub(crate) fn blind_spots_command(
    seeds: u64,
    only: Option<&str>,
    dir: &Path,
    json: bool,
) -> ExitCode {
    let spots: Vec<_> = mutants::blind_spots()
        .into_iter()
        .filter(|b| only.is_none_or(|o| b.name.contains(o)))
        .collect();
    let results = match mutants::probe_blind_spots(dir, &spots, seeds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_value(&results).expect("results serialize")
        );
    } else {
        for r in &results {
            match &r.failure {
                None => println!(
                    "{:<30} still blind after {} seeds of {} (awaits: {})",
                    r.name, r.seeds, r.scenario, r.awaits
                ),
                Some(f) => println!(
                    "{:<30} CAUGHT at seed {} of {} by {:?}: move it into the registry\n  replay: {}",
                    r.name, f.seed, r.scenario, f.rules, f.replay
                ),
            }
        }
    }
    ExitCode::SUCCESS
}
