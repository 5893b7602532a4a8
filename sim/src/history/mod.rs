//! The history: what clients observed and what the world did to the cluster, in true
//! simulator time. Workload drivers append to it; the checker reads it; it serializes to
//! JSON lines (one [`Entry`] per line) so a history from the real chaos harness can be
//! judged by the same checker.
//!
//! Every message a workload sends carries a unique workload id ([`WID_PROPERTY`]) in
//! its properties, so every delivery maps to exactly one send.
//!
//! Here: the entries. `meta.rs` holds the run's `meta` entry (cluster shape and declared
//! promises); `file.rs` writes and reads the JSON lines; [`workload`] holds the client
//! nodes that write it (the simulator's runs and the real chaos harness host the same
//! ones).

use rmq_model::message::{is_system_property, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
use serde::{Deserialize, Serialize};

mod file;
mod meta;
pub mod workload;

pub use file::{HistoryError, MAX_TIME_OR_OFFSET, OPS, TIME_DISORDER_TOLERANCE_MS};
pub use meta::{
    BrokerGroupMeta, FlushMode, GroupMeta, Promise, Replication, RETRY_FIRST_DELAY_LEVEL,
    ROCKETMQ_MAX_RECONSUME_TIMES,
};

/// The message property carrying the workload id.
pub const WID_PROPERTY: &str = "WID";

/// A name in an entry: a group, topic, broker or tag. Up to 24 bytes (every name a
/// workload uses) it is held inline, so a history entry carries its names with it:
/// no heap string per name per entry for the recorder to allocate and free, nor for
/// the checker to chase as it walks the entries. Longer names go to the heap. It
/// reads as a `&str` and is written to JSON as a string, like a `String`.
pub type Name = compact_str::CompactString;

/// What happened to a node or a link: the faults the allowance is derived from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Process killed: memory lost, page cache kept.
    ProcessCrash,
    /// Memory and page cache lost.
    OsCrash,
    /// Memory and page cache lost; pages may be torn.
    PowerCut,
    /// The node rebooted from its disk.
    Restart,
    /// Power cut and the machine never comes back.
    MachineLost,
    /// Sectors of the disk were damaged (bit rot, unreadable sectors).
    DiskDamaged,
    Partition,
    Heal,
    Clog,
    ClockSkew,
}

/// What a RocketMQ user reads off a message besides its body, topic and tags, as the
/// producer set it (in `SendInvoke`) or the consumer saw it (in `Deliver`). Strings are
/// recorded as their CRC32 (IEEE, over the UTF-8 bytes, like `body_crc`), so an entry
/// stays small and the fields are compared without keeping them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageFields {
    /// CRC32 of KEYS (space-separated, as set); absent when the message has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_crc: Option<u32>,
    /// [`user_properties_crc`] of the user properties.
    pub props_crc: u32,
    /// bornTimestamp: the producer's own clock (it may be skewed) when the send
    /// began, ms.
    pub born_ms: i64,
    /// CRC32 of bornHost, the producer's address as `ip:port`.
    pub born_host_crc: u32,
    /// In a `Deliver`: CRC32 of the message id the consumer saw
    /// (`MessageExt.getMsgId`: the `UNIQ_KEY`, else the offset message id), to be
    /// compared with the `SendOk`'s `msg_id`. Absent in a `SendInvoke`: the producer
    /// learns the id with its `SendOk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id_crc: Option<u32>,
}

/// The digest of a message's user properties that histories record: the pairs whose
/// name is not one of RocketMQ's own ([`is_system_property`]), sorted by name then
/// value, each written as `name U+0001 value U+0002` (RocketMQ's property encoding),
/// then CRC32 (IEEE) of those bytes. No user property: CRC32 of nothing, 0.
pub fn user_properties_crc<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u32 {
    // Computed for every send and delivery: a message has a few user properties, so
    // they are sorted on the stack unless there are many.
    const ON_STACK: usize = 8;
    let mut few = [("", ""); ON_STACK];
    let mut many = Vec::new();
    let mut n = 0;
    for pair in pairs
        .into_iter()
        .filter(|(name, _)| !is_system_property(name))
    {
        if n < ON_STACK {
            few[n] = pair;
        } else {
            if many.is_empty() {
                many.extend_from_slice(&few);
            }
            many.push(pair);
        }
        n += 1;
    }
    let user = if n <= ON_STACK {
        &mut few[..n]
    } else {
        &mut many[..]
    };
    user.sort_unstable();
    // Hashed in one pass over one buffer: a few short pieces fed one by one cost more
    // in per-call overhead than in hashing.
    let mut encoded = [0u8; 256];
    let mut len = 0;
    let mut h = crc32fast::Hasher::new();
    for &(name, value) in user.iter() {
        for piece in [
            name.as_bytes(),
            &[NAME_VALUE_SEPARATOR as u8],
            value.as_bytes(),
            &[PROPERTY_SEPARATOR as u8],
        ] {
            if len + piece.len() > encoded.len() {
                h.update(&encoded[..len]);
                len = 0;
            }
            if piece.len() > encoded.len() {
                h.update(piece);
            } else {
                encoded[len..len + piece.len()].copy_from_slice(piece);
                len += piece.len();
            }
        }
    }
    h.update(&encoded[..len]);
    h.finalize()
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// First line: the run and the cluster.
    Meta {
        scenario: String,
        seed: u64,
        brokers: Vec<BrokerGroupMeta>,
        groups: Vec<GroupMeta>,
        /// When faults stop (heal) and when the quiet period ends (liveness is judged).
        heal_at_ms: u64,
        end_ms: u64,
        /// The declared timing promises; absent (older histories): the defaults.
        /// Boxed: there is one `Meta` per history, and unboxed it would make it the
        /// largest entry, setting the size of every entry the history holds.
        #[serde(default)]
        promise: Box<Promise>,
    },
    Fault {
        at_ms: u64,
        kind: FaultKind,
        node: Option<u32>,
        /// Free text: which link, how long, which sectors.
        detail: String,
    },
    SendInvoke {
        at_ms: u64,
        client: u32,
        wid: u64,
        topic: Name,
        tags: Option<Name>,
        body_crc: u32,
        /// Keys, user properties, born timestamp and host as sent; absent in
        /// histories written before they were recorded (then not compared).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fields: Option<MessageFields>,
        /// The message's delay level (`DELAY`); 0 (absent): delivered at once.
        #[serde(default, skip_serializing_if = "is_zero_level")]
        delay_level: u32,
        /// An orderly send's sharding key (the argument of `SelectMessageQueueByHash`):
        /// its producer sends each key's messages one after another. Absent: a send
        /// with the producer's own queue choice.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sharding_key: Option<Name>,
    },
    /// SEND_OK or one of the stored-on-master statuses.
    SendOk {
        at_ms: u64,
        client: u32,
        wid: u64,
        status: SendStatus,
        broker: Name,
        queue_id: i32,
        queue_offset: u64,
        /// The message id the producer was given (`SendResult.msgId`, the client's
        /// `UNIQ_KEY`).
        msg_id: String,
        /// The producer made this attempt after one whose outcome is unknown (a
        /// timeout or a broken connection after sending): a second copy of the message
        /// may be stored at another offset. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retried_after_unknown: bool,
    },
    /// The send failed: `definite` when no attempt may have stored it (every attempt
    /// was refused), otherwise unknown (a timeout: it may or may not be stored).
    SendFail {
        at_ms: u64,
        client: u32,
        wid: u64,
        definite: bool,
        reason: String,
        /// As in `SendOk`: an attempt followed one whose outcome is unknown, so two
        /// copies may be stored. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retried_after_unknown: bool,
    },
    /// A message handed to the application.
    Deliver {
        at_ms: u64,
        group: Name,
        client: u32,
        topic: Name,
        broker: Name,
        queue_id: i32,
        queue_offset: u64,
        /// None if the message carries no workload id (never sent by the workload).
        wid: Option<u64>,
        reconsume_times: i32,
        body_crc: u32,
        tags: Option<Name>,
        /// Keys, user properties, born timestamp and host, and the message id, as
        /// delivered; absent in older histories (then not compared).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fields: Option<MessageFields>,
    },
    /// The listener returned for a message it was handed: the `Deliver` of the same
    /// group, client, queue and queue offset before it. A `Deliver` with none after it
    /// never finished (its consumer stopped or crashed first).
    Consumed {
        at_ms: u64,
        group: Name,
        client: u32,
        /// The queue the message was pulled from (for a retry, `%RETRY%{group}`, where
        /// the `Deliver` names the message's own topic).
        broker: Name,
        topic: Name,
        queue_id: i32,
        queue_offset: u64,
        /// The delivered message's workload id, as in its `Deliver`.
        wid: Option<u64>,
        status: ConsumeOutcome,
    },
    /// The consumer now owns (or no longer owns) a queue. `start_offset` is where it
    /// begins pulling (the committed offset it resumed from).
    Own {
        at_ms: u64,
        group: Name,
        client: u32,
        broker: Name,
        topic: Name,
        queue_id: i32,
        start_offset: u64,
        /// The broker id (0 = master) that answered the offset request the start came
        /// from; absent for a local offset file. A consumer asks a slave only when
        /// its route lists no master for the group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset_from_broker_id: Option<u64>,
        /// The start is an offset the broker corrected (PULL_OFFSET_MOVED: the queue
        /// was truncated, or the consumer was past its end), not a committed offset
        /// read at a rebalance. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        offset_moved: bool,
    },
    Disown {
        at_ms: u64,
        group: Name,
        client: u32,
        broker: Name,
        topic: Name,
        queue_id: i32,
    },
    /// The consumer sent (oneway) or a broker acknowledged a committed offset.
    Commit {
        at_ms: u64,
        group: Name,
        client: u32,
        broker: Name,
        topic: Name,
        queue_id: i32,
        offset: u64,
    },
    /// A message read from `group`'s dead-letter queue (`%DLQ%{group}`, queue
    /// `queue_id` of `broker`) by a reader that takes no other part in the workload:
    /// the group's consumers gave up on it.
    DeadLetter {
        at_ms: u64,
        /// The group whose dead-letter queue it is (not the reader's own).
        group: Name,
        /// The reader's node.
        client: u32,
        broker: Name,
        queue_id: i32,
        queue_offset: u64,
        wid: Option<u64>,
        reconsume_times: i32,
    },
}

/// What a listener answered (`ConsumeConcurrentlyStatus`, `ConsumeOrderlyStatus`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsumeOutcome {
    ConsumeSuccess,
    ReconsumeLater,
    SuspendCurrentQueueAMoment,
    /// Not a listener's answer: its consumer gave up on it after consumeTimeout
    /// (RocketMQ's `ConsumeReturnType.TIME_OUT`) and hands the message back.
    TimeOut,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

impl Entry {
    pub fn at_ms(&self) -> u64 {
        match self {
            Entry::Meta { .. } => 0,
            Entry::Fault { at_ms, .. }
            | Entry::SendInvoke { at_ms, .. }
            | Entry::SendOk { at_ms, .. }
            | Entry::SendFail { at_ms, .. }
            | Entry::Deliver { at_ms, .. }
            | Entry::Consumed { at_ms, .. }
            | Entry::Own { at_ms, .. }
            | Entry::Disown { at_ms, .. }
            | Entry::Commit { at_ms, .. }
            | Entry::DeadLetter { at_ms, .. } => *at_ms,
        }
    }
}

/// A history in memory, in the order things happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub entries: Vec<Entry>,
}

impl History {
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }
}

fn is_zero_level(level: &u32) -> bool {
    *level == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest as docs/history.md states it: CRC32 of the sorted user pairs, each
    /// written `name U+0001 value U+0002`, system properties left out.
    fn as_documented(pairs: &[(&str, &str)]) -> u32 {
        let mut user: Vec<_> = pairs
            .iter()
            .filter(|(name, _)| !rmq_model::message::is_system_property(name))
            .collect();
        user.sort();
        let mut bytes = Vec::new();
        for (name, value) in user {
            bytes.extend_from_slice(format!("{name}\u{1}{value}\u{2}").as_bytes());
        }
        crc32fast::hash(&bytes)
    }

    #[test]
    fn user_properties_crc_is_the_documented_digest_for_short_long_and_many_pairs() {
        let long = "v".repeat(300);
        let many: Vec<(String, String)> = (0..12)
            .map(|i| (format!("k{i:02}"), "x".repeat(i * 9)))
            .collect();
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![],
            vec![("TAGS", "TagA"), ("KEYS", "k1")],
            vec![("b", "2"), ("WID", "7"), ("a", "1"), ("UNIQ_KEY", "AB")],
            vec![("big", long.as_str()), ("a", "1")],
            many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        ];
        for pairs in cases {
            assert_eq!(
                user_properties_crc(pairs.iter().copied()),
                as_documented(&pairs),
                "{pairs:?}"
            );
        }
        assert_eq!(
            user_properties_crc([("TAGS", "TagA")]),
            0,
            "no user property"
        );
    }
}
