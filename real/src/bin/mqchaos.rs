//! mqchaos: real mqnamesrv and mqbroker processes under seeded faults (`kill -9` and
//! restart, SIGSTOP/SIGCONT, SIGTERM and restart, links cut, stalled or slowed through a
//! TCP proxy) with the simulator's workload, the history judged by the simulator's
//! checker. See `rmq_real::chaos`.
//!
//! `mqchaos --seed 7 --kills 3 --pauses 1 --flush SYNC_FLUSH --slave SYNC` prints the
//! schedule, each step as it runs, and the verdict; it exits 0 on PASS, 1 on a
//! violation, 2 when the harness itself could not run (it says which node and why).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rmq_real::chaos::schedule::Mix;
use rmq_real::chaos::{self, Options};
use rmq_sim::history::{FlushMode, Replication};

#[derive(Parser)]
#[command(about = "Real mqnamesrv/mqbroker processes under seeded faults, judged by the checker")]
struct Cli {
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// kill -9 / restart cycles.
    #[arg(long, default_value_t = 3)]
    kills: u32,
    /// SIGSTOP / SIGCONT pauses.
    #[arg(long, default_value_t = 1)]
    pauses: u32,
    /// SIGTERM / restart cycles.
    #[arg(long, default_value_t = 0)]
    terminates: u32,
    /// Network faults that cut a broker's links (both ways, one way, or stalled), each
    /// through the TCP proxy in front of every link.
    #[arg(long, default_value_t = 0)]
    partitions: u32,
    /// Network faults that delay a broker's links.
    #[arg(long, default_value_t = 0)]
    clogs: u32,
    /// SYNC_FLUSH or ASYNC_FLUSH.
    #[arg(long, default_value = "SYNC_FLUSH")]
    flush: String,
    /// A slave, replicating SYNC or ASYNC; NONE: a master alone.
    #[arg(long, default_value = "NONE")]
    slave: String,
    /// Broker groups (broker-a, broker-b, ...; up to 4), each a master and its slave.
    #[arg(long, default_value_t = 1)]
    groups: u32,
    /// The longest a killed or stopped broker stays down before its restart.
    #[arg(long, default_value_t = 1_500)]
    max_down_ms: u64,
    #[arg(long, default_value_t = 2)]
    producers: u32,
    #[arg(long, default_value_t = 2)]
    consumers: u32,
    /// After the heal, how long the consumers may take to deliver everything
    /// acknowledged.
    #[arg(long, default_value_t = 60_000)]
    quiet_timeout_ms: u64,
    /// How long a started or restarted process may take to listen.
    #[arg(long, default_value_t = 30_000)]
    start_timeout_ms: u64,
    /// The brokers' mappedFileSizeCommitLog (RocketMQ's default is 1 GiB; recovery
    /// after each kill reads the last files).
    #[arg(long, default_value_t = 1 << 30)]
    commit_log_file_bytes: u64,
    /// The mqbroker to run (for example one built with `--features planted-bugs`);
    /// by default the one next to mqchaos.
    #[arg(long)]
    broker_exe: Option<PathBuf>,
    /// The run's directory (homes, stores, logs); a fresh temporary one by default.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the run's directory (it is removed otherwise).
    #[arg(long)]
    keep: bool,
    /// Before the seeded steps: load with no consumer, kill -9 broker-a's master, start
    /// the consumers while it is down and check that its slave serves every message
    /// broker-a acknowledged (needs --slave SYNC).
    #[arg(long)]
    slave_reads: bool,
    /// Write the history (JSON lines, `sim check --history` reads it). A failed run
    /// writes it anyway, under the temporary directory unless this says where.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Write the schedule as carried out as a simulator scenario (`sim run --scenario`).
    /// A failed run writes it anyway, under the temporary directory unless this says
    /// where.
    #[arg(long)]
    scenario_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The clients' runtime logs (RUST_LOG filters; warnings by default).
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    if let Err(e) = rmq_real::process::init_logging(None) {
        eprintln!("mqchaos: logging: {e}");
    }
    let flush = match cli.flush.as_str() {
        "SYNC_FLUSH" => FlushMode::SyncFlush,
        "ASYNC_FLUSH" => FlushMode::AsyncFlush,
        other => {
            eprintln!("mqchaos: --flush {other}: SYNC_FLUSH or ASYNC_FLUSH");
            return ExitCode::from(2);
        }
    };
    let replication = match cli.slave.as_str() {
        "NONE" => Replication::None,
        "SYNC" => Replication::Sync,
        "ASYNC" => Replication::Async,
        other => {
            eprintln!("mqchaos: --slave {other}: NONE, SYNC or ASYNC");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        seed: cli.seed,
        mix: Mix {
            kills: cli.kills,
            pauses: cli.pauses,
            terminates: cli.terminates,
            partitions: cli.partitions,
            clogs: cli.clogs,
            slave: replication != Replication::None,
            groups: cli.groups,
            max_down_ms: cli.max_down_ms,
        },
        flush,
        replication,
        groups: cli.groups,
        producers: cli.producers,
        consumers: cli.consumers,
        quiet_timeout_ms: cli.quiet_timeout_ms,
        start_timeout_ms: cli.start_timeout_ms,
        commit_log_file_bytes: cli.commit_log_file_bytes,
        broker_exe: cli.broker_exe.clone(),
        dir: cli.dir,
        keep: cli.keep,
        slave_reads: cli.slave_reads,
    };
    let mut again = format!(
        "mqchaos --seed {} --kills {} --pauses {} --terminates {} --partitions {} --clogs {} \
         --flush {} --slave {} --groups {} --max-down-ms {} --producers {} --consumers {} \
         --commit-log-file-bytes {}",
        cli.seed,
        cli.kills,
        cli.pauses,
        cli.terminates,
        cli.partitions,
        cli.clogs,
        cli.flush,
        cli.slave,
        cli.groups,
        cli.max_down_ms,
        cli.producers,
        cli.consumers,
        cli.commit_log_file_bytes
    );
    if cli.slave_reads {
        again.push_str(" --slave-reads");
    }
    if let Some(exe) = &cli.broker_exe {
        again.push_str(&format!(" --broker-exe {}", exe.display()));
    }
    println!("# {again}\n# schedule (seed {}):", cli.seed);
    for (i, step) in options.schedule().iter().enumerate() {
        println!("#   {}: {step}", i + 1);
    }
    let outcome = match chaos::run(&options, &mut |line| println!("{line}")) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mqchaos: {e}");
            eprintln!("mqchaos: every process it started was killed; repeat with: {again}");
            return ExitCode::from(2);
        }
    };
    let slave_missed = outcome.slave_reads.as_ref().is_some_and(|r| r.missing > 0);
    let passed = outcome.report.passed() && outcome.not_caught_up.is_none() && !slave_missed;
    // A failed run keeps its evidence: the history and the schedule as a scenario.
    let kept = |given: &Option<PathBuf>, suffix: &str| {
        given.clone().or_else(|| {
            (!passed)
                .then(|| std::env::temp_dir().join(format!("mqchaos-seed{}.{suffix}", cli.seed)))
        })
    };
    if let Some(path) = kept(&cli.history, "history.jsonl") {
        let written =
            std::fs::File::create(&path).and_then(|mut f| outcome.history.write_jsonl(&mut f));
        if let Err(e) = written {
            eprintln!("mqchaos: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!(
            "# history: {} ({} entries; sim check --history FILE judges it again)",
            path.display(),
            outcome.history.entries.len()
        );
    }
    if let Some(path) = kept(&cli.scenario_out, "scenario.toml") {
        if let Err(e) = std::fs::write(&path, &outcome.scenario) {
            eprintln!("mqchaos: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
        println!(
            "# the schedule as a simulator scenario: {} (sim run --scenario FILE --seeds 100)",
            path.display()
        );
    }
    if options.replication != Replication::None {
        for (group, served) in &outcome.served_while_master_down {
            println!(
                "# {group}: {served} deliveries while its master was down (its slave served them)"
            );
        }
    }
    if let Some(r) = &outcome.slave_reads {
        println!(
            "# slave reads: {}'s master killed with {} acknowledged messages waiting; its slave \
             served {} deliveries while it was down; {} never served{}",
            r.group,
            r.backlog,
            r.served,
            r.missing,
            if r.missing > 0 { " (FAIL)" } else { "" }
        );
    }
    if let Some(e) = &outcome.not_caught_up {
        println!("# {e}");
    }
    println!("\n# verdict");
    print!("{}", outcome.report);
    if passed {
        ExitCode::SUCCESS
    } else {
        println!("# repeat with: {again}");
        ExitCode::FAILURE
    }
}
