//! One scenario run: derive everything from (scenario, seed), build the world, drive the
//! phases, and judge the history.
//!
//! Phases: faults (producers send, the fault plan strikes), then the heal (partitions,
//! clogs and clock skews end; every crashed node whose machine survives reboots), then a
//! quiet period, at whose end liveness is judged. A `[swarm]` scenario is first narrowed
//! to the seed's own concrete scenario by [`crate::cluster::swarm::draw`], and its faults aimed
//! at moments are armed in the world as triggers. Every node is built through a factory
//! of [`Nodes`] (broker, name server, producer, consumer; the reference by default), so
//! another implementation of any role (a fork, a mutant) runs every scenario unchanged.
//!
//! Here: the nodes, the derived configuration and the run. `fault_plan.rs` draws the
//! faults and records them in the history.

use rmq_model::store::delay_level::MessageDelayLevel;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::broker::{Broker, BrokerConfig, BrokerRole, FlushDiskType};
use rmq_model::client::{ConsumeFromWhere, ConsumerConfig, ProducerConfig};
use rmq_model::message::dlq_topic;
use rmq_model::namesrv::{NameServer, NamesrvConfig};
use rmq_model::node::{Node, NodeId};
use rmq_model::protocol::{perm, Message, MessageModel};
use rmq_model::store::config_tables::TopicConfig;
use rmq_model::store::{Disk, StoreConfig};
use serde::Serialize;

use crate::check::{self, Report};
use crate::cluster::net::NetConfig;
use crate::cluster::scenario::{ModelSpec, Scenario, CONSUMERS_START_MS, WARMUP_MS};
use crate::cluster::swarm::{self, SwarmChoices};
use crate::cluster::world::{sim_addr, Fault, World};
use crate::history::workload::listener::ListenerPlan;
use crate::history::workload::{
    ConsumerHost, ConsumerPlan, ProducerHost, ProducerPlan, Recorder, SharedRecorder,
};
use crate::history::{BrokerGroupMeta, Entry, FlushMode, GroupMeta, History, Promise, Replication};

mod fault_plan;

use fault_plan::{aimed_trigger, fault_entry, fault_plan, moment_of};

/// Builds (boots) a broker from its config and disk.
pub type BrokerFactory = Rc<dyn Fn(BrokerConfig, &mut dyn Disk) -> Box<dyn Node<Message>>>;
/// Builds a name server from its config (a name server keeps nothing on disk).
pub type NameServerFactory = Rc<dyn Fn(NamesrvConfig) -> Box<dyn Node<Message>>>;
/// Builds a producer node: the client plus the workload that drives it and records what
/// it saw in the run's history ([`ProducerHost`] is the reference).
pub type ProducerFactory =
    Rc<dyn Fn(ProducerConfig, ProducerPlan, SharedRecorder) -> Box<dyn Node<Message>>>;
/// Builds a consumer node: the push consumer plus the host that records its deliveries,
/// ownership and commits ([`ConsumerHost`] is the reference). The plan says when it
/// starts (a swarm group may join late) and how its listener answers.
pub type ConsumerFactory =
    Rc<dyn Fn(ConsumerConfig, ConsumerPlan, SharedRecorder) -> Box<dyn Node<Message>>>;

/// The reference broker: `rmq_model::broker::Broker`.
pub fn reference_broker() -> BrokerFactory {
    Rc::new(|config, disk| Box::new(Broker::boot(config, disk)))
}

/// How every node of a run is built: one factory per role. [`Nodes::default`] is the
/// reference implementation of each; replace one field to run another implementation
/// of that role (a broker from another crate, a mutant client) with everything else
/// unchanged. The factories are called only when a node boots, never per event.
#[derive(Clone)]
pub struct Nodes {
    pub broker: BrokerFactory,
    pub name_server: NameServerFactory,
    pub producer: ProducerFactory,
    pub consumer: ConsumerFactory,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            broker: reference_broker(),
            name_server: Rc::new(|config| Box::new(NameServer::new(config))),
            producer: Rc::new(|config, plan, recorder| {
                Box::new(ProducerHost::new(config, plan, recorder))
            }),
            consumer: Rc::new(|config, plan, recorder| {
                Box::new(ConsumerHost::new(config, plan, recorder))
            }),
        }
    }
}

impl Nodes {
    /// The reference implementation of every role.
    pub fn reference() -> Nodes {
        Nodes::default()
    }

    /// The reference nodes with `broker` as the broker implementation.
    pub fn with_broker(broker: BrokerFactory) -> Nodes {
        Nodes {
            broker,
            ..Nodes::default()
        }
    }
}

/// A broker factory alone runs with the reference name servers and clients.
impl From<BrokerFactory> for Nodes {
    fn from(broker: BrokerFactory) -> Nodes {
        Nodes::with_broker(broker)
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    NameServer,
    Master {
        group: usize,
    },
    Slave {
        group: usize,
    },
    Producer {
        index: usize,
    },
    Consumer {
        group: usize,
        index: usize,
    },
    /// Reads the dead-letter queue of a group whose listener fails messages; no
    /// fault targets it.
    DeadLetterReader {
        group: usize,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct PlannedFault {
    pub at_ms: u64,
    pub fault: String,
}

/// Everything a seed decides before the run starts: printed at the top of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct DerivedConfig {
    pub scenario: String,
    pub seed: u64,
    pub flush: FlushMode,
    pub replication: Replication,
    pub nodes: Vec<(u32, Role)>,
    pub broker_groups: Vec<BrokerGroupMeta>,
    /// The timing promises the checker holds the run to (the scenario's `[promise]`).
    pub promise: Promise,
    pub net: NetSummary,
    pub faults: Vec<PlannedFault>,
    pub heal_at_ms: u64,
    pub end_ms: u64,
    /// A `[swarm]` scenario: every choice the seed made (the concrete scenario it runs
    /// and the faults aimed at moments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmChoices>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NetSummary {
    pub base_latency_ms: u64,
    pub jitter_ms: u64,
    pub break_notice_ms: u64,
}

struct Layout {
    roles: Vec<Role>,
    namesrv_addrs: Vec<String>,
    masters: Vec<NodeId>,
    slaves: Vec<Option<NodeId>>,
}

fn group_name(i: usize) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    if i < 26 {
        format!("broker-{letter}")
    } else {
        format!("broker-{letter}{}", i / 26)
    }
}

fn layout(s: &Scenario) -> Layout {
    let c = &s.file.cluster;
    let w = &s.file.workload;
    let mut roles = Vec::new();
    for _ in 0..c.name_servers {
        roles.push(Role::NameServer);
    }
    let mut masters = Vec::new();
    let mut slaves = Vec::new();
    for g in 0..c.broker_groups as usize {
        masters.push(NodeId(roles.len() as u32));
        roles.push(Role::Master { group: g });
        if s.replication != Replication::None {
            slaves.push(Some(NodeId(roles.len() as u32)));
            roles.push(Role::Slave { group: g });
        } else {
            slaves.push(None);
        }
    }
    for index in 0..w.producers as usize {
        roles.push(Role::Producer { index });
    }
    for (group, spec) in w.groups.iter().enumerate() {
        for index in 0..spec.consumers as usize {
            roles.push(Role::Consumer { group, index });
        }
    }
    for (group, spec) in w.groups.iter().enumerate() {
        if spec.fails() && spec.model == ModelSpec::Clustering {
            roles.push(Role::DeadLetterReader { group });
        }
    }
    let namesrv_addrs = (0..c.name_servers).map(|i| sim_addr(NodeId(i))).collect();
    Layout {
        roles,
        namesrv_addrs,
        masters,
        slaves,
    }
}

fn broker_config(s: &Scenario, l: &Layout, group: usize, slave: bool) -> BrokerConfig {
    let c = &s.file.cluster;
    let topic = TopicConfig {
        topic_name: s.file.workload.topic.clone(),
        read_queue_nums: c.queues,
        write_queue_nums: c.queues,
        perm: perm::READ | perm::WRITE,
        ..TopicConfig::default()
    };
    BrokerConfig {
        broker_name: group_name(group),
        broker_id: u64::from(slave),
        role: match (slave, s.replication) {
            (true, _) => BrokerRole::Slave,
            (false, Replication::Sync) => BrokerRole::SyncMaster,
            (false, _) => BrokerRole::AsyncMaster,
        },
        flush_disk_type: match s.flush {
            FlushMode::SyncFlush => FlushDiskType::SyncFlush,
            FlushMode::AsyncFlush => FlushDiskType::AsyncFlush,
        },
        namesrv_addrs: l.namesrv_addrs.clone(),
        ha_master_addr: slave.then(|| sim_addr(l.masters[group])),
        master_addr: slave.then(|| sim_addr(l.masters[group])),
        store: StoreConfig {
            commit_log_file_size_bytes: c.commit_log_file_bytes,
            consume_queue_entries_per_file: 1024,
            message_delay_level: MessageDelayLevel::from_delays_ms(
                s.file.promise.delay_levels_ms.clone(),
            )
            .expect("the scenario's delay levels were validated"),
            ..StoreConfig::default()
        },
        topics: BTreeMap::from([(topic.topic_name.clone(), topic)]),
        flush_delay_offset_interval_ms: s.file.promise.flush_delay_offset_interval_ms,
        ..BrokerConfig::default()
    }
}

fn group_meta(s: &Scenario, l: &Layout) -> Vec<BrokerGroupMeta> {
    (0..l.masters.len())
        .map(|g| BrokerGroupMeta {
            broker_name: group_name(g),
            master_node: l.masters[g].0,
            slave_node: l.slaves[g].map(|n| n.0),
            flush: s.flush,
            replication: s.replication,
        })
        .collect()
}

/// What one run produced.
pub struct Outcome {
    pub config: DerivedConfig,
    pub history: History,
    pub report: Report,
    pub fingerprint: u64,
    pub events: u64,
    pub virtual_ms: u64,
    /// The last trace lines, when asked for.
    pub trace: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    pub keep_trace: bool,
}

/// The scenario `seed` really runs: `s` itself, or for a `[swarm]` scenario the seed's
/// draw and its choices.
fn resolve(s: &Scenario, seed: u64) -> (Cow<'_, Scenario>, Option<SwarmChoices>) {
    if s.file.swarm.is_none() {
        return (Cow::Borrowed(s), None);
    }
    let (drawn, choices) = swarm::draw(s, seed);
    (Cow::Owned(drawn), Some(choices))
}

/// Derives the configuration of `(scenario, seed)` without running it.
pub fn derive(s: &Scenario, seed: u64) -> DerivedConfig {
    let (s, swarm) = resolve(s, seed);
    derive_concrete(&s, seed, swarm)
}

fn derive_concrete(s: &Scenario, seed: u64, swarm: Option<SwarmChoices>) -> DerivedConfig {
    let l = layout(s);
    let net = NetConfig::default();
    let heal_at_ms = s.file.durations.faults_ms;
    DerivedConfig {
        scenario: s.name.clone(),
        seed,
        flush: s.flush,
        replication: s.replication,
        nodes: l
            .roles
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, r.clone()))
            .collect(),
        broker_groups: group_meta(s, &l),
        promise: s.file.promise.clone(),
        net: NetSummary {
            base_latency_ms: net.base_latency_ms,
            jitter_ms: net.jitter_ms,
            break_notice_ms: net.break_notice_ms,
        },
        faults: fault_plan(s, &l, seed)
            .into_iter()
            .map(|(at_ms, f)| PlannedFault {
                at_ms,
                fault: f.to_string(),
            })
            .collect(),
        heal_at_ms,
        end_ms: heal_at_ms + s.file.durations.quiet_ms,
        swarm,
    }
}

/// The salt that picks group `group`'s always-failing messages in run `seed`.
fn listener_salt(seed: u64, group: usize) -> u64 {
    (seed ^ 0x5157_5e7a_11e5_0000).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ group as u64
}

/// Room reserved up front in each run's history (entries).
const HISTORY_ENTRIES_RESERVED: usize = 4096;

thread_local! {
    /// The clients' record of the last run on this thread, emptied, kept for the next
    /// run: a sweep's seeds record histories of about the same size, so after the first
    /// the record never grows (each growth copied the whole history).
    static SPARE_CLIENT_ENTRIES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Runs `(scenario, seed)` with `nodes` (or a [`BrokerFactory`] alone, with the
/// reference for the other roles) building the nodes.
pub fn run(s: &Scenario, seed: u64, nodes: impl Into<Nodes>, options: RunOptions) -> Outcome {
    let nodes: Nodes = nodes.into();
    let (s, swarm) = resolve(s, seed);
    let s: &Scenario = &s;
    let l = layout(s);
    let config = derive_concrete(s, seed, swarm);
    let recorder: SharedRecorder = Rc::new(RefCell::new(Recorder::default()));
    // A typical run records a few thousand entries: start with room for them instead of
    // growing (and copying) the history a dozen times.
    {
        let entries = &mut recorder.borrow_mut().history.entries;
        *entries = SPARE_CLIENT_ENTRIES.take();
        debug_assert!(entries.is_empty(), "the spare record is kept empty");
        entries.reserve(HISTORY_ENTRIES_RESERVED);
    }
    let heal_at = config.heal_at_ms;
    let end_ms = config.end_ms;
    let w = s.file.workload.clone();
    let consume_timeout_ms = s.file.promise.consume_timeout_ms;
    let roles = l.roles.clone();
    let broker_configs: Vec<Option<BrokerConfig>> = roles
        .iter()
        .map(|r| match r {
            Role::Master { group } => Some(broker_config(s, &l, *group, false)),
            Role::Slave { group } => Some(broker_config(s, &l, *group, true)),
            _ => None,
        })
        .collect();
    let namesrv_addrs = l.namesrv_addrs.clone();
    let rec = recorder.clone();
    let factory = move |id: NodeId, disk: &mut dyn Disk| -> Box<dyn Node<Message>> {
        match &roles[id.0 as usize] {
            Role::NameServer => (nodes.name_server)(NamesrvConfig::default()),
            Role::Master { .. } | Role::Slave { .. } => {
                let config = broker_configs[id.0 as usize].clone().expect("a broker");
                (nodes.broker)(config, disk)
            }
            Role::Producer { index } => (nodes.producer)(
                ProducerConfig {
                    producer_group: "workload_producers".into(),
                    namesrv_addrs: namesrv_addrs.clone(),
                    ..ProducerConfig::default()
                },
                ProducerPlan {
                    topic: w.topic.clone(),
                    tags: w.tags.clone(),
                    send_interval_ms: w.send_interval_ms,
                    body_bytes: w.body_bytes,
                    burst: w.burst,
                    start_ms: WARMUP_MS + *index as u64 * 7,
                    stop_ms: heal_at + w.send_after_heal_ms,
                    delay_levels: w.delay_levels.clone(),
                    sharding_keys: match w.orderly_producers {
                        Some(n) if *index >= n as usize => 0,
                        _ => w.sharding_keys,
                    },
                },
                rec.clone(),
            ),
            Role::Consumer { group, .. } => {
                let g = &w.groups[*group];
                let listener = ListenerPlan {
                    fail_permille: g.fail_permille,
                    always_fail_permille: g.always_fail_permille,
                    hang_permille: g.hang_permille,
                    answer_hung_after_ms: 3 * consume_timeout_ms,
                    salt: listener_salt(seed, *group),
                };
                (nodes.consumer)(
                    ConsumerConfig {
                        consumer_group: g.name.clone(),
                        namesrv_addrs: namesrv_addrs.clone(),
                        topic: w.topic.clone(),
                        tag_expression: g.tags.clone(),
                        message_model: match g.model {
                            ModelSpec::Clustering => MessageModel::Clustering,
                            ModelSpec::Broadcasting => MessageModel::Broadcasting,
                        },
                        consume_from_where: ConsumeFromWhere::FirstOffset,
                        consume_orderly: g.orderly,
                        consume_timeout_ms,
                        max_reconsume_times: g.max_reconsume_times.map(|m| m as i32),
                        ..ConsumerConfig::default()
                    },
                    ConsumerPlan {
                        start_at_ms: g.start_ms.max(CONSUMERS_START_MS),
                        listener,
                    },
                    rec.clone(),
                )
            }
            Role::DeadLetterReader { group } => {
                let g = &w.groups[*group];
                (nodes.consumer)(
                    ConsumerConfig {
                        consumer_group: format!("dlq_reader_{}", g.name),
                        namesrv_addrs: namesrv_addrs.clone(),
                        topic: dlq_topic(&g.name),
                        tag_expression: "*".into(),
                        message_model: MessageModel::Clustering,
                        consume_from_where: ConsumeFromWhere::FirstOffset,
                        ..ConsumerConfig::default()
                    },
                    ConsumerPlan {
                        start_at_ms: CONSUMERS_START_MS,
                        listener: ListenerPlan::default(),
                    },
                    rec.clone(),
                )
            }
        }
    };
    let mut world = World::new(seed, factory, l.roles.len() as u32, NetConfig::default());
    world.set_keep_trace(options.keep_trace);
    world.share_true_clock(recorder.borrow().clock.clone());
    world.set_message_format(Message::summary, Message::digest);
    for (at_ms, fault) in fault_plan(s, &l, seed) {
        world.schedule(at_ms, fault);
    }
    if let Some(choices) = &config.swarm {
        world.set_moment_classifier(moment_of);
        for a in &choices.aimed {
            if let Some(trigger) = aimed_trigger(a, &l, heal_at) {
                world.arm(trigger);
            }
        }
    }
    world.schedule(heal_at, Fault::HealAll);
    for i in 0..l.roles.len() as u32 {
        world.schedule(
            heal_at,
            Fault::ClockSkew {
                node: NodeId(i),
                skew_ms: 0,
            },
        );
        world.schedule(heal_at, Fault::Restart { node: NodeId(i) });
    }
    world.run_until(end_ms);

    let mut history = History::default();
    history.push(Entry::Meta {
        scenario: s.name.clone(),
        seed,
        brokers: config.broker_groups.clone(),
        groups: s
            .file
            .workload
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| GroupMeta {
                group: g.name.clone(),
                topic: s.file.workload.topic.clone(),
                tag_expression: g.tags.clone(),
                broadcasting: g.model == ModelSpec::Broadcasting,
                orderly: g.orderly,
                max_reconsume_times: g.max_reconsume_times,
                consumers: l
                    .roles
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| matches!(r, Role::Consumer { group, .. } if *group == gi))
                    .map(|(i, _)| i as u32)
                    .collect(),
            })
            .collect(),
        heal_at_ms: heal_at,
        end_ms,
        promise: Box::new(config.promise.clone()),
    });
    // Client entries are in time order; merge the faults in (a fault first on ties:
    // it happened before anything it caused).
    let mut client_entries = std::mem::take(&mut recorder.borrow_mut().history.entries);
    history
        .entries
        .reserve_exact(client_entries.len() + world.faults().len());
    let mut faults = world.faults().iter().map(fault_entry).peekable();
    for e in client_entries.drain(..) {
        while faults.peek().is_some_and(|f| f.at_ms() <= e.at_ms()) {
            history.push(faults.next().expect("peeked"));
        }
        history.push(e);
    }
    history.entries.extend(faults);
    SPARE_CLIENT_ENTRIES.set(client_entries);
    let report = check::check(&history);
    Outcome {
        trace: world.trace().map(str::to_string).collect(),
        fingerprint: world.fingerprint(),
        events: world.events_processed(),
        virtual_ms: world.now_ms(),
        config,
        history,
        report,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::world::MAX_SYNC_LATENCY_MS;
    use rmq_model::broker::config::SLAVE_SYNCHRONIZE_INTERVAL_MS;

    /// The reference broker, as the runner configures it, keeps RocketMQ's default
    /// promises (the checker holds every scenario without a `[promise]` to them), and
    /// the simulated disks complete an fsync within the declared time.
    #[test]
    fn the_reference_keeps_the_default_promise() {
        let p = Promise::default();
        let c = BrokerConfig::default();
        assert!(c.flush_interval_commit_log_ms <= p.flush_interval_commit_log_ms);
        assert!(c.flush_commit_log_thorough_interval_ms <= p.flush_commit_log_thorough_interval_ms);
        assert!(c.ha_heartbeat_interval_ms <= p.ha_send_heartbeat_interval_ms);
        assert!(c.slave_synchronize_interval_ms <= p.slave_synchronize_interval_ms);
        assert!(SLAVE_SYNCHRONIZE_INTERVAL_MS <= p.slave_synchronize_interval_ms);
        assert!(c.flush_consumer_offset_interval_ms <= p.flush_consumer_offset_interval_ms);
        assert!(MAX_SYNC_LATENCY_MS <= p.fsync_max_ms);
    }
}
