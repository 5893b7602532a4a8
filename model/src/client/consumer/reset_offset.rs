//! RESET_CONSUMER_CLIENT_OFFSET (`ClientRemotingProcessor.resetOffset`,
//! `MQClientInstance.resetOffset`): a broker moved this group's offsets (an admin's
//! resetOffsetByTime) and says where each of its queues now starts. For each queue
//! this consumer owns, whatever is under way (a pull in flight, an offset lookup, a
//! retry) is dropped by starting a new generation, the offset store takes the new
//! offset, and pulling continues from it. RocketMQ drops the process queues and lets
//! the next rebalance rebuild them; the outcome is the same, without the pause.
//!
//! The history sees a new span, `Owned` from the new offset marked as an offset the
//! broker moved, as after PULL_OFFSET_MOVED.

use std::collections::BTreeMap;

use super::PushConsumer;
use crate::client::{ClientEvent, MessageQueue};
use crate::node::Ctx;
use crate::protocol::Message;

impl PushConsumer {
    pub(super) fn reset_offset(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        table: &BTreeMap<MessageQueue, u64>,
        out: &mut Vec<ClientEvent>,
    ) {
        for (mq, &offset) in table {
            let generation = self.next_generation;
            let Some(q) = self.queues.get_mut(mq) else {
                continue;
            };
            self.next_generation += 1;
            q.generation = generation;
            q.awaiting_file = false;
            q.next_offset = Some(offset);
            q.process_queue.clear();
            q.orderly.forget();
            let from = q.offset_from_broker_id;
            if let Some(timer) = q.retry_timer.take() {
                self.retry_timers.remove(&timer);
                ctx.cancel_timer(timer);
            }
            if self.clustering() {
                // The broker stored it before telling us.
                self.offsets.set_known_committed(mq, offset);
            } else {
                self.offsets.update(mq, offset);
            }
            out.push(self.owned_event(mq, offset, from, true));
            self.pull(ctx, mq);
        }
    }
}
