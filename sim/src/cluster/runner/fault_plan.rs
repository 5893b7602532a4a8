//! The fault plan: the scenario's fault kinds drawn into faults at times from the seed,
//! the faults a swarm seed aims at moments (armed as triggers), and each fault as the
//! history records it, under the name the scenario gave it.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rmq_model::node::NodeId;
use rmq_model::protocol::{response_code, Message, Request, Response};

use crate::cluster::fault_step::{FaultStep, NodeRef};
use crate::cluster::scenario::{FaultSpecKind, Scenario, Target, WARMUP_MS};
use crate::cluster::seeds::{stream, Purpose};
use crate::cluster::swarm::{AimedFault, Moment, Peer, Side, Strike};
use crate::cluster::world::{Fault, FaultRecord, Trigger, Watch};
use crate::history::{Entry, FaultKind};
use crate::storage::disk::CrashKind;

use super::{Layout, Role};

pub(super) fn uniform(rng: &mut ChaCha8Rng, r: [u64; 2]) -> u64 {
    rng.random_range(r[0]..=r[1])
}

/// The fault plan: which faults strike when, from the seed's fault-plan stream.
pub(super) fn fault_plan(s: &Scenario, l: &Layout, seed: u64) -> Vec<(u64, Fault)> {
    let spec = &s.file.faults;
    let heal_at = s.file.durations.faults_ms;
    if !spec.steps.is_empty() {
        return steps_plan(&spec.steps, l);
    }
    let mut rng = stream(seed, Purpose::FaultPlan, 0);
    let mut plan = Vec::new();
    if spec.kinds.is_empty() {
        return plan;
    }
    let targets: Vec<NodeId> = l
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let t = match r {
                Role::NameServer => Target::NameServers,
                Role::Master { .. } => Target::Masters,
                Role::Slave { .. } => Target::Slaves,
                Role::Producer { .. } => Target::Producers,
                Role::Consumer { .. } => Target::Consumers,
                // The checker's eyes on the dead-letter queues, not part of the load.
                Role::DeadLetterReader { .. } => return false,
            };
            spec.targets.contains(&t)
        })
        .map(|(i, _)| NodeId(i as u32))
        .collect();
    if targets.is_empty() {
        return plan;
    }
    let all = l.roles.len() as u32;
    // Nodes that never come back (lost or retired), and how many machines were lost.
    let mut lost: Vec<NodeId> = Vec::new();
    let mut machines_lost = 0;
    let mut t = WARMUP_MS + uniform(&mut rng, spec.every_ms);
    while t < heal_at {
        let kind = spec.kinds[rng.random_range(0..spec.kinds.len())];
        let node = targets[rng.random_range(0..targets.len())];
        let until = (t + uniform(&mut rng, spec.down_ms)).min(heal_at);
        let is_broker = matches!(
            l.roles[node.0 as usize],
            Role::Master { .. } | Role::Slave { .. }
        );
        let is_client = matches!(
            l.roles[node.0 as usize],
            Role::Producer { .. } | Role::Consumer { .. }
        );
        let crash = |plan: &mut Vec<(u64, Fault)>, kind| {
            plan.push((t, Fault::Crash { node, kind }));
            plan.push((until, Fault::Restart { node }));
        };
        if lost.contains(&node) {
            t += uniform(&mut rng, spec.every_ms);
            continue;
        }
        match kind {
            FaultSpecKind::Kill | FaultSpecKind::ProcessCrash => {
                crash(&mut plan, CrashKind::ProcessCrash)
            }
            FaultSpecKind::OsCrash => crash(&mut plan, CrashKind::OsCrash),
            FaultSpecKind::PowerCut => crash(&mut plan, CrashKind::PowerCut),
            // Clients are not machines whose loss RocketMQ promises to survive: a
            // group without consumers cannot consume.
            FaultSpecKind::MachineLost if is_client => {}
            FaultSpecKind::MachineLost => {
                if machines_lost < spec.max_machines_lost {
                    machines_lost += 1;
                    lost.push(node);
                    plan.push((t, Fault::MachineLost { node }));
                }
            }
            FaultSpecKind::DiskDamaged if is_broker => {
                let bits = rng.random_range(1..=3);
                plan.push((
                    t,
                    Fault::DiskDamaged {
                        node,
                        path_prefix: "commitlog/".into(),
                        bits,
                    },
                ));
                plan.push((
                    t + 1,
                    Fault::Crash {
                        node,
                        kind: CrashKind::PowerCut,
                    },
                ));
                let has_slave = l.masters.contains(&node)
                    && l.slaves[l.masters.iter().position(|&m| m == node).unwrap()].is_some();
                if has_slave {
                    // A replicated master's damaged disk is not trusted again: the
                    // machine is retired and its slave serves (not counted as a lost
                    // machine: nothing is lost that the slave holds).
                    lost.push(node);
                    plan.push((t + 2, Fault::MachineLost { node }));
                } else {
                    plan.push((until.max(t + 2), Fault::Restart { node }));
                }
            }
            FaultSpecKind::DiskDamaged => {}
            FaultSpecKind::CleanRestart => {
                plan.push((t, Fault::CleanShutdown { node }));
                plan.push((until, Fault::Restart { node }));
            }
            FaultSpecKind::Partition | FaultSpecKind::OneWayPartition => {
                let other = NodeId((node.0 + rng.random_range(1..all)) % all);
                plan.push((
                    t,
                    Fault::Partition {
                        a: node,
                        b: other,
                        one_way: kind == FaultSpecKind::OneWayPartition,
                    },
                ));
                plan.push((until, Fault::Heal { a: node, b: other }));
            }
            FaultSpecKind::Clog => {
                let other = NodeId((node.0 + rng.random_range(1..all)) % all);
                let extra_ms = rng.random_range(50..=2_000);
                plan.push((
                    t,
                    Fault::Clog {
                        from: node,
                        to: other,
                        extra_ms,
                    },
                ));
                plan.push((until, Fault::Heal { a: node, b: other }));
            }
            FaultSpecKind::ConnectionReset => {
                let other = NodeId((node.0 + rng.random_range(1..all)) % all);
                plan.push((t, Fault::ConnectionReset { a: node, b: other }));
            }
            FaultSpecKind::ClockSkew => {
                let skew_ms = rng.random_range(-30_000..=30_000);
                plan.push((t, Fault::ClockSkew { node, skew_ms }));
                plan.push((until, Fault::ClockSkew { node, skew_ms: 0 }));
            }
        }
        t += uniform(&mut rng, spec.every_ms);
    }
    plan.sort_by_key(|(at, _)| *at);
    plan
}

/// The node `node` names in layout `l` (the scenario's validation checked it exists).
fn resolve(l: &Layout, node: NodeRef) -> NodeId {
    let nth = |want: &dyn Fn(&Role) -> bool, i: u32| {
        let at = l
            .roles
            .iter()
            .enumerate()
            .filter(|(_, r)| want(r))
            .nth(i as usize)
            .map(|(at, _)| at);
        NodeId(at.expect("a validated step names an existing node") as u32)
    };
    match node {
        NodeRef::NameServer(i) => nth(&|r| matches!(r, Role::NameServer), i),
        NodeRef::Master(g) => l.masters[g as usize],
        NodeRef::Slave(g) => l.slaves[g as usize].expect("a validated step's slave exists"),
        NodeRef::Producer(i) => nth(&|r| matches!(r, Role::Producer { .. }), i),
        NodeRef::Consumer(i) => nth(&|r| matches!(r, Role::Consumer { .. }), i),
    }
}

/// An explicit schedule's faults (`[[faults.steps]]`), in time order.
fn steps_plan(steps: &[FaultStep], l: &Layout) -> Vec<(u64, Fault)> {
    let mut plan = Vec::new();
    for s in steps {
        let node = resolve(l, s.node);
        let t = s.at_ms;
        let restart_at = |plan: &mut Vec<(u64, Fault)>| {
            if let Some(until) = s.until_ms {
                plan.push((until, Fault::Restart { node }));
            }
        };
        let crash = |kind| Fault::Crash { node, kind };
        match s.kind {
            FaultSpecKind::Kill | FaultSpecKind::ProcessCrash => {
                plan.push((t, crash(CrashKind::ProcessCrash)));
                restart_at(&mut plan);
            }
            FaultSpecKind::OsCrash => {
                plan.push((t, crash(CrashKind::OsCrash)));
                restart_at(&mut plan);
            }
            FaultSpecKind::PowerCut => {
                plan.push((t, crash(CrashKind::PowerCut)));
                restart_at(&mut plan);
            }
            FaultSpecKind::MachineLost => plan.push((t, Fault::MachineLost { node })),
            FaultSpecKind::DiskDamaged => {
                plan.push((
                    t,
                    Fault::DiskDamaged {
                        node,
                        path_prefix: "commitlog/".into(),
                        bits: 1,
                    },
                ));
                plan.push((t + 1, crash(CrashKind::PowerCut)));
                restart_at(&mut plan);
            }
            FaultSpecKind::CleanRestart => {
                plan.push((t, Fault::CleanShutdown { node }));
                restart_at(&mut plan);
            }
            FaultSpecKind::ClockSkew => {
                let skew_ms = s.skew_ms.unwrap_or(0);
                plan.push((t, Fault::ClockSkew { node, skew_ms }));
                if let Some(until) = s.until_ms {
                    plan.push((until, Fault::ClockSkew { node, skew_ms: 0 }));
                }
            }
            FaultSpecKind::Partition
            | FaultSpecKind::OneWayPartition
            | FaultSpecKind::Clog
            | FaultSpecKind::ConnectionReset => {
                for &peer in &s.peers {
                    let other = resolve(l, peer);
                    match s.kind {
                        FaultSpecKind::ConnectionReset => {
                            plan.push((t, Fault::ConnectionReset { a: node, b: other }));
                            continue;
                        }
                        FaultSpecKind::Clog => {
                            let extra_ms = s.extra_ms.unwrap_or(0);
                            for (from, to) in [(node, other), (other, node)] {
                                plan.push((t, Fault::Clog { from, to, extra_ms }));
                            }
                        }
                        _ => plan.push((
                            t,
                            Fault::Partition {
                                a: node,
                                b: other,
                                one_way: s.kind == FaultSpecKind::OneWayPartition,
                            },
                        )),
                    }
                    if let Some(until) = s.until_ms {
                        plan.push((until, Fault::Heal { a: node, b: other }));
                    }
                }
            }
        }
    }
    // Stable: faults at one time keep the steps' order.
    plan.sort_by_key(|(at, _)| *at);
    plan
}

pub(super) fn fault_entry(r: &FaultRecord) -> Entry {
    let (kind, node) = match &r.fault {
        Fault::Crash { node, kind } => (
            match kind {
                CrashKind::ProcessCrash => FaultKind::ProcessCrash,
                CrashKind::OsCrash => FaultKind::OsCrash,
                CrashKind::PowerCut => FaultKind::PowerCut,
            },
            Some(node.0),
        ),
        Fault::Restart { node } => (FaultKind::Restart, Some(node.0)),
        Fault::MachineLost { node } => (FaultKind::MachineLost, Some(node.0)),
        // A clean stop loses the process's memory, nothing else: `process_crash`.
        Fault::CleanShutdown { node } => (FaultKind::ProcessCrash, Some(node.0)),
        Fault::DiskDamaged { node, .. } => (FaultKind::DiskDamaged, Some(node.0)),
        Fault::ClockSkew { node, .. } => (FaultKind::ClockSkew, Some(node.0)),
        Fault::Partition { a, .. } => (FaultKind::Partition, Some(a.0)),
        Fault::Heal { a, .. } => (FaultKind::Heal, Some(a.0)),
        Fault::HealAll => (FaultKind::Heal, None),
        Fault::Clog { from, .. } => (FaultKind::Clog, Some(from.0)),
        // A reset loses what is in flight on one link, as a cut does: the checker's
        // `partition` class (docs/history.md).
        Fault::ConnectionReset { a, .. } => (FaultKind::Partition, Some(a.0)),
    };
    Entry::Fault {
        at_ms: r.at_ms,
        kind,
        node,
        detail: r.fault.to_string(),
    }
}

/// Moment classes of packets, for aimed faults ([`Watch::Packet`]).
const MOMENT_SEND_OK: u32 = 1;
const MOMENT_HA_TRANSFER: u32 = 2;

pub(super) fn moment_of(m: &Message) -> u32 {
    match m {
        Message::Response {
            response: Response::Send(r),
            ..
        } if r.code == response_code::SUCCESS => MOMENT_SEND_OK,
        Message::Request {
            request: Request::HaTransfer { data, .. },
            ..
        } if !data.is_empty() => MOMENT_HA_TRANSFER,
        _ => 0,
    }
}

/// The world trigger of an aimed fault; `None` when it aims at a node the cluster does
/// not have (a slave without replication).
pub(super) fn aimed_trigger(a: &AimedFault, l: &Layout, heal_at_ms: u64) -> Option<Trigger> {
    let node_of = |group: u32, side: Side| match side {
        Side::Master => Some(l.masters[group as usize]),
        Side::Slave => l.slaves[group as usize],
    };
    let group = match a.moment {
        Moment::SendOk { group }
        | Moment::GroupCommit { group, .. }
        | Moment::HaTransfer { group } => group,
    };
    let master = l.masters[group as usize];
    let watch = match a.moment {
        Moment::SendOk { .. } => Watch::Packet {
            from: master,
            to: None,
            moment: MOMENT_SEND_OK,
        },
        Moment::GroupCommit { side, .. } => Watch::SyncRequested {
            node: node_of(group, side)?,
        },
        Moment::HaTransfer { .. } => Watch::Packet {
            from: master,
            to: Some(l.slaves[group as usize]?),
            moment: MOMENT_HA_TRANSFER,
        },
    };
    let (d, up) = (a.delay_ms, a.delay_ms + a.down_ms.max(1));
    let then = match a.strike {
        Strike::Node { side, kind } => {
            let node = node_of(group, side)?;
            let crash = |kind| {
                vec![
                    (d, Fault::Crash { node, kind }),
                    (up, Fault::Restart { node }),
                ]
            };
            match kind {
                FaultSpecKind::Kill | FaultSpecKind::ProcessCrash => crash(CrashKind::ProcessCrash),
                FaultSpecKind::OsCrash => crash(CrashKind::OsCrash),
                FaultSpecKind::PowerCut => crash(CrashKind::PowerCut),
                FaultSpecKind::CleanRestart => {
                    vec![
                        (d, Fault::CleanShutdown { node }),
                        (up, Fault::Restart { node }),
                    ]
                }
                FaultSpecKind::MachineLost => vec![(d, Fault::MachineLost { node })],
                _ => return None,
            }
        }
        Strike::Link {
            kind,
            peer,
            extra_ms,
        } => {
            let other =
                match peer {
                    Peer::Slave => l.slaves[group as usize]?,
                    Peer::NameServer(i) => NodeId(i),
                    Peer::Producer(i) => NodeId(l.roles.iter().position(
                        |r| matches!(r, Role::Producer { index } if *index == i as usize),
                    )? as u32),
                };
            let heal = Fault::Heal {
                a: master,
                b: other,
            };
            match kind {
                FaultSpecKind::Partition | FaultSpecKind::OneWayPartition => vec![
                    (
                        d,
                        Fault::Partition {
                            a: master,
                            b: other,
                            one_way: kind == FaultSpecKind::OneWayPartition,
                        },
                    ),
                    (up, heal),
                ],
                FaultSpecKind::Clog => vec![
                    (
                        d,
                        Fault::Clog {
                            from: master,
                            to: other,
                            extra_ms,
                        },
                    ),
                    (up, heal),
                ],
                FaultSpecKind::ConnectionReset => vec![(
                    d,
                    Fault::ConnectionReset {
                        a: master,
                        b: other,
                    },
                )],
                _ => return None,
            }
        }
    };
    Some(Trigger {
        watch,
        armed_at_ms: a.armed_at_ms,
        expires_at_ms: heal_at_ms,
        then,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One name per fault: a scenario kind that becomes one world fault is recorded in
    /// the history under the scenario's own name.
    #[test]
    fn a_fault_keeps_its_name_from_scenario_to_history() {
        let (node, a, b) = (NodeId(1), NodeId(1), NodeId(2));
        let cases = [
            (
                FaultSpecKind::ProcessCrash,
                Fault::Crash {
                    node,
                    kind: CrashKind::ProcessCrash,
                },
            ),
            (
                FaultSpecKind::OsCrash,
                Fault::Crash {
                    node,
                    kind: CrashKind::OsCrash,
                },
            ),
            (
                FaultSpecKind::PowerCut,
                Fault::Crash {
                    node,
                    kind: CrashKind::PowerCut,
                },
            ),
            (FaultSpecKind::MachineLost, Fault::MachineLost { node }),
            (
                FaultSpecKind::DiskDamaged,
                Fault::DiskDamaged {
                    node,
                    path_prefix: String::new(),
                    bits: 1,
                },
            ),
            (
                FaultSpecKind::Partition,
                Fault::Partition {
                    a,
                    b,
                    one_way: false,
                },
            ),
            (
                FaultSpecKind::Clog,
                Fault::Clog {
                    from: a,
                    to: b,
                    extra_ms: 1,
                },
            ),
            (
                FaultSpecKind::ClockSkew,
                Fault::ClockSkew { node, skew_ms: 1 },
            ),
        ];
        for (spec, fault) in cases {
            let Entry::Fault { kind, .. } = fault_entry(&FaultRecord { at_ms: 0, fault }) else {
                panic!("not a fault entry");
            };
            let spec_name = serde_json::to_value(spec).unwrap();
            assert_eq!(spec_name, serde_json::to_value(kind).unwrap(), "{spec:?}");
        }
    }
}
