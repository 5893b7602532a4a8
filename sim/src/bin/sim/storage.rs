//! `sim store-crash`: the storage wing's crash sweep from the command line.

use std::process::ExitCode;

use rmq_sim::storage::store_crash::{self, Stats, Violation};

pub(crate) fn store_crash_command(
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

pub(crate) fn print_summary(
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
