//! Requests: wire commands ⇄ [`Request`] (header keys: reference G.6, F).
//!
//! - SEND_MESSAGE (10, long keys) and SEND_MESSAGE_V2 (310, keys `a`..`n`) both become
//!   [`Request::SendMessage`]; we send V2, as Java clients do. The born host is not a
//!   header field (RocketMQ takes the channel's remote address): it decodes empty, and
//!   the runtime fills it in from the connection.
//! - A send whose header has `batch` set is [`Request::SendBatchMessage`], whatever
//!   its code, as RocketMQ's broker decides by `isBatch` alone: the Java client sends
//!   SEND_BATCH_MESSAGE (320) with the V2 header, RocketMQ's C++ client (2.x, as
//!   bundled by the Python client) SEND_MESSAGE_V2 (310) with `m`=true. The body is
//!   the compact batch format (`batch_body.rs`). SEND_BATCH_MESSAGE takes the V2 keys,
//!   or the long keys when it has no `b` but a `topic`; without `batch` set it is one
//!   message, as RocketMQ takes it. We send batches as Java does.
//! - A pull with an expression type other than TAG is refused with SYSTEM_ERROR, as a
//!   RocketMQ broker without `enablePropertyFilter` (the default) refuses it.
//! - A compressed REGISTER_BROKER body is refused (brokers compress only when
//!   `compressedRegister` is set); a non-zero `bodyCrc32` must match the body.
//! - HA_REPORT / HA_TRANSFER are not remoting commands (RocketMQ's HA port has its own
//!   framing): [`try_request_to_wire`] refuses them.

use rmq_model::broker::config::AUTO_CREATE_TOPIC_KEY;
use rmq_model::protocol::{
    request_code as rc, response_code, BrokerIdentity, ConsumerSendMsgBack, LockBatch, PullMessage,
    QueueKey, RegisterBroker, Request, ResetOffset, SendBatchMessage, SendMessage,
};
use rmq_model::store::config_tables::{TopicConfig, TopicConfigTable};

use super::batch_body;
use super::bodies::{self, RegisterBrokerBody};
use super::fastjson;
use super::fields::{ext, Fields, MappingError};
use super::{RemotingCommand, SerializeType, CLIENT_LANGUAGE, CLIENT_VERSION, FLAG_ONEWAY};

/// Server side: the model's request for a decoded command, or the error response to
/// send back (the caller sends nothing for a oneway request).
pub fn request_from_wire(cmd: &RemotingCommand) -> Result<Request, RemotingCommand> {
    try_request_from_wire(cmd).map_err(|e| {
        tracing::debug!(code = cmd.code, opaque = cmd.opaque, error = %e, "request refused");
        RemotingCommand::response(
            e.response_code(),
            cmd.opaque,
            Some(e.to_string()),
            cmd.serialize_type,
        )
    })
}

/// [`request_from_wire`] with the reason as a typed error.
pub fn try_request_from_wire(cmd: &RemotingCommand) -> Result<Request, MappingError> {
    if cmd.is_response() {
        return Err(MappingError::NotARequest { flag: cmd.flag });
    }
    let f = Fields {
        code: cmd.code,
        ext: &cmd.ext_fields,
    };
    let request = match cmd.code {
        rc::SEND_MESSAGE => send_message(&f, &LONG_SEND_KEYS, &cmd.body)?,
        rc::SEND_MESSAGE_V2 => send_message(&f, &V2_SEND_KEYS, &cmd.body)?,
        rc::SEND_BATCH_MESSAGE => {
            let long_keys = f.opt_str(V2_SEND_KEYS.topic).is_none()
                && f.opt_str(LONG_SEND_KEYS.topic).is_some();
            let keys = if long_keys {
                &LONG_SEND_KEYS
            } else {
                &V2_SEND_KEYS
            };
            send_message(&f, keys, &cmd.body)?
        }
        rc::PULL_MESSAGE => pull_message(&f)?,
        rc::QUERY_CONSUMER_OFFSET => Request::QueryConsumerOffset(queue_key(&f)?),
        rc::UPDATE_CONSUMER_OFFSET => Request::UpdateConsumerOffset {
            key: queue_key(&f)?,
            offset: f.num("commitOffset")?,
        },
        rc::GET_MAX_OFFSET => Request::GetMaxOffset {
            topic: f.string("topic")?,
            queue_id: f.num("queueId")?,
        },
        rc::HEART_BEAT => {
            Request::HeartBeat(bodies::heartbeat_from_json(&cmd.body).map_err(|reason| {
                MappingError::InvalidBody {
                    code: f.code,
                    reason,
                }
            })?)
        }
        rc::UNREGISTER_CLIENT => Request::UnregisterClient {
            client_id: f.string("clientID")?,
            producer_group: f.opt_non_empty("producerGroup"),
            consumer_group: f.opt_non_empty("consumerGroup"),
        },
        rc::GET_CONSUMER_LIST_BY_GROUP => Request::GetConsumerListByGroup {
            consumer_group: f.string("consumerGroup")?,
        },
        rc::NOTIFY_CONSUMER_IDS_CHANGED => Request::NotifyConsumerIdsChanged {
            consumer_group: f.string("consumerGroup")?,
        },
        rc::GET_ALL_CONSUMER_OFFSET => Request::GetAllConsumerOffset,
        rc::CONSUMER_SEND_MSG_BACK => consumer_send_msg_back(&f)?,
        rc::GET_ALL_DELAY_OFFSET => Request::GetAllDelayOffset,
        rc::LOCK_BATCH_MQ => Request::LockBatchMq(lock_batch(&f, &cmd.body)?),
        rc::UNLOCK_BATCH_MQ => Request::UnlockBatchMq(lock_batch(&f, &cmd.body)?),
        rc::REGISTER_BROKER => register_broker(&f, &cmd.body)?,
        rc::UNREGISTER_BROKER => Request::UnregisterBroker(broker_identity(&f)?),
        rc::GET_ROUTEINFO_BY_TOPIC => Request::GetRouteInfoByTopic {
            topic: f.string("topic")?,
        },
        rc::GET_BROKER_CLUSTER_INFO => Request::GetBrokerClusterInfo,
        rc::UPDATE_AND_CREATE_TOPIC => create_topic(&f)?,
        rc::GET_MIN_OFFSET => Request::GetMinOffset {
            topic: f.string("topic")?,
            queue_id: f.num("queueId")?,
        },
        rc::VIEW_MESSAGE_BY_ID => Request::ViewMessageById {
            commit_log_offset: f.num("offset")?,
        },
        rc::GET_TOPIC_STATS_INFO => Request::GetTopicStatsInfo {
            topic: f.string("topic")?,
        },
        rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => Request::GetAllTopicListFromNameserver,
        rc::GET_BROKER_RUNTIME_INFO => Request::GetBrokerRuntimeInfo,
        rc::INVOKE_BROKER_TO_RESET_OFFSET => {
            Request::InvokeBrokerToResetOffset(reset_offset_header(&f)?)
        }
        rc::RESET_CONSUMER_CLIENT_OFFSET => {
            let offset_table = bodies::reset_offset_from_json(&cmd.body).map_err(|reason| {
                MappingError::InvalidBody {
                    code: f.code,
                    reason,
                }
            })?;
            Request::ResetConsumerClientOffset(ResetOffset {
                offset_table,
                ..reset_offset_header(&f)?
            })
        }
        rc::GET_CONSUME_STATS => Request::GetConsumeStats {
            consumer_group: f.string("consumerGroup")?,
            topic: f.opt_non_empty("topic"),
        },
        other => return Err(MappingError::UnsupportedRequestCode(other)),
    };
    Ok(request)
}

/// Whether `request` travels as a remoting command (everything but the HA stream).
pub fn is_remoting(request: &Request) -> bool {
    !matches!(
        request,
        Request::HaReport { .. } | Request::HaTransfer { .. }
    )
}

/// Whether RocketMQ sends `request` oneway (flag ONEWAY, never answered): a client's
/// UPDATE_CONSUMER_OFFSET (`updateConsumerOffsetOneway`) and the broker's
/// NOTIFY_CONSUMER_IDS_CHANGED and RESET_CONSUMER_CLIENT_OFFSET. The model sends these without waiting for an answer,
/// and its broker answers no UPDATE_CONSUMER_OFFSET; a client that sends one as a
/// two-way request (the C++ client does) expects SUCCESS, which the runtime must give.
pub fn rocketmq_sends_oneway(request: &Request) -> bool {
    request.is_oneway() && is_remoting(request)
}

/// Client side: `request` as a wire command (JSON header, as Java clients send).
///
/// # Panics
/// For HA_REPORT / HA_TRANSFER, which the runtime must carry on the HA channel (check
/// with [`is_remoting`]); use [`try_request_to_wire`] to get the error instead.
pub fn request_to_wire(opaque: u32, request: &Request, oneway: bool) -> RemotingCommand {
    try_request_to_wire(opaque, request, oneway).unwrap_or_else(|e| panic!("{e}"))
}

/// [`request_to_wire`], refusing the HA stream with [`MappingError::NotRemoting`].
pub fn try_request_to_wire(
    opaque: u32,
    request: &Request,
    oneway: bool,
) -> Result<RemotingCommand, MappingError> {
    let mut body = Vec::new();
    let ext_fields = match request {
        Request::SendMessage(m) => {
            body = m.body.clone();
            send_header_fields(m, false)
        }
        Request::SendBatchMessage(b) => {
            body = batch_body::encode(&b.messages).map_err(|reason| MappingError::InvalidBody {
                code: request.code(),
                reason,
            })?;
            send_header_fields(&b.header, true)
        }
        Request::PullMessage(p) => {
            let mut fields = ext([
                ("consumerGroup", p.consumer_group.clone()),
                ("topic", p.topic.clone()),
                ("queueId", p.queue_id.to_string()),
                ("queueOffset", p.queue_offset.to_string()),
                ("maxMsgNums", p.max_msg_nums.to_string()),
                ("sysFlag", p.sys_flag.to_string()),
                ("commitOffset", p.commit_offset.to_string()),
                ("suspendTimeoutMillis", p.suspend_timeout_ms.to_string()),
                // Required by Java's header; only compared when the pull carries no
                // subscription, and ours always does.
                ("subVersion", "0".into()),
                ("expressionType", "TAG".into()),
            ]);
            if let Some(s) = &p.subscription {
                fields.insert("subscription".into(), s.clone());
            }
            fields
        }
        Request::QueryConsumerOffset(key) => queue_key_fields(key),
        Request::UpdateConsumerOffset { key, offset } => {
            let mut fields = queue_key_fields(key);
            fields.insert("commitOffset".into(), offset.to_string());
            fields
        }
        Request::GetMaxOffset { topic, queue_id } | Request::GetMinOffset { topic, queue_id } => {
            ext([("topic", topic.clone()), ("queueId", queue_id.to_string())])
        }
        Request::UpdateAndCreateTopic(t) => ext([
            ("topic", t.topic_name.clone()),
            ("defaultTopic", AUTO_CREATE_TOPIC_KEY.to_string()),
            ("readQueueNums", t.read_queue_nums.to_string()),
            ("writeQueueNums", t.write_queue_nums.to_string()),
            ("perm", t.perm.to_string()),
            ("topicFilterType", t.topic_filter_type.clone()),
            ("topicSysFlag", t.topic_sys_flag.to_string()),
            ("order", t.order.to_string()),
        ]),
        Request::ViewMessageById { commit_log_offset } => {
            ext([("offset", commit_log_offset.to_string())])
        }
        Request::GetTopicStatsInfo { topic } => ext([("topic", topic.clone())]),
        Request::InvokeBrokerToResetOffset(r) => reset_offset_fields(r),
        Request::ResetConsumerClientOffset(r) => {
            body = bodies::reset_offset_to_json(&r.offset_table);
            reset_offset_fields(r)
        }
        Request::GetAllTopicListFromNameserver | Request::GetBrokerRuntimeInfo => ext([]),
        Request::GetConsumeStats {
            consumer_group,
            topic,
        } => {
            let mut fields = ext([("consumerGroup", consumer_group.clone())]);
            if let Some(t) = topic {
                fields.insert("topic".into(), t.clone());
            }
            fields
        }
        Request::HeartBeat(data) => {
            body = bodies::heartbeat_to_json(data);
            ext([])
        }
        Request::UnregisterClient {
            client_id,
            producer_group,
            consumer_group,
        } => {
            let mut fields = ext([("clientID", client_id.clone())]);
            if let Some(g) = producer_group {
                fields.insert("producerGroup".into(), g.clone());
            }
            if let Some(g) = consumer_group {
                fields.insert("consumerGroup".into(), g.clone());
            }
            fields
        }
        Request::GetConsumerListByGroup { consumer_group }
        | Request::NotifyConsumerIdsChanged { consumer_group } => {
            ext([("consumerGroup", consumer_group.clone())])
        }
        Request::GetAllConsumerOffset
        | Request::GetAllDelayOffset
        | Request::GetBrokerClusterInfo => ext([]),
        Request::ConsumerSendMsgBack(b) => consumer_send_msg_back_fields(b),
        Request::LockBatchMq(b) | Request::UnlockBatchMq(b) => {
            body = bodies::lock_batch_to_json(b);
            ext([])
        }
        Request::RegisterBroker(r) => {
            body = bodies::to_json(&RegisterBrokerBody {
                topic_config_serialize_wrapper: TopicConfigTable {
                    topic_config_table: r.topic_config_table.clone(),
                    data_version: r.data_version.clone(),
                },
                filter_server_list: Vec::new(),
            });
            let mut fields = broker_identity_fields(&r.broker);
            fields.insert("haServerAddr".into(), r.ha_server_addr.clone());
            fields.insert("compressed".into(), "false".into());
            fields.insert("bodyCrc32".into(), bodies::body_crc32(&body).to_string());
            fields
        }
        Request::UnregisterBroker(b) => broker_identity_fields(b),
        Request::GetRouteInfoByTopic { topic } => ext([("topic", topic.clone())]),
        Request::HaReport { .. } => return Err(MappingError::NotRemoting("HA_REPORT")),
        Request::HaTransfer { .. } => return Err(MappingError::NotRemoting("HA_TRANSFER")),
    };
    Ok(RemotingCommand {
        code: request.code(),
        language: CLIENT_LANGUAGE.to_string(),
        version: CLIENT_VERSION,
        opaque,
        flag: if oneway { FLAG_ONEWAY } else { 0 },
        remark: None,
        ext_fields,
        body,
        serialize_type: SerializeType::Json,
    })
}

/// The header keys of one send request layout.
struct SendKeys {
    producer_group: &'static str,
    topic: &'static str,
    default_topic: &'static str,
    default_topic_queue_nums: &'static str,
    queue_id: &'static str,
    sys_flag: &'static str,
    born_timestamp: &'static str,
    flag: &'static str,
    properties: &'static str,
    reconsume_times: &'static str,
    unit_mode: &'static str,
    max_reconsume_times: &'static str,
    batch: &'static str,
}

/// `SendMessageRequestHeader` (code 10).
const LONG_SEND_KEYS: SendKeys = SendKeys {
    producer_group: "producerGroup",
    topic: "topic",
    default_topic: "defaultTopic",
    default_topic_queue_nums: "defaultTopicQueueNums",
    queue_id: "queueId",
    sys_flag: "sysFlag",
    born_timestamp: "bornTimestamp",
    flag: "flag",
    properties: "properties",
    reconsume_times: "reconsumeTimes",
    unit_mode: "unitMode",
    max_reconsume_times: "maxReconsumeTimes",
    batch: "batch",
};

/// `SendMessageRequestHeaderV2` (codes 310, 320): the same fields, one letter each.
const V2_SEND_KEYS: SendKeys = SendKeys {
    producer_group: "a",
    topic: "b",
    default_topic: "c",
    default_topic_queue_nums: "d",
    queue_id: "e",
    sys_flag: "f",
    born_timestamp: "g",
    flag: "h",
    properties: "i",
    reconsume_times: "j",
    unit_mode: "k",
    max_reconsume_times: "l",
    batch: "m",
};

fn lock_batch(f: &Fields, body: &[u8]) -> Result<LockBatch, MappingError> {
    bodies::lock_batch_from_json(body).map_err(|reason| MappingError::InvalidBody {
        code: f.code,
        reason,
    })
}

/// A send request's header (V2 keys, as Java clients send), `batch` as given.
fn send_header_fields(m: &SendMessage, batch: bool) -> std::collections::BTreeMap<String, String> {
    let k = &V2_SEND_KEYS;
    let mut fields = ext([
        (k.producer_group, m.producer_group.clone()),
        (k.topic, m.topic.clone()),
        (k.default_topic, m.default_topic.clone()),
        (
            k.default_topic_queue_nums,
            m.default_topic_queue_nums.to_string(),
        ),
        (k.queue_id, m.queue_id.to_string()),
        (k.sys_flag, m.sys_flag.to_string()),
        (k.born_timestamp, m.born_timestamp_ms.to_string()),
        (k.flag, m.flag.to_string()),
        (k.properties, m.properties.clone()),
        (k.reconsume_times, m.reconsume_times.to_string()),
        (k.unit_mode, "false".into()),
        (k.batch, batch.to_string()),
    ]);
    if let Some(max) = m.max_reconsume_times {
        fields.insert(k.max_reconsume_times.to_string(), max.to_string());
    }
    fields
}

/// SEND_MESSAGE, SEND_MESSAGE_V2 or SEND_BATCH_MESSAGE with the header keys `k`: one
/// message, or with `batch` set, the messages of a batch body sharing the header.
fn send_message(f: &Fields, k: &SendKeys, body: &[u8]) -> Result<Request, MappingError> {
    let batch = f.flag(k.batch)?;
    let header = send_header(f, k, if batch { &[] } else { body })?;
    if !batch {
        return Ok(Request::SendMessage(header));
    }
    let messages = batch_body::decode(body).map_err(|reason| MappingError::InvalidBody {
        code: f.code,
        reason: format!("batch: {reason}"),
    })?;
    Ok(Request::SendBatchMessage(SendBatchMessage {
        header,
        messages,
    }))
}

fn send_header(f: &Fields, k: &SendKeys, body: &[u8]) -> Result<SendMessage, MappingError> {
    Ok(SendMessage {
        producer_group: f.string(k.producer_group)?,
        topic: f.string(k.topic)?,
        default_topic: f.string(k.default_topic)?,
        default_topic_queue_nums: f.num(k.default_topic_queue_nums)?,
        queue_id: f.num(k.queue_id)?,
        sys_flag: f.num(k.sys_flag)?,
        born_timestamp_ms: f.num(k.born_timestamp)?,
        born_host: String::new(),
        flag: f.num(k.flag)?,
        properties: f.opt_str(k.properties).unwrap_or("").to_string(),
        reconsume_times: f.num_or(k.reconsume_times, 0)?,
        max_reconsume_times: opt_num(f, k.max_reconsume_times)?,
        body: body.to_vec(),
    })
}

/// An optional numeric header field: absent or empty is `None`.
fn opt_num(f: &Fields, key: &'static str) -> Result<Option<i32>, MappingError> {
    match f.opt_non_empty(key) {
        None => Ok(None),
        Some(_) => Ok(Some(f.num(key)?)),
    }
}

/// `ConsumerSendMsgBackRequestHeader`: offset, group and delayLevel required.
fn consumer_send_msg_back(f: &Fields) -> Result<Request, MappingError> {
    let max_reconsume_times = opt_num(f, "maxReconsumeTimes")?;
    Ok(Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
        offset: f.num("offset")?,
        group: f.string("group")?,
        delay_level: f.num("delayLevel")?,
        origin_msg_id: f.opt_non_empty("originMsgId"),
        origin_topic: f.opt_non_empty("originTopic"),
        unit_mode: f.flag("unitMode")?,
        max_reconsume_times,
    }))
}

fn consumer_send_msg_back_fields(
    b: &ConsumerSendMsgBack,
) -> std::collections::BTreeMap<String, String> {
    let mut fields = ext([
        ("offset", b.offset.to_string()),
        ("group", b.group.clone()),
        ("delayLevel", b.delay_level.to_string()),
        ("unitMode", b.unit_mode.to_string()),
    ]);
    let optional = [
        ("originMsgId", b.origin_msg_id.clone()),
        ("originTopic", b.origin_topic.clone()),
        (
            "maxReconsumeTimes",
            b.max_reconsume_times.map(|t| t.to_string()),
        ),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            fields.insert(key.to_string(), value);
        }
    }
    fields
}

fn pull_message(f: &Fields) -> Result<Request, MappingError> {
    // `ExpressionType.isTagType`: null, "" or TAG.
    if let Some(t) = f
        .opt_str("expressionType")
        .filter(|t| !t.is_empty() && *t != "TAG")
    {
        return Err(MappingError::Unsupported {
            code: f.code,
            reason: format!("The broker does not support consumer to filter message by {t}"),
            response_code: response_code::SYSTEM_ERROR,
        });
    }
    Ok(Request::PullMessage(PullMessage {
        consumer_group: f.string("consumerGroup")?,
        topic: f.string("topic")?,
        queue_id: f.num("queueId")?,
        queue_offset: f.num("queueOffset")?,
        max_msg_nums: f.num("maxMsgNums")?,
        sys_flag: f.num("sysFlag")?,
        commit_offset: f.num("commitOffset")?,
        suspend_timeout_ms: f.num("suspendTimeoutMillis")?,
        subscription: f.opt_str("subscription").map(str::to_string),
    }))
}

/// `ResetOffsetRequestHeader` (the offset table, if any, is the body's).
fn reset_offset_header(f: &Fields) -> Result<ResetOffset, MappingError> {
    Ok(ResetOffset {
        topic: f.string("topic")?,
        consumer_group: f.string("group")?,
        timestamp_ms: f.num("timestamp")?,
        force: f.flag("isForce")?,
        offset_table: Default::default(),
    })
}

fn reset_offset_fields(r: &ResetOffset) -> std::collections::BTreeMap<String, String> {
    ext([
        ("topic", r.topic.clone()),
        ("group", r.consumer_group.clone()),
        ("timestamp", r.timestamp_ms.to_string()),
        ("isForce", r.force.to_string()),
    ])
}

/// `CreateTopicRequestHeader`; `defaultTopic` is read past (RocketMQ ignores it too).
fn create_topic(f: &Fields) -> Result<Request, MappingError> {
    Ok(Request::UpdateAndCreateTopic(TopicConfig {
        topic_name: f.string("topic")?,
        read_queue_nums: f.num("readQueueNums")?,
        write_queue_nums: f.num("writeQueueNums")?,
        perm: f.num("perm")?,
        topic_filter_type: f
            .opt_non_empty("topicFilterType")
            .unwrap_or_else(|| TopicConfig::default().topic_filter_type),
        topic_sys_flag: f.num_or("topicSysFlag", 0)?,
        order: f.flag("order")?,
    }))
}

fn queue_key(f: &Fields) -> Result<QueueKey, MappingError> {
    Ok(QueueKey {
        consumer_group: f.string("consumerGroup")?,
        topic: f.string("topic")?,
        queue_id: f.num("queueId")?,
    })
}

fn queue_key_fields(key: &QueueKey) -> std::collections::BTreeMap<String, String> {
    ext([
        ("consumerGroup", key.consumer_group.clone()),
        ("topic", key.topic.clone()),
        ("queueId", key.queue_id.to_string()),
    ])
}

fn broker_identity(f: &Fields) -> Result<BrokerIdentity, MappingError> {
    Ok(BrokerIdentity {
        cluster_name: f.string("clusterName")?,
        broker_name: f.string("brokerName")?,
        broker_addr: f.string("brokerAddr")?,
        broker_id: f.num("brokerId")?,
    })
}

fn broker_identity_fields(b: &BrokerIdentity) -> std::collections::BTreeMap<String, String> {
    ext([
        ("clusterName", b.cluster_name.clone()),
        ("brokerName", b.broker_name.clone()),
        ("brokerAddr", b.broker_addr.clone()),
        ("brokerId", b.broker_id.to_string()),
    ])
}

fn register_broker(f: &Fields, body: &[u8]) -> Result<Request, MappingError> {
    let broker = broker_identity(f)?;
    let ha_server_addr = f.string("haServerAddr")?;
    if f.flag("compressed")? {
        return Err(MappingError::Unsupported {
            code: f.code,
            reason: "compressed RegisterBrokerBody (compressedRegister=true)".into(),
            response_code: response_code::SYSTEM_ERROR,
        });
    }
    let crc: i64 = f.num_or("bodyCrc32", 0)?;
    if crc != 0 && crc != i64::from(bodies::body_crc32(body)) {
        return Err(MappingError::InvalidBody {
            code: f.code,
            reason: format!(
                "crc32 not match: header {crc}, body {}",
                bodies::body_crc32(body)
            ),
        });
    }
    // Java reads no body as an empty topic table.
    let wrapper = if body.is_empty() {
        TopicConfigTable::default()
    } else {
        fastjson::from_slice::<RegisterBrokerBody>(body)
            .map_err(|reason| MappingError::InvalidBody {
                code: f.code,
                reason,
            })?
            .topic_config_serialize_wrapper
    };
    Ok(Request::RegisterBroker(RegisterBroker {
        broker,
        ha_server_addr,
        topic_config_table: wrapper.topic_config_table,
        data_version: wrapper.data_version,
    }))
}
