//! Listener answers (`Consumed`) and dead letters: what retry, exclusivity and key
//! order learn after a message was handed over.

use crate::history::{ConsumeOutcome, Entry};

use super::Builder;
use crate::check::tables::{NONE, RETRY_PREFIX};

impl<'h> Builder<'h> {
    /// A `Consumed`: what a listener answered for a message it was handed.
    #[inline]
    pub(super) fn consumed(&mut self, i: u32, e: &'h Entry) {
        let Entry::Consumed {
            at_ms,
            group,
            client,
            broker,
            topic,
            queue_id,
            queue_offset,
            wid,
            status,
        } = e
        else {
            return;
        };
        let pq = self.process_queue((group, *client, broker, topic, *queue_id));
        let (g, q) = (pq.group, pq.queue);
        // consumeTimeout is a concurrent consumer's: an orderly one never gives
        // up on its listener.
        let consume_timeout_ms = if self.ix.group_info[g as usize].orderly {
            u64::MAX
        } else {
            self.ix.promise.consume_timeout_ms
        };
        self.obs.retry.consumed(
            i,
            *client,
            q,
            *queue_offset,
            *status,
            *at_ms,
            consume_timeout_ms,
        );
        let info = &self.ix.group_info[g as usize];
        if !info.orderly || topic.starts_with(RETRY_PREFIX) {
            return;
        }
        if !info.broadcasting {
            self.obs
                .exclusivity
                .end(g, *client, q, *queue_offset, *at_ms);
        }
        let msg = wid.map_or(NONE, |w| self.msg(w, *at_ms));
        let success = *status == ConsumeOutcome::ConsumeSuccess;
        if *status == ConsumeOutcome::SuspendCurrentQueueAMoment {
            let key = (g, *client, q, *queue_offset);
            let count = self.orderly_counts.get(&key).copied().unwrap_or(0);
            self.suspended.insert(key, count);
        }
        self.obs
            .key_order
            .answer(g, *client, msg, q, *at_ms, success);
    }

    /// A `DeadLetter`: a message read from a group's dead-letter queue.
    #[inline]
    pub(super) fn dead_letter(&mut self, i: u32, e: &'h Entry) {
        let Entry::DeadLetter {
            at_ms,
            group,
            wid,
            reconsume_times,
            ..
        } = e
        else {
            return;
        };
        if let Some(w) = wid {
            let m = self.msg(*w, *at_ms);
            let g = self.group(group);
            self.obs
                .retry
                .dead_letter(m, g, *reconsume_times, i, &self.ix);
            self.obs
                .key_order
                .dead_letter(g, m, *reconsume_times, *at_ms);
        }
    }
}
