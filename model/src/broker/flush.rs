//! Flushing the commit log (reference A.7): SYNC_FLUSH's group commit
//! (`GroupCommitService`: one fsync in flight covers every record appended before it,
//! the next gathers while it runs) and ASYNC_FLUSH's timed flush
//! (`FlushRealTimeService`: every 500 ms if 4 pages are dirty, everything every 10 s).
//! Deviation: a master that ships to a slave, or a SYNC_MASTER (which serves pulls only
//! what is durable, `high_watermark.rs`), flushes whatever is written at every tick;
//! and a SYNC_MASTER's send waiting for its slave asks for a group commit at once, as
//! SYNC_FLUSH's does, since only durable records are shipped.

use super::Broker;
use crate::node::Ctx;
use crate::protocol::Message;

#[derive(Default)]
pub(super) struct FlushState {
    /// Records wait for a group commit (one arrived while a flush was in flight).
    pub(super) wanted: bool,
    /// When ASYNC_FLUSH last flushed everything.
    last_thorough_ms: u64,
}

impl Broker {
    /// Issues a group commit if records wait for one and none is in flight: one fsync
    /// covers every record appended before it (`GroupCommitService`).
    pub(super) fn maybe_group_commit(&mut self, ctx: &mut dyn Ctx<Message>) {
        if !self.flush.wanted {
            return;
        }
        let Some(store) = self.store.as_mut().filter(|s| s.is_ready()) else {
            return;
        };
        if store.flush_in_flight() {
            return;
        }
        self.flush.wanted = false;
        if let Err(e) = store.request_flush(ctx.disk()) {
            tracing::error!(error = %e, "group commit failed");
        }
    }

    /// ASYNC_FLUSH (`FlushRealTimeService`): every interval, flush if enough pages are
    /// dirty, or everything once the thorough interval has passed. A master with a
    /// slave flushes whatever is written, since it only ships durable records.
    pub(super) fn async_flush_tick(&mut self, ctx: &mut dyn Ctx<Message>) {
        let now_ms = ctx.now_ms();
        let least_bytes = self.config.flush_commit_log_least_pages * 4096;
        // Deliberate deviation: RocketMQ compares the wall clock with the last thorough
        // flush's, so a clock set back (after running ahead) holds the thorough flush
        // for as long as the jump, and ASYNC_FLUSH loses more than its interval's worth
        // of records in a crash. A clock behind the last thorough flush flushes now.
        let thorough = now_ms < self.flush.last_thorough_ms
            || now_ms
                >= self.flush.last_thorough_ms + self.config.flush_commit_log_thorough_interval_ms;
        // A SYNC_MASTER serves only flushed records while no slave is in sync
        // (`high_watermark.rs`): it flushes every tick too, so consumers wait one tick.
        let shipping = self.ha.has_slaves() || self.limits_serving();
        let Some(store) = self.store.as_mut().filter(|s| s.is_ready()) else {
            return;
        };
        let unflushed = store.unflushed_bytes();
        if unflushed == 0 {
            if thorough {
                self.flush.last_thorough_ms = now_ms;
            }
            return;
        }
        if unflushed >= least_bytes || thorough || shipping {
            if thorough {
                self.flush.last_thorough_ms = now_ms;
            }
            if let Err(e) = store.request_flush(ctx.disk()) {
                tracing::error!(error = %e, "flush failed");
            }
        }
    }
}
