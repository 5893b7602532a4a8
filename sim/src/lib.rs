//! rmq-sim: the deterministic simulator and everything that judges.
#![forbid(unsafe_code)]

pub mod check;
pub mod cluster;
mod hasher;
pub mod history;
pub mod mutants;
pub mod storage;
