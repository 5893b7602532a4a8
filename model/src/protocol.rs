//! Typed requests and responses that nodes exchange. Each request is one RocketMQ
//! remoting request code (reference G.4) and carries the same fields as its header and
//! body; the real runtime maps them to frames, the simulator passes them as values.
//!
//! So far: the name server's requests (reference F). Broker and client requests join as
//! those roles are built.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::store::config_tables::{DataVersion, TopicConfig};

/// RocketMQ request codes (`RequestCode`).
pub mod request_code {
    pub const REGISTER_BROKER: i32 = 103;
    pub const UNREGISTER_BROKER: i32 = 104;
    pub const GET_ROUTEINFO_BY_TOPIC: i32 = 105;
    pub const GET_BROKER_CLUSTER_INFO: i32 = 106;
}

/// RocketMQ response codes (`ResponseCode`, `RemotingSysResponseCode`).
pub mod response_code {
    pub const SUCCESS: i32 = 0;
    pub const SYSTEM_ERROR: i32 = 1;
    pub const TOPIC_NOT_EXIST: i32 = 17;
}

/// What travels between nodes: a request, or the response to the request with the same
/// `opaque` (remoting's request id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request { opaque: u32, request: Request },
    Response { opaque: u32, response: Response },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    RegisterBroker(RegisterBroker),
    UnregisterBroker(BrokerIdentity),
    GetRouteInfoByTopic { topic: String },
    GetBrokerClusterInfo,
}

impl Request {
    pub fn code(&self) -> i32 {
        match self {
            Request::RegisterBroker(_) => request_code::REGISTER_BROKER,
            Request::UnregisterBroker(_) => request_code::UNREGISTER_BROKER,
            Request::GetRouteInfoByTopic { .. } => request_code::GET_ROUTEINFO_BY_TOPIC,
            Request::GetBrokerClusterInfo => request_code::GET_BROKER_CLUSTER_INFO,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    RegisterBroker(RegisterBrokerResult),
    UnregisterBroker,
    Route(TopicRouteData),
    ClusterInfo(ClusterInfo),
    /// Any failure: a RocketMQ response code and its remark.
    Error {
        code: i32,
        remark: String,
    },
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
/// which every RocketMQ client accepts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

/// `ClusterInfo`, the body of a GET_BROKER_CLUSTER_INFO response.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
        assert_eq!(Request::GetBrokerClusterInfo.code(), 106);
    }
}
