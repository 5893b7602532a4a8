//! The cluster wing's commands: `sim run` (a sweep), `sim replay`, `sim check`,
//! `sim list` and `sim bench`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rmq_sim::cluster::runner::{self, Nodes, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::cluster::sweep::{self, SweepSummary};
use rmq_sim::history::{Entry, History};

use crate::{default_jobs, implementation, load, parse_range, wall_clock};

/// Splits `range` into `jobs` contiguous chunks, one thread each. Every seed is
/// its own deterministic run and the chunks merge in seed order, so the summary is the
/// same for any number of jobs.
pub(crate) fn sweep_in_parallel(
    loaded: &LoadedScenario,
    range: std::ops::Range<u64>,
    jobs: usize,
    broker: &str,
    nodes: fn() -> Nodes,
) -> SweepSummary {
    let jobs = jobs.max(1) as u64;
    let len = range.end - range.start;
    let chunk = len.div_ceil(jobs).max(1);
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|j| {
                let start = (range.start + j * chunk).min(range.end);
                let end = (start + chunk).min(range.end);
                scope.spawn(move || sweep::sweep_named(loaded, start..end, broker, nodes))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sweep thread panicked"))
            .collect()
    });
    sweep::merge(parts)
}

pub(crate) fn print_sweep_summary(s: &SweepSummary, wall_s: f64) {
    let virtual_s = s.virtual_ms as f64 / 1000.0;
    println!(
        "{}: {} seeds, {} passed, {} failed",
        s.scenario, s.seeds, s.passed, s.failed
    );
    println!(
        "  {} events, {:.0} s virtual time in {:.2} s wall: {:.0} events/s, {:.0}x real time",
        s.events,
        virtual_s,
        wall_s,
        s.events as f64 / wall_s.max(1e-9),
        virtual_s / wall_s.max(1e-9)
    );
    println!(
        "  {} sends, {} acknowledged, {} deliveries, {} duplicates, {} losses explained by the allowance",
        s.sends, s.acked, s.deliveries, s.duplicates, s.allowed_lost
    );
    if !s.duplicates_by_cause.is_empty() {
        println!("  duplicates by cause: {:?}", s.duplicates_by_cause);
    }
    println!("  excuses by kind: {}", excuse_totals(&s.excuses));
    for f in &s.failures {
        println!("\nseed {} ({}) violated {:?}", f.seed, f.variant, f.rules);
        for v in &f.violations {
            println!("  - {v}");
        }
        for e in &f.excuses {
            println!("  excused: {e}");
        }
        println!("  replay: {}", f.replay);
    }
}

/// `rule/excuse n, ...`, most used first, or `none`.
pub(crate) fn excuse_totals(excuses: &std::collections::BTreeMap<String, u64>) -> String {
    if excuses.is_empty() {
        return "none".to_string();
    }
    let mut v: Vec<(&String, &u64)> = excuses.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn run_command(
    path: &Path,
    seeds: u64,
    seed_range: Option<&str>,
    jobs: Option<usize>,
    json: bool,
    broker: &str,
) -> ExitCode {
    let nodes = match implementation(broker) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let range = match seed_range {
        Some(text) => match parse_range(text) {
            Some(r) => r,
            None => {
                eprintln!("error: --seed-range {text:?}: expected A..B with A < B");
                return ExitCode::from(2);
            }
        },
        None => 0..seeds,
    };
    let started = wall_clock();
    let summary = sweep_in_parallel(
        &loaded,
        range,
        jobs.unwrap_or_else(default_jobs),
        broker,
        nodes,
    );
    let wall_s = started.elapsed().as_secs_f64();
    if json {
        let mut v = serde_json::to_value(&summary).expect("summary serializes");
        v["wall_s"] = serde_json::json!(wall_s);
        println!("{v}");
    } else {
        print_sweep_summary(&summary, wall_s);
    }
    if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn replay_scenario(
    path: &Path,
    seed: u64,
    broker: &str,
    trace_file: Option<&Path>,
    history_file: Option<&Path>,
    tail: usize,
) -> ExitCode {
    let nodes = match implementation(broker) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let variant = loaded.variant_for(seed);
    let out = runner::run(variant, seed, nodes(), RunOptions { keep_trace: true });
    println!("# broker implementation: {broker}");
    println!("# derived configuration");
    println!(
        "{}",
        serde_json::to_string_pretty(&out.config).expect("config serializes")
    );
    println!(
        "\n# trace ({} events; the last {} lines)",
        out.events,
        tail.min(out.trace.len())
    );
    for line in out.trace.iter().skip(out.trace.len().saturating_sub(tail)) {
        println!("{line}");
    }
    if let Some(p) = trace_file {
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
            for line in &out.trace {
                serde_json::to_writer(&mut f, line)?;
                f.write_all(b"\n")?;
            }
            f.flush()
        };
        if let Err(e) = write() {
            eprintln!("error: writing {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    if let Some(p) = history_file {
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
            out.history.write_jsonl(&mut f)?;
            f.flush()
        };
        if let Err(e) = write() {
            eprintln!("error: writing {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    println!("\n# verdict");
    print!("{}", out.report);
    println!("fingerprint {:016x}", out.fingerprint);
    if out.report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn check_command(path: &Path, json: bool) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let history = match History::read_jsonl(&mut std::io::BufReader::new(file)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}:{}: {}", path.display(), e.line, e.message);
            return ExitCode::from(2);
        }
    };
    let report = rmq_sim::check::check(&history);
    if json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serializes")
        );
    } else {
        if let Some(Entry::Meta { scenario, seed, .. }) = history.entries.first() {
            println!(
                "# history {}: scenario {scenario}, seed {seed}, {} entries",
                path.display(),
                history.entries.len()
            );
        }
        println!("\n# verdict");
        print!("{report}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

pub(crate) fn list_command(dir: &Path) -> ExitCode {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut code = ExitCode::SUCCESS;
    for p in paths {
        match LoadedScenario::load(&p) {
            Ok(l) => println!(
                "{:<22} {} variant(s)  {}",
                l.stem,
                l.variants.len(),
                l.file.description
            ),
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::from(2);
            }
        }
    }
    code
}

/// Times `check` over `histories` five times and prints the median rate.
fn time_checker(what: &str, histories: &[History]) {
    let ops: usize = histories.iter().map(|h| h.entries.len()).sum();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = wall_clock();
        for h in histories {
            std::hint::black_box(rmq_sim::check::check(h));
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "checker on {what}: {ops} history ops in {:.1} ms (median of 5): {:.1} million ops/s",
        median * 1000.0,
        ops as f64 / median / 1e6
    );
}

pub(crate) fn bench_command(
    path: &Path,
    seeds: u64,
    checker_messages: usize,
    broker: &str,
) -> ExitCode {
    let nodes = match implementation(broker) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let loaded = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // One thread: events/s per core. The machine may be shared: the same sweep five
    // times, and the median wall time.
    let mut walls_s = Vec::new();
    let mut summary = None;
    for _ in 0..5 {
        let started = wall_clock();
        let s = sweep::sweep_named(&loaded, 0..seeds, broker, nodes);
        walls_s.push(started.elapsed().as_secs_f64());
        summary = Some(s);
    }
    walls_s.sort_by(f64::total_cmp);
    let summary = summary.expect("five sweeps ran");
    println!(
        "sweep wall times (s), sorted: {}",
        walls_s
            .iter()
            .map(|w| format!("{w:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    print_sweep_summary(&summary, walls_s[walls_s.len() / 2]);
    let synthetic = [rmq_sim::check::synthetic_history(checker_messages, 7)];
    assert!(
        rmq_sim::check::check(&synthetic[0]).passed(),
        "the synthetic history is healthy"
    );
    time_checker("synthetic history", &synthetic);
    // The same checker over what the simulator really writes: the histories of the
    // swept seeds (their mix of entries, faults and rules), each checked on its own.
    let histories: Vec<History> = (0..seeds)
        .map(|seed| {
            runner::run(
                loaded.variant_for(seed),
                seed,
                nodes(),
                RunOptions::default(),
            )
            .history
        })
        .collect();
    time_checker(&format!("the {seeds} seeds' histories"), &histories);
    if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
