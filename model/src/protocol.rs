//! Typed requests and responses that nodes exchange. Each request is one RocketMQ
//! remoting request code (reference G.4) and carries the same fields as its header and
//! body; the real runtime maps them to frames, the simulator passes them as values.
//!
//! The name server's requests (reference F), the broker's client-facing requests
//! (send, pull, consumer offsets, heartbeat, consumer list; reference C, D, G.4) and the
//! master/slave replication stream (reference A.8), which RocketMQ carries on its own HA
//! port rather than as remoting frames.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use crate::admin::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
pub use crate::message_queue::MessageQueue;
use crate::store::config_tables::{ConsumerOffsetTable, DataVersion, TopicConfig};

/// RocketMQ request codes (`RequestCode`).
pub mod request_code {
    /// The first send request: long header keys (`SendMessageRequestHeader`). Decoded
    /// into the same [`super::Request::SendMessage`] as SEND_MESSAGE_V2.
    pub const SEND_MESSAGE: i32 = 10;
    pub const PULL_MESSAGE: i32 = 11;
    pub const QUERY_CONSUMER_OFFSET: i32 = 14;
    pub const UPDATE_CONSUMER_OFFSET: i32 = 15;
    /// Admin: create or update a topic's config on one broker.
    pub const UPDATE_AND_CREATE_TOPIC: i32 = 17;
    pub const GET_MAX_OFFSET: i32 = 30;
    pub const GET_MIN_OFFSET: i32 = 31;
    /// Admin: the stored record at a commit-log offset (the offset in a message id).
    pub const VIEW_MESSAGE_BY_ID: i32 = 33;
    pub const HEART_BEAT: i32 = 34;
    pub const UNREGISTER_CLIENT: i32 = 35;
    /// A consumer hands a message its listener failed back to the broker (reference
    /// C.5): [`super::Request::ConsumerSendMsgBack`].
    pub const CONSUMER_SEND_MSG_BACK: i32 = 36;
    pub const GET_CONSUMER_LIST_BY_GROUP: i32 = 38;
    pub const NOTIFY_CONSUMER_IDS_CHANGED: i32 = 40;
    /// Orderly consumers lock the queues they consume (reference C.6).
    pub const LOCK_BATCH_MQ: i32 = 41;
    pub const UNLOCK_BATCH_MQ: i32 = 42;
    /// A slave's `SlaveSynchronize.syncConsumerOffset` asks its master for every offset.
    pub const GET_ALL_CONSUMER_OFFSET: i32 = 43;
    /// A slave's `SlaveSynchronize.syncDelayOffset` asks its master for
    /// `delayOffset.json`.
    pub const GET_ALL_DELAY_OFFSET: i32 = 45;
    pub const SEND_MESSAGE_V2: i32 = 310;
    /// Several messages in one body (the compact batch format, reference D), with the
    /// V2 header: [`super::Request::SendBatchMessage`].
    pub const SEND_BATCH_MESSAGE: i32 = 320;
    pub const REGISTER_BROKER: i32 = 103;
    pub const UNREGISTER_BROKER: i32 = 104;
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
    /// Admin: every queue's min and max offset of a topic on one broker.
    pub const GET_TOPIC_STATS_INFO: i32 = 202;
    pub const GET_BROKER_RUNTIME_INFO: i32 = 28;
    /// Admin: every topic a name server knows.
    pub const GET_ALL_TOPIC_LIST_FROM_NAMESERVER: i32 = 206;
    /// Admin: a consumer group's progress on one broker.
    pub const GET_CONSUME_STATS: i32 = 208;
    /// Broker → consumer, oneway: consume these queues from these offsets now.
    pub const RESET_CONSUMER_CLIENT_OFFSET: i32 = 220;
    /// Admin: rewind (or advance) a group on one broker to a point in time.
    pub const INVOKE_BROKER_TO_RESET_OFFSET: i32 = 222;
}

/// RocketMQ response codes (`ResponseCode`, `RemotingSysResponseCode`).
pub mod response_code {
    pub const SUCCESS: i32 = 0;
    pub const SYSTEM_ERROR: i32 = 1;
    pub const SYSTEM_BUSY: i32 = 2;
    pub const REQUEST_CODE_NOT_SUPPORTED: i32 = 3;
    pub const FLUSH_DISK_TIMEOUT: i32 = 10;
    pub const SLAVE_NOT_AVAILABLE: i32 = 11;
    pub const FLUSH_SLAVE_TIMEOUT: i32 = 12;
    pub const MESSAGE_ILLEGAL: i32 = 13;
    pub const SERVICE_NOT_AVAILABLE: i32 = 14;
    pub const NO_PERMISSION: i32 = 16;
    pub const TOPIC_NOT_EXIST: i32 = 17;
    pub const PULL_NOT_FOUND: i32 = 19;
    pub const PULL_RETRY_IMMEDIATELY: i32 = 20;
    pub const PULL_OFFSET_MOVED: i32 = 21;
    pub const QUERY_NOT_FOUND: i32 = 22;
}

/// `PullSysFlag` bits of a PULL_MESSAGE request.
pub mod pull_sys_flag {
    pub const COMMIT_OFFSET: u32 = 0x1;
    pub const SUSPEND: u32 = 0x2;
    pub const SUBSCRIPTION: u32 = 0x4;
}

/// Topic permissions (`PermName`).
pub mod perm {
    pub const WRITE: u32 = 2;
    pub const READ: u32 = 4;
}

/// What travels between nodes: a request, or the response to the request with the same
/// `opaque` (remoting's request id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request { opaque: u32, request: Request },
    Response { opaque: u32, response: Response },
}

impl Message {
    /// A 64-bit digest of the message for run fingerprints: its kind and key fields,
    /// and the CRC of any payload. Cheap enough to compute for every packet.
    pub fn digest(&self) -> u64 {
        let mix = |h: u64, v: u64| (h ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
        let (opaque, side, fields): (u32, u64, [u64; 3]) = match self {
            Message::Request { opaque, request } => {
                let f = match request {
                    Request::SendMessage(m) => [
                        m.queue_id as u64,
                        m.body.len() as u64,
                        u64::from(crc32fast::hash(&m.body)),
                    ],
                    Request::PullMessage(p) => [p.queue_id as u64, p.queue_offset, p.commit_offset],
                    Request::UpdateConsumerOffset { key, offset } => {
                        [key.queue_id as u64, *offset, 0]
                    }
                    Request::HaReport { slave_max_offset } => [*slave_max_offset, 0, 0],
                    Request::HaTransfer {
                        master_offset,
                        data,
                    } => [
                        *master_offset,
                        data.len() as u64,
                        u64::from(crc32fast::hash(data)),
                    ],
                    _ => [0, 0, 0],
                };
                (*opaque, request.code() as u64, f)
            }
            Message::Response { opaque, response } => {
                let f = match response {
                    Response::Send(s) => [s.code as u64, s.queue_id as u64, s.queue_offset],
                    Response::Pull(p) => [
                        p.code as u64,
                        p.next_begin_offset,
                        u64::from(crc32fast::hash(&p.records)),
                    ],
                    Response::Offset(o) => [*o, 0, 0],
                    Response::Error { code, .. } => [*code as u64, 0, 0],
                    Response::ConsumerList(ids) => [ids.len() as u64, 0, 0],
                    Response::DelayOffsets(text) => [
                        text.len() as u64,
                        u64::from(crc32fast::hash(text.as_bytes())),
                        0,
                    ],
                    Response::ConsumerOffsets(t) => [
                        t.offset_table.len() as u64,
                        t.offset_table
                            .values()
                            .flatten()
                            .fold(0u64, |h, (_, &o)| h.wrapping_add(o as u64)),
                        0,
                    ],
                    Response::Route(r) => {
                        [r.queue_datas.len() as u64, r.broker_datas.len() as u64, 0]
                    }
                    _ => [0, 0, 0],
                };
                (*opaque, 1 << 40, f)
            }
        };
        fields
            .iter()
            .fold(mix(u64::from(opaque), side), |h, &v| mix(h, v))
    }

    /// One short line for traces: what it is and its key fields, never whole bodies.
    pub fn summary(&self) -> String {
        match self {
            Message::Request { opaque, request } => {
                let what = match request {
                    Request::RegisterBroker(r) => format!(
                        "REGISTER_BROKER {}/{} id={} topics={}",
                        r.broker.broker_name,
                        r.broker.broker_addr,
                        r.broker.broker_id,
                        r.topic_config_table.len()
                    ),
                    Request::UnregisterBroker(b) => {
                        format!("UNREGISTER_BROKER {}/{}", b.broker_name, b.broker_addr)
                    }
                    Request::GetRouteInfoByTopic { topic } => format!("GET_ROUTE {topic}"),
                    Request::GetBrokerClusterInfo => "GET_CLUSTER_INFO".into(),
                    Request::SendMessage(m) => format!(
                        "SEND {}/{} {}B crc={:08x}",
                        m.topic,
                        m.queue_id,
                        m.body.len(),
                        crc32fast::hash(&m.body)
                    ),
                    Request::SendBatchMessage(b) => format!(
                        "SEND_BATCH {}/{} messages={}",
                        b.header.topic,
                        b.header.queue_id,
                        b.messages.len()
                    ),
                    Request::PullMessage(p) => format!(
                        "PULL {} {}/{}@{}",
                        p.consumer_group, p.topic, p.queue_id, p.queue_offset
                    ),
                    Request::QueryConsumerOffset(k) => {
                        format!(
                            "QUERY_OFFSET {} {}/{}",
                            k.consumer_group, k.topic, k.queue_id
                        )
                    }
                    Request::UpdateConsumerOffset { key, offset } => format!(
                        "UPDATE_OFFSET {} {}/{}={offset}",
                        key.consumer_group, key.topic, key.queue_id
                    ),
                    Request::GetMaxOffset { topic, queue_id } => {
                        format!("GET_MAX_OFFSET {topic}/{queue_id}")
                    }
                    Request::HeartBeat(h) => format!("HEART_BEAT {}", h.client_id),
                    Request::UnregisterClient {
                        client_id,
                        producer_group,
                        consumer_group,
                    } => format!(
                        "UNREGISTER_CLIENT {client_id} producer={} consumer={}",
                        producer_group.as_deref().unwrap_or("-"),
                        consumer_group.as_deref().unwrap_or("-")
                    ),
                    Request::GetConsumerListByGroup { consumer_group } => {
                        format!("GET_CONSUMER_LIST {consumer_group}")
                    }
                    Request::ConsumerSendMsgBack(b) => format!(
                        "SEND_MSG_BACK {} @{} level={}",
                        b.group, b.offset, b.delay_level
                    ),
                    Request::NotifyConsumerIdsChanged { consumer_group } => {
                        format!("NOTIFY_CONSUMER_IDS_CHANGED {consumer_group}")
                    }
                    Request::GetAllConsumerOffset => "GET_ALL_CONSUMER_OFFSET".into(),
                    Request::GetAllDelayOffset => "GET_ALL_DELAY_OFFSET".into(),
                    Request::UpdateAndCreateTopic(t) => format!(
                        "UPDATE_AND_CREATE_TOPIC {} r={} w={} perm={}",
                        t.topic_name, t.read_queue_nums, t.write_queue_nums, t.perm
                    ),
                    Request::GetMinOffset { topic, queue_id } => {
                        format!("GET_MIN_OFFSET {topic}/{queue_id}")
                    }
                    Request::ViewMessageById { commit_log_offset } => {
                        format!("VIEW_MESSAGE_BY_ID @{commit_log_offset}")
                    }
                    Request::GetTopicStatsInfo { topic } => format!("GET_TOPIC_STATS {topic}"),
                    Request::GetBrokerRuntimeInfo => "GET_BROKER_RUNTIME_INFO".into(),
                    Request::GetAllTopicListFromNameserver => "GET_ALL_TOPIC_LIST".into(),
                    Request::InvokeBrokerToResetOffset(r) => format!(
                        "RESET_OFFSET {} {} @{} force={}",
                        r.consumer_group, r.topic, r.timestamp_ms, r.force
                    ),
                    Request::ResetConsumerClientOffset(r) => format!(
                        "RESET_CONSUMER_CLIENT_OFFSET {} {} queues={}",
                        r.consumer_group,
                        r.topic,
                        r.offset_table.len()
                    ),
                    Request::GetConsumeStats {
                        consumer_group,
                        topic,
                    } => format!(
                        "GET_CONSUME_STATS {consumer_group} {}",
                        topic.as_deref().unwrap_or("*")
                    ),
                    Request::LockBatchMq(b) => format!(
                        "LOCK_BATCH_MQ {} {} queues={}",
                        b.consumer_group,
                        b.client_id,
                        b.queues.len()
                    ),
                    Request::UnlockBatchMq(b) => format!(
                        "UNLOCK_BATCH_MQ {} {} queues={}",
                        b.consumer_group,
                        b.client_id,
                        b.queues.len()
                    ),
                    Request::HaReport { slave_max_offset } => {
                        format!("HA_REPORT {slave_max_offset}")
                    }
                    Request::HaTransfer {
                        master_offset,
                        data,
                    } => format!(
                        "HA_TRANSFER @{master_offset} {}B crc={:08x}",
                        data.len(),
                        crc32fast::hash(data)
                    ),
                };
                format!("req#{opaque} {what}")
            }
            Message::Response { opaque, response } => {
                let what = match response {
                    Response::RegisterBroker(r) => {
                        format!("REGISTERED master={:?}", r.master_addr)
                    }
                    Response::UnregisterBroker => "UNREGISTERED".into(),
                    Response::Route(r) => format!(
                        "ROUTE queues={} brokers={}",
                        r.queue_datas.len(),
                        r.broker_datas.len()
                    ),
                    Response::ClusterInfo(c) => {
                        format!("CLUSTER_INFO brokers={}", c.broker_addr_table.len())
                    }
                    Response::Send(s) => format!(
                        "SEND code={} {}@{} {}",
                        s.code, s.queue_id, s.queue_offset, s.msg_id
                    ),
                    Response::Pull(p) => format!(
                        "PULL code={} next={} min={} max={} {}B crc={:08x}",
                        p.code,
                        p.next_begin_offset,
                        p.min_offset,
                        p.max_offset,
                        p.records.len(),
                        crc32fast::hash(&p.records)
                    ),
                    Response::Offset(o) => format!("OFFSET {o}"),
                    Response::HeartBeat => "HEART_BEAT_OK".into(),
                    Response::UnregisterClient => "UNREGISTERED_CLIENT".into(),
                    Response::ConsumerList(ids) => format!("CONSUMERS {}", ids.join(",")),
                    Response::DelayOffsets(text) => format!("DELAY_OFFSETS {text}"),
                    Response::ConsumerOffsets(t) => format!(
                        "CONSUMER_OFFSETS keys={} queues={}",
                        t.offset_table.len(),
                        t.offset_table.values().map(BTreeMap::len).sum::<usize>()
                    ),
                    Response::LockBatchMq(q) => format!("LOCKED queues={}", q.len()),
                    Response::UnlockBatchMq => "UNLOCKED".into(),
                    Response::ConsumerSendMsgBack => "SENT_BACK".into(),
                    Response::TopicUpdated => "TOPIC_UPDATED".into(),
                    Response::StoredMessage(bytes) => format!(
                        "STORED_MESSAGE {}B crc={:08x}",
                        bytes.len(),
                        crc32fast::hash(bytes)
                    ),
                    Response::TopicStats(t) => format!("TOPIC_STATS queues={}", t.len()),
                    Response::RuntimeInfo(t) => format!("RUNTIME_INFO entries={}", t.len()),
                    Response::ResetOffset(t) => format!("RESET_OFFSET queues={}", t.len()),
                    Response::TopicList(t) => format!("TOPIC_LIST topics={}", t.len()),
                    Response::ConsumeStats(c) => {
                        format!("CONSUME_STATS queues={}", c.offset_table.len())
                    }
                    Response::Error { code, remark } => format!("ERROR code={code} {remark}"),
                };
                format!("resp#{opaque} {what}")
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    RegisterBroker(RegisterBroker),
    UnregisterBroker(BrokerIdentity),
    GetRouteInfoByTopic {
        topic: String,
    },
    GetBrokerClusterInfo,
    SendMessage(SendMessage),
    /// Several messages to one queue of one topic, stored as consecutive records and
    /// answered once with [`Response::Send`].
    SendBatchMessage(SendBatchMessage),
    PullMessage(PullMessage),
    QueryConsumerOffset(QueueKey),
    /// Sent oneway by clients (no response expected; brokers answer nothing).
    UpdateConsumerOffset {
        key: QueueKey,
        offset: u64,
    },
    GetMaxOffset {
        topic: String,
        queue_id: i32,
    },
    HeartBeat(HeartbeatData),
    /// A client shutting down (`MQClientInstance.unregisterClient`): the broker drops
    /// the sending channel from the consumer group, so the group rebalances at once
    /// rather than after the 120 s channel expiry. Answered with
    /// [`Response::UnregisterClient`].
    UnregisterClient {
        client_id: String,
        /// None: not a producer (RocketMQ: null; the C++ client sends "").
        producer_group: Option<String>,
        /// None: not a consumer.
        consumer_group: Option<String>,
    },
    GetConsumerListByGroup {
        consumer_group: String,
    },
    /// A consumer hands back a message its listener failed, answered with
    /// [`Response::ConsumerSendMsgBack`] once the retry (or dead-letter) copy is stored.
    ConsumerSendMsgBack(ConsumerSendMsgBack),
    /// Broker → consumer, oneway: the group's membership changed; rebalance now.
    NotifyConsumerIdsChanged {
        consumer_group: String,
    },
    /// Slave → master (`SlaveSynchronize`): every consumer offset the master holds,
    /// answered with [`Response::ConsumerOffsets`].
    GetAllConsumerOffset,
    /// Slave → master (`SlaveSynchronize`): the master's `delayOffset.json` as
    /// persisted, answered with [`Response::DelayOffsets`].
    GetAllDelayOffset,
    /// An orderly consumer asks for the queues it is to consume (`LockBatchRequestBody`),
    /// answered with [`Response::LockBatchMq`]: those now locked for it.
    LockBatchMq(LockBatch),
    /// An orderly consumer lets go of queues (`UnlockBatchRequestBody`), answered with
    /// [`Response::UnlockBatchMq`].
    UnlockBatchMq(LockBatch),
    /// Admin: create `topic_name`, or replace its config (UPDATE_AND_CREATE_TOPIC's
    /// `CreateTopicRequestHeader`), answered with [`Response::TopicUpdated`].
    UpdateAndCreateTopic(TopicConfig),
    /// The queue's first offset still stored, answered with [`Response::Offset`].
    GetMinOffset {
        topic: String,
        queue_id: i32,
    },
    /// Admin: the record at a commit-log offset, answered with
    /// [`Response::StoredMessage`].
    ViewMessageById {
        commit_log_offset: u64,
    },
    /// Admin: the topic's queues on this broker, answered with [`Response::TopicStats`].
    GetTopicStatsInfo {
        topic: String,
    },
    /// Admin: the broker's version, message counts and rates (`KVTable`), answered with
    /// [`Response::RuntimeInfo`].
    GetBrokerRuntimeInfo,
    /// Admin, to a name server: answered with [`Response::TopicList`].
    GetAllTopicListFromNameserver,
    /// Admin: a group's progress on this broker, on `topic` or on every topic it has
    /// offsets for; answered with [`Response::ConsumeStats`].
    GetConsumeStats {
        consumer_group: String,
        topic: Option<String>,
    },
    /// Admin: move `consumer_group`'s offsets on `topic` to where `timestamp_ms`
    /// falls in each queue, and tell the group's consumers; answered with
    /// [`Response::ResetOffset`].
    InvokeBrokerToResetOffset(ResetOffset),
    /// Broker → consumer, oneway: continue these queues from these offsets
    /// (`ResetOffsetBody`).
    ResetConsumerClientOffset(ResetOffset),
    /// Slave → master on the HA channel: "I hold the commit log up to here" (the 8-byte
    /// report of reference A.8). Sent on connect, every 5 s, and after applying data.
    HaReport {
        slave_max_offset: u64,
    },
    /// Master → slave on the HA channel: commit-log bytes as stored, starting at
    /// `master_offset` (the 12-byte header plus body of reference A.8). An empty body is
    /// a heartbeat carrying where the next batch to this slave starts.
    HaTransfer {
        master_offset: u64,
        data: Vec<u8>,
    },
}

impl Request {
    /// Whether the sender expects no response (remoting's ONEWAY flag): a node never
    /// answers these, and a driver must not wait for an answer.
    pub fn is_oneway(&self) -> bool {
        matches!(
            self,
            Request::UpdateConsumerOffset { .. }
                | Request::NotifyConsumerIdsChanged { .. }
                | Request::ResetConsumerClientOffset(_)
                | Request::HaReport { .. }
                | Request::HaTransfer { .. }
        )
    }

    pub fn code(&self) -> i32 {
        match self {
            Request::RegisterBroker(_) => request_code::REGISTER_BROKER,
            Request::UnregisterBroker(_) => request_code::UNREGISTER_BROKER,
            Request::GetRouteInfoByTopic { .. } => request_code::GET_ROUTEINFO_BY_TOPIC,
            Request::GetBrokerClusterInfo => request_code::GET_BROKER_CLUSTER_INFO,
            Request::SendMessage(_) => request_code::SEND_MESSAGE_V2,
            Request::SendBatchMessage(_) => request_code::SEND_BATCH_MESSAGE,
            Request::PullMessage(_) => request_code::PULL_MESSAGE,
            Request::QueryConsumerOffset(_) => request_code::QUERY_CONSUMER_OFFSET,
            Request::UpdateConsumerOffset { .. } => request_code::UPDATE_CONSUMER_OFFSET,
            Request::GetMaxOffset { .. } => request_code::GET_MAX_OFFSET,
            Request::HeartBeat(_) => request_code::HEART_BEAT,
            Request::UnregisterClient { .. } => request_code::UNREGISTER_CLIENT,
            Request::GetConsumerListByGroup { .. } => request_code::GET_CONSUMER_LIST_BY_GROUP,
            Request::ConsumerSendMsgBack(_) => request_code::CONSUMER_SEND_MSG_BACK,
            Request::NotifyConsumerIdsChanged { .. } => request_code::NOTIFY_CONSUMER_IDS_CHANGED,
            Request::GetAllConsumerOffset => request_code::GET_ALL_CONSUMER_OFFSET,
            Request::GetAllDelayOffset => request_code::GET_ALL_DELAY_OFFSET,
            Request::LockBatchMq(_) => request_code::LOCK_BATCH_MQ,
            Request::UnlockBatchMq(_) => request_code::UNLOCK_BATCH_MQ,
            Request::UpdateAndCreateTopic(_) => request_code::UPDATE_AND_CREATE_TOPIC,
            Request::GetMinOffset { .. } => request_code::GET_MIN_OFFSET,
            Request::ViewMessageById { .. } => request_code::VIEW_MESSAGE_BY_ID,
            Request::GetTopicStatsInfo { .. } => request_code::GET_TOPIC_STATS_INFO,
            Request::GetBrokerRuntimeInfo => request_code::GET_BROKER_RUNTIME_INFO,
            Request::GetAllTopicListFromNameserver => {
                request_code::GET_ALL_TOPIC_LIST_FROM_NAMESERVER
            }
            Request::GetConsumeStats { .. } => request_code::GET_CONSUME_STATS,
            Request::InvokeBrokerToResetOffset(_) => request_code::INVOKE_BROKER_TO_RESET_OFFSET,
            Request::ResetConsumerClientOffset(_) => request_code::RESET_CONSUMER_CLIENT_OFFSET,
            // Not remoting commands: RocketMQ's HA port has its own framing.
            Request::HaReport { .. } | Request::HaTransfer { .. } => -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    RegisterBroker(RegisterBrokerResult),
    UnregisterBroker,
    Route(TopicRouteData),
    ClusterInfo(ClusterInfo),
    /// SEND_MESSAGE_V2 answered with SUCCESS, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT or
    /// SLAVE_NOT_AVAILABLE: in all four the message is stored on the master.
    Send(SendResponse),
    /// PULL_MESSAGE answered with SUCCESS (FOUND), PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY
    /// or PULL_OFFSET_MOVED.
    Pull(PullResponse),
    /// QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET or GET_MIN_OFFSET answered with SUCCESS.
    Offset(u64),
    HeartBeat,
    /// UNREGISTER_CLIENT answered with SUCCESS.
    UnregisterClient,
    ConsumerList(Vec<String>),
    /// GET_ALL_CONSUMER_OFFSET's body (`ConsumerOffsetSerializeWrapper`'s offset table).
    ConsumerOffsets(ConsumerOffsetTable),
    /// GET_ALL_DELAY_OFFSET's body: the text of the master's `delayOffset.json`.
    DelayOffsets(String),
    /// LOCK_BATCH_MQ's `lockOKMQSet`: the queues locked for the asking client.
    LockBatchMq(BTreeSet<MessageQueue>),
    /// UNLOCK_BATCH_MQ answered with SUCCESS.
    UnlockBatchMq,
    /// CONSUMER_SEND_MSG_BACK answered with SUCCESS: the copy is stored.
    ConsumerSendMsgBack,
    /// UPDATE_AND_CREATE_TOPIC answered with SUCCESS.
    TopicUpdated,
    /// VIEW_MESSAGE_BY_ID's body: the record exactly as stored.
    StoredMessage(Vec<u8>),
    /// GET_TOPIC_STATS_INFO's body.
    TopicStats(TopicStatsTable),
    /// GET_BROKER_RUNTIME_INFO's `KVTable`: RocketMQ's names, values as strings.
    RuntimeInfo(BTreeMap<String, String>),
    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER's body (`TopicList.topicList`), in name order.
    TopicList(Vec<String>),
    /// GET_CONSUME_STATS's body.
    ConsumeStats(ConsumeStats),
    /// INVOKE_BROKER_TO_RESET_OFFSET's body (`ResetOffsetBody`): where each queue now
    /// starts.
    ResetOffset(BTreeMap<MessageQueue, u64>),
    /// Any failure: a RocketMQ response code and its remark.
    Error {
        code: i32,
        remark: String,
    },
}

/// `ResetOffsetRequestHeader` (and, from broker to consumer, `ResetOffsetBody`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResetOffset {
    pub topic: String,
    pub consumer_group: String,
    pub timestamp_ms: i64,
    /// `isForce`: move forward too; otherwise only queues whose offset goes back move.
    pub force: bool,
    /// Broker → consumer only: each queue's new offset (empty in the admin request).
    pub offset_table: BTreeMap<MessageQueue, u64>,
}

/// CONSUMER_SEND_MSG_BACK's header (`ConsumerSendMsgBackRequestHeader`, reference C.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerSendMsgBack {
    /// The failed message's commit-log offset on the broker asked.
    pub offset: u64,
    pub group: String,
    /// 0: the broker picks 3 + reconsumeTimes; below 0: straight to the DLQ.
    pub delay_level: i32,
    pub origin_msg_id: Option<String>,
    pub origin_topic: Option<String>,
    pub unit_mode: bool,
    /// None: the group's `retryMaxTimes` (16).
    pub max_reconsume_times: Option<i32>,
}

/// LOCK_BATCH_MQ's and UNLOCK_BATCH_MQ's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockBatch {
    pub consumer_group: String,
    pub client_id: String,
    /// `mqSet`.
    pub queues: BTreeSet<MessageQueue>,
}

/// SEND_MESSAGE_V2's header and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendMessage {
    pub producer_group: String,
    pub topic: String,
    /// `defaultTopic` (TBW102): the topic whose config an auto-created topic copies.
    pub default_topic: String,
    pub default_topic_queue_nums: u32,
    /// < 0: the broker picks one.
    pub queue_id: i32,
    pub sys_flag: i32,
    pub born_timestamp_ms: i64,
    /// `ip:port` of the sender, stored as the record's born host.
    pub born_host: String,
    pub flag: i32,
    /// Encoded `name\u{1}value\u{2}` pairs (TAGS, KEYS, UNIQ_KEY, WAIT, user properties).
    pub properties: String,
    pub reconsume_times: i32,
    /// `maxReconsumeTimes`: a send to `%RETRY%{group}` whose `reconsume_times` reached
    /// it is stored to `%DLQ%{group}` (an orderly consumer's copy past its maximum);
    /// `None`: the group's 16.
    pub max_reconsume_times: Option<i32>,
    pub body: Vec<u8>,
}

/// SEND_BATCH_MESSAGE (or a send whose header has `batch` set): RocketMQ's
/// `MessageExtBatch`. The header is shared by every message: topic, queue, sys flag,
/// born time and host, and properties that the broker appends to each message's own
/// (`MessageExtBatchEncoder`: the batch's `WAIT`, for one). Its `body` is empty and its
/// `flag` is only carried back to the wire: each message has its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendBatchMessage {
    pub header: SendMessage,
    pub messages: Vec<BatchMessage>,
}

/// What the compact batch format (`MessageDecoder.encodeMessages`) spends on a message
/// besides its body and properties: TOTALSIZE, MAGICCODE, BODYCRC, FLAG and the body
/// length (i32 each), and the properties length (i16).
pub const BATCH_MESSAGE_OVERHEAD_BYTES: usize = 5 * 4 + 2;

/// The length of a batch body holding `messages` in the compact format.
pub fn batch_body_len(messages: &[BatchMessage]) -> usize {
    messages
        .iter()
        .map(|m| BATCH_MESSAGE_OVERHEAD_BYTES + m.body.len() + m.properties.len())
        .sum()
}

/// One message of a batch, as `MessageDecoder.encodeMessages` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchMessage {
    pub flag: i32,
    /// Encoded `name\u{1}value\u{2}` pairs, its own `UNIQ_KEY` among them.
    pub properties: String,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResponse {
    /// SUCCESS, FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT or SLAVE_NOT_AVAILABLE.
    pub code: i32,
    /// The offset message id (store host + commit-log offset); for a batch, every
    /// message's, joined with ",".
    pub msg_id: String,
    pub queue_id: i32,
    /// For a batch, the first message's.
    pub queue_offset: u64,
}

/// PULL_MESSAGE's header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullMessage {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: u64,
    pub max_msg_nums: u32,
    /// [`pull_sys_flag`] bits.
    pub sys_flag: u32,
    /// The consumer's in-memory offset, stored by the broker when COMMIT_OFFSET is set.
    pub commit_offset: u64,
    pub suspend_timeout_ms: u64,
    /// The tag expression (`*` or `a || b`), when SUBSCRIPTION is set.
    pub subscription: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullResponse {
    /// SUCCESS (FOUND), PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY or PULL_OFFSET_MOVED.
    pub code: i32,
    pub next_begin_offset: u64,
    pub min_offset: u64,
    pub max_offset: u64,
    /// 0 = pull from the master next time, 1 = from a slave.
    pub suggest_which_broker_id: u64,
    /// The stored commit-log records, concatenated exactly as stored.
    pub records: Vec<u8>,
}

/// (group, topic, queue): the key of QUERY/UPDATE_CONSUMER_OFFSET.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct QueueKey {
    pub consumer_group: String,
    pub topic: String,
    pub queue_id: i32,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageModel {
    Clustering,
    Broadcasting,
}

/// One consumer group's part of `HeartbeatData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerData {
    pub group_name: String,
    pub message_model: MessageModel,
    /// topic → tag expression.
    pub subscriptions: BTreeMap<String, String>,
}

/// HEART_BEAT's body: who the client is and which groups it consumes for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatData {
    pub client_id: String,
    pub consumers: Vec<ConsumerData>,
}

/// Which broker: the header fields REGISTER_BROKER and UNREGISTER_BROKER share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerIdentity {
    pub cluster_name: String,
    pub broker_name: String,
    /// `ip:port`.
    pub broker_addr: String,
    /// 0 = master, > 0 = slave.
    pub broker_id: u64,
}

/// REGISTER_BROKER: the header plus `RegisterBrokerBody`'s topic config wrapper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterBroker {
    pub broker: BrokerIdentity,
    pub ha_server_addr: String,
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
}

/// A slave learns its master from the registration response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegisterBrokerResult {
    pub master_addr: Option<String>,
    pub ha_server_addr: Option<String>,
}

/// `QueueData`: one broker's queues of a topic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: u32,
    pub write_queue_nums: u32,
    pub perm: u32,
    /// RocketMQ before 4.9 spelled it `topicSynFlag`; 4.9 and 5.x write `topicSysFlag`.
    #[serde(alias = "topicSynFlag")]
    pub topic_sys_flag: u32,
}

/// `BrokerData`: a broker group's addresses by broker id (0 = master).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    pub broker_addrs: BTreeMap<u64, String>,
}

impl BrokerData {
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&0).map(String::as_str)
    }
}

/// `TopicRouteData`, the body of a GET_ROUTEINFO_BY_TOPIC response (quoted JSON keys,
/// which every RocketMQ client accepts). A field fastjson left out (it omits nulls)
/// reads as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicRouteData {
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

/// `ClusterInfo`, the body of a GET_BROKER_CLUSTER_INFO response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClusterInfo {
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_data_serializes_in_rocketmq_shape() {
        let route = TopicRouteData {
            order_topic_conf: None,
            queue_datas: vec![QueueData {
                broker_name: "broker-a".into(),
                read_queue_nums: 4,
                write_queue_nums: 4,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addrs: BTreeMap::from([(0, "10.0.0.1:10911".to_string())]),
            }],
            filter_server_table: BTreeMap::new(),
        };
        let json = serde_json::to_string(&route).unwrap();
        assert_eq!(
            json,
            r#"{"orderTopicConf":null,"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"10.0.0.1:10911"}}],"filterServerTable":{}}"#
        );
        assert_eq!(
            serde_json::from_str::<TopicRouteData>(&json).unwrap(),
            route
        );
        // fastjson omits null fields; RocketMQ before 4.9 wrote `topicSynFlag`.
        let old = r#"{"queueDatas":[{"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSynFlag":0}],"brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a","brokerAddrs":{"0":"10.0.0.1:10911"}}]}"#;
        assert_eq!(serde_json::from_str::<TopicRouteData>(old).unwrap(), route);
        assert_eq!(Request::GetBrokerClusterInfo.code(), 106);
        assert_eq!(Request::GetAllConsumerOffset.code(), 43);
    }
}
