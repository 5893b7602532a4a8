//! Which queues a consumer of a group pulls (reference C.4).
//!
//! Clustering: every consumer sorts the topic's readable queues (`mqAll`) and the
//! group's client ids (`cidAll`) the same way and runs the same pure allocation, so
//! without any coordination each queue ends up with exactly one consumer — as long as
//! they all saw the same lists. Broadcasting: every consumer takes every queue.

use super::MessageQueue;
use crate::protocol::{perm, TopicRouteData};

/// `mqAll`: the readable queues (`perm & READ`, `read_queue_nums` of them) of every
/// broker group that holds `topic` in `route`, sorted.
pub fn readable_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    // Collected, then sorted and deduplicated: the same set in the same order as a
    // sorted set gives, without a tree built for every rebalance.
    let mut all: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|qd| qd.perm & perm::READ != 0)
        .flat_map(|qd| {
            (0..qd.read_queue_nums).map(|queue_id| MessageQueue {
                topic: topic.to_string(),
                broker_name: qd.broker_name.clone(),
                queue_id: queue_id as i32,
            })
        })
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// `AllocateMessageQueueAveragely`: the consecutive block of `mq_all` that belongs to
/// `current_cid`. Both lists must be sorted (and `cid_all` free of duplicates); a
/// client missing from `cid_all` gets nothing, as in RocketMQ.
///
/// With `index` = the client's position and `mod` = |mq| % |cid|: the first `mod`
/// clients take |mq|/|cid| + 1 queues, the rest |mq|/|cid| (or 1 each, and the clients
/// past |mq| none, when there are fewer queues than clients).
pub fn allocate_averagely<T: Clone>(mq_all: &[T], cid_all: &[String], current_cid: &str) -> Vec<T> {
    let Some(index) = cid_all.iter().position(|c| c == current_cid) else {
        return Vec::new();
    };
    let mq_len = mq_all.len();
    let cid_len = cid_all.len();
    if mq_len == 0 {
        return Vec::new();
    }
    let rem = mq_len % cid_len;
    let takes_extra = rem > 0 && index < rem;
    let avg = if mq_len <= cid_len {
        1
    } else if takes_extra {
        mq_len / cid_len + 1
    } else {
        mq_len / cid_len
    };
    let start = if takes_extra {
        index * avg
    } else {
        index * avg + rem
    };
    let range = avg.min(mq_len.saturating_sub(start));
    (0..range)
        .map(|i| mq_all[(start + i) % mq_len].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::QueueData;

    fn cids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}@{i}")).collect()
    }

    fn shares(mq: usize, cid: usize) -> Vec<Vec<usize>> {
        let all: Vec<usize> = (0..mq).collect();
        let cids = cids(cid);
        cids.iter()
            .map(|c| allocate_averagely(&all, &cids, c))
            .collect()
    }

    #[test]
    fn matches_the_reference_formula_on_known_sizes() {
        // 8 queues, 2 consumers: halves.
        assert_eq!(shares(8, 2), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        // 8 queues, 3 consumers: mod = 2, so the first two take 3 and the last 2,
        // starting at index*avg + mod = 6.
        assert_eq!(shares(8, 3), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        // 3 queues, 5 consumers: one each for the first three, none for the rest
        // (start = index + 3 is past the end).
        assert_eq!(
            shares(3, 5),
            vec![vec![0], vec![1], vec![2], vec![], vec![]]
        );
        // 4 queues, 4 consumers.
        assert_eq!(shares(4, 4), vec![vec![0], vec![1], vec![2], vec![3]]);
        // 10 queues, 4 consumers: mod = 2 → 3, 3, then 2 from 2*2+2 = 6 and 3*2+2 = 8.
        assert_eq!(
            shares(10, 4),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]
        );
        // One consumer takes everything; none at all when there are no queues.
        assert_eq!(shares(5, 1), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(shares(0, 3), vec![Vec::<usize>::new(); 3]);
    }

    #[test]
    fn a_stranger_gets_nothing() {
        let all: Vec<usize> = (0..8).collect();
        assert!(allocate_averagely(&all, &cids(2), "someone-else").is_empty());
    }

    proptest::proptest! {
        /// Every queue goes to exactly one consumer, in consecutive blocks, in client
        /// order, with sizes that differ by at most one.
        #[test]
        fn every_queue_exactly_once(mq in 0usize..70, cid in 1usize..12) {
            let got = shares(mq, cid);
            let flat: Vec<usize> = got.iter().flatten().copied().collect();
            proptest::prop_assert_eq!(flat, (0..mq).collect::<Vec<_>>());
            let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
            let max = *sizes.iter().max().unwrap();
            let min = *sizes.iter().min().unwrap();
            proptest::prop_assert!(max - min <= 1, "sizes {:?}", sizes);
            // Larger shares come first.
            proptest::prop_assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn readable_queues_skip_unreadable_brokers_and_sort() {
        let qd = |name: &str, read: u32, perm: u32| QueueData {
            broker_name: name.into(),
            read_queue_nums: read,
            write_queue_nums: 8,
            perm,
            topic_sys_flag: 0,
        };
        let route = TopicRouteData {
            queue_datas: vec![qd("b", 2, 6), qd("a", 1, 6), qd("c", 4, 2)],
            ..TopicRouteData::default()
        };
        let got: Vec<(String, i32)> = readable_queues("T", &route)
            .into_iter()
            .map(|mq| (mq.broker_name, mq.queue_id))
            .collect();
        assert_eq!(got, vec![("a".into(), 0), ("b".into(), 0), ("b".into(), 1)]);
    }

    /// A broker listed twice (a route merged from two answers) yields its queues once.
    #[test]
    fn readable_queues_are_distinct() {
        let qd = |name: &str, read: u32| QueueData {
            broker_name: name.into(),
            read_queue_nums: read,
            write_queue_nums: 8,
            perm: 6,
            topic_sys_flag: 0,
        };
        let route = TopicRouteData {
            queue_datas: vec![qd("b", 2), qd("a", 1), qd("b", 3)],
            ..TopicRouteData::default()
        };
        let got: Vec<(String, i32)> = readable_queues("T", &route)
            .into_iter()
            .map(|mq| (mq.broker_name, mq.queue_id))
            .collect();
        let expected = [("a", 0), ("b", 0), ("b", 1), ("b", 2)].map(|(b, q)| (b.to_string(), q));
        assert_eq!(got, expected);
    }
}
