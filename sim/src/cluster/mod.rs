//! The cluster wing: a whole RocketMQ cluster in one seeded, virtual-time world.
//!
//! [`world`] runs the nodes (event queue, node lifecycle, faults) over [`net`] and the
//! storage wing's disk; [`scenario`] reads a scenario file, [`swarm`] draws a seed's
//! fault and workload choices, [`workload`] drives the clients and records the history
//! (with [`listener`], the listener that fails a seeded share of messages),
//! ([`orderly_listener`]: an orderly group's listener),
//! [`runner`] puts one run together and [`sweep`] runs many. [`seeds`] splits the run's
//! seed into one stream per component.

pub mod listener;
pub mod net;
pub mod orderly_listener;
pub mod runner;
pub mod scenario;
pub mod seeds;
pub mod swarm;
pub mod sweep;
pub mod workload;
pub mod world;
