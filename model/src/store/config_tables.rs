//! The JSON shapes of RocketMQ's config files, as its `ConfigManager` subclasses write
//! them, so a RocketMQ store directory loads here and ours loads there. Unknown fields
//! are ignored; missing ones take RocketMQ's defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const TOPICS_PATH: &str = "config/topics.json";
pub const CONSUMER_OFFSET_PATH: &str = "config/consumerOffset.json";
pub const DELAY_OFFSET_PATH: &str = "config/delayOffset.json";

/// `DataVersion`: bumped on every change so name servers can tell new from old.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DataVersion {
    pub timestamp: i64,
    pub counter: i64,
}

/// `TopicConfig` (perm: 2 = write, 4 = read, 6 = both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: u32,
    pub write_queue_nums: u32,
    pub perm: u32,
    pub topic_filter_type: String,
    pub topic_sys_flag: u32,
    pub order: bool,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            topic_name: String::new(),
            read_queue_nums: 16,
            write_queue_nums: 16,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".to_string(),
            topic_sys_flag: 0,
            order: false,
        }
    }
}

/// `config/topics.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TopicConfigTable {
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
}

/// `config/consumerOffset.json`: `"topic@group"` → queue id → next offset to consume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ConsumerOffsetTable {
    pub offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// `config/delayOffset.json`: delay level → offset reached in `SCHEDULE_TOPIC_XXXX`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DelayOffsetTable {
    pub offset_table: BTreeMap<i32, i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rocketmq_written_files() {
        let topics = r#"{"dataVersion":{"counter":3,"timestamp":1700000000000},
            "topicConfigTable":{"TopicTest":{"order":false,"perm":6,"readQueueNums":4,
            "topicFilterType":"SINGLE_TAG","topicName":"TopicTest","topicSysFlag":0,
            "writeQueueNums":4,"attributes":{}}}}"#;
        let t: TopicConfigTable = serde_json::from_str(topics).unwrap();
        assert_eq!(t.topic_config_table["TopicTest"].read_queue_nums, 4);
        assert_eq!(t.data_version.counter, 3);
        let offsets = r#"{"offsetTable":{"TopicTest@g1":{"0":250,"1":3}}}"#;
        let o: ConsumerOffsetTable = serde_json::from_str(offsets).unwrap();
        assert_eq!(o.offset_table["TopicTest@g1"][&1], 3);
        let back = serde_json::to_string(&o).unwrap();
        assert_eq!(back, r#"{"offsetTable":{"TopicTest@g1":{"0":250,"1":3}}}"#);
    }
}
