//! The fault schedule: derived from the seed alone, so a failing run's schedule is
//! printed and repeated exactly (the processes' timing is the real machine's, so a
//! repeat is best effort).

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Which broker a step strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Master,
    Slave,
}

/// Which links of the struck broker a network fault cuts or slows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every link: its remoting port's, its own to the name server, and replication.
    Node,
    /// Its remoting port's connections (the clients', and a master's slave's
    /// SlaveSynchronize).
    Clients,
    /// Replication alone: the slave's connection to its master's HA port.
    Replication,
}

/// What a network fault does to the links in its scope (see `proxy::Flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetFault {
    /// Both directions lose their bytes.
    Partition,
    /// What is sent to the broker is lost; its answers would pass.
    RequestsLost,
    /// What the broker sends is lost; requests reach it.
    AnswersLost,
    /// Both directions hold their bytes, and deliver them all at the heal.
    Stall,
    /// Both directions deliver `extra_ms` late.
    Clog { extra_ms: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `kill -9`, then a restart after `down_ms`.
    Kill { down_ms: u64 },
    /// SIGSTOP for `paused_ms`, then SIGCONT.
    Pause { paused_ms: u64 },
    /// SIGTERM (a clean shutdown), then a restart after `down_ms`.
    Terminate { down_ms: u64 },
    /// `fault` on the `scope` links of the broker for `held_ms`, then the heal.
    Net {
        fault: NetFault,
        scope: Scope,
        held_ms: u64,
    },
}

/// One fault: after `load_ms` more of load, `action` on `target` of broker group
/// `group` (0: broker-a).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub load_ms: u64,
    pub group: u32,
    pub target: Target,
    pub action: Action,
}

/// How many faults of each kind a run has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub kills: u32,
    pub pauses: u32,
    pub terminates: u32,
    /// Network faults that cut links: both ways, one way, or stalled.
    pub partitions: u32,
    /// Network faults that slow links.
    pub clogs: u32,
    /// Whether there is a slave to strike (a fifth of the steps, when there is).
    pub slave: bool,
    /// Broker groups to strike, each step one drawn uniformly.
    pub groups: u32,
    /// The longest a killed or stopped broker stays down before its restart, ms (at
    /// least [`MIN_DOWN_MS`]); long enough, and a group's slave serves its reads.
    pub max_down_ms: u64,
}

/// Load before each fault, ms (uniform).
const LOAD_MS: [u64; 2] = [1_000, 3_000];
/// A killed or stopped broker stays down at least this long before its restart, ms.
pub const MIN_DOWN_MS: u64 = 100;
/// A paused broker stays stopped this long, ms.
const PAUSED_MS: [u64; 2] = [500, 3_000];
/// A network fault lasts this long, ms: around the clients' 3 s request timeout.
const NET_HELD_MS: [u64; 2] = [500, 5_000];
/// A clog's added latency, ms.
const CLOG_EXTRA_MS: [u64; 2] = [20, 400];

/// The steps of `seed`: every fault of `mix` in a seeded order, with seeded timings.
pub fn schedule(seed: u64, mix: Mix) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kinds: Vec<u8> = std::iter::repeat_n(0, mix.kills as usize)
        .chain(std::iter::repeat_n(1, mix.pauses as usize))
        .chain(std::iter::repeat_n(2, mix.terminates as usize))
        .chain(std::iter::repeat_n(3, mix.partitions as usize))
        .chain(std::iter::repeat_n(4, mix.clogs as usize))
        .collect();
    // Fisher-Yates with the seed's stream: the order is part of the schedule.
    for i in (1..kinds.len()).rev() {
        let j = rng.random_range(0..=i);
        kinds.swap(i, j);
    }
    let mut uniform = |[lo, hi]: [u64; 2]| rng.random_range(lo..=hi);
    let down_ms = [MIN_DOWN_MS, mix.max_down_ms.max(MIN_DOWN_MS)];
    let last_group = u64::from(mix.groups.max(1) - 1);
    kinds
        .into_iter()
        .map(|kind| {
            let load_ms = uniform(LOAD_MS);
            let action = match kind {
                0 => Action::Kill {
                    down_ms: uniform(down_ms),
                },
                1 => Action::Pause {
                    paused_ms: uniform(PAUSED_MS),
                },
                2 => Action::Terminate {
                    down_ms: uniform(down_ms),
                },
                _ => {
                    let fault = if kind == 4 {
                        NetFault::Clog {
                            extra_ms: uniform(CLOG_EXTRA_MS),
                        }
                    } else {
                        [
                            NetFault::Partition,
                            NetFault::RequestsLost,
                            NetFault::AnswersLost,
                            NetFault::Stall,
                        ][uniform([0, 3]) as usize]
                    };
                    // Replication is a link only when there is a slave.
                    let scopes: &[Scope] = if mix.slave {
                        &[Scope::Node, Scope::Clients, Scope::Replication]
                    } else {
                        &[Scope::Node, Scope::Clients]
                    };
                    let scope = scopes[uniform([0, scopes.len() as u64 - 1]) as usize];
                    Action::Net {
                        fault,
                        scope,
                        held_ms: uniform(NET_HELD_MS),
                    }
                }
            };
            let target = if mix.slave && uniform([0, 4]) == 0 {
                Target::Slave
            } else {
                Target::Master
            };
            let group = uniform([0, last_group]) as u32;
            Step {
                load_ms,
                group,
                target,
                action,
            }
        })
        .collect()
}

/// Broker group `g`'s name: broker-a, broker-b, ...
pub fn broker_name(g: u32) -> String {
    let letter = char::from(b'a' + (g % 26) as u8);
    format!("broker-{letter}")
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.target {
            Target::Master => "master",
            Target::Slave => "slave",
        };
        let target = format!("{role} of {}", broker_name(self.group));
        write!(f, "after {} ms of load: ", self.load_ms)?;
        match self.action {
            Action::Kill { down_ms } => {
                write!(f, "kill -9 the {target}, restart it {down_ms} ms later")
            }
            Action::Pause { paused_ms } => {
                write!(f, "SIGSTOP the {target}, SIGCONT {paused_ms} ms later")
            }
            Action::Terminate { down_ms } => {
                write!(f, "SIGTERM the {target}, restart it {down_ms} ms later")
            }
            Action::Net {
                fault,
                scope,
                held_ms,
            } => {
                let what = match fault {
                    NetFault::Partition => "cut both ways".to_string(),
                    NetFault::RequestsLost => "lose what is sent to it on".to_string(),
                    NetFault::AnswersLost => "lose what it sends on".to_string(),
                    NetFault::Stall => "stall".to_string(),
                    NetFault::Clog { extra_ms } => format!("delay by {extra_ms} ms"),
                };
                let links = match scope {
                    Scope::Node => "every link",
                    Scope::Clients => "the remoting connections",
                    Scope::Replication => "the replication link",
                };
                write!(f, "{what} {links} of the {target}, heal {held_ms} ms later")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{schedule, Action, Mix, NetFault, Scope, Target};

    #[test]
    fn a_seed_gives_one_schedule_with_every_fault_of_the_mix() {
        let mix = Mix {
            kills: 5,
            pauses: 2,
            terminates: 1,
            partitions: 3,
            clogs: 1,
            slave: true,
            groups: 2,
            max_down_ms: 1_500,
        };
        let steps = schedule(7, mix);
        assert_eq!(steps, schedule(7, mix));
        assert_ne!(steps, schedule(8, mix));
        let count = |f: fn(&Action) -> bool| steps.iter().filter(|s| f(&s.action)).count();
        assert_eq!(count(|a| matches!(a, Action::Kill { .. })), 5);
        assert_eq!(count(|a| matches!(a, Action::Pause { .. })), 2);
        assert_eq!(count(|a| matches!(a, Action::Terminate { .. })), 1);
        let net = |clog: bool| {
            steps
                .iter()
                .filter(|s| match s.action {
                    Action::Net { fault, .. } => matches!(fault, NetFault::Clog { .. }) == clog,
                    _ => false,
                })
                .count()
        };
        assert_eq!(net(false), 3);
        assert_eq!(net(true), 1);
        assert!(steps.iter().all(|s| (1_000..=3_000).contains(&s.load_ms)));
        let no_slave = schedule(
            7,
            Mix {
                slave: false,
                ..mix
            },
        );
        assert!(no_slave.iter().all(|s| s.target == Target::Master));
        // Without a slave there is no replication link to cut.
        assert!(no_slave.iter().all(|s| !matches!(
            s.action,
            Action::Net {
                scope: Scope::Replication,
                ..
            }
        )));
    }
}
