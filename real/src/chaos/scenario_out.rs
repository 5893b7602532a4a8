//! A real run's schedule as a simulator scenario: the same cluster and workload, and
//! each fault as it was carried out — at the time it began, on the node it struck,
//! until its restart or heal — as `[[faults.steps]]` (the simulator's
//! `cluster::fault_step`). `sim run --scenario FILE` then runs those faults in virtual
//! time: a best-effort replay, since the real run's timings were its machine's.
//!
//! How each fault reads in the simulator's terms:
//! - a `kill -9` is a `kill`, a SIGTERM a `clean_restart`, each until the broker
//!   listened again;
//! - a cut link both ways is a `partition` with each peer; what a peer sent the broker
//!   lost is a `one_way_partition` from that peer, what the broker sent lost one from it;
//! - a stall (bytes held, all delivered at the heal), a clog, and a SIGSTOP pause (the
//!   process frozen, its peers' bytes waiting in the kernel) are `clog`s with every
//!   peer, the stall and the pause adding their whole length.

use super::schedule::{Action, NetFault};
use super::{Options, FIRST_CLIENT_NODE, GROUP, TOPIC};
use rmq_sim::history::{FlushMode, Replication};

/// When the simulator's producers start, ms after its boot (its `WARMUP_MS`): the real
/// run's load start maps here.
pub const SIM_LOAD_START_MS: u64 = 6_000;
/// The simulated quiet period after the heal.
const SIM_QUIET_MS: u64 = 60_000;
/// The simulator's range for `commit_log_file_bytes`.
const SIM_COMMIT_LOG_FILE_BYTES: [u64; 2] = [4_096, 1 << 30];

/// One fault as it was carried out.
#[derive(Clone, Debug)]
pub struct Struck {
    pub action: Action,
    /// The struck broker's node id (the history's).
    pub node: u32,
    /// Wall-clock ms when the fault began and when its restart or heal was done.
    pub from_ms: u64,
    pub until_ms: u64,
    /// The nodes at the other end of the links it touched (network faults and pauses).
    pub peers: Vec<u32>,
}

/// The run's clock against the simulator's: the load started at `load_start_ms`.
pub struct Timeline {
    pub load_start_ms: u64,
    pub heal_at_ms: u64,
}

impl Timeline {
    fn sim(&self, wall_ms: u64) -> u64 {
        SIM_LOAD_START_MS + wall_ms.saturating_sub(self.load_start_ms)
    }
}

/// The scenario's name for history node `id` (see the node ids in `chaos`).
fn node_ref(o: &Options, id: u32) -> String {
    match id {
        0 => "name_server 0".into(),
        id if id < FIRST_CLIENT_NODE => {
            let g = (id - 1) / 2;
            let role = if id % 2 == 1 { "master" } else { "slave" };
            format!("{role} {g}")
        }
        id if id < FIRST_CLIENT_NODE + o.producers => {
            format!("producer {}", id - FIRST_CLIENT_NODE)
        }
        id => format!("consumer {}", id - FIRST_CLIENT_NODE - o.producers),
    }
}

fn quoted(list: &[String]) -> String {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(", "))
}

/// The scenario file's text.
pub fn scenario_toml(o: &Options, struck: &[Struck], t: &Timeline) -> String {
    let flush = match o.flush {
        FlushMode::SyncFlush => "sync_flush",
        FlushMode::AsyncFlush => "async_flush",
    };
    let replication = match o.replication {
        Replication::None => "none",
        Replication::Sync => "sync",
        Replication::Async => "async",
    };
    let commit_log_file_bytes = o
        .commit_log_file_bytes
        .clamp(SIM_COMMIT_LOG_FILE_BYTES[0], SIM_COMMIT_LOG_FILE_BYTES[1]);
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "# mqchaos seed {}: the schedule it ran against real processes, as the simulator\n\
         # runs it (`sim run --scenario FILE`). Best effort: the times are the real run's.",
        o.seed
    ));
    line(format!(
        "description = \"mqchaos seed {}: {} faults on {} broker group(s), {flush}, replication {replication}\"",
        o.seed,
        struck.len(),
        o.groups
    ));
    line(String::new());
    line("[cluster]".into());
    line("name_servers = 1".into());
    line(format!("broker_groups = {}", o.groups));
    line(format!("flush = \"{flush}\""));
    line(format!("replication = \"{replication}\""));
    // A topic created by a producer's first send gets the producer's 4 queues.
    line("queues = 4".into());
    line(format!("commit_log_file_bytes = {commit_log_file_bytes}"));
    line(String::new());
    line("[workload]".into());
    line(format!("topic = \"{TOPIC}\""));
    line(format!("producers = {}", o.producers.max(1)));
    line(format!("send_interval_ms = {:?}", super::SEND_INTERVAL_MS));
    line(format!("body_bytes = {:?}", super::BODY_BYTES));
    let tags: Vec<String> = super::TAGS.iter().map(|t| t.to_string()).collect();
    line(format!("tags = {}", quoted(&tags)));
    line(format!(
        "groups = [{{ name = \"{GROUP}\", tags = \"*\", consumers = {}, model = \"clustering\" }}]",
        o.consumers.max(1)
    ));
    line(String::new());
    line("[faults]".into());
    line("# Nothing drawn: the steps below are the schedule.".into());
    line("kinds = []".into());
    line("targets = []".into());
    line("every_ms = [1000, 1000]".into());
    line("down_ms = [0, 0]".into());
    let mut step = |at_ms: u64, kind: &str, node: String, peers: &[String], extra: &str| {
        line(String::new());
        line("[[faults.steps]]".into());
        line(format!("at_ms = {at_ms}"));
        line(format!("kind = \"{kind}\""));
        line(format!("node = \"{node}\""));
        if !peers.is_empty() {
            line(format!("peers = {}", quoted(peers)));
        }
        if !extra.is_empty() {
            line(extra.to_string());
        }
    };
    for s in struck {
        let at_ms = t.sim(s.from_ms);
        // At least 1 ms long: a step's end is not before its start.
        let until = format!("until_ms = {}", t.sim(s.until_ms).max(at_ms + 1));
        let node = node_ref(o, s.node);
        let peers: Vec<String> = s.peers.iter().map(|&p| node_ref(o, p)).collect();
        let held_ms = s.until_ms.saturating_sub(s.from_ms).max(1);
        let clog = |extra_ms: u64| format!("extra_ms = {extra_ms}\n{until}");
        match s.action {
            Action::Kill { .. } => step(at_ms, "kill", node, &[], &until),
            Action::Terminate { .. } => step(at_ms, "clean_restart", node, &[], &until),
            Action::Pause { .. } => step(at_ms, "clog", node, &peers, &clog(held_ms)),
            Action::Net { fault, .. } => match fault {
                NetFault::Partition => step(at_ms, "partition", node, &peers, &until),
                NetFault::AnswersLost => step(at_ms, "one_way_partition", node, &peers, &until),
                NetFault::RequestsLost => {
                    for peer in peers {
                        step(
                            at_ms,
                            "one_way_partition",
                            peer,
                            std::slice::from_ref(&node),
                            &until,
                        );
                    }
                }
                NetFault::Stall => step(at_ms, "clog", node, &peers, &clog(held_ms)),
                NetFault::Clog { extra_ms } => step(at_ms, "clog", node, &peers, &clog(extra_ms)),
            },
        }
    }
    line(String::new());
    line("[durations]".into());
    line(format!("faults_ms = {}", t.sim(t.heal_at_ms)));
    line(format!("quiet_ms = {SIM_QUIET_MS}"));
    out
}
