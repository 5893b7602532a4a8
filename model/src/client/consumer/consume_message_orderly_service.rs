//! Orderly consumption (`MessageListenerOrderly`, `ConsumeMessageOrderlyService`,
//! reference C.6): each owned queue is consumed one message at a time, in queue
//! order, and only while this consumer holds the queue's broker lock
//! (`rebalance_lock.rs`; a broadcasting consumer needs none). Pulled messages wait in
//! the queue's process queue; the lowest one goes to the listener once the previous
//! one was answered.
//!
//! The listener answers SUCCESS (the message leaves the process queue and the
//! consumed offset moves up to the next one waiting) or SUSPEND_CURRENT_QUEUE_A_MOMENT
//! (`makeMessageToConsumeAgain`: the message stays first, its reconsume count raised,
//! and the queue rests `suspendCurrentQueueTimeMillis`, 1 s, before it is handed to
//! the listener again). Nothing behind a suspended message is consumed before it, so a
//! failing message is never skipped.
//!
//! A queue the rebalance gives away while its listener runs is given up when the
//! listener answers (`removeUnnecessaryMessageQueue` waits for the consume lock):
//! its offset commit and unlock then follow the last message it consumed, so the next
//! holder never consumes beside it.
//!
//! The maximum (`checkReconsumeTimes`, `sendMessageBack`): by default an orderly
//! consumer suspends a failing message without end (`maxReconsumeTimes` -1 means
//! `Integer.MAX_VALUE` here). With a maximum (`ConsumerConfig::max_reconsume_times`),
//! a message suspended again once its reconsume count reached it is not retried: a copy
//! goes to `%RETRY%{group}` as a plain send carrying its count + 1 and the maximum, so
//! the broker stores it to `%DLQ%{group}` (`handleRetryAndDLQ`). The queue waits for
//! the answer; once the broker stored the copy the consumer commits past the message
//! and goes on with the next; if the send fails, the message is suspended again (its
//! count raised) and retried, so it is never skipped without its dead-letter copy.
//!
//! Deviations: RocketMQ sends the copy through the client's internal producer, which
//! picks a queue of the retry topic's route and re-tries other brokers; here it goes
//! once, to queue 0 at the master of the message's own broker group (where RocketMQ's
//! concurrent hand-back goes too), and a failure is retried after the suspend. The copy
//! (`send_message_back::retry_topic_copy`) keeps the message's born time and host.

use crate::client::{ClientEvent, DeliveredMessage, MessageQueue, RpcOutcome};
use crate::node::{Ctx, TimerId};
use crate::protocol::{Message, Request, Response};

use super::send_message_back::retry_topic_copy;
use super::{Call, PushConsumer};

/// `suspendCurrentQueueTimeMillis`: how long a queue rests after a suspend.
pub const SUSPEND_CURRENT_QUEUE_TIME_MS: u64 = 1_000;
/// `sendMsgTimeout` of the internal producer's send.
pub const SEND_DEAD_LETTER_TIMEOUT_MS: u64 = 3_000;

/// `ConsumeOrderlyStatus`: what an orderly listener answers for a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConsumeOrderlyStatus {
    Success,
    SuspendCurrentQueueAMoment,
}

/// What the orderly listener does with a message it was handed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OrderlyAnswer {
    /// Done now, with this status.
    Now(ConsumeOrderlyStatus),
    /// Still working: the application calls [`PushConsumer::consumed_orderly`].
    Later,
}

/// `MessageListenerOrderly.consumeMessage`, one message at a time.
pub trait MessageListenerOrderly {
    fn consume_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> OrderlyAnswer;
}

/// The orderly listener of a consumer nobody registered one for: SUCCESS at once.
pub struct ConsumeOrderlyAtOnce;

impl MessageListenerOrderly for ConsumeOrderlyAtOnce {
    fn consume_message(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        _mq: &MessageQueue,
        _queue_offset: u64,
        _msg: &DeliveredMessage,
    ) -> OrderlyAnswer {
        OrderlyAnswer::Now(ConsumeOrderlyStatus::Success)
    }
}

/// An owned queue's orderly consumption.
#[derive(Clone, Debug, Default)]
pub(super) struct OrderlyQueue {
    /// The offset of the message in the listener.
    consuming: Option<u64>,
    /// The offset of the message past its maximum whose dead-letter copy is being
    /// sent: the queue waits for the answer.
    dead_lettering: Option<u64>,
    /// The queue rests after a suspend until this timer fires.
    suspend_timer: Option<TimerId>,
    /// The rebalance gave the queue away while its listener ran: given up at the
    /// answer.
    dropping: bool,
}

impl OrderlyQueue {
    /// A listener is running: giving the queue up waits for its answer.
    pub(super) fn busy(&self) -> bool {
        self.consuming.is_some() || self.dead_lettering.is_some()
    }

    /// The queue is given up once its listener answers.
    pub(super) fn drop_when_answered(&mut self) {
        self.dropping = true;
    }

    /// The process queue was cleared (offset moved or reset): a running listener's
    /// answer moves nothing.
    pub(super) fn forget(&mut self) {
        self.consuming = None;
        self.dead_lettering = None;
    }

    /// The suspend timer to cancel with the queue.
    pub(super) fn take_timer(&mut self) -> Option<TimerId> {
        self.suspend_timer.take()
    }
}

impl PushConsumer {
    /// `registerMessageListener(MessageListenerOrderly)`: the listener of an orderly
    /// consumer (`ConsumerConfig::consume_orderly`).
    pub fn register_message_listener_orderly(&mut self, listener: Box<dyn MessageListenerOrderly>) {
        self.orderly_listener = listener;
    }

    /// A pulled message waits in the queue's process queue for its turn.
    pub(super) fn put_orderly(
        &mut self,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: DeliveredMessage,
    ) {
        if let Some(q) = self.queues.get_mut(mq) {
            q.process_queue.put(queue_offset, msg);
        }
    }

    /// `ConsumeRequest.run`: hands `mq`'s next message to the listener when none is
    /// there, the queue does not rest, and its lock is held; repeats while the listener
    /// answers at once.
    pub(super) fn consume_orderly(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        loop {
            if self.stopped || !self.holds_lock(mq, ctx.monotonic_ms()) {
                return; // resumed when the lock is granted again
            }
            let Some(q) = self.queues.get_mut(mq) else {
                return;
            };
            let o = &q.orderly;
            if o.busy() || o.suspend_timer.is_some() || o.dropping {
                return;
            }
            let Some((queue_offset, msg)) = q.process_queue.first() else {
                return;
            };
            let msg = msg.clone();
            q.orderly.consuming = Some(queue_offset);
            let answer = self
                .orderly_listener
                .consume_message(ctx, mq, queue_offset, &msg);
            out.push(self.delivered_event(mq, queue_offset, msg));
            match answer {
                OrderlyAnswer::Later => return,
                OrderlyAnswer::Now(status) => {
                    self.answer_orderly(ctx, mq, queue_offset, status, out)
                }
            }
        }
    }

    /// The orderly listener finished the message it was handed at `queue_offset` of
    /// `mq` (`processConsumeResult`); the queue's next message follows.
    pub fn consumed_orderly(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        status: ConsumeOrderlyStatus,
    ) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        self.answer_orderly(ctx, mq, queue_offset, status, &mut out);
        self.consume_orderly(ctx, mq, &mut out);
        out
    }

    fn answer_orderly(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        status: ConsumeOrderlyStatus,
        out: &mut Vec<ClientEvent>,
    ) {
        out.push(ClientEvent::ConsumedOrderly {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset,
            status,
        });
        if self.stopped {
            return;
        }
        let Some(q) = self.queues.get_mut(mq) else {
            return;
        };
        if q.orderly.consuming != Some(queue_offset) {
            return; // the queue was reset or taken again meanwhile
        }
        q.orderly.consuming = None;
        let status = self.planted_orderly_status(status);
        match status {
            ConsumeOrderlyStatus::Success => self.commit_orderly(mq, queue_offset),
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => {
                let reconsume_times = self.queues[mq]
                    .process_queue
                    .get(queue_offset)
                    .map(|m| m.reconsume_times);
                match self.cfg.max_reconsume_times {
                    Some(max) if reconsume_times.is_some_and(|n| n >= max) => {
                        self.send_dead_letter(ctx, mq, queue_offset, max);
                    }
                    _ => self.suspend_orderly(ctx, mq, queue_offset),
                }
            }
        }
        self.drop_if_idle(ctx, mq, out);
    }

    /// The message at `queue_offset` is done with: it leaves the process queue and the
    /// consumed offset moves up to the next one waiting.
    fn commit_orderly(&mut self, mq: &MessageQueue, queue_offset: u64) {
        let Some(q) = self.queues.get_mut(mq) else {
            return;
        };
        q.process_queue.remove(queue_offset);
        if let Some(next) = q.next_offset {
            let offset = q.process_queue.consume_offset(next);
            if offset > self.offsets.read(mq).unwrap_or(0) {
                self.offsets.update(mq, offset);
            }
        }
    }

    /// `makeMessageToConsumeAgain` and `submitConsumeRequestLater`: the message stays
    /// first with its count raised, and the queue rests.
    fn suspend_orderly(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
    ) {
        let Some(q) = self.queues.get_mut(mq) else {
            return;
        };
        if let Some(msg) = q.process_queue.get_mut(queue_offset) {
            msg.reconsume_times = msg.reconsume_times.saturating_add(1);
        }
        let timer = ctx.set_timer(
            SUSPEND_CURRENT_QUEUE_TIME_MS,
            crate::client::timer_kind::CONSUME_ORDERLY_LATER,
        );
        q.orderly.suspend_timer = Some(timer);
        let generation = q.generation;
        self.suspend_timers.insert(timer, (mq.clone(), generation));
    }

    /// A queue the rebalance gave away is given up once nothing runs on it.
    fn drop_if_idle(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        if self
            .queues
            .get(mq)
            .is_some_and(|q| q.orderly.dropping && !q.orderly.busy())
        {
            self.disown(ctx, mq, out);
        }
    }

    /// `sendMessageBack`: the message at `queue_offset` reached the maximum `max`; its
    /// copy goes to `%RETRY%{group}` with count + 1 and the maximum, which the broker
    /// stores to the dead-letter queue. A copy that cannot even be sent is a failed
    /// send: the message is suspended again.
    fn send_dead_letter(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        max: i32,
    ) {
        let Some(q) = self.queues.get(mq) else {
            return;
        };
        let Some(msg) = q.process_queue.get(queue_offset) else {
            return;
        };
        let request = Request::SendMessage(retry_topic_copy(&self.cfg.consumer_group, msg, max));
        let call = Call::OrderlyDeadLetter {
            mq: mq.clone(),
            generation: q.generation,
            queue_offset,
        };
        let sent = self.master_of(&mq.broker_name).is_some_and(|addr| {
            self.rpc
                .call(ctx, &addr, request, SEND_DEAD_LETTER_TIMEOUT_MS, call)
                .is_ok()
        });
        if sent {
            if let Some(q) = self.queues.get_mut(mq) {
                q.orderly.dead_lettering = Some(queue_offset);
            }
        } else {
            tracing::debug!(
                ?mq,
                queue_offset,
                "cannot send the dead-letter copy; suspending again"
            );
            self.suspend_orderly(ctx, mq, queue_offset);
        }
    }

    /// The broker answered the dead-letter copy of the message at `queue_offset`:
    /// stored (any send status), the consumer commits past it and goes on; anything
    /// else suspends it again.
    pub(super) fn on_orderly_dead_letter(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        if self.stopped {
            return;
        }
        let Some(q) = self.queues.get_mut(mq) else {
            return;
        };
        if q.orderly.dead_lettering != Some(queue_offset) {
            return; // the queue was reset meanwhile
        }
        q.orderly.dead_lettering = None;
        match outcome {
            RpcOutcome::Response(Response::Send(_)) => self.commit_orderly(mq, queue_offset),
            other => {
                tracing::debug!(?mq, queue_offset, outcome = %other.describe(), "dead-letter copy failed; suspending again");
                self.suspend_orderly(ctx, mq, queue_offset);
            }
        }
        self.drop_if_idle(ctx, mq, out);
        self.consume_orderly(ctx, mq, out);
    }

    /// A suspended queue's rest is over (`submitConsumeRequestLater`).
    pub(super) fn on_suspend_timer(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: TimerId,
        out: &mut Vec<ClientEvent>,
    ) {
        let Some((mq, generation)) = self.suspend_timers.remove(&id) else {
            return;
        };
        let Some(q) = self.queues.get_mut(&mq) else {
            return;
        };
        if q.generation != generation || q.orderly.suspend_timer != Some(id) {
            return;
        }
        q.orderly.suspend_timer = None;
        self.consume_orderly(ctx, &mq, out);
    }
}

#[cfg(test)]
mod tests;
