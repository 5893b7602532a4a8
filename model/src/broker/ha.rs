//! Master/slave replication (`HAService`, reference A.8).
//!
//! A slave reports its commit-log end to its master on connect, every 5 s and after
//! applying data; the master streams records from there in batches of at most 32 KiB,
//! at most `ha_max_unacked_bytes` ahead of the last report. The largest offset any
//! connected slave reported is `push2SlaveMaxOffset`, which SYNC_MASTER sends wait for.
//!
//! The messages are RocketMQ's HA frames and nothing more (the slave's 8-byte report,
//! the master's 12-byte header and body), so a real runtime can carry them on the HA
//! port as RocketMQ does. A slave holding more than its master (the master lost records
//! it had shipped) is told apart by the master, from the slave's report: it is not
//! served until the master's log passes the reported offset.
//!
//! Deliberate deviation: a master ships only records that are durable on its own disk.
//! RocketMQ ships what is written, so after a master's power cut its slave can hold
//! records the master lost; the master then reuses those offsets for new messages and
//! the two logs disagree on what an offset means. Shipping durable records only keeps
//! every slave a prefix of its master's durable log. To keep replication prompt, a
//! master with a slave flushes at every flush tick instead of waiting for 4 dirty pages.

use std::collections::BTreeMap;

use super::Broker;
use crate::node::{Ctx, NodeId};
use crate::protocol::{Message, Request};
use crate::store::replica::ReplicaError;

#[derive(Clone, Debug)]
struct SlaveConn {
    /// What the slave last reported holding.
    acked: u64,
    /// Where the next batch to this slave starts.
    next_transfer: u64,
    last_report_ms: u64,
    /// Since when this slave has lacked records the master holds durably, restarted
    /// whenever its acknowledgements move; None while it holds them all.
    behind_since_ms: Option<u64>,
    /// The slave reported more than this master's log holds (logged once).
    past_end_logged: bool,
}

#[derive(Default)]
pub(super) struct HaState {
    /// Master side: connected slaves.
    slaves: BTreeMap<NodeId, SlaveConn>,
}

impl HaState {
    pub(super) fn has_slaves(&self) -> bool {
        !self.slaves.is_empty()
    }

    /// `push2SlaveMaxOffset` over the slaves connected now.
    fn push_to_slave_max(&self) -> u64 {
        self.slaves.values().map(|s| s.acked).max().unwrap_or(0)
    }

    /// The highest offset acknowledged by a slave that is in sync: it holds all of
    /// `durable`, or it has been behind for at most `lag_ms` since its last
    /// acknowledgement moved (like Kafka's in-sync replicas: a slave stuck behind drops
    /// out). None when no slave is.
    pub(super) fn in_sync_acked(&self, durable: u64, now_ms: u64, lag_ms: u64) -> Option<u64> {
        self.slaves
            .values()
            .filter(|s| {
                s.acked >= durable
                    || s.behind_since_ms
                        .is_none_or(|t| now_ms.saturating_sub(t) <= lag_ms)
            })
            .map(|s| s.acked)
            .max()
    }

    /// The master's log is durable up to `durable`: slaves without all of it are
    /// behind from now on (unless they already were).
    pub(super) fn note_durable(&mut self, durable: u64, now_ms: u64) {
        for s in self.slaves.values_mut() {
            if s.acked < durable && s.behind_since_ms.is_none() {
                s.behind_since_ms = Some(now_ms);
            }
        }
    }
}

impl Broker {
    /// `isSlaveOK`: a slave is connected and not too far behind.
    pub(super) fn slave_ok(&self, end_offset: u64) -> bool {
        self.ha.has_slaves()
            && end_offset.saturating_sub(self.ha.push_to_slave_max())
                < self.config.ha_slave_fallbehind_max_bytes
    }

    fn send_oneway(ctx: &mut dyn Ctx<Message>, to: NodeId, request: Request) {
        ctx.send(to, Message::Request { opaque: 0, request });
    }

    pub(super) fn on_ha_report(&mut self, ctx: &mut dyn Ctx<Message>, from: NodeId, offset: u64) {
        if self.config.is_slave() {
            return;
        }
        let now_ms = ctx.now_ms();
        let conn = self.ha.slaves.entry(from).or_insert_with(|| {
            tracing::info!(slave = %from, offset, "a slave connected for replication");
            SlaveConn {
                acked: offset,
                next_transfer: offset,
                last_report_ms: now_ms,
                behind_since_ms: None,
                past_end_logged: false,
            }
        });
        let (durable, written) = self
            .store
            .as_ref()
            .map_or((0, 0), |s| (s.durable_offset(), s.written_offset()));
        if offset > written && !conn.past_end_logged {
            conn.past_end_logged = true;
            tracing::error!(
                slave_offset = offset,
                master_offset = written,
                "a slave holds more commit log than this master: it is not served until this master's log passes its offset"
            );
        }
        conn.behind_since_ms = if offset >= durable {
            None
        } else if offset > conn.acked || conn.behind_since_ms.is_none() {
            Some(now_ms)
        } else {
            conn.behind_since_ms
        };
        // A slave that went back (it crashed and lost its tail) or ahead of the stream
        // (a fresh connection) is served from what it holds.
        if offset < conn.acked || offset > conn.next_transfer {
            conn.next_transfer = offset;
        }
        conn.acked = offset;
        conn.last_report_ms = now_ms;
        let acked = self.ha.push_to_slave_max();
        self.on_slave_acked(ctx, acked);
        self.ha_push(ctx);
    }

    /// Streams durable records to every slave, within each one's unacknowledged window.
    pub(super) fn ha_push(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let durable = store.durable_offset();
        let batch_bytes = self.config.ha_transfer_batch_bytes;
        let window = self.config.ha_max_unacked_bytes;
        for (&slave, conn) in self.ha.slaves.iter_mut() {
            while conn.next_transfer < durable
                && conn.next_transfer - conn.acked.min(conn.next_transfer) < window
            {
                let batch = match store.read_for_replication(
                    ctx.disk(),
                    conn.next_transfer,
                    durable,
                    batch_bytes,
                ) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "replication read failed");
                        break;
                    }
                };
                if batch.data.is_empty() {
                    conn.next_transfer = batch.start.max(conn.next_transfer);
                    break;
                }
                // Not `start + data.len()`: a batch that crossed a file end skipped its
                // blank, and the next one must start past it (swarm seeds 232, 291).
                conn.next_transfer = batch.end;
                let (start, data) = (batch.start, batch.data);
                Self::send_oneway(
                    ctx,
                    slave,
                    Request::HaTransfer {
                        master_offset: start,
                        data,
                    },
                );
            }
        }
    }

    /// Every `ha_heartbeat_interval_ms`: masters drop silent slaves and send heartbeats;
    /// slaves report to their master.
    pub(super) fn ha_tick(&mut self, ctx: &mut dyn Ctx<Message>) {
        let now_ms = ctx.now_ms();
        if self.config.is_slave() {
            if self.config.ha_master_addr.is_none()
                && self.learned_master_ha_addr.is_none()
                && self.phase == super::Phase::Running
            {
                // Started before its master registered: the name servers had no master
                // to tell it of. Ask again now rather than at the next registration
                // (30 s); a SYNC_MASTER refuses sends until its slave connects.
                self.register(ctx);
            }
            self.ha_report(ctx);
            return;
        }
        let silent_ms = self.config.ha_housekeeping_interval_ms;
        self.ha
            .slaves
            .retain(|_, c| now_ms.saturating_sub(c.last_report_ms) <= silent_ms);
        // A slave gone or stuck lets the serve limit fall back to the flushed offset.
        self.notify_serve_limit(ctx);
        let heartbeats: Vec<(NodeId, u64)> = self
            .ha
            .slaves
            .iter()
            .map(|(&n, c)| (n, c.next_transfer))
            .collect();
        for (slave, at) in heartbeats {
            Self::send_oneway(
                ctx,
                slave,
                Request::HaTransfer {
                    master_offset: at,
                    data: Vec::new(),
                },
            );
        }
        self.ha_push(ctx);
    }

    /// Where this slave's master serves remoting requests (offset sync).
    pub(super) fn master_node(&self, ctx: &mut dyn Ctx<Message>) -> Option<NodeId> {
        let addr = self
            .learned_master_addr
            .as_deref()
            .or(self.config.master_addr.as_deref())?;
        ctx.resolve(addr)
    }

    /// Where this slave replicates from: `haMasterAddress` when configured, else the
    /// HA address its master registered (RocketMQ's `updateHaMasterAddress`).
    fn master_ha_node(&self, ctx: &mut dyn Ctx<Message>) -> Option<NodeId> {
        let addr = self
            .config
            .ha_master_addr
            .as_deref()
            .or(self.learned_master_ha_addr.as_deref())?;
        ctx.resolve(addr)
    }

    /// A slave whose store is ready reports to its master at once, as RocketMQ's
    /// `HAClient` connects and reports when the broker starts, rather than at its first
    /// heartbeat (5 s later): until then a SYNC_MASTER answers SLAVE_NOT_AVAILABLE.
    pub(super) fn connect_to_master(&mut self, ctx: &mut dyn Ctx<Message>) {
        if self.config.is_slave() {
            self.ha_report(ctx);
        }
    }

    fn ha_report(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Some(store) = self.store.as_ref().filter(|s| s.is_ready()) else {
            return;
        };
        let offset = store.written_offset();
        if let Some(master) = self.master_ha_node(ctx) {
            Self::send_oneway(
                ctx,
                master,
                Request::HaReport {
                    slave_max_offset: offset,
                },
            );
        }
    }

    pub(super) fn on_ha_transfer(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        master_offset: u64,
        data: &[u8],
    ) {
        if !self.config.is_slave() || self.master_ha_node(ctx) != Some(from) {
            return;
        }
        let Some(store) = self.store.as_mut().filter(|s| s.is_ready()) else {
            return;
        };
        let written = store.written_offset();
        if data.is_empty() {
            return;
        }
        if master_offset < written {
            // A batch this slave already holds (sent before our last report landed).
            return;
        }
        match store.append_replicated(ctx.disk(), data) {
            Ok(_) => {}
            Err(e @ ReplicaError::Misplaced { .. }) | Err(e @ ReplicaError::QueueGap { .. }) => {
                tracing::warn!(error = %e, "replication batch refused");
            }
            Err(e) => tracing::error!(error = %e, "replication batch refused"),
        }
        if self.config.flush_disk_type == super::FlushDiskType::SyncFlush {
            self.flush.wanted = true;
            self.maybe_group_commit(ctx);
        }
        self.ha_report(ctx);
        self.check_held_pulls(ctx);
    }

    pub(super) fn ha_on_broken(&mut self, peer: NodeId) {
        self.ha.slaves.remove(&peer);
    }
}
