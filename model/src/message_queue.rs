//! `MessageQueue`: the unit of everything queue-wise — sends, pulls, offsets, locks,
//! admin tables.

/// A queue of a topic on one broker group (`MessageQueue`). Ordered as RocketMQ
/// compares them — topic, broker name, queue id — which is the order rebalance sorts
/// `mqAll` in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}
