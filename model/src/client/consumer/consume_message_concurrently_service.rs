//! Concurrent consumption (`MessageListenerConcurrently`,
//! `ConsumeMessageConcurrentlyService`): every message a pull brings is handed to the
//! application's listener, which answers for each one, at once or later (its
//! `consumed` call), in any order. The queue counts as consumed only up to the lowest
//! message whose listener has not answered (`process_queue.rs`), so offsets never run
//! ahead of the application.
//!
//! A listener that answers at once (the default, [`ConsumeAtOnce`]) answers inside the
//! pull's own step, before the next pull reads the offset it commits: the same offsets
//! as if the message had been consumed on arrival.
//!
//! A listener still working `consume_timeout_ms` after it got a message is given up on
//! (`ProcessQueue.cleanExpiredMsg`, swept every `consume_timeout_ms` while a listener
//! works): the message is handed back like a RECONSUME_LATER, and the listener's late
//! answer, whatever it says, changes nothing. Deviations: the hand-back asks for delay
//! level 0 (the broker's 3 + reconsume times, as for any failure), where RocketMQ asks
//! for level 3 whatever the count; and a sweep gives up on every expired message of a
//! queue, where RocketMQ's looks at most 16 from the queue's head and stops at the first
//! younger one, so a message behind a younger one can wait sweeps longer. Here a
//! message is given up on at most two timeouts after its listener got it.

use crate::client::{timer_kind, ClientEvent, DeliveredMessage, MessageQueue};
use crate::node::{Ctx, TimerId};
use crate::protocol::Message;

use super::PushConsumer;

/// `ConsumeConcurrentlyStatus`: what a concurrent listener answers for a message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConsumeConcurrentlyStatus {
    ConsumeSuccess,
    /// Failed: hand the message back for a retry (`send_message_back.rs`).
    ReconsumeLater,
}

/// What the listener does with a message it was handed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ListenerAnswer {
    /// Done now, with this status.
    Now(ConsumeConcurrentlyStatus),
    /// Still working: the application calls [`PushConsumer::consumed`] when done.
    Later,
}

/// `MessageListenerConcurrently.consumeMessage`, one message at a time
/// (`consumeMessageBatchMaxSize` = 1, RocketMQ's default).
pub trait MessageListenerConcurrently {
    fn consume_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> ListenerAnswer;
}

/// The listener of a consumer nobody registered one for: every message is consumed
/// successfully the moment it arrives.
pub struct ConsumeAtOnce;

impl MessageListenerConcurrently for ConsumeAtOnce {
    fn consume_message(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        _mq: &MessageQueue,
        _queue_offset: u64,
        _msg: &DeliveredMessage,
    ) -> ListenerAnswer {
        ListenerAnswer::Now(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

impl PushConsumer {
    /// `registerMessageListener`: the listener every later delivery goes to.
    pub fn register_message_listener(&mut self, listener: Box<dyn MessageListenerConcurrently>) {
        self.listener = listener;
    }

    /// Hands a pulled message to the listener: `Delivered`, then, when the listener
    /// answers at once, `Consumed`; otherwise the message waits in the queue's process
    /// queue for [`PushConsumer::consumed`].
    pub(super) fn hand_to_listener(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: DeliveredMessage,
        out: &mut Vec<ClientEvent>,
    ) {
        let answer = self.listener.consume_message(ctx, mq, queue_offset, &msg);
        // A failed message stays until it is handed back.
        let keep = matches!(
            answer,
            ListenerAnswer::Later | ListenerAnswer::Now(ConsumeConcurrentlyStatus::ReconsumeLater)
        );
        if keep {
            if let Some(q) = self.queues.get_mut(mq) {
                q.process_queue.put(queue_offset, msg.clone());
                if answer == ListenerAnswer::Later {
                    q.process_queue
                        .start_listening(queue_offset, ctx.monotonic_ms());
                    if self.clean_expired_timer.is_none() {
                        self.clean_expired_timer =
                            Some(ctx.set_timer(
                                self.cfg.consume_timeout_ms,
                                timer_kind::CLEAN_EXPIRED_MSG,
                            ));
                    }
                }
            }
        }
        out.push(self.delivered_event(mq, queue_offset, msg));
        if let ListenerAnswer::Now(status) = answer {
            out.push(self.consumed_event(mq, queue_offset, status));
            self.process_result(ctx, mq, queue_offset, status);
        }
    }

    /// `processConsumeResult` for one message: done, or handed back.
    fn process_result(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        status: ConsumeConcurrentlyStatus,
    ) {
        match status {
            ConsumeConcurrentlyStatus::ConsumeSuccess => self.message_done(mq, queue_offset),
            ConsumeConcurrentlyStatus::ReconsumeLater => {
                self.reconsume_later(ctx, mq, queue_offset)
            }
        }
    }

    /// The message at `queue_offset` leaves the process queue: the queue's consumed
    /// offset moves up to the lowest message still there. Nothing when it is not there
    /// (answered at once, or the queue was given away or reset since).
    pub(super) fn message_done(&mut self, mq: &MessageQueue, queue_offset: u64) {
        if let Some(q) = self.queues.get_mut(mq) {
            if q.process_queue.remove(queue_offset).is_some() {
                if let Some(next) = q.next_offset {
                    let offset = q.process_queue.consume_offset(next);
                    if offset > self.offsets.read(mq).unwrap_or(0) {
                        self.offsets.update(mq, offset);
                    }
                }
            }
        }
    }

    /// The listener finished the message it was handed at `queue_offset` of `mq`
    /// (`processConsumeResult`): the queue's consumed offset moves up to the lowest
    /// message still in a listener. An answer for a queue given away or reset since, or
    /// for a message the consumeTimeout sweep gave up on, moves nothing (its messages
    /// are pulled again by whoever holds the queue now, or were handed back).
    pub fn consumed(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        status: ConsumeConcurrentlyStatus,
    ) -> Vec<ClientEvent> {
        let out = vec![self.consumed_event(mq, queue_offset, status)];
        if self.stopped {
            return out;
        }
        let expected = self
            .queues
            .get_mut(mq)
            .is_some_and(|q| q.process_queue.stop_listening(queue_offset));
        if !expected {
            tracing::debug!(?mq, queue_offset, "listener answered too late; ignored");
            return out;
        }
        self.process_result(ctx, mq, queue_offset, status);
        out
    }

    /// `cleanExpiredMsg` over every owned queue (`consume_timeout_ms` passed): what a
    /// listener has held that long is handed back as if it had failed. The sweep runs
    /// again while any listener works.
    pub(super) fn clean_expired_msg(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: TimerId,
        out: &mut Vec<ClientEvent>,
    ) {
        if self.clean_expired_timer != Some(id) {
            return;
        }
        self.clean_expired_timer = None;
        if self.stopped || self.cfg.consume_orderly {
            return;
        }
        let now_ms = ctx.monotonic_ms();
        let timeout_ms = self.cfg.consume_timeout_ms;
        let mut expired: Vec<(MessageQueue, u64)> = Vec::new();
        for (mq, q) in self.queues.iter_mut() {
            for offset in q.process_queue.take_expired(now_ms, timeout_ms) {
                expired.push((mq.clone(), offset));
            }
        }
        for (mq, offset) in expired {
            tracing::warn!(
                ?mq,
                offset,
                timeout_ms,
                "listener timed out; message handed back"
            );
            out.push(ClientEvent::ConsumeTimedOut {
                group: self.cfg.consumer_group.clone(),
                broker_name: mq.broker_name.clone(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                queue_offset: offset,
            });
            self.reconsume_later(ctx, &mq, offset);
        }
        if self.queues.values().any(|q| q.process_queue.is_listening()) {
            self.clean_expired_timer =
                Some(ctx.set_timer(timeout_ms, timer_kind::CLEAN_EXPIRED_MSG));
        }
    }

    /// The message at `queue_offset` of `mq` is handed to the listener.
    pub(super) fn delivered_event(
        &self,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: DeliveredMessage,
    ) -> ClientEvent {
        ClientEvent::Delivered {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset,
            msg,
        }
    }

    fn consumed_event(
        &self,
        mq: &MessageQueue,
        queue_offset: u64,
        status: ConsumeConcurrentlyStatus,
    ) -> ClientEvent {
        ClientEvent::Consumed {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset,
            status,
        }
    }
}
