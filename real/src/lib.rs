//! rmq-real: the same state machines over real files and sockets.
//!
//! - [`fs_disk`]: [`fs_disk::FsDisk`], the store's `Disk` over a real directory, with
//!   syncs performed at once and their outcomes handed back to the driver.
//! - [`remoting`]: RocketMQ's remoting codec — frames, JSON and binary headers, and
//!   the mapping to and from the model's requests and responses.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod fs_disk;
pub mod process;
pub mod remoting;
pub mod runtime;
