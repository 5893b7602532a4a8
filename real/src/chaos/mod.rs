//! Chaos against real processes, judged by the simulator's checker (`mqchaos`).
//!
//! The harness starts a name server and broker groups (each a master, and a slave
//! when asked) as real `mqnamesrv`/`mqbroker` processes from cargo's output, each on free
//! loopback ports with its own home and store under the run's directory, behind a TCP
//! proxy on each link ([`proxy`], `cluster.rs`). The workload is the simulator's own: its
//! producer and consumer hosts on the real runtime ([`clients`]), writing the same
//! history entries. The faults come from the seed ([`schedule`]): `kill -9` and restart,
//! SIGSTOP/SIGCONT pauses, SIGTERM and restart, links cut (both ways or one way),
//! stalled or slowed through the proxies, each recorded in the history as the simulator
//! records its faults. [`slave_reads`] can come first: a master killed while a backlog
//! waits, which its slave must serve. After the last fault (the heal) the producers
//! stop, the consumers get a quiet period to catch up, and the history is judged by
//! `rmq_sim::check::check`, exactly as `sim check --history` would judge it; the faults
//! as carried out are also written as a simulator scenario ([`scenario_out`]).
//!
//! A killed broker keeps its page cache (the kernel's, which a `kill -9` does not
//! touch), so under either flush mode nothing acknowledged may be lost: the history's
//! faults are `process_crash`es, and the checker allows them nothing. Power cuts and
//! lost disks are the simulator's (`scenarios/case4_power_cut.toml`, ...).
//!
//! Bad days: a broker that does not listen again within its timeout, one that exits
//! while starting, a signal that fails — the run stops, names the node and why, and
//! every process it started is killed by its id ([`child::ChildNode`]'s drop), and the
//! run's directory is removed unless asked to keep it.

pub mod child;
pub mod clients;
mod cluster;
pub mod proxy;
pub mod scenario_out;
pub mod schedule;
pub mod slave_reads;

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rmq_model::client::producer::ProducerConfig;
use rmq_model::client::{ConsumeFromWhere, ConsumerConfig};
use rmq_model::protocol::MessageModel;
use rmq_sim::check::Report;
use rmq_sim::history::workload::{ConsumerHost, ConsumerPlan, ProducerHost, ProducerPlan};
use rmq_sim::history::{
    BrokerGroupMeta, Entry, FaultKind, FlushMode, GroupMeta, History, Replication,
};

use self::child::ChildError;
use self::cluster::{links_of, net_mode, net_words, start_cluster};
use self::scenario_out::{scenario_toml, Struck, Timeline};
use self::schedule::{broker_name, Action, Mix, Scope, Step, Target};
use self::slave_reads::SlaveReads;
use crate::process::Hosted;

// The nodes' ids in the history: the name server's is 0, as in the simulator (no
// entry names it), broker group `g`'s members 1 + 2g and 2 + 2g, the clients from
// FIRST_CLIENT_NODE on.

/// Broker group `g`'s master.
fn master_node(g: u32) -> u32 {
    1 + 2 * g
}

/// Broker group `g`'s slave.
fn slave_node(g: u32) -> u32 {
    2 + 2 * g
}

const FIRST_CLIENT_NODE: u32 = 10;
/// The name server (no client entry names it; link faults do).
const NAMESRV_NODE: u32 = 0;

const TOPIC: &str = "ChaosTopic";
/// Load after the last fault, before the producers stop.
const LOAD_AFTER_LAST_FAULT_MS: u64 = 3_000;
/// Once everything is delivered: one interval of the consumers' offset persisting
/// (RocketMQ's `persistConsumerOffsetInterval`, 5 s) and a second, so the commits
/// rule sees the last positions committed by the consumers themselves.
const COMMITS_LAND_MS: u64 = 6_000;
const GROUP: &str = "chaos_consumers";
/// The producers' load: tags, the gap between sends, the body sizes.
const TAGS: [&str; 2] = ["TagA", "TagB"];
const SEND_INTERVAL_MS: [u64; 2] = [10, 30];
const BODY_BYTES: [u32; 2] = [16, 512];
/// At most this many broker groups (their node ids stay below the clients').
pub const MAX_GROUPS: u32 = 4;

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub mix: Mix,
    pub flush: FlushMode,
    /// With a slave: `Sync` (SYNC_MASTER) or `Async` (ASYNC_MASTER); `None`: no slave.
    pub replication: Replication,
    /// Broker groups (broker-a, broker-b, ...), 1 to [`MAX_GROUPS`]; the topic has
    /// queues on each.
    pub groups: u32,
    pub producers: u32,
    pub consumers: u32,
    /// After the heal, how long the consumers may take to catch up.
    pub quiet_timeout_ms: u64,
    /// How long a (re)started process may take to listen.
    pub start_timeout_ms: u64,
    /// The brokers' `mappedFileSizeCommitLog` (RocketMQ: 1 GiB). A restart's recovery
    /// reads the last files whole, so a smaller file makes kill cycles quicker.
    pub commit_log_file_bytes: u64,
    /// The mqbroker to run (another build, a planted bug's); the one next to this
    /// executable if `None`.
    pub broker_exe: Option<PathBuf>,
    /// The run's directory (homes, stores, logs); a fresh one under the temp dir if
    /// `None`. Removed at the end unless `keep`.
    pub dir: Option<PathBuf>,
    pub keep: bool,
    /// Before the seeded steps: kill broker-a's master while a backlog waits and
    /// check that its slave serves all of it ([`slave_reads`]; SYNC replication).
    pub slave_reads: bool,
}

impl Options {
    /// The faults' schedule of this run.
    pub fn schedule(&self) -> Vec<Step> {
        schedule::schedule(self.seed, self.mix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(transparent)]
    Child(#[from] ChildError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("the slave-reads prologue needs SYNC replication: an ASYNC slave may lack the last acknowledged messages until its master returns")]
    SlaveReadsNeedSync,
    #[error("{client}: did not stop within {timeout_ms} ms of being asked (a handler that never returns)")]
    ClientHung { client: String, timeout_ms: u64 },
    #[error("{groups} broker groups: from 1 to {MAX_GROUPS}")]
    Groups { groups: u32 },
    #[error("not every broker group acknowledged a send within {timeout_ms} ms of the start (the topic was not created on each)")]
    NoTopic { timeout_ms: u64 },
    #[error("the consumers did not catch up within {timeout_ms} ms of the heal: {missing} acknowledged messages never delivered (the history still goes to the checker)")]
    NotCaughtUp { timeout_ms: u64, missing: usize },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// What one run produced.
pub struct Outcome {
    pub history: History,
    pub report: Report,
    /// Faults carried out (each step's line, with the wall time it began).
    pub log: Vec<String>,
    /// Set when the consumers did not catch up: the history is judged anyway.
    pub not_caught_up: Option<HarnessError>,
    /// The schedule as carried out, as a simulator scenario (TOML, `sim run
    /// --scenario`).
    pub scenario: String,
    /// Per broker group: deliveries of its queues made while its master was down
    /// (killed or stopped, not yet restarted), which only its slave could serve.
    pub served_while_master_down: Vec<(String, u64)>,
    /// The slave-reads prologue's figures, when it ran.
    pub slave_reads: Option<SlaveReads>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wids acknowledged (by `broker`, or by any) and not yet delivered, in what the
/// clients recorded so far.
fn undelivered(entries: &[Entry], broker: Option<&str>) -> usize {
    let mut acked = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    for e in entries {
        match e {
            Entry::SendOk { wid, broker: b, .. } if broker.is_none_or(|want| b == want) => {
                acked.insert(*wid);
            }
            Entry::Deliver { wid: Some(w), .. } => {
                delivered.insert(*w);
            }
            _ => {}
        }
    }
    acked.difference(&delivered).count()
}

/// Runs the workload under the schedule, heals, waits for the consumers and judges
/// the history. `progress` gets a line per step as it happens.
pub fn run(o: &Options, progress: &mut dyn FnMut(&str)) -> Result<Outcome, HarnessError> {
    let dir = match &o.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("mqchaos-{}-{}", std::process::id(), o.seed)),
    };
    std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let result = run_in(o, &dir, progress);
    if !o.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(
    o: &Options,
    dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Outcome, HarnessError> {
    if !(1..=MAX_GROUPS).contains(&o.groups) {
        return Err(HarnessError::Groups { groups: o.groups });
    }
    if o.slave_reads && o.replication != Replication::Sync {
        return Err(HarnessError::SlaveReadsNeedSync);
    }
    let steps = o.schedule();
    let mut cluster = start_cluster(o, dir)?;
    let sink = clients::Sink::default();
    let mut log = Vec::new();
    let mut faults: Vec<Entry> = Vec::new();
    // (group, from, to): each time a group's master was down.
    let mut master_down: Vec<(u32, u64, u64)> = Vec::new();
    let namesrv_addrs = vec![cluster.namesrv_addr.clone()];
    let start_ms = now_ms();
    let mut producers: Vec<Hosted> = Vec::new();
    for i in 0..o.producers {
        let config = ProducerConfig {
            producer_group: "chaos_producers".into(),
            namesrv_addrs: namesrv_addrs.clone(),
            ..ProducerConfig::default()
        };
        let plan = ProducerPlan {
            topic: TOPIC.into(),
            tags: TAGS.iter().map(|t| t.to_string()).collect(),
            send_interval_ms: SEND_INTERVAL_MS,
            body_bytes: BODY_BYTES,
            burst: [1, 1],
            start_ms,
            // The producers are stopped at the heal.
            stop_ms: u64::MAX,
            delay_levels: Vec::new(),
            sharding_keys: 0,
        };
        let first_wid = u64::from(i) * clients::WID_RANGE + 1;
        producers.push(
            clients::start(
                dir.join(format!("producer{i}")),
                FIRST_CLIENT_NODE + i,
                first_wid,
                sink.clone(),
                move |r| Box::new(ProducerHost::new(config, plan, r)),
            )
            .map_err(io_error(format!("starting producer {i}")))?,
        );
    }
    // The first sends create the topic on each group (autoCreateTopicEnable);
    // consumers started before every group has it would find the rest only at their
    // next route poll (30 s).
    let routed = Instant::now();
    let names: Vec<String> = (0..o.groups).map(broker_name).collect();
    loop {
        let acked_by = |name: &String| {
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|e| matches!(e, Entry::SendOk { broker, .. } if broker == name))
        };
        if names.iter().all(acked_by) {
            break;
        }
        if routed.elapsed() > Duration::from_millis(o.start_timeout_ms) {
            return Err(HarnessError::NoTopic {
                timeout_ms: o.start_timeout_ms,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut consumers: Vec<Hosted> = Vec::new();
    let mut consumer_ids = Vec::new();
    let mut start_consumers = || -> Result<(), HarnessError> {
        for i in 0..o.consumers {
            let id = FIRST_CLIENT_NODE + o.producers + i;
            let config = ConsumerConfig {
                consumer_group: GROUP.into(),
                namesrv_addrs: namesrv_addrs.clone(),
                topic: TOPIC.into(),
                tag_expression: "*".into(),
                message_model: MessageModel::Clustering,
                consume_from_where: ConsumeFromWhere::FirstOffset,
                ..ConsumerConfig::default()
            };
            consumers.push(
                clients::start(
                    dir.join(format!("consumer{i}")),
                    id,
                    0,
                    sink.clone(),
                    move |r| Box::new(ConsumerHost::new(config, ConsumerPlan::default(), r)),
                )
                .map_err(io_error(format!("starting consumer {i}")))?,
            );
            consumer_ids.push(id);
        }
        Ok(())
    };
    let mut struck: Vec<Struck> = Vec::new();
    let slave_reads = if o.slave_reads {
        let p = slave_reads::prologue(o, &mut cluster, &sink, start_consumers, progress)?;
        faults.extend(p.faults);
        struck.push(p.struck);
        master_down.push((0, p.down_ms.0, p.down_ms.1));
        Some(p.reads)
    } else {
        start_consumers()?;
        None
    };
    let client_ids: Vec<u32> = (FIRST_CLIENT_NODE..FIRST_CLIENT_NODE + o.producers)
        .chain(consumer_ids.iter().copied())
        .collect();
    for (n, step) in steps.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(step.load_ms));
        let line = format!("step {}/{}: {step}", n + 1, steps.len());
        progress(&line);
        log.push(line);
        let g = step.group.min(o.groups - 1);
        // Every peer of the struck broker: what a pause cuts it from.
        let every_peer: BTreeSet<u32> =
            links_of(&cluster, g, step.target, Scope::Node, &client_ids)
                .into_iter()
                .flat_map(|t| t.peers)
                .collect();
        let from_ms = now_ms();
        let group = &mut cluster.groups[g as usize];
        let (node, id) = match (step.target, group.slave.as_mut()) {
            (Target::Slave, Some(slave)) => (slave, slave_node(g)),
            _ => (&mut group.master, master_node(g)),
        };
        let fault = |kind, detail: String| Entry::Fault {
            at_ms: now_ms(),
            kind,
            node: Some(id),
            detail,
        };
        // The peers a link fault touched; a pause's are every peer.
        let mut struck_peers = if matches!(step.action, Action::Pause { .. }) {
            every_peer
        } else {
            BTreeSet::new()
        };
        match step.action {
            Action::Kill { down_ms } | Action::Terminate { down_ms } => {
                // Either stop loses the process's memory and keeps the page cache: a
                // `process_crash`, then a `restart`, as the simulator records its
                // kills and its clean restarts.
                let down_from_ms = now_ms();
                let how = if matches!(step.action, Action::Kill { .. }) {
                    "kill -9"
                } else {
                    "SIGTERM"
                };
                faults.push(fault(
                    FaultKind::ProcessCrash,
                    format!("{how} {}", node.name),
                ));
                match step.action {
                    Action::Kill { .. } => node.kill9()?,
                    _ => node.terminate(o.start_timeout_ms)?,
                }
                std::thread::sleep(Duration::from_millis(down_ms));
                node.spawn(o.start_timeout_ms)?;
                faults.push(fault(FaultKind::Restart, format!("restart {}", node.name)));
                if id == master_node(g) {
                    master_down.push((g, down_from_ms, now_ms()));
                }
            }
            Action::Pause { paused_ms } => {
                // A frozen process loses nothing: to the rules it is a link cut both
                // ways, from the pause to the SIGCONT.
                faults.push(fault(
                    FaultKind::Partition,
                    format!("SIGSTOP {}", node.name),
                ));
                node.pause()?;
                std::thread::sleep(Duration::from_millis(paused_ms));
                node.resume()?;
                faults.push(fault(FaultKind::Heal, format!("SIGCONT {}", node.name)));
            }
            Action::Net {
                fault: how,
                scope,
                held_ms,
            } => {
                let touched = links_of(&cluster, g, step.target, scope, &client_ids);
                let peers: BTreeSet<u32> = touched.iter().flat_map(|t| t.peers.clone()).collect();
                let (kind, words) = net_words(how);
                for &p in &peers {
                    faults.push(Entry::Fault {
                        at_ms: now_ms(),
                        kind,
                        node: Some(id),
                        detail: words
                            .replace("{x}", &format!("n{id}"))
                            .replace("{p}", &format!("n{p}")),
                    });
                }
                for t in &touched {
                    t.link.set(net_mode(how, t.behind));
                }
                std::thread::sleep(Duration::from_millis(held_ms));
                for t in &touched {
                    t.link.heal();
                }
                for &p in &peers {
                    faults.push(Entry::Fault {
                        at_ms: now_ms(),
                        kind: FaultKind::Heal,
                        node: Some(id),
                        detail: format!("heal n{id} <-> n{p}"),
                    });
                }
                struck_peers = peers;
            }
        }
        struck.push(Struck {
            action: step.action,
            node: id,
            from_ms,
            until_ms: now_ms(),
            peers: struck_peers.into_iter().collect(),
        });
    }
    // Load on the healed cluster too: a broker that came back must serve again.
    std::thread::sleep(Duration::from_millis(LOAD_AFTER_LAST_FAULT_MS));
    let heal_at_ms = now_ms();
    progress("heal: the producers stop; the consumers catch up");
    for (i, p) in producers.into_iter().enumerate() {
        if !clients::stop_within(p, o.start_timeout_ms) {
            return Err(HarnessError::ClientHung {
                client: format!("producer {i} (n{})", FIRST_CLIENT_NODE + i as u32),
                timeout_ms: o.start_timeout_ms,
            });
        }
    }
    let quiet_started = Instant::now();
    let mut not_caught_up = None;
    loop {
        let missing = undelivered(&sink.lock().unwrap_or_else(|e| e.into_inner()), None);
        if missing == 0 {
            break;
        }
        if quiet_started.elapsed() > Duration::from_millis(o.quiet_timeout_ms) {
            not_caught_up = Some(HarnessError::NotCaughtUp {
                timeout_ms: o.quiet_timeout_ms,
                missing,
            });
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the consumers' periodic offset commits land before the clean shutdown.
    std::thread::sleep(Duration::from_millis(COMMITS_LAND_MS));
    for (c, id) in consumers.into_iter().zip(&consumer_ids) {
        if !clients::stop_within(c, o.start_timeout_ms) {
            return Err(HarnessError::ClientHung {
                client: format!("consumer n{id}"),
                timeout_ms: o.start_timeout_ms,
            });
        }
    }
    let end_ms = now_ms();
    drop(cluster);
    let history = assemble(o, faults, sink, consumer_ids, heal_at_ms, end_ms);
    let scenario = scenario_toml(
        o,
        &struck,
        &Timeline {
            load_start_ms: start_ms,
            heal_at_ms,
        },
    );
    let report = rmq_sim::check::check(&history);
    let served_while_master_down = (0..o.groups)
        .map(|g| {
            let name = broker_name(g);
            let served = history
                .entries
                .iter()
                .filter(|e| match e {
                    Entry::Deliver { at_ms, broker, .. } => {
                        *broker == name
                            && master_down
                                .iter()
                                .any(|&(dg, from, to)| dg == g && (from..to).contains(at_ms))
                    }
                    _ => false,
                })
                .count() as u64;
            (name, served)
        })
        .collect();
    Ok(Outcome {
        history,
        report,
        scenario,
        log,
        not_caught_up,
        served_while_master_down,
        slave_reads,
    })
}

/// The history: the meta entry, then the clients' entries and the faults in time
/// order (a stable sort: each client's entries keep their order).
fn assemble(
    o: &Options,
    faults: Vec<Entry>,
    sink: clients::Sink,
    consumers: Vec<u32>,
    heal_at_ms: u64,
    end_ms: u64,
) -> History {
    let mut entries = std::mem::take(&mut *sink.lock().unwrap_or_else(|e| e.into_inner()));
    entries.extend(faults);
    entries.sort_by_key(Entry::at_ms);
    let meta = Entry::Meta {
        scenario: "mqchaos".into(),
        seed: o.seed,
        brokers: (0..o.groups)
            .map(|g| BrokerGroupMeta {
                broker_name: broker_name(g),
                master_node: master_node(g),
                slave_node: (o.replication != Replication::None).then_some(slave_node(g)),
                flush: o.flush,
                replication: o.replication,
            })
            .collect(),
        groups: vec![GroupMeta {
            group: GROUP.into(),
            topic: TOPIC.into(),
            tag_expression: "*".into(),
            broadcasting: false,
            orderly: false,
            max_reconsume_times: None,
            consumers,
        }],
        heal_at_ms,
        end_ms,
        promise: Box::default(),
    };
    History {
        entries: std::iter::once(meta).chain(entries).collect(),
    }
}
