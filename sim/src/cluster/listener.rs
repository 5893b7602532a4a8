//! The workload's message listener: it fails a seeded share of what it is handed
//! (RECONSUME_LATER), so the retry path runs. Each delivery fails with
//! `fail_permille` / 1000 (drawn from the consumer's own seeded stream), and a message
//! whose workload id falls in the run's `always_fail_permille` share fails every
//! delivery to the group, so it exhausts its retries and is dead-lettered. Which ids
//! always fail is a hash of the id and a salt drawn from the run's seed: the same for
//! every consumer of a group (whichever of them gets the message), different from run
//! to run. Everything else succeeds at once.

use rmq_model::client::consumer::{
    ConsumeConcurrentlyStatus, ListenerAnswer, MessageListenerConcurrently,
};
use rmq_model::client::{DeliveredMessage, MessageQueue};
use rmq_model::message::property;
use rmq_model::node::Ctx;
use rmq_model::protocol::Message;

use crate::history::WID_PROPERTY;

/// How a group's listener answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerPlan {
    /// Deliveries failed, per thousand.
    pub fail_permille: u32,
    /// Messages failed on every delivery, per thousand (by workload id).
    pub always_fail_permille: u32,
    /// Mixed into the workload id to choose the messages that always fail.
    pub salt: u64,
}

impl ListenerPlan {
    /// Whether the listener fails anything (else the consumer keeps its default one,
    /// which draws nothing).
    pub fn fails(&self) -> bool {
        self.fail_permille > 0 || self.always_fail_permille > 0
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
}

impl MessageListenerConcurrently for FailingListener {
    fn consume_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        _mq: &MessageQueue,
        _queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> ListenerAnswer {
        let wid = property(&msg.properties, WID_PROPERTY).and_then(|w| w.parse().ok());
        let always = wid.is_some_and(|w| self.plan.always_fails(w));
        let drawn = self.plan.fail_permille > 0
            && ctx.random_u64() % 1_000 < u64::from(self.plan.fail_permille);
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
            fail_permille: 0,
            always_fail_permille: 30,
            salt,
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
