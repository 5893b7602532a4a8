//! A fault's name in a scenario (`kinds = [...]`, a step's `kind`), shared by the
//! drawn faults and the explicit schedule.

use serde::{Deserialize, Serialize};

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultSpecKind {
    /// `kill -9` (case 1): the process dies, the page cache survives.
    Kill,
    /// The process crashes (case 2); the same effect as a kill.
    ProcessCrash,
    OsCrash,
    PowerCut,
    /// The machine never boots again (case 5).
    MachineLost,
    /// Bit rot in the commit log, then a power cut (case 6). A damaged master with a
    /// slave is retired (its disk is not trusted again); a single copy restarts from it.
    DiskDamaged,
    /// A clean shutdown and restart.
    CleanRestart,
    Partition,
    OneWayPartition,
    Clog,
    /// A TCP reset of one connection: in-flight packets lost, both ends notified.
    ConnectionReset,
    ClockSkew,
}
