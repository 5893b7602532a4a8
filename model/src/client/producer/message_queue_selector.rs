//! Sending with a queue selector (`MessageQueueSelector`, `SelectMessageQueueByHash`,
//! `DefaultMQProducerImpl.sendSelectImpl`; reference D): the application names the queue
//! through an argument — for ordered messages a sharding key — so that every message of
//! one key lands in one queue, in the order the key's sends were made.
//!
//! The selector picks among the topic's publish queues (the same list round-robin sends
//! use). A selected send makes exactly one attempt: it never fails over to another queue
//! or broker, since a message of the key stored elsewhere could be consumed ahead of its
//! predecessors. The application decides what to do with a failure (typically send the
//! same message again before the next one of its key).

use super::MessageQueue;

/// How an orderly send picks its queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageQueueSelector {
    /// `SelectMessageQueueByHash`: the sharding key's Java `String.hashCode()` modulo the
    /// number of publish queues (its absolute value when negative).
    ByHash { sharding_key: String },
}

impl MessageQueueSelector {
    /// The selector for `sharding_key` by hash.
    pub fn by_hash(sharding_key: impl Into<String>) -> Self {
        MessageQueueSelector::ByHash {
            sharding_key: sharding_key.into(),
        }
    }

    /// The sharding key the selector carries.
    pub fn sharding_key(&self) -> &str {
        match self {
            MessageQueueSelector::ByHash { sharding_key } => sharding_key,
        }
    }

    /// `MessageQueueSelector.select`: the queue of `queues` this send goes to; `None`
    /// when there is none.
    pub fn select<'a>(&self, queues: &'a [MessageQueue]) -> Option<&'a MessageQueue> {
        match self {
            MessageQueueSelector::ByHash { sharding_key } => {
                select_by_hash(queues, java_string_hash_code(sharding_key))
            }
        }
    }
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + … + s[n-1]` over the UTF-16 code units,
/// wrapping at 32 bits, so a key maps to the queue a Java producer would pick.
pub fn java_string_hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// `SelectMessageQueueByHash.select`: `abs(hash % len)` (Java's remainder keeps the
/// dividend's sign).
pub fn select_by_hash(queues: &[MessageQueue], hash: i32) -> Option<&MessageQueue> {
    if queues.is_empty() {
        return None;
    }
    let len = i64::try_from(queues.len()).unwrap_or(i64::MAX);
    let index = (i64::from(hash) % len).unsigned_abs();
    queues.get(usize::try_from(index).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|queue_id| MessageQueue {
                topic: "T".into(),
                broker_name: "a".into(),
                queue_id,
            })
            .collect()
    }

    #[test]
    fn hash_code_is_javas() {
        // Values of `"…".hashCode()` in Java.
        assert_eq!(java_string_hash_code(""), 0);
        assert_eq!(java_string_hash_code("a"), 97);
        assert_eq!(java_string_hash_code("abc"), 96_354);
        assert_eq!(java_string_hash_code("hello world"), 1_794_106_052);
        // Wraps to a negative value.
        assert_eq!(java_string_hash_code("polygenelubricants"), i32::MIN);
        assert_eq!(java_string_hash_code("order-123456789"), -1_902_235_530);
        // UTF-16 code units, not bytes or chars: U+1F600 is two units.
        assert_eq!(java_string_hash_code("é"), 233);
        assert_eq!(java_string_hash_code("\u{1F600}"), 1_772_899);
    }

    #[test]
    fn negative_hashes_take_the_absolute_remainder() {
        let qs = queues(4);
        assert_eq!(select_by_hash(&qs, -7).unwrap().queue_id, 3);
        assert_eq!(select_by_hash(&qs, 7).unwrap().queue_id, 3);
        assert_eq!(select_by_hash(&qs, i32::MIN).unwrap().queue_id, 0);
        assert_eq!(select_by_hash(&queues(3), i32::MIN).unwrap().queue_id, 2);
        assert!(select_by_hash(&[], 5).is_none());
    }

    #[test]
    fn one_key_always_picks_one_queue() {
        let qs = queues(8);
        let selector = MessageQueueSelector::by_hash("order-42");
        let first = selector.select(&qs).unwrap().clone();
        for _ in 0..10 {
            assert_eq!(selector.select(&qs), Some(&first));
        }
        // Keys spread over the queues.
        let picked: std::collections::BTreeSet<i32> = (0..64)
            .map(|k| {
                MessageQueueSelector::by_hash(format!("k{k}"))
                    .select(&qs)
                    .unwrap()
                    .queue_id
            })
            .collect();
        assert_eq!(picked.len(), 8);
    }
}
