//! What a consumer may see: pulls serve only records that are durable as the
//! configuration promises, like Kafka's high watermark.
//!
//! Deliberate deviation from RocketMQ, a stronger guarantee. RocketMQ serves every
//! record in the page cache (`getMessage` reads up to the consume queue's max offset),
//! so a consumer can be handed — or, filtering by tag, skip over — a record that a
//! power cut or an OS crash then takes away; the recovered broker hands that queue
//! offset to the next message, which a consumer already past the offset never gets,
//! and one offset has meant two messages. Here a master serves a record only once it
//! is as durable as the configuration promises:
//!
//! - SYNC_FLUSH: only records at or below the flushed commit-log offset;
//! - SYNC_MASTER: also only what an in-sync slave acknowledged (`push2SlaveMaxOffset`).
//!   A slave is in sync while it is connected and not too far behind (`isSlaveOK`) and
//!   either holds everything the master flushed or has lacked some of it for at most
//!   `slave_timeout_ms` since its acknowledgements last moved (Kafka's in-sync
//!   replicas: a slave stuck behind drops out). While no slave is in sync — sends
//!   answer SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT — the best the group still
//!   promises is the master's own disk, so the limit falls back to the flushed offset
//!   (under ASYNC_FLUSH too) instead of stalling every consumer behind a dead slave;
//! - ASYNC_FLUSH with ASYNC_MASTER promises nothing past the page cache: unchanged.
//!
//! The limit never goes back within a process's life (a slave reconnecting behind the
//! limit does not hide what was already served: that was durable on the master). A
//! slave serves everything it holds: a master ships only its durable records
//! (`ha.rs`), so a slave's log is a prefix of what the master keeps.
//!
//! The same limit answers GET_MAX_OFFSET, so a consumer starting from the last offset
//! does not start past a record that may still vanish. Held pulls are woken when the
//! limit advances (a flush completes, a slave acknowledges, a slave drops out), not
//! only when a record arrives. A SYNC_MASTER flushes at every flush tick (`flush.rs`),
//! so its consumers wait at most a tick when no slave is in sync. Cost: a delivery
//! waits for the group commit (and the slave's round trip) instead of being served
//! from the page cache. `BrokerConfig::serve_only_durable = false` turns the limit
//! off and serves the page cache as RocketMQ does; the README's "Deviations from
//! RocketMQ" gives the latency measured both ways.

use super::{Broker, BrokerRole, FlushDiskType};
use crate::store::disk::Disk;

/// The serve limit's memory within one process life.
#[derive(Default)]
pub(super) struct HighWatermark {
    /// The highest limit answered so far (a commit-log offset).
    floor: u64,
}

impl Broker {
    /// Whether this broker serves less than its page cache holds.
    pub(super) fn limits_serving(&self) -> bool {
        self.config.serve_only_durable
            && !self.config.is_slave()
            && (self.config.flush_disk_type == FlushDiskType::SyncFlush
                || self.config.role == BrokerRole::SyncMaster)
    }

    /// The commit-log offset up to which pulls may serve records.
    pub(super) fn serve_limit(&mut self, now_ms: u64) -> u64 {
        let Some(store) = self.store.as_ref() else {
            return 0;
        };
        let written = store.written_offset();
        if !self.limits_serving() {
            return written;
        }
        let durable = store.durable_offset();
        let mut limit = match self.config.flush_disk_type {
            FlushDiskType::SyncFlush => durable,
            FlushDiskType::AsyncFlush => written,
        };
        if self.config.role == BrokerRole::SyncMaster {
            let in_sync = self
                .slave_ok(written)
                .then(|| {
                    self.ha
                        .in_sync_acked(durable, now_ms, self.config.slave_timeout_ms)
                })
                .flatten();
            limit = match in_sync {
                Some(acked) => limit.min(acked),
                None => limit.min(durable),
            };
        }
        debug_assert!(self.hw.floor <= written, "served past the written log");
        let limit = limit.max(self.hw.floor);
        self.hw.floor = limit;
        limit
    }

    /// One past the last queue offset of `(topic, queue_id)` a pull may serve now.
    pub(super) fn visible_max_queue_offset(
        &mut self,
        now_ms: u64,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
    ) -> u64 {
        let limit = self.serve_limit(now_ms);
        self.store.as_ref().map_or(0, |store| {
            store.max_queue_offset_at(disk, topic, queue_id, limit)
        })
    }
}
