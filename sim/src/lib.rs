//! rmq-sim: the deterministic simulator and everything that judges.
#![forbid(unsafe_code)]

pub mod check;
pub mod disk;
pub mod history;
pub mod mutants;
pub mod net;
pub mod runner;
pub mod scenario;
pub mod seeds;
pub mod store_check;
pub mod store_crash;
pub mod store_image;
pub mod swarm;
pub mod sweep;
pub mod workload;
pub mod world;
