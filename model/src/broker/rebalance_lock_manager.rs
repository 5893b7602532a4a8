//! Queue locks for orderly consumers (`RebalanceLockManager`, reference C.6): an orderly
//! consumer takes a queue only once the broker has locked it for that client, so two
//! clients never consume one queue at once while a rebalance moves it.
//!
//! LOCK_BATCH_MQ grants each queue that is free, already held by the same client (its
//! timestamp refreshed) or expired, 60 s after its last refresh; UNLOCK_BATCH_MQ drops
//! the asking client's own locks. Locks live in memory only, as in RocketMQ: a restarted
//! broker starts with none, and a client re-locks every 20 s.
//!
//! Deviation: locks age by the node's monotonic clock (`Ctx::monotonic_ms`), not by the
//! wall clock RocketMQ reads (`System.currentTimeMillis`). A wall clock stepped back
//! keeps a dead client's lock past its 60 s, its queues stalled; one stepped forward
//! frees a live client's lock early, and two clients consume one queue.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::MessageQueue;

/// `rocketmq.broker.rebalance.lockMaxLiveTime`: a lock not refreshed for this long is
/// free for another client.
pub const LOCK_MAX_LIVE_TIME_MS: u64 = 60_000;

/// Bound on the lock table (groups × queues). Past it a lock request for a queue the
/// table does not hold yet is refused (not granted); the client retries at its next
/// rebalance. Expired entries are swept first.
pub const MAX_QUEUE_LOCKS: usize = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Lock {
    client_id: String,
    last_update_ms: u64,
}

impl Lock {
    fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_update_ms) > LOCK_MAX_LIVE_TIME_MS
    }
}

#[derive(Default)]
pub(super) struct RebalanceLockManager {
    /// group → queue → holder.
    groups: BTreeMap<String, BTreeMap<MessageQueue, Lock>>,
    len: usize,
}

impl RebalanceLockManager {
    /// `tryLockBatch`: the queues of `queues` now locked for `client_id`.
    pub(super) fn lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &BTreeSet<MessageQueue>,
        now_ms: u64,
    ) -> BTreeSet<MessageQueue> {
        let new_queues = queues
            .iter()
            .filter(|q| self.groups.get(group).is_none_or(|g| !g.contains_key(q)))
            .count();
        if self.len + new_queues > MAX_QUEUE_LOCKS {
            self.sweep(now_ms);
        }
        let mut granted = BTreeSet::new();
        for queue in queues {
            let held = self.groups.get(group).and_then(|g| g.get(queue));
            let grant = match held {
                Some(lock) => lock.client_id == client_id || lock.expired(now_ms),
                None => self.len < MAX_QUEUE_LOCKS,
            };
            if !grant {
                continue;
            }
            let previous = self.groups.entry(group.to_string()).or_default().insert(
                queue.clone(),
                Lock {
                    client_id: client_id.to_string(),
                    last_update_ms: now_ms,
                },
            );
            if previous.is_none() {
                self.len += 1;
            }
            granted.insert(queue.clone());
        }
        debug_assert_eq!(
            self.len,
            self.groups.values().map(BTreeMap::len).sum::<usize>()
        );
        granted
    }

    /// `unlockBatch`: drops the locks `client_id` holds on `queues`; others' stay.
    pub(super) fn unlock(&mut self, group: &str, client_id: &str, queues: &BTreeSet<MessageQueue>) {
        let Some(locks) = self.groups.get_mut(group) else {
            return;
        };
        for queue in queues {
            if locks.get(queue).is_some_and(|l| l.client_id == client_id) {
                locks.remove(queue);
                self.len -= 1;
            }
        }
        if locks.is_empty() {
            self.groups.remove(group);
        }
        debug_assert_eq!(
            self.len,
            self.groups.values().map(BTreeMap::len).sum::<usize>()
        );
    }

    fn sweep(&mut self, now_ms: u64) {
        for locks in self.groups.values_mut() {
            locks.retain(|_, lock| !lock.expired(now_ms));
        }
        self.groups.retain(|_, locks| !locks.is_empty());
        self.len = self.groups.values().map(BTreeMap::len).sum::<usize>();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::test_harness::{config_with, BrokerHarness};
    use crate::protocol::{LockBatch, Request, Response};
    use crate::store::delay_level::MessageDelayLevel;
    use crate::store::MemDisk;

    fn queues(ids: &[i32]) -> BTreeSet<MessageQueue> {
        ids.iter()
            .map(|&queue_id| MessageQueue {
                topic: "T".into(),
                broker_name: "broker-a".into(),
                queue_id,
            })
            .collect()
    }

    #[test]
    fn a_queue_is_locked_for_one_client_until_it_unlocks_or_expires() {
        let mut locks = RebalanceLockManager::default();
        assert_eq!(locks.lock("g", "c1", &queues(&[0, 1]), 0), queues(&[0, 1]));
        // Held by c1: c2 gets only the free one.
        assert_eq!(locks.lock("g", "c2", &queues(&[1, 2]), 1_000), queues(&[2]));
        // Another group locks independently.
        assert_eq!(locks.lock("h", "c2", &queues(&[1]), 1_000), queues(&[1]));
        // c1 refreshes its own; c2's unlock of c1's queue changes nothing.
        assert_eq!(locks.lock("g", "c1", &queues(&[1]), 30_000), queues(&[1]));
        locks.unlock("g", "c2", &queues(&[1]));
        assert_eq!(locks.lock("g", "c2", &queues(&[1]), 60_000), queues(&[]));
        // 60 s after its last refresh the lock is free.
        assert_eq!(locks.lock("g", "c2", &queues(&[0]), 60_001), queues(&[0]));
        // c1 unlocks queue 1: c2 takes it at once.
        locks.unlock("g", "c1", &queues(&[1]));
        assert_eq!(locks.lock("g", "c2", &queues(&[1]), 60_002), queues(&[1]));
    }

    #[test]
    fn a_step_of_the_brokers_wall_clock_neither_frees_nor_extends_a_lock() {
        let mut h = BrokerHarness::start(
            config_with("T", 4, MessageDelayLevel::default()),
            &[],
            MemDisk::new(),
            1_000,
        );
        let lock = |h: &mut BrokerHarness, client: &str| {
            let asked = LockBatch {
                consumer_group: "g".into(),
                client_id: client.into(),
                queues: queues(&[0]),
            };
            match h.request(Request::LockBatchMq(asked)) {
                Some(Response::LockBatchMq(locked)) => locked,
                other => panic!("not a lock answer: {other:?}"),
            }
        };
        assert_eq!(lock(&mut h, "c1"), queues(&[0]));
        // Stepped 90 s forward, the wall clock would call c1's 10 s old lock expired.
        h.ctx.now_ms = 11_000;
        h.ctx.wall_skew_ms = 90_000;
        assert!(lock(&mut h, "c2").is_empty(), "c1's lock is 10 s old");
        // Stepped back, it would keep c1's lock 60 s past its last renewal.
        h.ctx.wall_skew_ms = -50_000;
        h.ctx.now_ms = 61_001;
        assert_eq!(lock(&mut h, "c2"), queues(&[0]), "60 s after c1's lock");
    }
}
