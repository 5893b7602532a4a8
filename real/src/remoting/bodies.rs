//! JSON bodies whose wire shape is not the model's type (reference C.4, C.6, F, G.7),
//! and the admin bodies keyed by `MessageQueue` (`TopicStatsTable`, `ConsumeStats`).
//! `TopicRouteData`, `ClusterInfo` and the consumer offset table are the model's own
//! serde types and need nothing here.

use std::collections::{BTreeMap, BTreeSet};

use rmq_model::client::MessageQueue;
use rmq_model::protocol::{
    ConsumeStats, ConsumerData, HeartbeatData, LockBatch, MessageModel, OffsetWrapper, TopicOffset,
    TopicStatsTable,
};
use rmq_model::store::config_tables::TopicConfigTable;
use rmq_model::subscription::SubscriptionData;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

use super::fastjson;

/// `HeartbeatData` as clients send it. Producer groups are read past: the model keeps
/// no producer table.
#[derive(Deserialize)]
struct WireHeartbeat {
    #[serde(rename = "clientID")]
    client_id: String,
    #[serde(default, rename = "consumerDataSet")]
    consumers: Vec<WireConsumer>,
}

/// `ConsumerData`: only what the model keeps. `consumeType` and `consumeFromWhere` (names
/// from Java, ordinals from C++) are read past.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireConsumer {
    group_name: String,
    #[serde(deserialize_with = "message_model")]
    message_model: MessageModel,
    #[serde(default)]
    subscription_data_set: Vec<WireSubscription>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireSubscription {
    topic: String,
    sub_string: String,
}

/// `MessageModel` by name (Java) or ordinal (C++: BROADCASTING = 0, CLUSTERING = 1, the
/// order of Java's enum too).
fn message_model<'de, D: Deserializer<'de>>(d: D) -> Result<MessageModel, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::String(s) if s == "CLUSTERING" => Ok(MessageModel::Clustering),
        Value::String(s) if s == "BROADCASTING" => Ok(MessageModel::Broadcasting),
        Value::Number(n) if n.as_u64() == Some(1) => Ok(MessageModel::Clustering),
        Value::Number(n) if n.as_u64() == Some(0) => Ok(MessageModel::Broadcasting),
        other => Err(D::Error::custom(format!(
            "messageModel {other} is neither CLUSTERING/1 nor BROADCASTING/0"
        ))),
    }
}

pub(super) fn heartbeat_from_json(body: &[u8]) -> Result<HeartbeatData, String> {
    let wire: WireHeartbeat = fastjson::from_slice(body)?;
    Ok(HeartbeatData {
        client_id: wire.client_id,
        consumers: wire
            .consumers
            .into_iter()
            .map(|c| ConsumerData {
                group_name: c.group_name,
                message_model: c.message_model,
                subscriptions: c
                    .subscription_data_set
                    .into_iter()
                    .map(|s| (s.topic, s.sub_string))
                    .collect(),
            })
            .collect(),
    })
}

/// Written as a Java client writes it, with enum names. The model keeps neither
/// `consumeFromWhere` nor a subscription version: CONSUME_FROM_LAST_OFFSET (only the
/// client acts on it) and 0. A RocketMQ broker only replaces a subscription whose
/// version grew, so it keeps the first expression it heard for a topic; our consumer
/// sends its expression with every pull, which takes precedence there.
pub(super) fn heartbeat_to_json(data: &HeartbeatData) -> Vec<u8> {
    let consumers: Vec<Value> = data
        .consumers
        .iter()
        .map(|c| {
            let subscriptions: Vec<Value> = c
                .subscriptions
                .iter()
                .map(|(topic, expression)| {
                    let (tags, codes) = match SubscriptionData::parse(expression) {
                        SubscriptionData::All => (Vec::new(), Vec::new()),
                        SubscriptionData::Tags { tags, codes } => {
                            (tags.into_iter().collect(), codes.into_iter().collect())
                        }
                    };
                    json!({
                        "classFilterMode": false,
                        "codeSet": codes,
                        "expressionType": "TAG",
                        "subString": expression,
                        "subVersion": 0,
                        "tagsSet": tags,
                        "topic": topic,
                    })
                })
                .collect();
            let model = match c.message_model {
                MessageModel::Clustering => "CLUSTERING",
                MessageModel::Broadcasting => "BROADCASTING",
            };
            json!({
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "consumeType": "CONSUME_PASSIVELY",
                "groupName": c.group_name,
                "messageModel": model,
                "subscriptionDataSet": subscriptions,
                "unitMode": false,
            })
        })
        .collect();
    let body = json!({
        "clientID": data.client_id,
        "consumerDataSet": consumers,
        "producerDataSet": [],
    });
    serde_json::to_vec(&body).expect("a JSON value serializes")
}

/// `RegisterBrokerBody` (uncompressed): the topic config wrapper is the model's
/// `TopicConfigTable`, the same shape as `topics.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigTable,
    #[serde(default)]
    pub filter_server_list: Vec<String>,
}

/// GET_CONSUMER_LIST_BY_GROUP's response body.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConsumerIdList {
    pub consumer_id_list: Vec<String>,
}

/// `UtilAll.crc32`: CRC-32 with the sign bit cleared, as REGISTER_BROKER's `bodyCrc32`
/// carries it.
pub(super) fn body_crc32(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

/// Serializes a body type that cannot fail (string keys, plain values).
pub(super) fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("body serializes")
}

/// A consumer list body, for tests and the client side.
pub(super) fn consumer_ids_from_json(body: &[u8]) -> Result<Vec<String>, String> {
    fastjson::from_slice::<ConsumerIdList>(body).map(|l| l.consumer_id_list)
}

/// `MessageQueue` in a JSON body.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireQueue {
    topic: String,
    broker_name: String,
    queue_id: i32,
}

impl From<WireQueue> for MessageQueue {
    fn from(q: WireQueue) -> MessageQueue {
        MessageQueue {
            topic: q.topic,
            broker_name: q.broker_name,
            queue_id: q.queue_id,
        }
    }
}

impl From<&MessageQueue> for WireQueue {
    fn from(q: &MessageQueue) -> WireQueue {
        WireQueue {
            topic: q.topic.clone(),
            broker_name: q.broker_name.clone(),
            queue_id: q.queue_id,
        }
    }
}

/// `LockBatchRequestBody` and `UnlockBatchRequestBody` (reference C.6). Java's
/// `onlyThisBroker` is read past: the model's broker answers for itself only anyway.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireLockBatch {
    consumer_group: String,
    client_id: String,
    #[serde(default)]
    mq_set: Vec<WireQueue>,
}

pub(super) fn lock_batch_from_json(body: &[u8]) -> Result<LockBatch, String> {
    let wire: WireLockBatch = fastjson::from_slice(body)?;
    Ok(LockBatch {
        consumer_group: wire.consumer_group,
        client_id: wire.client_id,
        queues: wire.mq_set.into_iter().map(MessageQueue::from).collect(),
    })
}

pub(super) fn lock_batch_to_json(body: &LockBatch) -> Vec<u8> {
    to_json(&WireLockBatch {
        consumer_group: body.consumer_group.clone(),
        client_id: body.client_id.clone(),
        mq_set: body.queues.iter().map(WireQueue::from).collect(),
    })
}

/// `LockBatchResponseBody`.
#[derive(Serialize, Deserialize)]
struct WireLocked {
    #[serde(default, rename = "lockOKMQSet")]
    lock_ok_mq_set: Vec<WireQueue>,
}

pub(super) fn locked_from_json(body: &[u8]) -> Result<BTreeSet<MessageQueue>, String> {
    let wire: WireLocked = fastjson::from_slice(body)?;
    Ok(wire
        .lock_ok_mq_set
        .into_iter()
        .map(MessageQueue::from)
        .collect())
}

pub(super) fn locked_to_json(queues: &BTreeSet<MessageQueue>) -> Vec<u8> {
    to_json(&WireLocked {
        lock_ok_mq_set: queues.iter().map(WireQueue::from).collect(),
    })
}

/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER's body (`TopicList`; its `brokerAddr` is null
/// from a name server, and fastjson omits nulls).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TopicList {
    pub topic_list: Vec<String>,
}

/// A map keyed by `MessageQueue` as fastjson writes it: each key is the queue's JSON
/// object (keys sorted, as fastjson sorts them), not a string.
fn queue_keyed_to_json<V>(
    table: &BTreeMap<MessageQueue, V>,
    value: impl Fn(&V) -> Value,
) -> String {
    let mut out = String::from("{");
    for (i, (mq, v)) in table.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let key = json!({
            "brokerName": mq.broker_name,
            "queueId": mq.queue_id,
            "topic": mq.topic,
        });
        out.push_str(&key.to_string());
        out.push(':');
        out.push_str(&value(v).to_string());
    }
    out.push('}');
    out
}

/// The reverse of [`queue_keyed_to_json`], from the map `fastjson::from_slice` made of
/// it (each key the text of the queue's object).
fn queue_keyed_from_json<W, V>(
    table: BTreeMap<String, W>,
    value: impl Fn(W) -> V,
) -> Result<BTreeMap<MessageQueue, V>, String> {
    table
        .into_iter()
        .map(|(key, v)| {
            let mq: WireQueue = serde_json::from_str(&key)
                .map_err(|e| format!("map key {key:?} is not a MessageQueue: {e}"))?;
            Ok((MessageQueue::from(mq), value(v)))
        })
        .collect()
}

/// `TopicOffset`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTopicOffset {
    min_offset: u64,
    max_offset: u64,
    #[serde(default)]
    last_update_timestamp: i64,
}

/// `TopicStatsTable` and `ConsumeStats` as read: their `offsetTable`, keys still
/// the text of each queue (other fields such as `consumeTps` are read past).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOffsetTable<W> {
    #[serde(default = "BTreeMap::new")]
    offset_table: BTreeMap<String, W>,
}

/// GET_TOPIC_STATS_INFO's body (`TopicStatsTable`).
pub(super) fn topic_stats_to_json(table: &TopicStatsTable) -> Vec<u8> {
    let offsets = queue_keyed_to_json(table, |o| {
        json!({
            "lastUpdateTimestamp": o.last_update_timestamp_ms,
            "maxOffset": o.max_offset,
            "minOffset": o.min_offset,
        })
    });
    format!("{{\"offsetTable\":{offsets}}}").into_bytes()
}

pub(super) fn topic_stats_from_json(body: &[u8]) -> Result<TopicStatsTable, String> {
    let wire: WireOffsetTable<WireTopicOffset> = fastjson::from_slice(body)?;
    queue_keyed_from_json(wire.offset_table, |o| TopicOffset {
        min_offset: o.min_offset,
        max_offset: o.max_offset,
        last_update_timestamp_ms: o.last_update_timestamp,
    })
}

/// `OffsetWrapper`. 5.x adds `pullOffset` (where the group's pulls have reached); the
/// model's broker does not track it and writes the committed offset.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOffsetWrapper {
    broker_offset: u64,
    consumer_offset: u64,
    #[serde(default)]
    last_timestamp: i64,
}

/// GET_CONSUME_STATS's body (`ConsumeStats`); `consumeTps` is 0: the model keeps no rate.
pub(super) fn consume_stats_to_json(stats: &ConsumeStats) -> Vec<u8> {
    let offsets = queue_keyed_to_json(&stats.offset_table, |o| {
        json!({
            "brokerOffset": o.broker_offset,
            "consumerOffset": o.consumer_offset,
            "lastTimestamp": o.last_timestamp_ms,
            "pullOffset": o.consumer_offset,
        })
    });
    format!("{{\"consumeTps\":0.0,\"offsetTable\":{offsets}}}").into_bytes()
}

pub(super) fn consume_stats_from_json(body: &[u8]) -> Result<ConsumeStats, String> {
    let wire: WireOffsetTable<WireOffsetWrapper> = fastjson::from_slice(body)?;
    let offset_table = queue_keyed_from_json(wire.offset_table, |o| OffsetWrapper {
        broker_offset: o.broker_offset,
        consumer_offset: o.consumer_offset,
        last_timestamp_ms: o.last_timestamp,
    })?;
    Ok(ConsumeStats { offset_table })
}

/// `ResetOffsetBody`: INVOKE_BROKER_TO_RESET_OFFSET's answer and
/// RESET_CONSUMER_CLIENT_OFFSET's body.
pub(super) fn reset_offset_to_json(table: &BTreeMap<MessageQueue, u64>) -> Vec<u8> {
    let offsets = queue_keyed_to_json(table, |o| json!(o));
    format!("{{\"offsetTable\":{offsets}}}").into_bytes()
}

pub(super) fn reset_offset_from_json(body: &[u8]) -> Result<BTreeMap<MessageQueue, u64>, String> {
    let wire: WireOffsetTable<u64> = fastjson::from_slice(body)?;
    queue_keyed_from_json(wire.offset_table, |o| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(topic: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: topic.into(),
            broker_name: "broker-a".into(),
            queue_id,
        }
    }

    #[test]
    fn queue_keyed_bodies_are_written_and_read_as_fastjson_writes_them() {
        let stats = TopicStatsTable::from([
            (
                mq("T", 0),
                TopicOffset {
                    min_offset: 0,
                    max_offset: 3,
                    last_update_timestamp_ms: 1_700_000_000_000,
                },
            ),
            (mq("T", 1), TopicOffset::default()),
        ]);
        let body = topic_stats_to_json(&stats);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":1700000000000,"maxOffset":3,"minOffset":0},{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}}}"#
        );
        assert_eq!(topic_stats_from_json(&body).unwrap(), stats);

        // As a Java broker writes it: other key order, 5.x's extra fields.
        let java = br#"{"consumeTps":1.5,"offsetTable":{{"topic":"T","brokerName":"broker-a","queueId":2}:{"brokerOffset":9,"consumerOffset":4,"lastTimestamp":5,"pullOffset":6}}}"#;
        let consume = consume_stats_from_json(java).unwrap();
        assert_eq!(
            consume.offset_table[&mq("T", 2)],
            OffsetWrapper {
                broker_offset: 9,
                consumer_offset: 4,
                last_timestamp_ms: 5,
            }
        );
        assert_eq!(
            consume_stats_from_json(&consume_stats_to_json(&consume)).unwrap(),
            consume
        );
        assert!(consume_stats_from_json(br#"{"offsetTable":{{"topic":1}:{}}}"#).is_err());
        let reset = BTreeMap::from([(mq("T", 0), 7), (mq("T", 3), 0)]);
        let body = reset_offset_to_json(&reset);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:7,{"brokerName":"broker-a","queueId":3,"topic":"T"}:0}}"#
        );
        assert_eq!(reset_offset_from_json(&body).unwrap(), reset);
        assert_eq!(
            consume_stats_from_json(b"{}").unwrap(),
            ConsumeStats::default()
        );
    }
}
