//! `sim`: rocketsim's command line.
//!
//! - `sim run --scenario FILE --seeds N [--broker NAME]`: a sweep of seeded fault
//!   scenarios, judged by the checker; a failure prints the command that replays it.
//! - `sim replay --scenario FILE --seed S [--broker NAME]`: one run, bit for bit, with
//!   its derived configuration, trace, verdict and trace fingerprint.
//! - `sim check --history FILE`: judge a history written by anything (a replay, the
//!   real-process harness, another implementation); the same verdict as `replay`.
//! - `sim list`: the scenarios.
//! - `sim bench [--broker NAME]`: simulator and checker throughput.
//! - `sim mutants [--seeds N] [--json]`: the mutant campaign (every registered planted
//!   bug must be caught by its rule; the reference must pass the same seeds).
//!
//! `--broker NAME` picks a registered implementation: `reference` (the default) or a
//! mutant of `rmq_sim::mutants`.
//! - `sim store-crash --seeds 10000`: seeded crash/recover schedules against the
//!   storage engine alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rmq_sim::cluster::runner::{self, Nodes, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::cluster::sweep::{self, SweepSummary};
use rmq_sim::history::{Entry, History};
use rmq_sim::mutants::{self, Verdict};
use rmq_sim::storage::store_crash::{self, Stats, Violation};

// The simulator allocates and frees small messages, strings and queue entries at every
// event; mimalloc's per-thread free lists make that a fraction of glibc's cost. It
// changes no behaviour: nothing in the simulation depends on addresses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "sim",
    about = "rocketsim: deterministic simulation of a RocketMQ store and cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario over many seeds and judge every run.
    Run {
        #[arg(long)]
        scenario: PathBuf,
        /// How many seeds, starting at 0.
        #[arg(long, default_value_t = 100, conflicts_with = "seed_range")]
        seeds: u64,
        /// A half-open range `A..B` of seeds (to shard a sweep over machines).
        #[arg(long)]
        seed_range: Option<String>,
        /// Worker threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// One JSON object on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
        /// The implementation to run: `reference` or a registered mutant.
        #[arg(long, default_value = mutants::REFERENCE)]
        broker: String,
    },
    /// Run one seed again, bit for bit, and show everything.
    Replay {
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        /// The implementation to run: `reference` or a registered mutant.
        #[arg(long, default_value = mutants::REFERENCE)]
        broker: String,
        /// Also write the trace as JSON lines to this file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Also write the history (what clients saw) as JSON lines to this file.
        #[arg(long)]
        history: Option<PathBuf>,
        /// Print at most this many trace lines (the last ones).
        #[arg(long, default_value_t = 200)]
        tail: usize,
    },
    /// Judge a history file (JSON lines, see docs/history.md) written by anything, and
    /// print the verdict `replay` prints. Exit 0: pass, 1: violations, 2: bad input.
    Check {
        #[arg(long)]
        history: PathBuf,
        /// The report (violations, excuses, counts) as one JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// The scenarios in a directory, one line each.
    List {
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Simulator events/s and speed-up over real time on a scenario, and checker ops/s.
    Bench {
        #[arg(long, default_value = "scenarios/chaos.toml")]
        scenario: PathBuf,
        /// Seeds per timed sweep; the sweep is timed five times and the median shown.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// Messages in the synthetic history the checker is timed on.
        #[arg(long, default_value_t = 300_000)]
        checker_messages: usize,
        /// The implementation to run: `reference` or a registered mutant.
        #[arg(long, default_value = mutants::REFERENCE)]
        broker: String,
    },
    /// The mutant campaign: each registered planted bug over its scenario until the
    /// checker catches it (by the rule it breaks) or its seed budget runs out; then the
    /// reference over every seed the mutants ran.
    Mutants {
        /// Seeds per mutant, instead of each mutant's own budget.
        #[arg(long)]
        seeds: Option<u64>,
        /// Only the mutants whose name contains this.
        #[arg(long)]
        only: Option<String>,
        #[arg(long, default_value = "scenarios")]
        dir: PathBuf,
        /// One JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// Try the known blind spots instead (default 40 seeds each): which does a rule
        /// catch now?
        #[arg(long)]
        blind_spots: bool,
    },
    /// Crash, damage and recover the storage engine over many seeds, checking every
    /// recovery (durability, prefix, consume queues, dense offsets, idempotence, damage).
    StoreCrash {
        /// How many seeds to sweep, starting at --first-seed.
        #[arg(long, default_value_t = 1000)]
        seeds: u64,
        #[arg(long, default_value_t = 0)]
        first_seed: u64,
        /// Run only this seed (with --trace to see every step).
        #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
        seed: Option<u64>,
        /// Operations per seed.
        #[arg(long, default_value_t = 300)]
        ops: usize,
        /// Print every operation and recovery of the run (with --seed).
        #[arg(long, requires = "seed")]
        trace: bool,
        /// One JSON object on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            scenario,
            seeds,
            seed_range,
            jobs,
            json,
            broker,
        } => run_command(&scenario, seeds, seed_range.as_deref(), jobs, json, &broker),
        Command::Replay {
            scenario,
            seed,
            broker,
            trace,
            history,
            tail,
        } => replay_scenario(
            &scenario,
            seed,
            &broker,
            trace.as_deref(),
            history.as_deref(),
            tail,
        ),
        Command::Check { history, json } => check_command(&history, json),
        Command::List { dir } => list_command(&dir),
        Command::Bench {
            scenario,
            seeds,
            checker_messages,
            broker,
        } => bench_command(&scenario, seeds, checker_messages, &broker),
        Command::Mutants {
            seeds,
            only,
            dir,
            json,
            blind_spots,
        } => {
            if blind_spots {
                blind_spots_command(seeds.unwrap_or(40), only.as_deref(), &dir, json)
            } else {
                mutants_command(seeds, only.as_deref(), &dir, json)
            }
        }
        Command::StoreCrash {
            seeds,
            first_seed,
            seed,
            ops,
            trace,
            json,
        } => store_crash_command(seeds, first_seed, seed, ops, trace, json),
    }
}

fn store_crash_command(
    seeds: u64,
    first_seed: u64,
    seed: Option<u64>,
    ops: usize,
    trace: bool,
    json: bool,
) -> ExitCode {
    let range = match seed {
        Some(s) => s..s + 1,
        None => first_seed..first_seed.saturating_add(seeds),
    };
    // Wall time only measures the sweep for the report; nothing simulated reads it.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    let mut failures: Vec<Violation> = Vec::new();
    for s in range.clone() {
        let case = store_crash::generate(s, ops);
        let result = if trace {
            let (result, lines) = store_crash::run_traced(&case);
            println!("seed {s}: {:?}", case.config);
            for line in lines {
                println!("{line}");
            }
            result
        } else {
            store_crash::run(&case)
        };
        match result {
            Ok(stats) => total.add(&stats),
            Err(v) => failures.push(v),
        }
    }
    let wall_s = started.elapsed().as_secs_f64();
    let seed_count = range.end - range.start;
    if json {
        let out = serde_json::json!({
            "command": "store-crash",
            "first_seed": range.start,
            "seeds": seed_count,
            "ops_per_seed": ops,
            "passed": seed_count - failures.len() as u64,
            "failed": failures.len(),
            "stats": total,
            "violations": failures.iter().map(|v| serde_json::json!({
                "seed": v.seed, "step": v.step, "op": v.op,
                "property": v.property, "detail": v.detail,
                "replay": replay_command(v.seed, ops),
            })).collect::<Vec<_>>(),
            "wall_time_s": wall_s,
        });
        println!("{out}");
    } else {
        print_summary(&range, ops, &total, &failures, wall_s);
    }
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn replay_command(seed: u64, ops: usize) -> String {
    format!(
        "cargo run --release -p rmq-sim --bin sim -- store-crash --seed {seed} --ops {ops} --trace"
    )
}

fn print_summary(
    range: &std::ops::Range<u64>,
    ops: usize,
    t: &Stats,
    failures: &[Violation],
    wall_s: f64,
) {
    let seeds = range.end - range.start;
    println!(
        "store-crash: seeds {}..{} ({seeds}), {ops} operations each",
        range.start, range.end
    );
    println!(
        "  passed {}, failed {}",
        seeds - failures.len() as u64,
        failures.len()
    );
    let crashes = t.process_crashes + t.os_crashes + t.power_cuts;
    println!(
        "  crash/recover cycles: {crashes} (process {}, OS {}, power cut {}); clean shutdown/restarts {}; recoveries {}",
        t.process_crashes, t.os_crashes, t.power_cuts, t.clean_restarts, t.recoveries
    );
    println!(
        "  load: {} appends ({} refused while booting or shutting down), {} group commits, {} syncs completed",
        t.appends, t.appends_refused, t.flushes, t.syncs_completed
    );
    println!("  verified after every recovery:");
    println!(
        "    (a) {} durable records recovered byte for byte",
        t.durable_records_verified
    );
    println!(
        "    (b) {} recovered records matched the appended log as a prefix",
        t.records_recovered
    );
    println!("    (c)(d) consume queues point at their records; queue offsets dense");
    println!(
        "    (e) {} re-crashes without writes recovered the identical store",
        t.idempotence_checks
    );
    println!(
        "    (f) {} damage events (bit rot, unreadable sectors); {} losses explained by a reported cut",
        t.damages, t.losses_explained_by_damage
    );
    println!(
        "        {} reads compared byte for byte; {} refused because the record or its entry was damaged",
        t.reads, t.damaged_reads_refused
    );
    println!(
        "    config: {} atomic persists, each reload a whole version no older than the last completed",
        t.config_persists
    );
    println!("  wall time {wall_s:.2} s");
    for v in failures.iter().take(20) {
        println!("VIOLATION {v}");
        println!("  replay: {}", replay_command(v.seed, ops));
    }
    if failures.len() > 20 {
        println!("... and {} more", failures.len() - 20);
    }
}

/// The registered implementation `name`, or an error listing them (exit code 2).
fn implementation(name: &str) -> Result<fn() -> Nodes, ExitCode> {
    mutants::implementation(name).map_err(|e| {
        eprintln!("error: --broker: {e}");
        ExitCode::from(2)
    })
}

/// Loads a scenario or explains why not (exit code 2: the input is wrong, not the system).
fn load(path: &Path) -> Result<LoadedScenario, ExitCode> {
    LoadedScenario::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn parse_range(text: &str) -> Option<std::ops::Range<u64>> {
    let (a, b) = text.split_once("..")?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a < b).then_some(a..b)
}

// Wall time only measures sweeps for the report; nothing simulated reads it.
#[allow(clippy::disallowed_types)]
fn wall_clock() -> std::time::Instant {
    std::time::Instant::now()
}

/// Splits `range` into `jobs` contiguous chunks, one thread each. Every seed is
/// its own deterministic run and the chunks merge in seed order, so the summary is the
/// same for any number of jobs.
fn sweep_in_parallel(
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

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn print_sweep_summary(s: &SweepSummary, wall_s: f64) {
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
fn excuse_totals(excuses: &std::collections::BTreeMap<String, u64>) -> String {
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

fn run_command(
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

fn replay_scenario(
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

fn check_command(path: &Path, json: bool) -> ExitCode {
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

fn list_command(dir: &Path) -> ExitCode {
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

fn bench_command(path: &Path, seeds: u64, checker_messages: usize, broker: &str) -> ExitCode {
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
    let history = rmq_sim::check::synthetic_history(checker_messages, 7);
    let ops = history.entries.len();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = wall_clock();
        let report = rmq_sim::check::check(&history);
        times.push(t.elapsed().as_secs_f64());
        assert!(report.passed(), "the synthetic history is healthy");
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "checker: {ops} history ops in {:.1} ms (median of 5): {:.1} million ops/s",
        median * 1000.0,
        ops as f64 / median / 1e6
    );
    if summary.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn mutants_command(seeds: Option<u64>, only: Option<&str>, dir: &Path, json: bool) -> ExitCode {
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

fn print_campaign(report: &mutants::CampaignReport, wall_s: f64) {
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

fn blind_spots_command(seeds: u64, only: Option<&str>, dir: &Path, json: bool) -> ExitCode {
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
