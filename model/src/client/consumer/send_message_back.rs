//! A message the listener failed (`ConsumeMessageConcurrentlyService.processConsumeResult`
//! and `sendMessageBack`, reference C.5): a clustering consumer hands it back to the
//! master of the broker group it came from (CONSUMER_SEND_MSG_BACK, delay level 0 so the
//! broker picks 3 + reconsumeTimes, `maxReconsumeTimes` 16), and the message stays in
//! its process queue — holding the queue's offset below it — until the broker answers
//! SUCCESS. If the hand-back fails (an error, no answer in time, no master in the
//! route), the consumer sends the message itself to `%RETRY%{group}` (RocketMQ's
//! fallback through its internal producer): a copy of body and properties with
//! RETRY_TOPIC, ORIGIN_MESSAGE_ID, its reconsume count + 1 and delay level 3 + its
//! count, to the master of the message's own broker group. Only if that fails too does
//! the consumer raise the message's reconsume count itself and hand it to the listener
//! again 5 s later (`submitConsumeRequestLater`). A broker that lost the record a
//! hand-back names (its commit log cut by a crash) would otherwise refuse every
//! hand-back, and the message would hold its queue for good. A
//! broadcasting consumer drops a failed message, as RocketMQ does (it logs it and moves
//! on). A message a listener held past `consumeTimeout` comes here too
//! (`consume_message_concurrently_service.rs`).
//!
//! Deviations: the fallback copy keeps the message's born timestamp and host (RocketMQ's
//! is a new message, born at the consumer), so it stays the same message to anyone
//! reading it; and it goes to the message's own broker group, where RocketMQ's
//! internal producer picks any queue of the retry topic's route.

use crate::client::producer::DEFAULT_TOPIC;
use crate::client::{timer_kind, ClientEvent, DeliveredMessage, MessageQueue, RpcOutcome};
use crate::message::{
    encode_properties, properties, property, retry_topic, PROPERTY_ORIGIN_MESSAGE_ID,
    PROPERTY_RETRY_TOPIC, RETRY_DELAY_LEVEL_BASE,
};
use crate::node::{Ctx, TimerId};
use crate::protocol::{ConsumerSendMsgBack, Message, Request, Response, SendMessage};
use crate::store::delay_level::PROPERTY_DELAY_TIME_LEVEL;

use super::{Call, PushConsumer};

/// `sendMessageBack`'s RPC timeout.
pub const SEND_MSG_BACK_TIMEOUT_MS: u64 = 5_000;
/// `submitConsumeRequestLater`: a message that could not be handed back is consumed
/// again this much later.
pub const CONSUME_LATER_DELAY_MS: u64 = 5_000;
/// `DefaultMQPushConsumer.maxReconsumeTimes` -1 (`ConsumerConfig::max_reconsume_times`
/// `None`) as a concurrent consumer sends it: the group's 16.
pub const MAX_RECONSUME_TIMES: i32 = 16;
/// `MixAll.CLIENT_INNER_PRODUCER_GROUP`: the group of the client's internal producer,
/// which sends the fallback copies and an orderly consumer's dead-letter copies.
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";
/// `MessageConst.PROPERTY_MAX_RECONSUME_TIMES`.
const PROPERTY_MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";

/// `MessageConst.PROPERTY_TRANSACTION_PREPARED`: cleared from a copy.
const PROPERTY_TRANSACTION_PREPARED: &str = "TRAN_MSG";

/// The copy of a failed message a consumer sends to `%RETRY%{group}` itself (its
/// internal producer, `sendMessageBack`): body and properties, RETRY_TOPIC,
/// ORIGIN_MESSAGE_ID, MAX_RECONSUME_TIMES, delay level 3 + its count, its count + 1
/// and the maximum in the header (past it the broker dead-letters the copy). It keeps
/// the message's born time and host (see the module's deviation).
pub(super) fn retry_topic_copy(
    group: &str,
    msg: &DeliveredMessage,
    max_reconsume_times: i32,
) -> SendMessage {
    let origin_id = property(&msg.properties, PROPERTY_ORIGIN_MESSAGE_ID)
        .unwrap_or(&msg.msg_id)
        .to_string();
    let level = RETRY_DELAY_LEVEL_BASE
        .saturating_add(msg.reconsume_times)
        .to_string();
    let max = max_reconsume_times.to_string();
    let replaced = [
        PROPERTY_RETRY_TOPIC,
        PROPERTY_ORIGIN_MESSAGE_ID,
        PROPERTY_DELAY_TIME_LEVEL,
        PROPERTY_MAX_RECONSUME_TIMES,
        PROPERTY_TRANSACTION_PREPARED,
    ];
    let props = encode_properties(
        properties(&msg.properties)
            .filter(|(name, _)| !replaced.contains(name))
            .chain([
                (PROPERTY_RETRY_TOPIC, msg.topic.as_str()),
                (PROPERTY_ORIGIN_MESSAGE_ID, origin_id.as_str()),
                (PROPERTY_DELAY_TIME_LEVEL, level.as_str()),
                (PROPERTY_MAX_RECONSUME_TIMES, max.as_str()),
            ]),
    );
    SendMessage {
        producer_group: CLIENT_INNER_PRODUCER_GROUP.to_string(),
        topic: retry_topic(group),
        default_topic: DEFAULT_TOPIC.to_string(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp_ms: msg.born_timestamp_ms,
        born_host: format!("{}:{}", msg.born_host.ip, msg.born_host.port),
        flag: 0,
        properties: props,
        reconsume_times: msg.reconsume_times.saturating_add(1),
        max_reconsume_times: Some(max_reconsume_times),
        body: msg.body.clone(),
    }
}

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
            self.send_back_fallback(ctx, mq, queue_offset);
        }
    }

    /// The hand-back failed: the consumer sends the message to `%RETRY%{group}` itself
    /// (`DefaultMQPushConsumerImpl.sendMessageBack`'s fallback), else retries locally.
    fn send_back_fallback(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
    ) {
        let Some(q) = self.queues.get(mq) else {
            return;
        };
        let Some(msg) = q.process_queue.get(queue_offset) else {
            return;
        };
        // The master of the message's own broker group, as for the hand-back and an
        // orderly consumer's dead-letter copy: the retry copy lives where the message
        // did (a broker that lost the record still stores a copy sent whole).
        let target = self.master_of(&mq.broker_name);
        let max_reconsume_times = self.cfg.max_reconsume_times.unwrap_or(MAX_RECONSUME_TIMES);
        let request = Request::SendMessage(retry_topic_copy(
            &self.cfg.consumer_group,
            msg,
            max_reconsume_times,
        ));
        let call = Call::SendBackFallback {
            mq: mq.clone(),
            generation: q.generation,
            queue_offset,
        };
        let sent = target.is_some_and(|addr| {
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

    /// The broker answered a hand-back (`fallback`: the message's own send to the
    /// retry topic). Stored, the message goes; a failed hand-back falls back to that
    /// send, a failed send to a local retry.
    pub(super) fn on_send_back(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        outcome: RpcOutcome,
        fallback: bool,
    ) {
        let stored = match &outcome {
            RpcOutcome::Response(Response::ConsumerSendMsgBack) => !fallback,
            RpcOutcome::Response(Response::Send(_)) => fallback,
            _ => false,
        };
        if stored {
            self.message_done(mq, queue_offset);
        } else if fallback {
            tracing::debug!(?mq, queue_offset, outcome = %outcome.describe(), "retry-topic send failed; consuming again later");
            self.consume_later(ctx, mq, queue_offset);
        } else {
            tracing::debug!(?mq, queue_offset, outcome = %outcome.describe(), "send back failed; sending to the retry topic");
            self.send_back_fallback(ctx, mq, queue_offset);
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
