//! JSON bodies whose wire shape is not the model's type (reference C.4, F, G.7).
//! `TopicRouteData`, `ClusterInfo` and the consumer offset table are the model's own
//! serde types and need nothing here.

use rmq_model::protocol::{ConsumerData, HeartbeatData, MessageModel};
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
