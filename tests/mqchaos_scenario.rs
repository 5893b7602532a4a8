//! mqchaos writes the schedule it carried out against real processes as a simulator
//! scenario (`rmq_real::chaos::scenario_out`): each kind of real fault becomes the
//! simulator's steps on the same nodes at the same offsets, the file loads as any
//! scenario does, and the simulator runs it to a verdict.

use rmq_real::chaos::scenario_out::{scenario_toml, Struck, Timeline, SIM_LOAD_START_MS};
use rmq_real::chaos::schedule::{Action, Mix, NetFault, Scope};
use rmq_real::chaos::Options;
use rmq_sim::cluster::fault_step::NodeRef;
use rmq_sim::cluster::runner::{self, reference_broker, RunOptions};
use rmq_sim::cluster::scenario::{FaultSpecKind, LoadedScenario, WARMUP_MS};
use rmq_sim::history::{FlushMode, Replication};

/// A step's time, kind, node, peers, end and added latency.
type Step = (
    u64,
    FaultSpecKind,
    NodeRef,
    Vec<NodeRef>,
    Option<u64>,
    Option<u64>,
);

fn options() -> Options {
    Options {
        seed: 9,
        mix: Mix {
            kills: 1,
            pauses: 1,
            terminates: 1,
            partitions: 2,
            clogs: 1,
            slave: true,
            groups: 2,
            max_down_ms: 1_500,
        },
        flush: FlushMode::AsyncFlush,
        replication: Replication::Sync,
        groups: 2,
        producers: 2,
        consumers: 2,
        quiet_timeout_ms: 60_000,
        start_timeout_ms: 60_000,
        commit_log_file_bytes: 1 << 20,
        broker_exe: None,
        dir: None,
        keep: false,
        slave_reads: false,
    }
}

/// A run's faults as the harness records them: wall-clock times from a load start of
/// 1,000,000 ms; node ids as in the history (masters 1 and 3, slaves 2 and 4, the
/// name server 0, producers 10 and 11, consumers 12 and 13).
fn struck() -> Vec<Struck> {
    let net = |fault| Action::Net {
        fault,
        scope: Scope::Node,
        held_ms: 2_000,
    };
    let at = |from_ms: u64, until_ms: u64, action, node, peers: &[u32]| Struck {
        action,
        node,
        from_ms: 1_000_000 + from_ms,
        until_ms: 1_000_000 + until_ms,
        peers: peers.to_vec(),
    };
    vec![
        at(2_000, 3_200, Action::Kill { down_ms: 900 }, 1, &[]),
        at(
            5_000,
            7_000,
            net(NetFault::Partition),
            3,
            &[0, 4, 10, 11, 12, 13],
        ),
        at(8_000, 9_000, net(NetFault::RequestsLost), 2, &[1, 12]),
        at(10_000, 11_000, net(NetFault::AnswersLost), 1, &[2]),
        at(
            12_000,
            13_500,
            Action::Pause { paused_ms: 1_500 },
            4,
            &[0, 3],
        ),
        at(
            14_000,
            15_000,
            net(NetFault::Clog { extra_ms: 250 }),
            1,
            &[10],
        ),
        at(16_000, 17_100, Action::Terminate { down_ms: 800 }, 2, &[]),
    ]
}

#[test]
fn the_real_schedule_loads_and_runs_in_the_simulator_with_every_fault_on_its_node() {
    // The real load start is the simulator's: its producers start after its warm-up.
    assert_eq!(SIM_LOAD_START_MS, WARMUP_MS);
    let text = scenario_toml(
        &options(),
        &struck(),
        &Timeline {
            load_start_ms: 1_000_000,
            heal_at_ms: 1_020_000,
        },
    );
    let dir = std::env::temp_dir().join(format!("rocketsim-mqchaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mqchaos_seed9.toml");
    std::fs::write(&path, &text).unwrap();
    let loaded = LoadedScenario::load(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}\n{text}"));
    let f = &loaded.file;
    assert_eq!(f.cluster.broker_groups, 2);
    assert_eq!(f.cluster.commit_log_file_bytes, 1 << 20);
    assert_eq!(f.durations.faults_ms, WARMUP_MS + 20_000);
    assert!(f.faults.kinds.is_empty(), "nothing is drawn");
    let steps: Vec<Step> = f
        .faults
        .steps
        .iter()
        .map(|s| {
            (
                s.at_ms,
                s.kind,
                s.node,
                s.peers.clone(),
                s.until_ms,
                s.extra_ms,
            )
        })
        .collect();
    use FaultSpecKind as K;
    use NodeRef::*;
    let w = WARMUP_MS;
    let clients = [Producer(0), Producer(1), Consumer(0), Consumer(1)];
    let mut cut_peers = vec![NameServer(0), Slave(1)];
    cut_peers.extend(clients);
    assert_eq!(
        steps,
        [
            (w + 2_000, K::Kill, Master(0), vec![], Some(w + 3_200), None),
            (
                w + 5_000,
                K::Partition,
                Master(1),
                cut_peers,
                Some(w + 7_000),
                None
            ),
            // What the slave's peers sent it was lost: one way from each peer.
            (
                w + 8_000,
                K::OneWayPartition,
                Master(0),
                vec![Slave(0)],
                Some(w + 9_000),
                None
            ),
            (
                w + 8_000,
                K::OneWayPartition,
                Consumer(0),
                vec![Slave(0)],
                Some(w + 9_000),
                None
            ),
            (
                w + 10_000,
                K::OneWayPartition,
                Master(0),
                vec![Slave(0)],
                Some(w + 11_000),
                None
            ),
            // A pause holds its peers' bytes for its whole length.
            (
                w + 12_000,
                K::Clog,
                Slave(1),
                vec![NameServer(0), Master(1)],
                Some(w + 13_500),
                Some(1_500)
            ),
            (
                w + 14_000,
                K::Clog,
                Master(0),
                vec![Producer(0)],
                Some(w + 15_000),
                Some(250)
            ),
            (
                w + 16_000,
                K::CleanRestart,
                Slave(0),
                vec![],
                Some(w + 17_100),
                None
            ),
        ]
    );
    // The simulator runs it to a verdict, and the steps' faults are in its history.
    let variant = loaded.variant_for(1);
    let out = runner::run(variant, 1, reference_broker(), RunOptions::default());
    assert!(out.report.passed(), "{}", out.report);
    let at_kill = out.history.entries.iter().any(|e| {
        matches!(e, rmq_sim::history::Entry::Fault { at_ms, node: Some(1), .. } if *at_ms == w + 2_000)
    });
    assert!(at_kill, "the kill of master 0 (n1) is in the history");
}
