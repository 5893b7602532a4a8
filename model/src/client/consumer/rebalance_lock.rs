//! Queue locks of an orderly consumer (`RebalanceImpl.lock/lockAll/unlock/unlockAll`,
//! `ConsumeMessageOrderlyService.lockMQPeriodically`, reference C.6): a clustering
//! orderly consumer takes a queue the rebalance gives it only once the queue's master
//! has locked it for this client (LOCK_BATCH_MQ), renews the locks of all its queues
//! every 20 s, consumes a queue only while its last successful lock is younger than
//! 30 s (the broker keeps a lock 60 s), and unlocks (UNLOCK_BATCH_MQ) a queue it gives
//! up — after committing its offset, so the next holder starts where it stopped — and
//! all of them when it shuts down.
//!
//! A queue the master would not lock (another client holds it) is asked for again at a
//! rebalance 500 ms later (`rebalanceLater(500)`), as is one whose lock request failed.
//!
//! Deviations: a lock counts from when it was asked for, not from when the answer
//! arrived (RocketMQ stamps the answer's arrival), so the client's 30 s never outlive
//! the broker's 60 s however long the answer took; and a lock answer that arrives after
//! the rebalance moved the queue away is handed back at once. Both only narrow the time
//! a client believes it holds a lock.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{broker_addr, timer_kind, ClientEvent, MessageQueue, RpcOutcome};
use crate::node::{Ctx, TimerId};
use crate::protocol::{LockBatch, Message, Request, Response};

use super::{Call, PushConsumer};

/// `rocketmq.client.rebalance.lockMaxLiveTime`: the client consumes a queue only within
/// this long of its last successful lock.
pub const REBALANCE_LOCK_MAX_LIVE_TIME_MS: u64 = 30_000;
/// `rocketmq.client.rebalance.lockInterval`: how often every lock is renewed.
pub const REBALANCE_LOCK_INTERVAL_MS: u64 = 20_000;
/// `ConsumeMessageOrderlyService.start`: the first renewal, after start.
pub const FIRST_LOCK_ALL_DELAY_MS: u64 = 1_000;
/// The timeout of LOCK_BATCH_MQ (`lockBatchMQ(.., 1000)`).
pub const LOCK_BATCH_TIMEOUT_MS: u64 = 1_000;
/// `rebalanceLater(500)`: a rebalance that could not lock every new queue runs again.
pub const REBALANCE_LATER_MS: u64 = 500;

/// What an orderly consumer knows of its locks.
#[derive(Clone, Debug, Default)]
pub(super) struct RebalanceLocks {
    /// Owned queues and when their last successful lock was asked for, by the
    /// monotonic clock (`Ctx::monotonic_ms`: a step of the wall clock must neither
    /// lapse a live lock nor stretch one past the broker's); a queue absent is not
    /// locked (`ProcessQueue.locked` false).
    last_lock_ms: BTreeMap<MessageQueue, u64>,
    /// Queues the rebalance gave us that wait for their first lock's answer.
    taking: BTreeSet<MessageQueue>,
    /// The last rebalance's allocation: a lock granted for a queue no longer in it is
    /// handed back.
    wanted: BTreeSet<MessageQueue>,
    lock_all_timer: Option<TimerId>,
    rebalance_later_timer: Option<TimerId>,
}

/// Why a LOCK_BATCH_MQ was sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum LockPurpose {
    /// The rebalance's new queues: each granted one is taken.
    Take,
    /// `lockAll`: the renewal of the owned queues' locks.
    Renew,
}

impl RebalanceLocks {
    /// The lock of `mq` was granted within the last 30 s.
    pub(super) fn holds(&self, mq: &MessageQueue, now_ms: u64) -> bool {
        self.last_lock_ms
            .get(mq)
            .is_some_and(|&at| now_ms.saturating_sub(at) <= REBALANCE_LOCK_MAX_LIVE_TIME_MS)
    }
}

/// `queues` by broker name.
fn by_broker<'a>(
    queues: impl IntoIterator<Item = &'a MessageQueue>,
) -> BTreeMap<String, BTreeSet<MessageQueue>> {
    let mut out: BTreeMap<String, BTreeSet<MessageQueue>> = BTreeMap::new();
    for mq in queues {
        out.entry(mq.broker_name.clone())
            .or_default()
            .insert(mq.clone());
    }
    out
}

impl PushConsumer {
    /// Orderly clustering consumers lock their queues; broadcasting ones consume every
    /// queue on every member and lock nothing.
    pub(super) fn takes_locks(&self) -> bool {
        self.cfg.consume_orderly && self.clustering()
    }

    /// May `mq` be consumed now: always for a consumer that takes no locks, else only
    /// while its lock is fresh.
    pub(super) fn holds_lock(&self, mq: &MessageQueue, now_ms: u64) -> bool {
        !self.takes_locks() || self.locks.holds(mq, now_ms)
    }

    /// Arms the first renewal (called by `start`).
    pub(super) fn start_locking(&mut self, ctx: &mut dyn Ctx<Message>) {
        if self.takes_locks() {
            self.locks.lock_all_timer =
                Some(ctx.set_timer(FIRST_LOCK_ALL_DELAY_MS, timer_kind::LOCK_ALL));
        }
    }

    /// The rebalance's allocation, for an orderly consumer: queues it does not own yet
    /// are asked for; each is taken once its master locks it.
    pub(super) fn take_locked(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        allocated: BTreeSet<MessageQueue>,
    ) {
        self.locks.wanted = allocated;
        let new = by_broker(
            self.locks
                .wanted
                .iter()
                .filter(|mq| !self.queues.contains_key(mq) && !self.locks.taking.contains(*mq)),
        );
        for (broker_name, queues) in new {
            if self.send_lock(ctx, &broker_name, &queues, LockPurpose::Take) {
                self.locks.taking.extend(queues);
            } else {
                self.rebalance_later(ctx);
            }
        }
    }

    /// `lockAll`: renews the lock of every owned queue at its master.
    fn lock_all(&mut self, ctx: &mut dyn Ctx<Message>) {
        let owned = by_broker(self.queues.keys());
        for (broker_name, queues) in owned {
            self.send_lock(ctx, &broker_name, &queues, LockPurpose::Renew);
        }
    }

    /// Sends LOCK_BATCH_MQ for `queues` to `broker_name`'s master; false when it could
    /// not be sent (no master known, or no connection).
    fn send_lock(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        broker_name: &str,
        queues: &BTreeSet<MessageQueue>,
        purpose: LockPurpose,
    ) -> bool {
        let Some(addr) = self
            .route
            .as_ref()
            .and_then(|r| broker_addr(r, broker_name, 0))
            .map(str::to_string)
        else {
            return false;
        };
        let request = Request::LockBatchMq(LockBatch {
            consumer_group: self.cfg.consumer_group.clone(),
            client_id: self.client_id.clone(),
            queues: queues.clone(),
        });
        let call = Call::Lock {
            queues: queues.clone(),
            asked_ms: ctx.monotonic_ms(),
            purpose,
        };
        self.rpc
            .call(ctx, &addr, request, LOCK_BATCH_TIMEOUT_MS, call)
            .is_ok()
    }

    /// The answer to a LOCK_BATCH_MQ asked at `asked_ms` for `queues`.
    pub(super) fn on_lock(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        queues: BTreeSet<MessageQueue>,
        asked_ms: u64,
        purpose: LockPurpose,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        let granted = match outcome {
            RpcOutcome::Response(Response::LockBatchMq(granted)) => Some(granted),
            other => {
                tracing::debug!(?queues, outcome = %other.describe(), "lock batch failed");
                None
            }
        };
        match purpose {
            LockPurpose::Renew => {
                // A failed renewal changes nothing: the locks age until the next one.
                let Some(granted) = granted else { return };
                for mq in queues {
                    if !self.queues.contains_key(&mq) {
                        continue;
                    }
                    if granted.contains(&mq) {
                        self.locks.last_lock_ms.insert(mq.clone(), asked_ms);
                        // A queue whose lock had lapsed goes on where it stopped.
                        self.consume_orderly(ctx, &mq, out);
                    } else {
                        tracing::debug!(?mq, "lost the queue lock");
                        self.locks.last_lock_ms.remove(&mq);
                    }
                }
            }
            LockPurpose::Take => {
                let granted = granted.unwrap_or_default();
                let mut all_taken = true;
                let mut stale = BTreeSet::new();
                for mq in queues {
                    if !self.locks.taking.remove(&mq) {
                        // Asked for again meanwhile (shut down, or an older request).
                        if granted.contains(&mq) && !self.queues.contains_key(&mq) {
                            stale.insert(mq);
                        }
                        continue;
                    }
                    if !granted.contains(&mq) {
                        all_taken = false;
                        continue;
                    }
                    if !self.locks.wanted.contains(&mq) || self.queues.contains_key(&mq) {
                        if !self.queues.contains_key(&mq) {
                            stale.insert(mq);
                        }
                        continue;
                    }
                    self.locks.last_lock_ms.insert(mq.clone(), asked_ms);
                    self.own(ctx, mq, out);
                }
                self.send_unlock(ctx, &stale);
                if !all_taken {
                    self.rebalance_later(ctx);
                }
            }
        }
    }

    /// Hands back the lock of a queue given up (after its offset was committed).
    pub(super) fn release_lock(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue) {
        if !self.takes_locks() {
            return;
        }
        self.locks.last_lock_ms.remove(mq);
        self.send_unlock(ctx, &BTreeSet::from([mq.clone()]));
    }

    /// `unlockAll` at shutdown (after the offsets were committed): hands back every
    /// queue's lock and stops renewing.
    pub(super) fn release_all_locks(&mut self, ctx: &mut dyn Ctx<Message>) {
        for timer in [
            self.locks.lock_all_timer.take(),
            self.locks.rebalance_later_timer.take(),
        ]
        .into_iter()
        .flatten()
        {
            ctx.cancel_timer(timer);
        }
        if !self.takes_locks() {
            return;
        }
        // Queues still waiting for their first lock too: a grant on its way is handed
        // back rather than left to expire.
        let held: BTreeSet<MessageQueue> = self
            .queues
            .keys()
            .chain(&self.locks.taking)
            .cloned()
            .collect();
        self.send_unlock(ctx, &held);
        self.locks = RebalanceLocks::default();
    }

    /// UNLOCK_BATCH_MQ for `queues` to their masters, one way: nothing waits for the
    /// answer, and an unlock that is lost leaves the broker's lock to expire.
    fn send_unlock(&mut self, ctx: &mut dyn Ctx<Message>, queues: &BTreeSet<MessageQueue>) {
        for (broker_name, queues) in by_broker(queues) {
            let Some(addr) = self
                .route
                .as_ref()
                .and_then(|r| broker_addr(r, &broker_name, 0))
                .map(str::to_string)
            else {
                continue;
            };
            let request = Request::UnlockBatchMq(LockBatch {
                consumer_group: self.cfg.consumer_group.clone(),
                client_id: self.client_id.clone(),
                queues,
            });
            let _ = self.rpc.send_untracked(ctx, &addr, request);
        }
    }

    fn rebalance_later(&mut self, ctx: &mut dyn Ctx<Message>) {
        if self.locks.rebalance_later_timer.is_none() {
            self.locks.rebalance_later_timer =
                Some(ctx.set_timer(REBALANCE_LATER_MS, timer_kind::REBALANCE_LATER));
        }
    }

    /// The lock timers; false when `id` is not one of them.
    pub(super) fn on_lock_timer(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: TimerId,
        out: &mut Vec<ClientEvent>,
    ) -> bool {
        if self.locks.lock_all_timer == Some(id) {
            self.lock_all(ctx);
            self.locks.lock_all_timer =
                Some(ctx.set_timer(REBALANCE_LOCK_INTERVAL_MS, timer_kind::LOCK_ALL));
            true
        } else if self.locks.rebalance_later_timer == Some(id) {
            self.locks.rebalance_later_timer = None;
            self.rebalance(ctx, out);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
pub(super) mod tests;
