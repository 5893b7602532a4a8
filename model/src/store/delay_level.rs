//! Delay levels on the store side (`messageDelayLevel`, reference B): the level table,
//! the put-path rewrite into `SCHEDULE_TOPIC_XXXX` (`CommitLog.asyncPutMessage`) and the
//! consume-queue tag code of a scheduled record, which is its delivery time
//! (`CommitLog.checkMessageAndReturnSize`, `computeDeliverTimestamp`).
//!
//! The table lives in the store's config, as in RocketMQ's `MessageStoreConfig`: append,
//! replication and recovery all dispatch schedule-topic records, and each needs the
//! delivery time the level gives. Delivery itself is the broker's
//! (`broker/schedule_message_service.rs`).

use std::fmt;

use crate::message::{encode_properties, property};
use crate::store::record::{dispatch_tags_code, SYSFLAG_TRANSACTION_MASK};

/// `TopicValidator.RMQ_SYS_SCHEDULE_TOPIC`.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// `MessageConst.PROPERTY_DELAY_TIME_LEVEL`.
pub const PROPERTY_DELAY_TIME_LEVEL: &str = "DELAY";
/// `MessageConst.PROPERTY_REAL_TOPIC`.
pub const PROPERTY_REAL_TOPIC: &str = "REAL_TOPIC";
/// `MessageConst.PROPERTY_REAL_QUEUE_ID`.
pub const PROPERTY_REAL_QUEUE_ID: &str = "REAL_QID";
/// RocketMQ's default `messageDelayLevel`: 18 levels.
pub const DEFAULT_MESSAGE_DELAY_LEVEL: &str =
    "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// `computeDeliverTimestamp`: a level missing from the table delays this long.
const UNKNOWN_LEVEL_DELAY_MS: u64 = 1_000;
/// A table longer than this is refused: each level is a consume queue and a timer.
pub const MAX_DELAY_LEVELS: usize = 1_000;

/// The parsed `messageDelayLevel`: level `n` (1-based) delays `delays_ms[n - 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageDelayLevel {
    delays_ms: Vec<u64>,
}

impl Default for MessageDelayLevel {
    fn default() -> Self {
        MessageDelayLevel::parse(DEFAULT_MESSAGE_DELAY_LEVEL).expect("the default parses")
    }
}

impl fmt::Display for MessageDelayLevel {
    /// RocketMQ's string form, each delay in the largest unit that divides it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &ms) in self.delays_ms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let (n, unit) = [
                (86_400_000, "d"),
                (3_600_000, "h"),
                (60_000, "m"),
                (1_000, "s"),
            ]
            .into_iter()
            .find(|(unit_ms, _)| ms % unit_ms == 0)
            .map_or((ms, "ms"), |(unit_ms, unit)| (ms / unit_ms, unit));
            write!(f, "{n}{unit}")?;
        }
        Ok(())
    }
}

/// Why a `messageDelayLevel` string is refused (RocketMQ's broker then fails to load).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DelayLevelError {
    #[error("messageDelayLevel is empty")]
    Empty,
    #[error("messageDelayLevel has {0} levels; at most {MAX_DELAY_LEVELS} are allowed")]
    TooMany(usize),
    #[error("messageDelayLevel entry {0:?} is not a number followed by s, m, h or d")]
    BadEntry(String),
}

impl MessageDelayLevel {
    /// Parses RocketMQ's form: space-separated `<n><unit>`, unit one of s, m, h, d
    /// (`ScheduleMessageService.parseDelayLevel`).
    pub fn parse(text: &str) -> Result<MessageDelayLevel, DelayLevelError> {
        let mut delays_ms = Vec::new();
        for entry in text.split_whitespace() {
            let bad = || DelayLevelError::BadEntry(entry.to_string());
            let unit_ms = match entry.as_bytes().last() {
                Some(b's') => 1_000,
                Some(b'm') => 60_000,
                Some(b'h') => 3_600_000,
                Some(b'd') => 86_400_000,
                _ => return Err(bad()),
            };
            let n: u64 = entry[..entry.len() - 1].parse().map_err(|_| bad())?;
            delays_ms.push(n.checked_mul(unit_ms).ok_or_else(bad)?);
            if delays_ms.len() > MAX_DELAY_LEVELS {
                return Err(DelayLevelError::TooMany(text.split_whitespace().count()));
            }
        }
        if delays_ms.is_empty() {
            return Err(DelayLevelError::Empty);
        }
        Ok(MessageDelayLevel { delays_ms })
    }

    /// A table of the given delays (tests and scenarios with shortened levels).
    pub fn from_delays_ms(delays_ms: Vec<u64>) -> Result<MessageDelayLevel, DelayLevelError> {
        match delays_ms.len() {
            0 => Err(DelayLevelError::Empty),
            n if n > MAX_DELAY_LEVELS => Err(DelayLevelError::TooMany(n)),
            _ => Ok(MessageDelayLevel { delays_ms }),
        }
    }

    /// The highest level (`maxDelayLevel`).
    pub fn max_level(&self) -> i32 {
        self.delays_ms.len() as i32
    }

    /// The delay of `level` (1-based), if the table has it.
    pub fn delay_ms(&self, level: i32) -> Option<u64> {
        let index = usize::try_from(level).ok()?.checked_sub(1)?;
        self.delays_ms.get(index).copied()
    }

    /// Every level and its delay, lowest first.
    pub fn levels(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.delays_ms
            .iter()
            .enumerate()
            .map(|(i, &ms)| (i as i32 + 1, ms))
    }

    /// `computeDeliverTimestamp`: when a record of `level` stored at `store_timestamp_ms`
    /// is due.
    pub fn deliver_timestamp_ms(&self, level: i32, store_timestamp_ms: i64) -> i64 {
        let delay_ms = self.delay_ms(level).unwrap_or(UNKNOWN_LEVEL_DELAY_MS);
        store_timestamp_ms.saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX))
    }

    /// The consume-queue tag code of a record: in `SCHEDULE_TOPIC_XXXX` with a DELAY
    /// level above 0 (clamped to the maximum), its delivery time; otherwise its TAGS'
    /// hash. Append, replication and recovery all dispatch through this one function.
    pub fn dispatch_tags_code(
        &self,
        topic: &str,
        properties: &str,
        store_timestamp_ms: i64,
    ) -> i64 {
        if topic == SCHEDULE_TOPIC {
            if let Some(level) = delay_level(properties) {
                let level = level.min(self.max_level());
                if level > 0 {
                    return self.deliver_timestamp_ms(level, store_timestamp_ms);
                }
            }
        }
        dispatch_tags_code(properties)
    }

    /// The put-path rewrite (`CommitLog.asyncPutMessage`): a message with a DELAY level
    /// above 0, not a transaction's PREPARED or ROLLBACK record, goes to
    /// `SCHEDULE_TOPIC_XXXX`, queue `level − 1`, with its topic and queue kept in
    /// REAL_TOPIC and REAL_QID and a level above the maximum clamped to it. `None`:
    /// the message is stored as sent.
    pub fn rewrite_for_delay(
        &self,
        topic: &str,
        queue_id: i32,
        sys_flag: i32,
        properties: &str,
    ) -> Result<Option<DelayedPut>, InvalidDelayLevel> {
        let Some(raw) = property(properties, PROPERTY_DELAY_TIME_LEVEL) else {
            return Ok(None);
        };
        let level: i32 = raw
            .trim()
            .parse()
            .map_err(|_| InvalidDelayLevel(raw.to_string()))?;
        let tx = sys_flag & SYSFLAG_TRANSACTION_MASK;
        // TRANSACTION_NOT_TYPE (0) and COMMIT (0x8) only.
        if level <= 0 || (tx != 0 && tx != 0x8) {
            return Ok(None);
        }
        let level = level.min(self.max_level());
        let level_text = level.to_string();
        let queue_text = queue_id.to_string();
        let kept = crate::message::properties(properties).filter(|(name, _)| {
            !matches!(
                *name,
                PROPERTY_DELAY_TIME_LEVEL | PROPERTY_REAL_TOPIC | PROPERTY_REAL_QUEUE_ID
            )
        });
        let properties = encode_properties(kept.chain([
            (PROPERTY_DELAY_TIME_LEVEL, level_text.as_str()),
            (PROPERTY_REAL_TOPIC, topic),
            (PROPERTY_REAL_QUEUE_ID, queue_text.as_str()),
        ]));
        Ok(Some(DelayedPut {
            level,
            queue_id: level - 1,
            properties,
        }))
    }
}

/// A DELAY property that is not an integer (RocketMQ's `Integer.parseInt` throws and the
/// put fails).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DELAY property {0:?} is not an integer delay level")]
pub struct InvalidDelayLevel(pub String);

/// Where a delayed message is stored instead of its own topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelayedPut {
    /// The level, clamped to the table.
    pub level: i32,
    /// In `SCHEDULE_TOPIC_XXXX`: `level − 1` (`delayLevel2QueueId`).
    pub queue_id: i32,
    /// The properties with DELAY (clamped), REAL_TOPIC and REAL_QID set.
    pub properties: String,
}

/// The DELAY property as an integer, if it is one.
pub fn delay_level(properties: &str) -> Option<i32> {
    property(properties, PROPERTY_DELAY_TIME_LEVEL)?
        .trim()
        .parse()
        .ok()
}

/// The delay level of a schedule-topic queue (`queueId2DelayLevel`).
pub fn queue_id_to_level(queue_id: i32) -> i32 {
    queue_id + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_rocketmqs() {
        let t = MessageDelayLevel::default();
        assert_eq!(t.max_level(), 18);
        assert_eq!(t.delay_ms(1), Some(1_000));
        assert_eq!(t.delay_ms(5), Some(60_000));
        assert_eq!(t.delay_ms(18), Some(7_200_000));
        assert_eq!(t.delay_ms(0), None);
        assert_eq!(t.delay_ms(19), None);
        assert_eq!(t.to_string(), DEFAULT_MESSAGE_DELAY_LEVEL);
        assert_eq!(MessageDelayLevel::parse(&t.to_string()), Ok(t));
    }

    #[test]
    fn bad_tables_are_refused_with_the_entry() {
        assert_eq!(MessageDelayLevel::parse("  "), Err(DelayLevelError::Empty));
        assert_eq!(
            MessageDelayLevel::parse("1s 5x"),
            Err(DelayLevelError::BadEntry("5x".into()))
        );
        assert_eq!(
            MessageDelayLevel::parse("s"),
            Err(DelayLevelError::BadEntry("s".into()))
        );
        assert_eq!(
            MessageDelayLevel::parse("-1s"),
            Err(DelayLevelError::BadEntry("-1s".into()))
        );
        assert!(MessageDelayLevel::parse("99999999999999999d").is_err());
        let t = MessageDelayLevel::parse("2s 1d").unwrap();
        assert_eq!(t.delay_ms(2), Some(86_400_000));
    }

    #[test]
    fn rewrite_sets_schedule_queue_and_real_topic_and_clamps() {
        let t = MessageDelayLevel::parse("1s 5s 10s").unwrap();
        let props = encode_properties([("UNIQ_KEY", "U1"), ("DELAY", "7"), ("TAGS", "TagA")]);
        let put = t.rewrite_for_delay("T", 2, 0, &props).unwrap().unwrap();
        assert_eq!(put.level, 3, "a level above the maximum clamps to it");
        assert_eq!(put.queue_id, 2);
        assert_eq!(property(&put.properties, "DELAY"), Some("3"));
        assert_eq!(property(&put.properties, "REAL_TOPIC"), Some("T"));
        assert_eq!(property(&put.properties, "REAL_QID"), Some("2"));
        assert_eq!(property(&put.properties, "UNIQ_KEY"), Some("U1"));
        assert_eq!(property(&put.properties, "TAGS"), Some("TagA"));
        // The schedule queue's tag code is the delivery time of the clamped level.
        assert_eq!(
            t.dispatch_tags_code(SCHEDULE_TOPIC, &put.properties, 1_000),
            11_000
        );
        assert_eq!(
            t.dispatch_tags_code("T", &put.properties, 1_000),
            dispatch_tags_code(&put.properties)
        );
    }

    #[test]
    fn level_zero_transactions_and_garbage() {
        let t = MessageDelayLevel::default();
        let zero = encode_properties([("DELAY", "0")]);
        assert_eq!(t.rewrite_for_delay("T", 0, 0, &zero), Ok(None));
        assert_eq!(t.rewrite_for_delay("T", 0, 0, ""), Ok(None));
        let one = encode_properties([("DELAY", "1")]);
        assert_eq!(t.rewrite_for_delay("T", 0, 0x4, &one), Ok(None), "prepared");
        assert!(t.rewrite_for_delay("T", 0, 0x8, &one).unwrap().is_some());
        let junk = encode_properties([("DELAY", "x")]);
        assert_eq!(
            t.rewrite_for_delay("T", 0, 0, &junk),
            Err(InvalidDelayLevel("x".into()))
        );
    }
}
