//! A message the listener failed (`ConsumeMessageConcurrentlyService.processConsumeResult`
//! and `sendMessageBack`, reference C.5): a clustering consumer hands it back to the
//! master of the broker group it came from (CONSUMER_SEND_MSG_BACK, delay level 0 so the
//! broker picks 3 + reconsumeTimes, `maxReconsumeTimes` 16), and the message stays in
//! its process queue — holding the queue's offset below it — until the broker answers
//! SUCCESS. If the hand-back fails (an error, no answer in time, no master in the
//! route), the consumer raises the message's reconsume count itself and hands it to the
//! listener again 5 s later (`submitConsumeRequestLater`). A broadcasting consumer drops
//! a failed message, as RocketMQ does (it logs it and moves on).
//!
//! Deviations: no fallback send to `%RETRY%{group}` through an internal producer when
//! the hand-back fails (RocketMQ tries that before consuming locally): the local retry
//! alone keeps the message; and no `consumeTimeout` sweep of messages stuck in a
//! listener (`ProcessQueue.cleanExpiredMsg`).

use crate::client::{timer_kind, ClientEvent, MessageQueue, RpcOutcome};
use crate::node::{Ctx, TimerId};
use crate::protocol::{ConsumerSendMsgBack, Message, Request, Response};

use super::{Call, PushConsumer};

/// `sendMessageBack`'s RPC timeout.
pub const SEND_MSG_BACK_TIMEOUT_MS: u64 = 5_000;
/// `submitConsumeRequestLater`: a message that could not be handed back is consumed
/// again this much later.
pub const CONSUME_LATER_DELAY_MS: u64 = 5_000;
/// `DefaultMQPushConsumer.maxReconsumeTimes` -1 (`ConsumerConfig::max_reconsume_times`
/// `None`) as a concurrent consumer sends it: the group's 16.
pub const MAX_RECONSUME_TIMES: i32 = 16;

/// A failed message waiting to be handed to the listener again.
#[derive(Clone, Debug)]
pub(super) struct ConsumeLater {
    pub(super) mq: MessageQueue,
    pub(super) generation: u64,
    pub(super) queue_offset: u64,
}

impl PushConsumer {
    /// The listener answered RECONSUME_LATER for the message at `queue_offset` of `mq`,
    /// which is in the queue's process queue: hand it back (clustering) or drop it
    /// (broadcasting).
    pub(super) fn reconsume_later(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
    ) {
        if !self.clustering() {
            tracing::warn!(?mq, queue_offset, "broadcast message failed; not retried");
            self.message_done(mq, queue_offset);
            return;
        }
        let Some(q) = self.queues.get(mq) else {
            return;
        };
        let Some(msg) = q.process_queue.get(queue_offset) else {
            return;
        };
        let request = Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
            offset: msg.commit_log_offset,
            group: self.cfg.consumer_group.clone(),
            delay_level: 0,
            origin_msg_id: Some(msg.msg_id.clone()),
            origin_topic: Some(msg.topic.clone()),
            unit_mode: false,
            max_reconsume_times: Some(self.cfg.max_reconsume_times.unwrap_or(MAX_RECONSUME_TIMES)),
        });
        let call = Call::SendBack {
            mq: mq.clone(),
            generation: q.generation,
            queue_offset,
        };
        let sent = self.master_of(&mq.broker_name).is_some_and(|addr| {
            self.rpc
                .call(ctx, &addr, request, SEND_MSG_BACK_TIMEOUT_MS, call)
                .is_ok()
        });
        if !sent {
            self.consume_later(ctx, mq, queue_offset);
        }
    }

    /// `findBrokerAddressInPublish`: the master of broker group `broker_name`, wherever
    /// the pull went.
    pub(super) fn master_of(&self, broker_name: &str) -> Option<String> {
        self.route.as_ref().and_then(|r| {
            r.broker_datas
                .iter()
                .find(|b| b.broker_name == broker_name)?
                .master_addr()
                .map(str::to_string)
        })
    }

    /// The broker answered a hand-back: SUCCESS lets the message go; anything else
    /// keeps it for a local retry.
    pub(super) fn on_send_back(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        outcome: RpcOutcome,
    ) {
        match outcome {
            RpcOutcome::Response(Response::ConsumerSendMsgBack) => {
                self.message_done(mq, queue_offset);
            }
            other => {
                tracing::debug!(?mq, queue_offset, outcome = %other.describe(), "send back failed; consuming again later");
                self.consume_later(ctx, mq, queue_offset);
            }
        }
    }

    /// `msgBackFailed`: reconsume count + 1, and the listener again in 5 s.
    fn consume_later(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue, queue_offset: u64) {
        let Some(q) = self.queues.get_mut(mq) else {
            return;
        };
        let Some(msg) = q.process_queue.get_mut(queue_offset) else {
            return;
        };
        msg.reconsume_times = msg.reconsume_times.saturating_add(1);
        let id = ctx.set_timer(CONSUME_LATER_DELAY_MS, timer_kind::CONSUME_LATER);
        self.consume_later.insert(
            id,
            ConsumeLater {
                mq: mq.clone(),
                generation: q.generation,
                queue_offset,
            },
        );
    }

    /// A local retry is due: the listener gets the message again if the queue is still
    /// ours and the message still waits in it.
    pub(super) fn on_consume_later(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: TimerId,
        out: &mut Vec<ClientEvent>,
    ) {
        let Some(later) = self.consume_later.remove(&id) else {
            return;
        };
        if !self.is_current(&later.mq, later.generation) {
            return;
        }
        let msg = self.queues[&later.mq]
            .process_queue
            .get(later.queue_offset)
            .cloned();
        if let Some(msg) = msg {
            self.hand_to_listener(ctx, &later.mq, later.queue_offset, msg, out);
        }
    }
}
