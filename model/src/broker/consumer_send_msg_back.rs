//! Retry and dead-letter on the broker (reference C.5): CONSUMER_SEND_MSG_BACK
//! (`SendMessageProcessor.asyncConsumerSendMsgBack`), the send path's own handling of
//! `%RETRY%` topics (`handleRetryAndDLQ`, `msgCheck`), and the retry topic a consumer
//! group's heartbeat creates (`ClientManageProcessor.heartBeat`).
//!
//! A handed-back message is looked up by its commit-log offset and stored again as a
//! new record with its body, flag, sys flag, born time and hosts, properties (UNIQ_KEY
//! and the workload's own among them) and reconsume times + 1; `RETRY_TOPIC` keeps the
//! topic it was first sent to and `ORIGIN_MESSAGE_ID` the first stored copy's id. It
//! goes to `%RETRY%{group}` with delay level 3 + reconsumeTimes (or the level asked
//! for), through the schedule topic like any delayed message, or — once its reconsume
//! times reach the maximum (header, else the group's 16), or when the level asked for
//! is below 0 — to `%DLQ%{group}` queue 0, undelayed. Both topics are created on
//! demand with one queue, readable and writable. As in RocketMQ the copy is stored with
//! `WAIT=false`: the answer does not wait for a flush or a slave.
//!
//! Deviations: there is no subscription-group table, so every group has RocketMQ's
//! default `SubscriptionGroupConfig` (1 retry queue, 16 retries) and none is refused as
//! unknown; a slave refuses a send-back with SYSTEM_ERROR before creating the retry
//! topic (RocketMQ creates it, then its store refuses the put); a send to a missing
//! `%RETRY%` topic creates it with one queue even when topics are auto-created from
//! TBW102 (RocketMQ would copy TBW102's queue count first).

use super::send::error;
use super::Broker;
use crate::message::{
    dlq_topic, encode_properties, offset_msg_id, properties, property, retry_topic,
    PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC, PROPERTY_WAIT_STORE_MSG_OK,
    RETRY_GROUP_TOPIC_PREFIX,
};
use crate::node::{Ctx, NodeId};
use crate::protocol::{
    perm, response_code, ConsumerSendMsgBack, HeartbeatData, Message, Response, SendMessage,
};
use crate::store::delay_level::PROPERTY_DELAY_TIME_LEVEL;
use crate::store::record::{parse, CrcCheck, Slot};
use crate::store::NewRecord;

/// `SubscriptionGroupConfig.retryQueueNums`'s default.
pub const RETRY_QUEUE_NUMS: u32 = 1;
/// `SubscriptionGroupConfig.retryMaxTimes`'s default: the 17th failure dead-letters.
pub const RETRY_MAX_TIMES: i32 = 16;
/// `MixAll.DLQ_NUMS_PER_GROUP`.
pub const DLQ_NUMS_PER_GROUP: u32 = 1;
use crate::message::RETRY_DELAY_LEVEL_BASE;
const PERM_READ_WRITE: u32 = perm::READ | perm::WRITE;

/// Where a handed-back message goes, decided from its reconsume times so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendBackTarget {
    /// `%RETRY%{group}` after this delay level.
    Retry { delay_level: i32 },
    /// `%DLQ%{group}`, at once.
    DeadLetter,
}

/// `asyncConsumerSendMsgBack`'s choice: the DLQ once `reconsume_times` reached
/// `max_reconsume_times` or the consumer asked for it (`delay_level < 0`); otherwise the
/// retry topic after the level asked for, or 3 + reconsume times when it asked for 0.
pub fn send_back_target(
    reconsume_times: i32,
    max_reconsume_times: i32,
    delay_level: i32,
) -> SendBackTarget {
    if reconsume_times >= max_reconsume_times || delay_level < 0 {
        SendBackTarget::DeadLetter
    } else if delay_level == 0 {
        SendBackTarget::Retry {
            delay_level: RETRY_DELAY_LEVEL_BASE.saturating_add(reconsume_times),
        }
    } else {
        SendBackTarget::Retry { delay_level }
    }
}

impl Broker {
    /// CONSUMER_SEND_MSG_BACK: the copy is stored and answered at once (`WAIT=false`).
    pub(super) fn on_consumer_send_msg_back(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        req: ConsumerSendMsgBack,
    ) -> Response {
        if self.config.is_slave() {
            return error(
                response_code::SYSTEM_ERROR,
                "SERVICE_NOT_AVAILABLE: the broker is a slave, and does not accept messages",
            );
        }
        let retry = retry_topic(&req.group);
        let Some(topic_config) = self.send_back_topic(ctx, &retry, RETRY_QUEUE_NUMS) else {
            return error(
                response_code::NO_PERMISSION,
                format!("the topic[{retry}] sending message is forbidden"),
            );
        };
        let Some(store) = self.store.as_ref() else {
            return error(response_code::SYSTEM_ERROR, "no store");
        };
        let stored = match store.get_by_commit_log_offset(ctx.disk(), req.offset) {
            Ok(stored) => stored,
            Err(e) => {
                return error(
                    response_code::SYSTEM_ERROR,
                    format!("look message by offset failed, {}: {e}", req.offset),
                )
            }
        };
        // `get_by_commit_log_offset` verified the record.
        let Ok(Slot::Record(view)) = parse(&stored.bytes, CrcCheck::Skip) else {
            return error(
                response_code::SYSTEM_ERROR,
                format!("look message by offset failed, {}", req.offset),
            );
        };
        let max_reconsume_times = req.max_reconsume_times.unwrap_or(RETRY_MAX_TIMES);
        let target = send_back_target(view.reconsume_times, max_reconsume_times, req.delay_level);
        let (topic, queue_id, delay_level) = match target {
            SendBackTarget::Retry { delay_level } => {
                let queue_id = self.pick_queue(ctx, topic_config);
                (retry, queue_id, delay_level)
            }
            SendBackTarget::DeadLetter => {
                let dlq = dlq_topic(&req.group);
                if self
                    .send_back_topic(ctx, &dlq, DLQ_NUMS_PER_GROUP)
                    .is_none()
                {
                    return error(
                        response_code::NO_PERMISSION,
                        format!("the topic[{dlq}] sending message is forbidden"),
                    );
                }
                (dlq, 0, 0)
            }
        };
        let user = view.user_properties();
        let origin_msg_id = property(user, PROPERTY_ORIGIN_MESSAGE_ID)
            .map(str::to_string)
            .unwrap_or_else(|| {
                offset_msg_id(
                    view.store_host.ip,
                    view.store_host.port,
                    view.physical_offset,
                )
            });
        let first_topic = property(user, PROPERTY_RETRY_TOPIC).unwrap_or(view.topic);
        let level_text = delay_level.to_string();
        let props = encode_properties(
            properties(user)
                .filter(|(name, _)| {
                    !matches!(
                        *name,
                        PROPERTY_RETRY_TOPIC
                            | PROPERTY_ORIGIN_MESSAGE_ID
                            | PROPERTY_WAIT_STORE_MSG_OK
                            | PROPERTY_DELAY_TIME_LEVEL
                    )
                })
                .chain([
                    (PROPERTY_RETRY_TOPIC, first_topic),
                    (PROPERTY_ORIGIN_MESSAGE_ID, origin_msg_id.as_str()),
                    (PROPERTY_WAIT_STORE_MSG_OK, "false"),
                    (PROPERTY_DELAY_TIME_LEVEL, level_text.as_str()),
                ]),
        );
        let header = SendMessage {
            producer_group: String::new(),
            topic,
            default_topic: String::new(),
            default_topic_queue_nums: 0,
            queue_id,
            sys_flag: view.sys_flag,
            born_timestamp_ms: view.born_timestamp_ms,
            born_host: String::new(),
            flag: view.flag,
            properties: props,
            reconsume_times: view.reconsume_times.saturating_add(1),
            max_reconsume_times: None,
            body: Vec::new(),
        };
        let body = view.body.to_vec();
        let record = NewRecord {
            topic: &header.topic,
            queue_id,
            flag: view.flag,
            sys_flag: view.sys_flag,
            born_timestamp_ms: view.born_timestamp_ms,
            born_host: view.born_host,
            store_host: view.store_host,
            reconsume_times: header.reconsume_times,
            prepared_transaction_offset: 0,
            body: &body,
            properties: &header.properties,
        };
        // Any status but PUT_OK is SYSTEM_ERROR with the status as the remark.
        match self.store_and_answer(ctx, from, opaque, &header, std::slice::from_ref(&record)) {
            Some(Response::Send(_)) => Response::ConsumerSendMsgBack,
            Some(Response::Error { remark, .. }) => error(response_code::SYSTEM_ERROR, remark),
            other => {
                // WAIT=false answers at once: anything else is our own mistake.
                debug_assert!(other.is_none(), "unexpected store answer {other:?}");
                error(
                    response_code::SYSTEM_ERROR,
                    "send-back not answered at once",
                )
            }
        }
    }

    /// A send to `%RETRY%{group}` (a consumer's own fallback, `handleRetryAndDLQ`):
    /// the retry topic is created if missing, and a message whose reconsume times
    /// passed the group's maximum is redirected to `%DLQ%{group}` queue 0, undelayed.
    ///
    /// Deviation: RocketMQ dead-letters at reconsume times *reaching* the maximum
    /// here. Its consumer sends the count already raised, so a message failed 16 times
    /// would be dead-lettered one retry sooner through this path than through
    /// CONSUMER_SEND_MSG_BACK; here both dead-letter the 17th failure, with count 17.
    pub(super) fn handle_retry_and_dlq(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        req: &mut SendMessage,
    ) {
        let Some(group) = req.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) else {
            return;
        };
        let group = group.to_string();
        if self.topics.get(&req.topic).is_none() {
            let topic = req.topic.clone();
            self.send_back_topic(ctx, &topic, RETRY_QUEUE_NUMS);
        }
        // `maxReconsumeTimes` from the header (an orderly consumer's own maximum),
        // else the group's.
        let max_reconsume_times = req.max_reconsume_times.unwrap_or(RETRY_MAX_TIMES);
        if req.reconsume_times <= max_reconsume_times {
            return;
        }
        let dlq = dlq_topic(&group);
        self.send_back_topic(ctx, &dlq, DLQ_NUMS_PER_GROUP);
        req.topic = dlq;
        req.queue_id = 0;
        req.properties = encode_properties(
            properties(&req.properties)
                .filter(|(name, _)| *name != PROPERTY_DELAY_TIME_LEVEL)
                .chain([(PROPERTY_DELAY_TIME_LEVEL, "0")]),
        );
    }

    /// A consumer group's heartbeat creates its retry topic, so the group's retry
    /// subscription has a route before anything is handed back.
    pub(super) fn create_retry_topics(&mut self, ctx: &mut dyn Ctx<Message>, data: &HeartbeatData) {
        for consumer in &data.consumers {
            let retry = retry_topic(&consumer.group_name);
            self.send_back_topic(ctx, &retry, RETRY_QUEUE_NUMS);
        }
    }

    /// The topic's config, created (and registered with the name servers) if missing;
    /// None when it may not be written.
    fn send_back_topic(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        queue_nums: u32,
    ) -> Option<crate::store::config_tables::TopicConfig> {
        let (config, created) = self
            .topics
            .for_send_back(ctx, topic, queue_nums, PERM_READ_WRITE);
        if created {
            self.register(ctx);
        }
        (config.perm & perm::WRITE != 0).then_some(config)
    }

    /// `nextInt(99999999) % retryQueueNums`; one queue needs no draw.
    fn pick_queue(
        &self,
        ctx: &mut dyn Ctx<Message>,
        config: crate::store::config_tables::TopicConfig,
    ) -> i32 {
        let queues = u64::from(config.write_queue_nums.max(1));
        if queues == 1 {
            0
        } else {
            (ctx.random_u64() % queues) as i32
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::broker::test_harness::{config_with, BrokerHarness};
    use crate::broker::{BrokerConfig, BrokerRole};
    use crate::protocol::{ConsumerData, MessageModel, Request};
    use crate::store::delay_level::{MessageDelayLevel, SCHEDULE_TOPIC};
    use crate::store::MemDisk;

    const TOPIC: &str = "T";
    const GROUP: &str = "G";

    /// Levels 1..=18 delay that many seconds, so each retry's level shows in its delay.
    fn config() -> BrokerConfig {
        let levels = MessageDelayLevel::from_delays_ms((1..=18).map(|s| s * 1_000).collect());
        config_with(TOPIC, 1, levels.unwrap())
    }

    fn send(h: &mut BrokerHarness, topic: &str, key: &str, reconsume_times: i32) -> Response {
        send_with_max(h, topic, key, reconsume_times, None)
    }

    fn send_with_max(
        h: &mut BrokerHarness,
        topic: &str,
        key: &str,
        reconsume_times: i32,
        max_reconsume_times: Option<i32>,
    ) -> Response {
        let request = Request::SendMessage(SendMessage {
            producer_group: "P".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp_ms: 7,
            born_host: "10.0.0.1:5000".into(),
            flag: 3,
            properties: encode_properties([("UNIQ_KEY", key), ("WID", "42")]),
            reconsume_times,
            max_reconsume_times,
            body: key.as_bytes().to_vec(),
        });
        h.request(request).expect("answered at once")
    }

    fn send_back(h: &mut BrokerHarness, offset: u64, delay_level: i32) -> Response {
        let request = Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
            offset,
            group: GROUP.into(),
            delay_level,
            origin_msg_id: None,
            origin_topic: Some(TOPIC.into()),
            unit_mode: false,
            max_reconsume_times: None,
        });
        h.request(request).expect("answered at once")
    }

    #[test]
    fn target_follows_reconsume_times_and_the_level_asked_for() {
        assert_eq!(
            send_back_target(0, 16, 0),
            SendBackTarget::Retry { delay_level: 3 }
        );
        assert_eq!(
            send_back_target(15, 16, 0),
            SendBackTarget::Retry { delay_level: 18 }
        );
        assert_eq!(send_back_target(16, 16, 0), SendBackTarget::DeadLetter);
        assert_eq!(
            send_back_target(2, 16, 5),
            SendBackTarget::Retry { delay_level: 5 }
        );
        assert_eq!(send_back_target(0, 16, -1), SendBackTarget::DeadLetter);
        assert_eq!(send_back_target(3, 3, 0), SendBackTarget::DeadLetter);
    }

    /// A message failed 17 times: sixteen retries, each after level 3 + reconsumeTimes
    /// and with reconsume times one higher, then the DLQ, undelayed.
    #[test]
    fn sixteen_retries_then_the_dead_letter_queue() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        assert!(matches!(send(&mut h, TOPIC, "U", 0), Response::Send(_)));
        let (first_offset, _, _, _) = h.records(TOPIC, 0)[0].clone();
        let origin = offset_msg_id(
            h.broker.store_host.ip,
            h.broker.store_host.port,
            first_offset as i64,
        );
        let retry = retry_topic(GROUP);
        let mut offset = first_offset;
        for n in 0..RETRY_MAX_TIMES {
            let level = RETRY_DELAY_LEVEL_BASE + n;
            let t0 = h.ctx.now_ms;
            assert_eq!(send_back(&mut h, offset, 0), Response::ConsumerSendMsgBack);
            let scheduled = h.records(SCHEDULE_TOPIC, level - 1);
            let (_, times, key, props) = scheduled.last().unwrap().clone();
            assert_eq!((times, key.as_str()), (n + 1, "U"));
            assert_eq!(property(&props, "REAL_TOPIC"), Some(retry.as_str()));
            let due_ms = t0 + level as u64 * 1_000;
            h.advance_to(due_ms - 1);
            assert_eq!(
                h.records(&retry, 0).len(),
                n as usize,
                "never before its delay"
            );
            h.advance_to(due_ms);
            let copies = h.records(&retry, 0);
            assert_eq!(copies.len(), n as usize + 1);
            let (copy_offset, times, key, props) = copies.last().unwrap().clone();
            assert_eq!(times, n + 1, "reconsume times raised");
            assert_eq!(key, "U", "UNIQ_KEY kept: the same message");
            assert_eq!(property(&props, "WID"), Some("42"), "user properties kept");
            assert_eq!(property(&props, PROPERTY_RETRY_TOPIC), Some(TOPIC));
            assert_eq!(
                property(&props, PROPERTY_ORIGIN_MESSAGE_ID),
                Some(origin.as_str())
            );
            assert_eq!(property(&props, PROPERTY_DELAY_TIME_LEVEL), None);
            offset = copy_offset;
        }
        let dlq = dlq_topic(GROUP);
        assert!(h.records(&dlq, 0).is_empty());
        assert_eq!(send_back(&mut h, offset, 0), Response::ConsumerSendMsgBack);
        let dead = h.records(&dlq, 0);
        assert_eq!(dead.len(), 1, "the 17th failure dead-letters at once");
        let (_, times, key, props) = &dead[0];
        assert_eq!((*times, key.as_str()), (RETRY_MAX_TIMES + 1, "U"));
        assert_eq!(property(props, PROPERTY_RETRY_TOPIC), Some(TOPIC));
        assert_eq!(
            property(props, PROPERTY_ORIGIN_MESSAGE_ID),
            Some(origin.as_str())
        );
        assert_eq!(h.records(&retry, 0).len(), RETRY_MAX_TIMES as usize);
        let dlq_config = h.broker.topics.get(&dlq).unwrap();
        assert_eq!(
            (dlq_config.write_queue_nums, dlq_config.perm),
            (DLQ_NUMS_PER_GROUP, PERM_READ_WRITE)
        );
    }

    #[test]
    fn a_negative_level_or_a_lower_maximum_dead_letters_at_once() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        send(&mut h, TOPIC, "A", 0);
        send(&mut h, TOPIC, "B", 2);
        let records = h.records(TOPIC, 0);
        assert_eq!(
            send_back(&mut h, records[0].0, -1),
            Response::ConsumerSendMsgBack
        );
        let request = Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
            offset: records[1].0,
            group: GROUP.into(),
            delay_level: 0,
            origin_msg_id: None,
            origin_topic: None,
            unit_mode: false,
            max_reconsume_times: Some(2),
        });
        assert_eq!(h.request(request), Some(Response::ConsumerSendMsgBack));
        assert_eq!(h.keys(&dlq_topic(GROUP), 0), ["A", "B"]);
    }

    #[test]
    fn an_offset_holding_no_message_is_a_system_error() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        send(&mut h, TOPIC, "A", 0);
        let Response::Error { code, remark } = send_back(&mut h, 1_000_000, 0) else {
            panic!("nothing stored there");
        };
        assert_eq!(code, response_code::SYSTEM_ERROR);
        assert!(remark.contains("look message by offset failed"), "{remark}");
    }

    #[test]
    fn a_slave_refuses_a_send_back() {
        let mut config = config();
        config.role = BrokerRole::Slave;
        config.broker_id = 1;
        let mut h = BrokerHarness::start(config, &[], MemDisk::new(), 0);
        let Response::Error { code, .. } = send_back(&mut h, 0, 0) else {
            panic!("a slave stores nothing");
        };
        assert_eq!(code, response_code::SYSTEM_ERROR);
        assert!(h.broker.topics.get(&retry_topic(GROUP)).is_none());
    }

    #[test]
    fn a_heartbeat_creates_the_groups_retry_topic() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        let data = HeartbeatData {
            client_id: "c1".into(),
            consumers: vec![ConsumerData {
                group_name: GROUP.into(),
                message_model: MessageModel::Clustering,
                subscriptions: BTreeMap::from([(TOPIC.to_string(), "*".to_string())]),
            }],
        };
        h.request(Request::HeartBeat(data));
        let retry = h.broker.topics.get(&retry_topic(GROUP)).unwrap();
        assert_eq!(
            (retry.read_queue_nums, retry.write_queue_nums, retry.perm),
            (RETRY_QUEUE_NUMS, RETRY_QUEUE_NUMS, PERM_READ_WRITE)
        );
    }

    #[test]
    fn a_send_to_a_retry_topic_past_the_maximum_goes_to_the_dlq() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        let retry = retry_topic(GROUP);
        assert!(matches!(send(&mut h, &retry, "A", 3), Response::Send(_)));
        assert!(matches!(
            send(&mut h, &retry, "B", RETRY_MAX_TIMES),
            Response::Send(_)
        ));
        assert!(matches!(
            send(&mut h, &retry, "C", RETRY_MAX_TIMES + 1),
            Response::Send(_)
        ));
        assert_eq!(h.keys(&retry, 0), ["A", "B"], "count 16: the 16th retry");
        assert_eq!(h.keys(&dlq_topic(GROUP), 0), ["C"], "count 17: dead");
    }

    /// An orderly consumer's copy carries its own maximum: count 3 past max 2 goes to
    /// the DLQ, count 2 under max 5 to the retry topic.
    #[test]
    fn a_send_to_a_retry_topic_past_the_maximum_it_carries_goes_to_the_dlq() {
        let mut h = BrokerHarness::start(config(), &[], MemDisk::new(), 0);
        let retry = retry_topic(GROUP);
        let stored = |r: Response| matches!(r, Response::Send(_));
        assert!(stored(send_with_max(&mut h, &retry, "A", 2, Some(5))));
        assert!(stored(send_with_max(&mut h, &retry, "B", 3, Some(2))));
        assert_eq!(h.keys(&retry, 0), ["A"]);
        assert_eq!(h.keys(&dlq_topic(GROUP), 0), ["B"]);
    }
}
