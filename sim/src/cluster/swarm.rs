//! Swarm testing (FoundationDB's simulation, TigerBeetle's VOPR): each seed draws its own
//! cluster, workload and fault mix inside the envelope a scenario declares, so a sweep
//! visits corners no fixed scenario reaches — a trickle that leaves fewer than four pages
//! dirty per flush window, bursts, one queue or many, no faults at all or only one kind,
//! and faults aimed at the moments that matter.
//!
//! A scenario opts in with a `[swarm]` section ([`SwarmSpec`](crate::cluster::scenario::SwarmSpec)): its ranges bound the
//! draws, and the file's other sections give what is drawn from (`[cluster].flush` and
//! `.replication` list the modes, `[workload].tags` the tags, `[faults].kinds` and
//! `.targets` the fault kinds and targets that may be on) and what is kept
//! (`[workload].topic`, `[faults].max_machines_lost`, `[durations].quiet_ms`, the
//! `[promise]` the checker holds every seed to).
//!
//! Every choice is made in one function, [`draw`], from the seed's own stream
//! ([`Purpose::Swarm`]): the other streams (fault plan, links, disks, nodes) draw exactly
//! what they draw for a fixed scenario, and a scenario without `[swarm]` never touches
//! this stream, so its runs are unchanged. The result is an ordinary concrete scenario
//! (every range narrowed to the seed's draw) plus [`AimedFault`]s: faults the world
//! strikes a seeded delay after an observed moment (see [`crate::cluster::world::Trigger`]) —
//! right after a master's SEND_OK reaches its producer, while a broker's fsync (a group
//! commit) is in flight, while an HA transfer is being applied on the slave. Both are
//! printed at the top of `sim replay`, so a failing seed describes itself.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::cluster::scenario::{
    ClusterSpec, Durations, FaultSpec, FaultSpecKind, GroupSpec, ModelSpec, OneOrMany, Scenario,
    ScenarioFile, Target, WorkloadSpec, WARMUP_MS,
};
use crate::cluster::seeds::{stream, Purpose};
use crate::cluster::world::MAX_SYNC_LATENCY_MS;
use crate::history::Replication;

/// The moment an aimed fault waits for, on broker group `group`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Moment {
    /// The group's master's SEND_OK (status SUCCESS) reaches a producer.
    SendOk { group: u32 },
    /// The group's master (or slave) asks for an fsync: a group commit, a flush tick or
    /// a slave's write of received records is in flight.
    GroupCommit { group: u32, side: Side },
    /// An HA transfer carrying records reaches the group's slave.
    HaTransfer { group: u32 },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Master,
    Slave,
}

/// The other end of a link an aimed fault cuts, clogs or resets (from the master).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Peer {
    Slave,
    NameServer(u32),
    Producer(u32),
}

/// What an aimed fault does, on the moment's broker group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strike {
    /// A crash of any kind, a clean restart, or the machine lost (`kind`), on one side.
    Node { side: Side, kind: FaultSpecKind },
    /// A partition, one-way partition, clog or reset (`kind`) between the master and
    /// `peer`; `extra_ms` is a clog's added delay.
    Link {
        kind: FaultSpecKind,
        peer: Peer,
        extra_ms: u64,
    },
}

/// A fault aimed at a moment: armed at `armed_at_ms`, it strikes `delay_ms` after the
/// first matching moment and lasts `down_ms` (a node restarts, a link heals).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AimedFault {
    pub armed_at_ms: u64,
    pub moment: Moment,
    pub delay_ms: u64,
    pub strike: Strike,
    pub down_ms: u64,
}

/// Every choice a seed made: the concrete scenario it runs and the faults aimed at
/// moments. Printed in the derived configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SwarmChoices {
    /// The concrete scenario: every range of the envelope narrowed to this seed's draw.
    pub drawn: ScenarioFile,
    pub aimed: Vec<AimedFault>,
}

/// Uniform in `[r[0], r[1]]`.
fn between<T>(rng: &mut ChaCha8Rng, r: [T; 2]) -> T
where
    T: rand::distr::uniform::SampleUniform + PartialOrd + Copy,
{
    rng.random_range(r[0]..=r[1])
}

/// Log-uniform in `[lo, hi]` in integers only (no float, so the draw is the same on
/// every platform): a power-of-two band first, uniformly, then a value in it. Small
/// values are as likely as large ones, band for band.
fn log_between(rng: &mut ChaCha8Rng, r: [u64; 2]) -> u64 {
    let [lo, hi] = r;
    if lo == hi {
        return lo;
    }
    // Shift by one so that a range starting at 0 has a band of its own.
    let (lo1, hi1) = (lo + 1, hi.saturating_add(1));
    let band_lo = lo1.ilog2();
    let band_hi = hi1.ilog2();
    let band = rng.random_range(band_lo..=band_hi);
    let from = (1u64 << band).max(lo1);
    let to = if band >= 63 {
        hi1
    } else {
        ((1u64 << (band + 1)) - 1).min(hi1)
    };
    rng.random_range(from..=to) - 1
}

/// Two log-uniform draws in `r`, in order: a run's own `[lo, hi]`.
fn log_pair(rng: &mut ChaCha8Rng, r: [u64; 2]) -> [u64; 2] {
    let a = log_between(rng, r);
    let b = log_between(rng, r);
    [a.min(b), a.max(b)]
}

fn percent(rng: &mut ChaCha8Rng, p: u32) -> bool {
    rng.random_range(0..100) < p
}

fn pick<T: Clone>(rng: &mut ChaCha8Rng, from: &[T]) -> T {
    from[rng.random_range(0..from.len())].clone()
}

/// Each of `from` kept with chance `p` percent, in order; at least one when `one`.
fn subset<T: Clone>(rng: &mut ChaCha8Rng, from: &[T], p: u32, one: bool) -> Vec<T> {
    let mut out: Vec<T> = from.iter().filter(|_| percent(rng, p)).cloned().collect();
    if out.is_empty() && one && !from.is_empty() {
        out.push(from[rng.random_range(0..from.len())].clone());
    }
    out
}

/// A count drawn uniformly in `0..=from.len()`, then that many of `from`, kept in order.
fn some_of<T: Clone>(rng: &mut ChaCha8Rng, from: &[T]) -> Vec<T> {
    let count = rng.random_range(0..=from.len());
    let mut chosen: Vec<usize> = (0..from.len()).collect();
    for i in 0..count {
        let j = rng.random_range(i..chosen.len());
        chosen.swap(i, j);
    }
    let mut chosen = chosen[..count].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| from[i].clone()).collect()
}

const CRASH_KINDS: [FaultSpecKind; 6] = [
    FaultSpecKind::Kill,
    FaultSpecKind::ProcessCrash,
    FaultSpecKind::OsCrash,
    FaultSpecKind::PowerCut,
    FaultSpecKind::CleanRestart,
    FaultSpecKind::MachineLost,
];

const LINK_KINDS: [FaultSpecKind; 4] = [
    FaultSpecKind::Partition,
    FaultSpecKind::OneWayPartition,
    FaultSpecKind::Clog,
    FaultSpecKind::ConnectionReset,
];

/// The one function that makes every swarm choice of `(scenario, seed)`: the concrete
/// scenario the seed runs and the faults it aims at moments. `s` must have a `[swarm]`
/// section. Draws only from the seed's [`Purpose::Swarm`] stream.
pub fn draw(s: &Scenario, seed: u64) -> (Scenario, SwarmChoices) {
    let env = &s.file;
    let spec = env.swarm.as_ref().expect("a [swarm] scenario");
    let mut rng = stream(seed, Purpose::Swarm, 0);
    let rng = &mut rng;

    // The cluster.
    let flush = pick(rng, &env.cluster.flush.values());
    let replication = pick(rng, &env.cluster.replication.values());
    let broker_groups = between(rng, spec.broker_groups);
    let file_bytes = log_between(rng, spec.commit_log_file_bytes) / 4096 * 4096;
    let cluster = ClusterSpec {
        name_servers: between(rng, spec.name_servers),
        broker_groups,
        flush: OneOrMany::One(flush),
        replication: OneOrMany::One(replication),
        queues: between(rng, spec.queues),
        commit_log_file_bytes: file_bytes.max(4096),
    };

    // The workload.
    let tags = subset(rng, &env.workload.tags, 50, true);
    let send_interval_ms = log_pair(rng, spec.send_interval_ms);
    let burst = if percent(rng, 50) {
        [1, between(rng, spec.burst)]
    } else {
        [1, 1]
    };
    let body = log_pair(
        rng,
        [u64::from(spec.body_bytes[0]), u64::from(spec.body_bytes[1])],
    );
    let producers = between(rng, spec.producers);
    let groups = (0..between(rng, spec.groups))
        .map(|i| {
            let expression = match rng.random_range(0..3) {
                0 => "*".to_string(),
                1 => pick(rng, &tags),
                _ => {
                    let a = pick(rng, &tags);
                    let b = pick(rng, &tags);
                    if a == b {
                        a
                    } else {
                        format!("{a} || {b}")
                    }
                }
            };
            GroupSpec {
                name: format!("g{i}"),
                tags: expression,
                consumers: between(rng, spec.consumers),
                model: if percent(rng, spec.broadcasting_percent) {
                    ModelSpec::Broadcasting
                } else {
                    ModelSpec::Clustering
                },
                // Permille of the fault phase for now; scaled once its length is drawn.
                start_ms: if percent(rng, spec.late_group_percent) {
                    rng.random_range(1..1000)
                } else {
                    0
                },
                orderly: false,
                fail_permille: 0,
                always_fail_permille: 0,
                hang_permille: 0,
                max_reconsume_times: None,
            }
        })
        .collect::<Vec<GroupSpec>>();
    let workload = WorkloadSpec {
        topic: env.workload.topic.clone(),
        producers,
        send_interval_ms: [send_interval_ms[0].max(1), send_interval_ms[1].max(1)],
        body_bytes: [body[0] as u32, body[1] as u32],
        tags,
        groups,
        burst,
        send_after_heal_ms: env.workload.send_after_heal_ms,
        delay_levels: env.workload.delay_levels.clone(),
        sharding_keys: env.workload.sharding_keys,
        orderly_producers: env.workload.orderly_producers,
    };

    // The fault mix.
    let kinds = some_of(rng, &env.faults.kinds);
    let targets = subset(rng, &env.faults.targets, spec.target_percent, true);
    let every_ms = log_pair(rng, spec.every_ms);
    let down_ms = log_pair(rng, spec.down_ms);
    let faults_ms = between(rng, spec.faults_ms);
    let mut workload = workload;
    for g in &mut workload.groups {
        if g.start_ms > 0 {
            g.start_ms = WARMUP_MS + faults_ms.saturating_sub(WARMUP_MS) * g.start_ms / 1000;
        }
    }
    // RocketMQ survives a lost name server only while another one serves routes.
    let mut cluster = cluster;
    if kinds.contains(&FaultSpecKind::MachineLost) && targets.contains(&Target::NameServers) {
        cluster.name_servers = cluster
            .name_servers
            .max(env.faults.max_machines_lost.saturating_add(1));
    }

    // Faults aimed at moments: only kinds that are on, on broker targets that are on.
    let masters_on = targets.contains(&Target::Masters);
    let slaves_on = targets.contains(&Target::Slaves) && replication != Replication::None;
    let node_kinds: Vec<FaultSpecKind> = CRASH_KINDS
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect();
    let link_kinds: Vec<FaultSpecKind> = LINK_KINDS
        .into_iter()
        .filter(|k| kinds.contains(k))
        .collect();
    let mut machines_left = env.faults.max_machines_lost;
    let mut aimed = Vec::new();
    let aimable = (masters_on || slaves_on) && !(node_kinds.is_empty() && link_kinds.is_empty());
    let count = between(rng, spec.aimed_faults);
    let warmup_ms = WARMUP_MS;
    for _ in 0..count {
        if !aimable || faults_ms <= warmup_ms {
            break;
        }
        let group = rng.random_range(0..broker_groups);
        let replicated = replication != Replication::None;
        let moment = match rng.random_range(0..3) {
            1 => Moment::GroupCommit {
                group,
                side: if slaves_on && percent(rng, 50) {
                    Side::Slave
                } else {
                    Side::Master
                },
            },
            2 if replicated => Moment::HaTransfer { group },
            _ => Moment::SendOk { group },
        };
        let delay_ms = match moment {
            // Strictly before the fsync can complete: mid group commit.
            Moment::GroupCommit { .. } => rng.random_range(0..MAX_SYNC_LATENCY_MS),
            _ => between(rng, spec.aimed_delay_ms),
        };
        let on_node = (masters_on || slaves_on) && !node_kinds.is_empty();
        let strike = if on_node && (link_kinds.is_empty() || !masters_on || percent(rng, 70)) {
            let side = match (masters_on, slaves_on) {
                (true, true) => {
                    if percent(rng, 70) {
                        Side::Master
                    } else {
                        Side::Slave
                    }
                }
                (true, false) => Side::Master,
                _ => Side::Slave,
            };
            let mut kind = pick(rng, &node_kinds);
            if kind == FaultSpecKind::MachineLost {
                if machines_left == 0 {
                    kind = FaultSpecKind::PowerCut;
                } else {
                    machines_left -= 1;
                }
            }
            Strike::Node { side, kind }
        } else if masters_on && !link_kinds.is_empty() {
            let kind = pick(rng, &link_kinds);
            let peer = match rng.random_range(0..3) {
                0 if replicated => Peer::Slave,
                1 => Peer::NameServer(rng.random_range(0..cluster.name_servers)),
                _ => Peer::Producer(rng.random_range(0..producers)),
            };
            Strike::Link {
                kind,
                peer,
                extra_ms: rng.random_range(50..=2_000),
            }
        } else {
            continue;
        };
        aimed.push(AimedFault {
            armed_at_ms: rng.random_range(warmup_ms..faults_ms),
            moment,
            delay_ms,
            strike,
            down_ms: between(rng, down_ms),
        });
    }

    let drawn = ScenarioFile {
        description: env.description.clone(),
        cluster,
        workload,
        faults: FaultSpec {
            kinds,
            targets,
            every_ms: [every_ms[0].max(1), every_ms[1].max(1)],
            down_ms,
            // Machines an aimed fault may lose are not the plan's to lose.
            max_machines_lost: machines_left,
            steps: Vec::new(),
        },
        durations: Durations {
            faults_ms,
            quiet_ms: env.durations.quiet_ms,
        },
        promise: env.promise.clone(),
        swarm: None,
    };
    let scenario = Scenario {
        name: format!(
            "{}[swarm flush={},replication={}]",
            s.name,
            crate::cluster::scenario::flush_name(flush),
            crate::cluster::scenario::replication_name(replication)
        ),
        file: drawn.clone(),
        flush,
        replication,
    };
    (scenario, SwarmChoices { drawn, aimed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::FlushMode;

    fn envelope() -> Scenario {
        let text = include_str!("../../../scenarios/swarm.toml");
        let file = ScenarioFile::parse("swarm.toml", text).unwrap();
        let variants = file.variants("swarm");
        assert_eq!(variants.len(), 1, "a swarm file is one variant");
        variants.into_iter().next().unwrap()
    }

    #[test]
    fn a_seed_draws_the_same_valid_scenario_every_time() {
        let s = envelope();
        for seed in 0..300 {
            let (a, choices) = draw(&s, seed);
            let (b, again) = draw(&s, seed);
            assert_eq!(a, b, "seed {seed}");
            assert_eq!(choices, again, "seed {seed}");
            assert_eq!(a.file, choices.drawn);
            assert!(a.file.swarm.is_none(), "the draw is concrete");
            a.file
                .validate()
                .unwrap_or_else(|e| panic!("seed {seed}: {e:?}"));
            let spec = s.file.swarm.as_ref().unwrap();
            let w = &a.file.workload;
            assert!(spec.producers[0] <= w.producers && w.producers <= spec.producers[1]);
            assert!(w.send_interval_ms[1] <= spec.send_interval_ms[1]);
            assert!(w.body_bytes[1] <= spec.body_bytes[1]);
            assert!(a
                .file
                .faults
                .kinds
                .iter()
                .all(|k| s.file.faults.kinds.contains(k)));
            for f in &choices.aimed {
                assert!(f.armed_at_ms < a.file.durations.faults_ms);
            }
        }
        assert_ne!(draw(&s, 1).1, draw(&s, 2).1);
    }

    /// Over a few hundred seeds the draws reach the corners fixed scenarios miss.
    #[test]
    fn draws_reach_the_corners() {
        let s = envelope();
        let runs: Vec<(Scenario, SwarmChoices)> = (0..400).map(|seed| draw(&s, seed)).collect();
        let any = |f: &dyn Fn(&Scenario, &SwarmChoices) -> bool| runs.iter().any(|(s, c)| f(s, c));
        assert!(
            any(&|s, _| s.file.workload.send_interval_ms[0] >= 1_000),
            "a trickle"
        );
        assert!(
            any(&|s, _| s.file.workload.send_interval_ms[1] <= 8 && s.file.workload.burst[1] > 8),
            "bursts"
        );
        assert!(any(&|s, _| s.file.cluster.queues == 1), "one queue");
        assert!(
            any(&|s, _| s.file.faults.kinds.is_empty()),
            "a fault-free run"
        );
        assert!(
            any(&|s, _| s.file.faults.kinds.len() == 1),
            "one fault kind alone"
        );
        assert!(any(
            &|s, _| s.flush == FlushMode::AsyncFlush && s.replication == Replication::None
        ));
        assert!(any(
            &|s, _| s.flush == FlushMode::SyncFlush && s.replication == Replication::Sync
        ));
        assert!(any(&|s, _| s
            .file
            .workload
            .groups
            .iter()
            .any(|g| g.model == ModelSpec::Broadcasting)));
        for moment in 0..3 {
            assert!(
                any(&|_, c| c.aimed.iter().any(|a| match a.moment {
                    Moment::SendOk { .. } => moment == 0,
                    Moment::GroupCommit { .. } => moment == 1,
                    Moment::HaTransfer { .. } => moment == 2,
                })),
                "moment {moment}"
            );
        }
        assert!(any(&|_, c| c.aimed.iter().any(|a| matches!(
            a.strike,
            Strike::Node {
                kind: FaultSpecKind::MachineLost,
                ..
            }
        ))));
        assert!(any(&|_, c| c
            .aimed
            .iter()
            .any(|a| matches!(a.strike, Strike::Link { .. }))));
    }

    /// The last name server is never a machine to lose, and the machines aimed faults
    /// may lose are taken from the plan's allowance.
    #[test]
    fn lost_machines_stay_within_the_envelope() {
        let s = envelope();
        for seed in 0..400 {
            let (d, c) = draw(&s, seed);
            let f = &d.file.faults;
            if f.kinds.contains(&FaultSpecKind::MachineLost)
                && f.targets.contains(&Target::NameServers)
            {
                assert!(d.file.cluster.name_servers >= 2, "seed {seed}");
            }
            let aimed_lost = c
                .aimed
                .iter()
                .filter(|a| {
                    matches!(
                        a.strike,
                        Strike::Node {
                            kind: FaultSpecKind::MachineLost,
                            ..
                        }
                    )
                })
                .count() as u32;
            assert_eq!(
                aimed_lost + f.max_machines_lost,
                s.file.faults.max_machines_lost
            );
        }
    }

    #[test]
    fn log_uniform_draws_stay_in_range_and_favour_no_scale() {
        let mut rng = stream(1, Purpose::Swarm, 0);
        let mut small = 0;
        for _ in 0..2_000 {
            let v = log_between(&mut rng, [0, 10_000]);
            assert!(v <= 10_000);
            small += usize::from(v < 100);
        }
        // Uniform would give 1 %; log-uniform about half.
        assert!(small > 500, "{small}");
        assert_eq!(log_between(&mut rng, [7, 7]), 7);
        assert!((0..100).all(|_| log_between(&mut rng, [1, 2]) >= 1));
    }
}
