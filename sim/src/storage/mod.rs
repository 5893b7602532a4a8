//! The storage wing: the store alone on a simulated disk, crashed at every step.
//!
//! [`disk`] is the simulator's disk (page cache against durable media, fsync, crashes,
//! damage), the one room the cluster wing shares. [`store_crash`] sweeps a store through
//! random operations and crashes, [`store_check`] is its oracle, and [`store_image`]
//! writes store images for the recovery fuzzer.

pub mod disk;
pub mod store_check;
pub mod store_crash;
pub mod store_image;
