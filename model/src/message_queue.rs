//! `MessageQueue`: the unit of everything queue-wise — sends, pulls, offsets, locks,
//! admin tables.

use std::cmp::Ordering;

/// A queue of a topic on one broker group (`MessageQueue`). Ordered as RocketMQ
/// compares them — topic, broker name, queue id — which is the order rebalance sorts
/// `mqAll` in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

impl Ord for MessageQueue {
    /// The derived order (topic, then broker name, then queue id, names byte by byte),
    /// with the names compared in line: clients key their queue tables by
    /// `MessageQueue`, and a library call per name per tree step was a visible share
    /// of the simulator.
    fn cmp(&self, other: &Self) -> Ordering {
        compare_bytes(self.topic.as_bytes(), other.topic.as_bytes())
            .then_with(|| compare_bytes(self.broker_name.as_bytes(), other.broker_name.as_bytes()))
            .then_with(|| self.queue_id.cmp(&other.queue_id))
    }
}

impl PartialOrd for MessageQueue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Lexicographic byte order, as `<[u8]>::cmp`: eight bytes at a time (as big-endian
/// words, whose order is the bytes' order), then byte by byte, then the shorter first.
fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut at = 0;
    while at + 8 <= common {
        let x = u64::from_be_bytes(a[at..at + 8].try_into().expect("eight bytes"));
        let y = u64::from_be_bytes(b[at..at + 8].try_into().expect("eight bytes"));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    a[at..common]
        .iter()
        .zip(&b[at..common])
        .find(|(x, y)| x != y)
        .map_or_else(|| a.len().cmp(&b.len()), |(x, y)| x.cmp(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The order `#[derive(Ord)]` gives: tuples of the fields.
    fn derived(a: &MessageQueue, b: &MessageQueue) -> Ordering {
        (&a.topic, &a.broker_name, a.queue_id).cmp(&(&b.topic, &b.broker_name, b.queue_id))
    }

    fn mq(topic: String, broker_name: String, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic,
            broker_name,
            queue_id,
        }
    }

    proptest! {
        // Names from a small alphabet, so long shared prefixes (whole words equal,
        // one ending early) are common, and any byte, non-ASCII included.
        #[test]
        fn order_is_the_derived_order(
            t1 in "[ab%\u{e9}]{0,20}", t2 in "[ab%\u{e9}]{0,20}",
            b1 in "[ab]{0,12}", b2 in "[ab]{0,12}",
            q1 in -2i32..3, q2 in -2i32..3,
        ) {
            let (x, y) = (mq(t1, b1, q1), mq(t2, b2, q2));
            prop_assert_eq!(x.cmp(&y), derived(&x, &y));
            prop_assert_eq!(y.cmp(&x), derived(&y, &x));
            prop_assert_eq!(x.cmp(&x.clone()), Ordering::Equal);
        }

        #[test]
        fn bytes_compare_as_slices(a in proptest::collection::vec(any::<u8>(), 0..40),
                                   b in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(compare_bytes(&a, &b), a.cmp(&b));
        }
    }

    #[test]
    fn shared_prefixes_order_shorter_first() {
        let names = [
            "",
            "a",
            "TopicTes",
            "TopicTest",
            "TopicTest1",
            "TopicTest12345678",
            "%RETRY%g_all",
        ];
        for x in names {
            for y in names {
                assert_eq!(
                    compare_bytes(x.as_bytes(), y.as_bytes()),
                    x.cmp(y),
                    "{x:?} vs {y:?}"
                );
            }
        }
    }
}
