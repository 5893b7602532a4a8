//! The workload's message listener: it fails a seeded share of what it is handed
//! (RECONSUME_LATER), so the retry path runs. Each delivery fails with
//! `fail_permille` / 1000 (drawn from the consumer's own seeded stream), and a message
//! whose workload id falls in the run's `always_fail_permille` share fails every
//! delivery to the group, so it exhausts its retries and is dead-lettered. Which ids
//! always fail is a hash of the id and a salt drawn from the run's seed: the same for
//! every consumer of a group (whichever of them gets the message), different from run
//! to run. A delivery hangs with `hang_permille` / 1000: the listener answers
//! CONSUME_SUCCESS only `answer_hung_after_ms` later (a host timer), long after its
//! consumer's consumeTimeout sweep gave up on it and handed the message back.
//! Everything else succeeds at once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::client::consumer::{
    ConsumeConcurrentlyStatus, ListenerAnswer, MessageListenerConcurrently,
};
use rmq_model::client::{DeliveredMessage, MessageQueue, CLIENT_TIMER_KIND_BASE};
use rmq_model::message::property;
use rmq_model::node::{Ctx, TimerId};
use rmq_model::protocol::Message;

use crate::history::WID_PROPERTY;

/// The host timer kind of a hung listener call's late answer.
pub const TIMER_HUNG_DONE: u64 = 4;
const _: () = assert!(TIMER_HUNG_DONE < CLIENT_TIMER_KIND_BASE);

/// Hung listener calls, by the timer that ends each: the queue and offset answered.
#[derive(Clone, Default)]
pub struct HungCalls(Rc<RefCell<BTreeMap<TimerId, (MessageQueue, u64)>>>);

impl HungCalls {
    /// The call whose late answer is due with timer `id`.
    pub fn take(&self, id: TimerId) -> Option<(MessageQueue, u64)> {
        self.0.borrow_mut().remove(&id)
    }
}

/// How a group's listener answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerPlan {
    /// Deliveries failed, per thousand.
    pub fail_permille: u32,
    /// Messages failed on every delivery, per thousand (by workload id).
    pub always_fail_permille: u32,
    /// Deliveries the listener hangs on, per thousand.
    pub hang_permille: u32,
    /// How long a hung call takes to answer.
    pub answer_hung_after_ms: u64,
    /// Mixed into the workload id to choose the messages that always fail.
    pub salt: u64,
}

impl ListenerPlan {
    /// Whether the listener fails anything (else the consumer keeps its default one,
    /// which draws nothing).
    pub fn fails(&self) -> bool {
        self.fail_permille > 0 || self.always_fail_permille > 0 || self.hang_permille > 0
    }

    /// Whether every delivery of message `wid` fails.
    pub fn always_fails(&self, wid: u64) -> bool {
        mix(wid ^ self.salt) % 1_000 < u64::from(self.always_fail_permille)
    }
}

/// SplitMix64's finalizer: neighbouring ids land far apart.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub struct FailingListener {
    pub plan: ListenerPlan,
    pub hung: HungCalls,
}

impl MessageListenerConcurrently for FailingListener {
    fn consume_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> ListenerAnswer {
        let wid = property(&msg.properties, WID_PROPERTY).and_then(|w| w.parse().ok());
        let always = wid.is_some_and(|w| self.plan.always_fails(w));
        let drawn = self.plan.fail_permille > 0
            && ctx.random_u64() % 1_000 < u64::from(self.plan.fail_permille);
        let hangs = self.plan.hang_permille > 0
            && ctx.random_u64() % 1_000 < u64::from(self.plan.hang_permille);
        if hangs {
            let timer = ctx.set_timer(self.plan.answer_hung_after_ms, TIMER_HUNG_DONE);
            self.hung
                .0
                .borrow_mut()
                .insert(timer, (mq.clone(), queue_offset));
            return ListenerAnswer::Later;
        }
        ListenerAnswer::Now(if always || drawn {
            ConsumeConcurrentlyStatus::ReconsumeLater
        } else {
            ConsumeConcurrentlyStatus::ConsumeSuccess
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_always_failing_share_is_about_what_was_asked_and_follows_the_salt() {
        let plan = |salt| ListenerPlan {
            always_fail_permille: 30,
            salt,
            ..ListenerPlan::default()
        };
        let chosen = |p: ListenerPlan| (1..=100_000u64).filter(|&w| p.always_fails(w)).count();
        let n = chosen(plan(7));
        assert!((2_500..3_500).contains(&n), "{n} of 100000");
        let a: Vec<u64> = (1..=1_000).filter(|&w| plan(7).always_fails(w)).collect();
        let b: Vec<u64> = (1..=1_000).filter(|&w| plan(8).always_fails(w)).collect();
        assert_ne!(a, b, "another run, other messages");
        assert_eq!(chosen(ListenerPlan::default()), 0);
    }
}
