//! The broker's admin requests (`AdminBrokerProcessor`, and VIEW_MESSAGE_BY_ID from
//! `QueryMessageProcessor`): what `mqadmin` asks a broker.
//!
//! - UPDATE_AND_CREATE_TOPIC: validate the name, replace the topic's config, persist
//!   `topics.json` and register with the name servers at once, so routes show it
//!   without waiting for the 30 s re-registration.
//! - GET_TOPIC_STATS_INFO: each write queue's min and max offset and the store time
//!   of its last message.
//! - GET_CONSUME_STATS: per read queue of each topic the group has offsets for (or of
//!   the one asked), the queue's max offset, the group's committed offset and the store
//!   time of the last message it consumed.
//! - GET_BROKER_RUNTIME_INFO: the version, boot time, message totals and rates
//!   (`broker_stats.rs`), and the commit log's bounds, under RocketMQ's key names.
//! - GET_MIN_OFFSET and VIEW_MESSAGE_BY_ID: a queue's first offset; a record by its
//!   commit-log offset, verified as every read is.
//!
//! Max offsets are what a pull may serve (`high_watermark.rs`), as GET_MAX_OFFSET's.

use super::config::AUTO_CREATE_TOPIC_KEY;
use super::Broker;
use crate::admin::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
use crate::client::MessageQueue;
use crate::message::{is_valid_topic, TOPIC_MAX_LENGTH};
use crate::node::Ctx;
use crate::protocol::{response_code, Message, QueueKey, Response};
use crate::store::config_tables::TopicConfig;

/// What this broker says it is in GET_BROKER_RUNTIME_INFO's `brokerVersionDesc`.
pub const BROKER_VERSION_DESC: &str = concat!("rocketsim-", env!("CARGO_PKG_VERSION"));

fn system_error(remark: String) -> Response {
    Response::Error {
        code: response_code::SYSTEM_ERROR,
        remark,
    }
}

/// `TopicValidator.validateTopic` and the cluster-name check, with RocketMQ's remarks.
fn validate_new_topic(topic: &str, cluster_name: &str) -> Result<(), Response> {
    if topic.trim().is_empty() {
        return Err(system_error("The specified topic is blank.".into()));
    }
    if topic.len() > TOPIC_MAX_LENGTH {
        return Err(system_error(
            "The specified topic is longer than topic max length.".into(),
        ));
    }
    if !is_valid_topic(topic) {
        return Err(system_error(format!(
            "The specified topic[{topic}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        )));
    }
    if topic == AUTO_CREATE_TOPIC_KEY {
        return Err(system_error(format!(
            "The topic[{topic}] is conflict with AUTO_CREATE_TOPIC_KEY_TOPIC."
        )));
    }
    if topic == cluster_name {
        return Err(system_error(format!(
            "the topic[{topic}] is conflict with system reserved words."
        )));
    }
    Ok(())
}

impl Broker {
    pub(super) fn update_and_create_topic(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        config: TopicConfig,
    ) -> Response {
        if let Err(refused) = validate_new_topic(&config.topic_name, &self.config.cluster_name) {
            return refused;
        }
        tracing::info!(?config, "topic created or updated by an admin");
        self.topics.update(ctx, config);
        self.register(ctx);
        Response::TopicUpdated
    }

    /// GET_MIN_OFFSET: 0 for a queue that does not exist.
    pub(super) fn min_queue_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.store
            .as_ref()
            .and_then(|s| s.queue(topic, queue_id))
            .map_or(0, |q| q.min_offset())
    }

    /// The store time of the message at a queue offset; 0 when it cannot be read.
    pub(super) fn store_timestamp_at(
        &self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        queue_id: i32,
        queue_offset: u64,
    ) -> i64 {
        self.store
            .as_ref()
            .and_then(|s| s.store_timestamp_at(ctx.disk(), topic, queue_id, queue_offset))
            .unwrap_or(0)
    }

    pub(super) fn topic_stats(&mut self, ctx: &mut dyn Ctx<Message>, topic: &str) -> Response {
        let Some(write_queue_nums) = self.topics.get(topic).map(|t| t.write_queue_nums) else {
            return Response::Error {
                code: response_code::TOPIC_NOT_EXIST,
                remark: format!("topic[{topic}] not exist"),
            };
        };
        let mut table = TopicStatsTable::new();
        for queue_id in 0..write_queue_nums as i32 {
            let max_offset =
                self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), topic, queue_id);
            let min_offset = self.min_queue_offset(topic, queue_id).min(max_offset);
            let last_update_timestamp_ms = if max_offset > 0 {
                self.store_timestamp_at(ctx, topic, queue_id, max_offset - 1)
            } else {
                0
            };
            table.insert(
                self.message_queue(topic, queue_id),
                TopicOffset {
                    min_offset,
                    max_offset,
                    last_update_timestamp_ms,
                },
            );
        }
        Response::TopicStats(table)
    }

    pub(super) fn consume_stats(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        group: &str,
        topic: Option<&str>,
    ) -> Response {
        let topics: Vec<String> = match topic {
            Some(t) => vec![t.to_string()],
            None => self.offsets.topics_of_group(group),
        };
        let mut stats = ConsumeStats::default();
        for topic in topics {
            let Some(read_queue_nums) = self.topics.get(&topic).map(|t| t.read_queue_nums) else {
                continue;
            };
            // The group's members subscribe elsewhere: an old offset, not its progress.
            if self.consumers.subscription(group, &topic).is_none()
                && !self.consumers.client_ids(group).is_empty()
            {
                continue;
            }
            for queue_id in 0..read_queue_nums as i32 {
                let broker_offset =
                    self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), &topic, queue_id);
                let key = QueueKey {
                    consumer_group: group.to_string(),
                    topic: topic.clone(),
                    queue_id,
                };
                let consumer_offset = self.offsets.get(&key).unwrap_or(0);
                let last_timestamp_ms = if consumer_offset > 0 {
                    self.store_timestamp_at(ctx, &topic, queue_id, consumer_offset - 1)
                } else {
                    0
                };
                stats.offset_table.insert(
                    self.message_queue(&topic, queue_id),
                    OffsetWrapper {
                        broker_offset,
                        consumer_offset,
                        last_timestamp_ms,
                    },
                );
            }
        }
        Response::ConsumeStats(stats)
    }

    pub(super) fn view_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        commit_log_offset: u64,
    ) -> Response {
        let Some(store) = self.store.as_ref() else {
            return system_error("no store".into());
        };
        match store.get_by_commit_log_offset(ctx.disk(), commit_log_offset) {
            Ok(m) => Response::StoredMessage(m.bytes),
            Err(e) => system_error(format!(
                "can not find message by the offset, {commit_log_offset}: {e}"
            )),
        }
    }

    fn message_queue(&self, topic: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: topic.to_string(),
            broker_name: self.config.broker_name.clone(),
            queue_id,
        }
    }
}

impl Broker {
    /// GET_BROKER_RUNTIME_INFO (`AdminBrokerProcessor.prepareRuntimeInfo`): the keys
    /// `mqadmin clusterList` reads, as RocketMQ names and formats them (rates as
    /// "10 s, 1 min, 10 min" averages with two decimals, separated by spaces).
    pub(super) fn runtime_info(&self, ctx: &dyn Ctx<Message>) -> Response {
        let now_ms = ctx.now_ms();
        let tps = self.stats.tps(now_ms);
        let rates = |pick: fn(&(f64, f64)) -> f64| {
            tps.iter()
                .map(|t| format!("{:.2}", pick(t)))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let (min, max) = self
            .store
            .as_ref()
            .map_or((0, 0), |s| (s.commit_log_min_offset(), s.written_offset()));
        let mut table = std::collections::BTreeMap::new();
        let mut put = |k: &str, v: String| {
            table.insert(k.to_string(), v);
        };
        put("brokerVersionDesc", BROKER_VERSION_DESC.to_string());
        put("bootTimestamp", self.boot_timestamp_ms.to_string());
        put(
            "runtime",
            format_uptime(now_ms.saturating_sub(self.boot_timestamp_ms)),
        );
        put("putMessageTimesTotal", self.stats.put_total.to_string());
        put(
            "getMessageTransferedMsgCount",
            self.stats.get_total.to_string(),
        );
        put("putTps", rates(|t| t.0));
        put("getTransferedTps", rates(|t| t.1));
        put("commitLogMinOffset", min.to_string());
        put("commitLogMaxOffset", max.to_string());
        // RocketMQ 5's clusterList reads it; a broker that answers is serving.
        put("brokerActive", "true".to_string());
        Response::RuntimeInfo(table)
    }
}

/// StoreStatsService's `runtime`: "[ d days, h hours, m minutes, s seconds ]".
fn format_uptime(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "[ {} days, {} hours, {} minutes, {} seconds ]",
        s / 86_400,
        s / 3_600 % 24,
        s / 60 % 60,
        s % 60
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::broker::{BrokerConfig, FlushDiskType};
    use crate::client::test_ctx::TestCtx;
    use crate::node::{Input, Node, NodeId};
    use crate::protocol::{Request, SendMessage};
    use crate::store::record::{self, CrcCheck, Host, Slot};

    pub(crate) const NS: &str = "10.0.0.1:9876";

    /// A running SYNC_FLUSH broker on a [`TestCtx`]; every sync completes at once.
    pub(crate) fn running_broker(ctx: &mut TestCtx) -> Broker {
        let config = BrokerConfig {
            namesrv_addrs: vec![NS.into()],
            flush_disk_type: FlushDiskType::SyncFlush,
            ..BrokerConfig::default()
        };
        let mut broker = Broker::boot(config, &mut ctx.disk);
        broker.on_start(ctx);
        settle(&mut broker, ctx);
        assert_eq!(broker.phase(), super::super::Phase::Running);
        broker
    }

    fn settle(broker: &mut Broker, ctx: &mut TestCtx) {
        loop {
            let tickets = ctx.disk.take_requested_syncs();
            if tickets.is_empty() {
                return;
            }
            for ticket in tickets {
                broker.handle(
                    ctx,
                    Input::SyncComplete {
                        ticket,
                        result: Ok(()),
                    },
                );
            }
        }
    }

    /// Sends `request` from node 50 and returns the broker's answer.
    pub(crate) fn ask(broker: &mut Broker, ctx: &mut TestCtx, request: Request) -> Response {
        ctx.take_sent();
        broker.handle(
            ctx,
            Input::Packet {
                from: NodeId(50),
                msg: Message::Request { opaque: 7, request },
            },
        );
        settle(broker, ctx);
        let answers: Vec<Response> = ctx
            .take_sent()
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Response {
                    opaque: 7,
                    response,
                } if to == NodeId(50) => Some(response),
                _ => None,
            })
            .collect();
        assert_eq!(answers.len(), 1, "{answers:?}");
        answers.into_iter().next().unwrap()
    }

    pub(crate) fn topic(name: &str, queues: u32) -> TopicConfig {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..TopicConfig::default()
        }
    }

    #[test]
    fn runtime_info_counts_puts_and_reports_them_under_rocketmq_names() {
        let mut ctx = TestCtx::new(&[(NS, 1)]);
        let mut broker = running_broker(&mut ctx);
        for i in 0..3 {
            send(&mut broker, &mut ctx, 0, &format!("m{i}"));
        }
        // The next client scan samples the totals: 3 puts over 10 s.
        ctx.now_ms += 10_000;
        broker.stats.sample(ctx.now_ms);
        let Response::RuntimeInfo(table) =
            ask(&mut broker, &mut ctx, Request::GetBrokerRuntimeInfo)
        else {
            panic!("not a runtime info answer");
        };
        assert_eq!(table["brokerVersionDesc"], BROKER_VERSION_DESC);
        assert_eq!(table["putMessageTimesTotal"], "3");
        assert_eq!(table["getMessageTransferedMsgCount"], "0");
        assert_eq!(table["putTps"], "0.30 0.30 0.30");
        assert_eq!(table["brokerActive"], "true");
        assert!(table["commitLogMaxOffset"].parse::<u64>().unwrap() > 0);
    }

    pub(crate) fn send(
        broker: &mut Broker,
        ctx: &mut TestCtx,
        queue_id: i32,
        body: &str,
    ) -> String {
        let request = Request::SendMessage(SendMessage {
            producer_group: "P".into(),
            topic: "T".into(),
            default_topic: AUTO_CREATE_TOPIC_KEY.into(),
            default_topic_queue_nums: 4,
            queue_id,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: "10.0.0.5:4000".into(),
            flag: 0,
            properties: String::new(),
            reconsume_times: 0,
            max_reconsume_times: None,
            body: body.as_bytes().to_vec(),
        });
        match ask(broker, ctx, request) {
            Response::Send(s) => s.msg_id,
            other => panic!("send: {other:?}"),
        }
    }

    #[test]
    fn update_topic_persists_and_registers_at_once() {
        let mut ctx = TestCtx::new(&[(NS, 1)]);
        let mut broker = running_broker(&mut ctx);
        let before = broker.topics.table().data_version.counter;
        ctx.take_sent();
        let answer = ask(
            &mut broker,
            &mut ctx,
            Request::UpdateAndCreateTopic(topic("T", 3)),
        );
        assert_eq!(answer, Response::TopicUpdated);
        assert_eq!(broker.topics.get("T").unwrap().write_queue_nums, 3);
        assert!(broker.topics.table().data_version.counter > before);
        // Persisted: a broker booted from the same disk knows the topic.
        let again = Broker::boot(broker.config.clone(), &mut ctx.disk);
        assert_eq!(again.topics.get("T").unwrap().read_queue_nums, 3);
        // Registered: the name server hears of it (the answer was taken by `ask`, so
        // ask again and look at what went to the name server).
        broker.handle(
            &mut ctx,
            Input::Packet {
                from: NodeId(50),
                msg: Message::Request {
                    opaque: 8,
                    request: Request::UpdateAndCreateTopic(topic("T", 5)),
                },
            },
        );
        let registered = ctx.take_sent().into_iter().any(|(to, m)| {
            to == NodeId(1)
                && matches!(&m, Message::Request { request: Request::RegisterBroker(r), .. }
                    if r.topic_config_table["T"].write_queue_nums == 5)
        });
        assert!(registered, "the new config is registered at once");

        for bad in ["", "a b", AUTO_CREATE_TOPIC_KEY, "DefaultCluster"] {
            let answer = ask(
                &mut broker,
                &mut ctx,
                Request::UpdateAndCreateTopic(topic(bad, 1)),
            );
            assert!(
                matches!(
                    answer,
                    Response::Error {
                        code: response_code::SYSTEM_ERROR,
                        ..
                    }
                ),
                "{bad:?}: {answer:?}"
            );
        }
    }

    #[test]
    fn topic_stats_consume_stats_and_view_by_offset() {
        let mut ctx = TestCtx::new(&[(NS, 1)]);
        let mut broker = running_broker(&mut ctx);
        let unknown = ask(
            &mut broker,
            &mut ctx,
            Request::GetTopicStatsInfo { topic: "T".into() },
        );
        assert!(matches!(
            unknown,
            Response::Error {
                code: response_code::TOPIC_NOT_EXIST,
                ..
            }
        ));
        ask(
            &mut broker,
            &mut ctx,
            Request::UpdateAndCreateTopic(topic("T", 2)),
        );
        ctx.now_ms = 1_000;
        let first = send(&mut broker, &mut ctx, 0, "a");
        ctx.now_ms = 2_000;
        send(&mut broker, &mut ctx, 0, "b");
        send(&mut broker, &mut ctx, 1, "c");

        let Response::TopicStats(stats) = ask(
            &mut broker,
            &mut ctx,
            Request::GetTopicStatsInfo { topic: "T".into() },
        ) else {
            panic!("no stats");
        };
        let q0 = &stats[&broker.message_queue("T", 0)];
        assert_eq!((q0.min_offset, q0.max_offset), (0, 2));
        assert_eq!(q0.last_update_timestamp_ms, 2_000);
        assert_eq!(stats[&broker.message_queue("T", 1)].max_offset, 1);
        assert_eq!(stats.len(), 2);

        let commit = Request::UpdateConsumerOffset {
            key: QueueKey {
                consumer_group: "G".into(),
                topic: "T".into(),
                queue_id: 0,
            },
            offset: 1,
        };
        broker.handle(
            &mut ctx,
            Input::Packet {
                from: NodeId(50),
                msg: Message::Request {
                    opaque: 0,
                    request: commit,
                },
            },
        );
        for topic in [None, Some("T".to_string())] {
            let request = Request::GetConsumeStats {
                consumer_group: "G".into(),
                topic,
            };
            let Response::ConsumeStats(stats) = ask(&mut broker, &mut ctx, request) else {
                panic!("no consume stats");
            };
            let q0 = &stats.offset_table[&broker.message_queue("T", 0)];
            assert_eq!((q0.broker_offset, q0.consumer_offset), (2, 1));
            assert_eq!(
                q0.last_timestamp_ms, 1_000,
                "the consumed message's store time"
            );
            let q1 = &stats.offset_table[&broker.message_queue("T", 1)];
            assert_eq!(
                (q1.broker_offset, q1.consumer_offset, q1.last_timestamp_ms),
                (1, 0, 0)
            );
            assert_eq!(stats.total_diff(), 2);
        }
        let none = Request::GetConsumeStats {
            consumer_group: "other".into(),
            topic: None,
        };
        assert_eq!(
            ask(&mut broker, &mut ctx, none),
            Response::ConsumeStats(ConsumeStats::default())
        );

        let (_, _, offset) = crate::message::decode_offset_msg_id(&first).unwrap();
        let Response::StoredMessage(bytes) = ask(
            &mut broker,
            &mut ctx,
            Request::ViewMessageById {
                commit_log_offset: offset as u64,
            },
        ) else {
            panic!("no message");
        };
        let Ok(Slot::Record(view)) = record::parse(&bytes, CrcCheck::Strict) else {
            panic!("not a record");
        };
        assert_eq!(view.body, b"a");
        assert_eq!(
            view.born_host,
            Host {
                ip: [10, 0, 0, 5].into(),
                port: 4000
            }
        );
        let missing = ask(
            &mut broker,
            &mut ctx,
            Request::ViewMessageById {
                commit_log_offset: offset as u64 + 1,
            },
        );
        assert!(matches!(
            missing,
            Response::Error {
                code: response_code::SYSTEM_ERROR,
                ..
            }
        ));
        assert_eq!(
            ask(
                &mut broker,
                &mut ctx,
                Request::GetMinOffset {
                    topic: "T".into(),
                    queue_id: 0
                }
            ),
            Response::Offset(0)
        );
    }
}
