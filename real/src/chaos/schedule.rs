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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `kill -9`, then a restart after `down_ms`.
    Kill { down_ms: u64 },
    /// SIGSTOP for `paused_ms`, then SIGCONT.
    Pause { paused_ms: u64 },
    /// SIGTERM (a clean shutdown), then a restart after `down_ms`.
    Terminate { down_ms: u64 },
}

/// One fault: after `load_ms` more of load, `action` on `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    pub load_ms: u64,
    pub target: Target,
    pub action: Action,
}

/// How many faults of each kind a run has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub kills: u32,
    pub pauses: u32,
    pub terminates: u32,
    /// Whether there is a slave to strike (a fifth of the steps, when there is).
    pub slave: bool,
}

/// Load before each fault, ms (uniform).
const LOAD_MS: [u64; 2] = [1_000, 3_000];
/// A killed or stopped broker stays down this long before its restart, ms.
const DOWN_MS: [u64; 2] = [100, 1_500];
/// A paused broker stays stopped this long, ms.
const PAUSED_MS: [u64; 2] = [500, 3_000];

/// The steps of `seed`: every fault of `mix` in a seeded order, with seeded timings.
pub fn schedule(seed: u64, mix: Mix) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kinds: Vec<u8> = std::iter::repeat_n(0, mix.kills as usize)
        .chain(std::iter::repeat_n(1, mix.pauses as usize))
        .chain(std::iter::repeat_n(2, mix.terminates as usize))
        .collect();
    // Fisher-Yates with the seed's stream: the order is part of the schedule.
    for i in (1..kinds.len()).rev() {
        let j = rng.random_range(0..=i);
        kinds.swap(i, j);
    }
    let mut uniform = |[lo, hi]: [u64; 2]| rng.random_range(lo..=hi);
    kinds
        .into_iter()
        .map(|kind| {
            let load_ms = uniform(LOAD_MS);
            let action = match kind {
                0 => Action::Kill {
                    down_ms: uniform(DOWN_MS),
                },
                1 => Action::Pause {
                    paused_ms: uniform(PAUSED_MS),
                },
                _ => Action::Terminate {
                    down_ms: uniform(DOWN_MS),
                },
            };
            let target = if mix.slave && uniform([0, 4]) == 0 {
                Target::Slave
            } else {
                Target::Master
            };
            Step {
                load_ms,
                target,
                action,
            }
        })
        .collect()
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match self.target {
            Target::Master => "master",
            Target::Slave => "slave",
        };
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{schedule, Action, Mix, Target};

    #[test]
    fn a_seed_gives_one_schedule_with_every_fault_of_the_mix() {
        let mix = Mix {
            kills: 5,
            pauses: 2,
            terminates: 1,
            slave: true,
        };
        let steps = schedule(7, mix);
        assert_eq!(steps, schedule(7, mix));
        assert_ne!(steps, schedule(8, mix));
        let count = |f: fn(&Action) -> bool| steps.iter().filter(|s| f(&s.action)).count();
        assert_eq!(count(|a| matches!(a, Action::Kill { .. })), 5);
        assert_eq!(count(|a| matches!(a, Action::Pause { .. })), 2);
        assert_eq!(count(|a| matches!(a, Action::Terminate { .. })), 1);
        assert!(steps.iter().all(|s| (1_000..=3_000).contains(&s.load_ms)));
        let no_slave = schedule(
            7,
            Mix {
                slave: false,
                ..mix
            },
        );
        assert!(no_slave.iter().all(|s| s.target == Target::Master));
    }
}
