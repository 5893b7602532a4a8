//! The real-process chaos harness (`mqchaos`, `rmq_real::chaos`) end to end: real
//! mqnamesrv/mqbroker processes from this build, the simulator's workload on the real
//! runtime, seeded kills, a pause, a partition through the harness's TCP proxies and a
//! clean restart, and the simulator's checker on the history. Also a bad day: a node that never comes up is named, and nothing the
//! harness started is left behind. And the harness has teeth: a broker built with the
//! planted durability bug (commit-log writes held in memory until their sync) loses
//! acknowledged messages to a `kill -9`, and the verdict says so.

use std::path::Path;

use rmq_real::chaos::schedule::{schedule, Action, Mix, NetFault, Scope, Target};
use rmq_real::chaos::{self, HarnessError, Options};
use rmq_sim::check::Rule;
use rmq_sim::history::{Entry, FaultKind, FlushMode, Replication};

fn options(dir: &Path) -> Options {
    Options {
        seed: 11,
        mix: Mix {
            kills: 2,
            pauses: 1,
            terminates: 1,
            partitions: 1,
            clogs: 0,
            slave: true,
            groups: 1,
            max_down_ms: 1_500,
        },
        flush: FlushMode::SyncFlush,
        replication: Replication::Sync,
        groups: 1,
        producers: 2,
        consumers: 2,
        quiet_timeout_ms: 60_000,
        start_timeout_ms: 60_000,
        dir: Some(dir.to_path_buf()),
        keep: false,
        // Small files: recovery after each kill reads the last ones.
        commit_log_file_bytes: 64 << 20,
        broker_exe: None,
        slave_reads: true,
    }
}

/// Processes whose command line names `dir` (the harness passes each its config file
/// there): none may outlive a run.
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let mut found = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(proc_dir.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(format!(
                "{}: {cmdline}",
                proc_dir.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// The first seed from `from` whose network step cuts every link of the master both
/// ways (the schedule is a function of the seed alone).
fn seed_partitioning_the_master(mix: Mix, from: u64) -> u64 {
    (from..)
        .find(|&seed| {
            schedule(seed, mix).iter().any(|s| {
                s.target == Target::Master
                    && matches!(
                        s.action,
                        Action::Net {
                            fault: NetFault::Partition,
                            scope: Scope::Node,
                            ..
                        }
                    )
            })
        })
        .unwrap()
}

#[test]
fn a_sync_flush_master_and_slave_killed_paused_partitioned_and_restarted_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let mut o = options(&dir);
    o.seed = seed_partitioning_the_master(o.mix, o.seed);
    let outcome = chaos::run(&o, &mut |line| eprintln!("{line}")).unwrap();
    eprintln!("{}", outcome.report);
    assert!(
        outcome.not_caught_up.is_none(),
        "{:?}",
        outcome.not_caught_up
    );
    assert!(outcome.report.passed(), "{}", outcome.report);
    let s = &outcome.report.stats;
    assert!(s.acked > 100, "{}", outcome.report);
    assert!(s.deliveries >= s.acked, "{}", outcome.report);
    // Every step is in the history as the simulator records faults.
    let faults: Vec<(u64, FaultKind, &str)> = outcome
        .history
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Fault {
                at_ms,
                kind,
                detail,
                ..
            } => Some((*at_ms, *kind, detail.as_str())),
            _ => None,
        })
        .collect();
    let count = |k: FaultKind| faults.iter().filter(|(_, f, _)| *f == k).count();
    // The slave-reads kill, two seeded kills and a SIGTERM, each a process_crash and
    // then a restart.
    assert_eq!(count(FaultKind::ProcessCrash), 4, "{faults:?}");
    assert_eq!(count(FaultKind::Restart), 4, "{faults:?}");
    // Broker-a's slave served every message acknowledged before its master's kill.
    let reads = outcome.slave_reads.as_ref().unwrap();
    assert!(reads.backlog > 20, "{reads:?}");
    assert!(reads.served >= reads.backlog, "{reads:?}");
    assert_eq!(reads.missing, 0, "{reads:?}");
    // The pause (the node, every link), then the master cut from each peer: the four
    // clients, its slave (n2) and the name server (n0), each link healed after.
    let cut: Vec<&(u64, FaultKind, &str)> = faults
        .iter()
        .filter(|(_, k, d)| *k == FaultKind::Partition && d.starts_with("partition n1 <-> "))
        .collect();
    let peers: Vec<&str> = cut.iter().map(|(_, _, d)| &d[17..]).collect();
    assert_eq!(
        peers,
        ["n0", "n2", "n10", "n11", "n12", "n13"],
        "{faults:?}"
    );
    assert_eq!(count(FaultKind::Partition), 1 + 6, "{faults:?}");
    assert_eq!(count(FaultKind::Heal), 1 + 6, "{faults:?}");
    // The proxies cut for real: no answer from the master crossed while it was cut off
    // (a margin for an answer already on its way when the cut was recorded).
    let cut_from_ms = cut[0].0 + 200;
    let healed_ms = faults
        .iter()
        .find(|(t, k, d)| *t >= cut[0].0 && *k == FaultKind::Heal && d.starts_with("heal n1 <-> "))
        .unwrap()
        .0;
    let answered_while_cut = outcome
        .history
        .entries
        .iter()
        .filter(|e| {
            matches!(e, Entry::SendOk { at_ms, broker, .. }
                if broker == "broker-a" && (cut_from_ms..healed_ms).contains(at_ms))
        })
        .count();
    assert_eq!(
        answered_while_cut, 0,
        "sends acknowledged through a cut link"
    );
    // The brokers served again after the last restart: sends were acknowledged then.
    let last_fault_ms = faults.iter().map(|(t, _, _)| *t).max().unwrap();
    let acked_after = outcome
        .history
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::SendOk { at_ms, .. } if *at_ms > last_fault_ms))
        .count();
    assert!(
        acked_after > 20,
        "{acked_after} acknowledged after the last fault"
    );
    assert_eq!(outcome.log.len(), 5, "{:?}", outcome.log);
    assert!(
        processes_under(&dir).is_empty(),
        "{:?}",
        processes_under(&dir)
    );
    assert!(!dir.exists(), "the run's directory is removed");
}

#[test]
fn a_node_that_never_comes_up_is_named_and_nothing_is_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = Options {
        // No process listens the moment it is started.
        start_timeout_ms: 0,
        ..options(&dir)
    };
    let err = match chaos::run(&o, &mut |_| {}) {
        Ok(_) => panic!("a run whose nodes cannot start must fail"),
        Err(e) => e,
    };
    assert!(matches!(err, HarnessError::Child(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("name server"), "{message}");
    assert!(message.contains("not listening"), "{message}");
    assert!(
        processes_under(&dir).is_empty(),
        "{:?}",
        processes_under(&dir)
    );
    assert!(!dir.exists(), "the run's directory is removed");
}

/// Builds mqbroker with the cargo feature `planted-bugs` into its own target directory
/// (so this build's binaries stay as they are); its path.
fn planted_broker() -> std::path::PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/planted");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args([
            "build",
            "-p",
            "rmq-real",
            "--features",
            "planted-bugs",
            "--bin",
            "mqbroker",
        ])
        .arg("--target-dir")
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "building the planted broker");
    target.join("debug/mqbroker")
}

/// The slave-reads prologue is refused without SYNC replication, before anything
/// starts: an ASYNC slave may lack the last acknowledged messages.
#[test]
fn slave_reads_want_a_sync_slave() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = Options {
        replication: Replication::Async,
        ..options(&dir)
    };
    let err = chaos::run(&o, &mut |_| {}).err().expect("refused");
    assert!(matches!(err, HarnessError::SlaveReadsNeedSync), "{err}");
    assert!(!dir.exists(), "the run's directory is removed");
}

#[test]
fn a_broker_holding_writes_in_memory_loses_acknowledged_messages_to_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let o = Options {
        seed: 5,
        mix: Mix {
            kills: 3,
            pauses: 0,
            terminates: 0,
            partitions: 0,
            clogs: 0,
            slave: false,
            groups: 1,
            max_down_ms: 1_500,
        },
        // Acknowledged before the flush: the held writes are what a kill takes.
        flush: FlushMode::AsyncFlush,
        replication: Replication::None,
        broker_exe: Some(planted_broker()),
        slave_reads: false,
        ..options(&dir)
    };
    let outcome = chaos::run(&o, &mut |line| eprintln!("{line}")).unwrap();
    let lost = outcome
        .report
        .violations
        .iter()
        .filter(|v| v.rule == Rule::Lost)
        .count();
    assert!(lost > 0, "{}", outcome.report);
    assert!(
        processes_under(&dir).is_empty(),
        "{:?}",
        processes_under(&dir)
    );
}
