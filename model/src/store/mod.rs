//! RocketMQ's store: commit log, consume queues, checkpoint, abort marker, recovery and
//! config files, all through the [`Disk`] trait (reference A).
//!
//! Where to look: the record format in `record.rs`; rolling and reads in
//! `commit_log.rs`; consume-queue entries in `consume_queue.rs`; group commit in
//! `flush.rs`; delay levels and the schedule topic in `delay_level.rs`; boot and crash recovery in `recovery/`; append, read and shutdown in
//! `message_store.rs`; atomic JSON config files in `config_file.rs`.

pub mod checkpoint;
pub mod commit_log;
pub mod config_file;
pub mod config_tables;
pub mod consume_queue;
pub mod delay_level;
pub mod disk;
pub mod flush;
pub mod foreign_store;
pub mod mapped_file;
pub mod mem_disk;
pub mod message_store;
pub mod record;
pub mod recovery;
pub mod replica;

pub use disk::{DirEntry, Disk, DiskError, SyncTarget, SyncTicket, SyncWaiter};
pub use mem_disk::MemDisk;
pub use message_store::{
    AppendResult, MessageStore, ReadError, StoreConfig, StoreError, StoreEvent, StoreState,
    StoredMessage, ABORT_PATH,
};
pub use record::{Host, NewRecord};
pub use recovery::{recover, RecoveryMode, RecoveryReport};
