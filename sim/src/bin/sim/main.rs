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
//!
//! Here: the arguments and the dispatch. `cluster.rs` holds run, replay, check, list and
//! bench; `campaign.rs` the mutant campaign and blind spots; `storage.rs` store-crash.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rmq_sim::cluster::runner::Nodes;
use rmq_sim::cluster::scenario::LoadedScenario;
use rmq_sim::mutants;

mod campaign;
mod cluster;
mod storage;

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
        } => cluster::run_command(&scenario, seeds, seed_range.as_deref(), jobs, json, &broker),
        Command::Replay {
            scenario,
            seed,
            broker,
            trace,
            history,
            tail,
        } => cluster::replay_scenario(
            &scenario,
            seed,
            &broker,
            trace.as_deref(),
            history.as_deref(),
            tail,
        ),
        Command::Check { history, json } => cluster::check_command(&history, json),
        Command::List { dir } => cluster::list_command(&dir),
        Command::Bench {
            scenario,
            seeds,
            checker_messages,
            broker,
        } => cluster::bench_command(&scenario, seeds, checker_messages, &broker),
        Command::Mutants {
            seeds,
            only,
            dir,
            json,
            blind_spots,
        } => {
            if blind_spots {
                campaign::blind_spots_command(seeds.unwrap_or(40), only.as_deref(), &dir, json)
            } else {
                campaign::mutants_command(seeds, only.as_deref(), &dir, json)
            }
        }
        Command::StoreCrash {
            seeds,
            first_seed,
            seed,
            ops,
            trace,
            json,
        } => storage::store_crash_command(seeds, first_seed, seed, ops, trace, json),
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

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
