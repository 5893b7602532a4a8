//! RocketMQ's store: commit log, consume queues, checkpoint, abort marker, recovery and
//! config files, all through the [`Disk`] trait.

pub mod disk;
pub mod mem_disk;

pub use disk::{DirEntry, Disk, DiskError, SyncTarget, SyncTicket};
pub use mem_disk::MemDisk;
