//! rmq-real: the same state machines over real files and sockets.
//!
//! - [`fs_disk`]: [`fs_disk::FsDisk`], the store's `Disk` over a real directory, with
//!   syncs performed at once and their outcomes handed back to the driver.
//! - [`config`]: the binaries' configuration as RocketMQ reads it (properties files,
//!   `-c`/`-n`, `NAMESRV_ADDR`) and the store directory's lock.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod config;
pub mod fs_disk;
