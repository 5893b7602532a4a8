//! The workload's orderly listener (`MessageListenerOrderly`): each message takes a
//! seeded processing time of virtual time (a host timer), and a seeded share of the
//! calls answer SUSPEND_CURRENT_QUEUE_A_MOMENT, so an orderly group's queues keep
//! resting and retrying the same message in place while the faults go on. A message in
//! the group's `always_fail_permille` share (`ListenerPlan::always_fails`, by workload
//! id) is suspended on every call: with a maximum, the consumer dead-letters it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rmq_model::client::{
    ConsumeOrderlyStatus, DeliveredMessage, MessageListenerOrderly, MessageQueue, OrderlyAnswer,
    CLIENT_TIMER_KIND_BASE,
};
use rmq_model::message::property;
use rmq_model::node::{Ctx, TimerId};
use rmq_model::protocol::Message;

use super::listener::ListenerPlan;
use crate::history::WID_PROPERTY;

/// The host timer kind of a listener call's end.
pub const TIMER_ORDERLY_DONE: u64 = 3;
const _: () = assert!(TIMER_ORDERLY_DONE < CLIENT_TIMER_KIND_BASE);

/// How long one listener call takes, uniform in this range (ms of virtual time).
pub const PROCESSING_MS: [u64; 2] = [1, 40];
/// Out of 100 calls, this many answer SUSPEND_CURRENT_QUEUE_A_MOMENT.
pub const SUSPEND_PERCENT: u64 = 10;

/// A listener call: its queue, the message's offset and the answer it will give.
pub type OrderlyCall = (MessageQueue, u64, ConsumeOrderlyStatus);

/// The listener calls still working, by the timer that ends each.
#[derive(Clone, Default)]
pub struct OrderlyCalls(Rc<RefCell<BTreeMap<TimerId, OrderlyCall>>>);

impl OrderlyCalls {
    /// The call whose processing time ended with timer `id`.
    pub fn take(&self, id: TimerId) -> Option<OrderlyCall> {
        self.0.borrow_mut().remove(&id)
    }
}

pub struct WorkloadOrderlyListener {
    calls: OrderlyCalls,
    /// Its `always_fail_permille` share is suspended on every call.
    plan: ListenerPlan,
}

impl WorkloadOrderlyListener {
    pub fn new(calls: OrderlyCalls, plan: ListenerPlan) -> Self {
        WorkloadOrderlyListener { calls, plan }
    }
}

impl MessageListenerOrderly for WorkloadOrderlyListener {
    fn consume_message(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> OrderlyAnswer {
        let [lo, hi] = PROCESSING_MS;
        let after_ms = lo + ctx.random_u64() % (hi - lo + 1);
        // Drawn first, whatever the message: the seeded stream stays the same.
        let drawn = ctx.random_u64() % 100 < SUSPEND_PERCENT;
        let always = self.plan.always_fail_permille > 0
            && property(&msg.properties, WID_PROPERTY)
                .and_then(|w| w.parse().ok())
                .is_some_and(|w| self.plan.always_fails(w));
        let status = if drawn || always {
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
        } else {
            ConsumeOrderlyStatus::Success
        };
        let timer = ctx.set_timer(after_ms, TIMER_ORDERLY_DONE);
        self.calls
            .0
            .borrow_mut()
            .insert(timer, (mq.clone(), queue_offset, status));
        OrderlyAnswer::Later
    }
}
