//! The bodies of RocketMQ's admin answers (`remoting/protocol/admin`): a topic's
//! per-queue offsets (`TopicStatsTable`, GET_TOPIC_STATS_INFO) and a consumer group's
//! progress (`ConsumeStats`, GET_CONSUME_STATS). Keyed by [`MessageQueue`], as
//! RocketMQ's maps are; the wire shape (queues as JSON object keys) is the codec's.

use std::collections::BTreeMap;

use crate::message_queue::MessageQueue;

/// `TopicOffset`: one queue's bounds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicOffset {
    pub min_offset: u64,
    /// The next offset to be written (`getMaxOffsetInQueue`).
    pub max_offset: u64,
    /// Store time of the queue's last message; 0 when the queue is empty.
    pub last_update_timestamp_ms: i64,
}

/// `TopicStatsTable`: every queue of a topic on one broker.
pub type TopicStatsTable = BTreeMap<MessageQueue, TopicOffset>;

/// `OffsetWrapper`: how far a group is behind on one queue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetWrapper {
    /// The queue's max offset.
    pub broker_offset: u64,
    /// The group's committed offset (0 when it has none).
    pub consumer_offset: u64,
    /// Store time of the last message the group consumed; 0 when it consumed none.
    pub last_timestamp_ms: i64,
}

/// `ConsumeStats`: a group's progress on every queue of one broker. RocketMQ adds
/// `consumeTps`; the model keeps no rate, and the codec writes 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumeStats {
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
}

impl ConsumeStats {
    /// `computeTotalDiff`: messages stored but not yet consumed, over every queue.
    pub fn total_diff(&self) -> i64 {
        self.offset_table
            .values()
            .map(|o| o.broker_offset as i64 - o.consumer_offset as i64)
            .sum()
    }
}
