//! rmq-real: the same state machines over real files and sockets.
//!
//! - [`admin`]: `mqadmin`, RocketMQ's admin tool, as blocking remoting calls.
//! - [`fs_disk`]: [`fs_disk::FsDisk`], the store's `Disk` over a real directory. Syncs
//!   run either at once while the store waits ([`fs_disk::FsDisk::open`]) or on a
//!   worker thread while the broker keeps serving ([`fs_disk::FsDisk::open_threaded`]);
//!   either way their outcomes are handed back to the driver.
//! - [`config`]: the binaries' configuration as RocketMQ reads it (properties files,
//!   `-c`/`-n`, `NAMESRV_ADDR`) and the store directory's lock.
//! - [`remoting`]: RocketMQ's remoting codec — frames, JSON and binary headers, and
//!   the mapping to and from the model's requests and responses.
//! - [`ha`]: RocketMQ's HA stream, the two frames a slave and its master exchange on the
//!   master's HA port.
//! - [`runtime`]: one model node hosted on tokio — connections, timers, the wall clock,
//!   the disk's sync completions — as the simulator hosts it on virtual time.
//! - [`process`]: what the binaries share: logging, signals, hosting nodes on threads.
//! - [`chaos`]: `mqchaos`, real mqnamesrv/mqbroker processes under seeded kills and
//!   pauses with the simulator's workload, judged by the simulator's checker.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod admin;
pub mod chaos;
pub mod config;
pub mod fs_disk;
mod fs_sync;
pub mod ha;
mod mapped_file;
#[cfg(feature = "planted-bugs")]
mod planted_write_behind;
pub mod process;
pub mod remoting;
pub mod runtime;
mod sync_worker;
