//! `ProcessQueue`: the messages of one owned queue that were handed to the listener and
//! whose listener has not returned yet, by queue offset.
//!
//! It decides how far the queue counts as consumed: up to the lowest offset still in
//! the listener, or, with none there, up to where the next pull starts
//! (`ProcessQueue.removeMessage` answers the lowest key, else one past the highest
//! offset taken; RocketMQ's `correctTagsOffset` then moves an empty queue's offset on
//! to the pull's next begin offset, which is what the empty case here answers at
//! once). So a crash while a listener runs never commits past the message it was
//! handling.
//!
//! A listener that answers at once never puts its message here: it is taken and
//! removed in the same step, and the offset moves exactly as if it had been.

use std::collections::BTreeMap;

use crate::client::DeliveredMessage;

#[derive(Clone, Debug, Default)]
pub(crate) struct ProcessQueue {
    /// `msgTreeMap`: queue offset → the message in the listener.
    in_listener: BTreeMap<u64, DeliveredMessage>,
    /// Of those, the ones a listener is still working on (not failed and waiting to be
    /// handed back): queue offset → when the listener got it, by the monotonic clock
    /// (`CONSUME_START_TIME`).
    listening_since_ms: BTreeMap<u64, u64>,
}

impl ProcessQueue {
    /// `putMessage`: the listener holds the message at `queue_offset` until it answers.
    pub(crate) fn put(&mut self, queue_offset: u64, msg: DeliveredMessage) {
        self.in_listener.insert(queue_offset, msg);
    }

    /// `removeMessage`: the listener answered for `queue_offset`; the message, if it
    /// was here (not when the queue was dropped and taken again meanwhile).
    pub(crate) fn remove(&mut self, queue_offset: u64) -> Option<DeliveredMessage> {
        self.listening_since_ms.remove(&queue_offset);
        self.in_listener.remove(&queue_offset)
    }

    /// A listener started working on the message at `queue_offset` at `now_ms`.
    pub(crate) fn start_listening(&mut self, queue_offset: u64, now_ms: u64) {
        self.listening_since_ms.insert(queue_offset, now_ms);
    }

    /// The listener's answer for `queue_offset` counts: whether it was still expected
    /// (not given up on by the consumeTimeout sweep, nor dropped with the queue).
    pub(crate) fn stop_listening(&mut self, queue_offset: u64) -> bool {
        self.listening_since_ms.remove(&queue_offset).is_some()
    }

    /// Whether a listener works on any message here.
    pub(crate) fn is_listening(&self) -> bool {
        !self.listening_since_ms.is_empty()
    }

    /// `cleanExpiredMsg`: every message whose listener got it `timeout_ms` or longer
    /// before `now_ms`, in offset order. They are no longer listened for.
    pub(crate) fn take_expired(&mut self, now_ms: u64, timeout_ms: u64) -> Vec<u64> {
        let expired: Vec<u64> = self
            .listening_since_ms
            .iter()
            .filter(|&(_, &since)| now_ms.saturating_sub(since) >= timeout_ms)
            .map(|(&offset, _)| offset)
            .collect();
        for offset in &expired {
            self.listening_since_ms.remove(offset);
        }
        expired
    }

    /// The lowest message waiting (an orderly consumer's next one).
    pub(crate) fn first(&self) -> Option<(u64, &DeliveredMessage)> {
        self.in_listener.first_key_value().map(|(&o, m)| (o, m))
    }

    /// The message the listener holds at `queue_offset`.
    pub(crate) fn get(&self, queue_offset: u64) -> Option<&DeliveredMessage> {
        self.in_listener.get(&queue_offset)
    }

    /// The same, to change (a local retry raises its reconsume count).
    pub(crate) fn get_mut(&mut self, queue_offset: u64) -> Option<&mut DeliveredMessage> {
        self.in_listener.get_mut(&queue_offset)
    }

    /// How far the queue is consumed when the next pull starts at `next_offset`: the
    /// lowest offset still in a listener, else `next_offset`.
    pub(crate) fn consume_offset(&self, next_offset: u64) -> u64 {
        self.in_listener
            .first_key_value()
            .map_or(next_offset, |(&lowest, _)| lowest.min(next_offset))
    }

    /// `ProcessQueue.setDropped` then clear: the queue was given away or its offset
    /// moved; listeners still running answer into nothing.
    pub(crate) fn clear(&mut self) {
        self.in_listener.clear();
        self.listening_since_ms.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::Host;

    fn msg() -> DeliveredMessage {
        DeliveredMessage {
            topic: "T".into(),
            tags: None,
            properties: String::new(),
            body: Vec::new(),
            reconsume_times: 0,
            msg_id: String::new(),
            born_timestamp_ms: 0,
            commit_log_offset: 0,
            born_host: Host {
                ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                port: 1,
            },
        }
    }

    #[test]
    fn consumed_up_to_the_lowest_message_still_in_a_listener() {
        let mut pq = ProcessQueue::default();
        assert_eq!(
            pq.consume_offset(7),
            7,
            "nothing in a listener: the next pull"
        );
        for offset in [3, 4, 5] {
            pq.put(offset, msg());
        }
        assert_eq!(pq.consume_offset(6), 3);
        assert!(pq.remove(4).is_some());
        assert_eq!(pq.consume_offset(6), 3, "4 done, 3 still running");
        assert!(pq.remove(3).is_some());
        assert_eq!(pq.consume_offset(6), 5);
        assert!(pq.remove(3).is_none(), "answered twice: nothing");
        assert!(pq.remove(5).is_some());
        assert_eq!(pq.consume_offset(6), 6);
        pq.put(9, msg());
        pq.clear();
        assert_eq!(pq.consume_offset(10), 10);
    }
}
