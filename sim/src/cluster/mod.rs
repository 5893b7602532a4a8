//! The cluster wing: a whole RocketMQ cluster in one seeded, virtual-time world.
//!
//! [`world`] runs the nodes (event queue, node lifecycle, faults) over [`net`] and the
//! storage wing's disk; [`scenario`] reads a scenario file, [`swarm`] draws a seed's
//! fault and workload choices, [`runner`] puts one run together (its clients are the
//! history's [workload drivers](crate::history::workload), which the real runtime's
//! chaos harness hosts too) and [`sweep`] runs many. [`seeds`] splits the run's seed
//! into one stream per component.

pub mod fault_kind;
pub mod fault_step;
pub mod net;
pub mod runner;
pub mod scenario;
pub mod seeds;
pub mod swarm;
pub mod sweep;
pub mod world;
