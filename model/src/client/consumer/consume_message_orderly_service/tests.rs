//! The orderly consume service against a scripted context: one message at a time per
//! queue, only under a fresh lock, a suspended message retried in place.

use std::cell::RefCell;
use std::rc::Rc;

use super::super::rebalance_lock::tests::owning_a_locked;
use super::super::rebalance_lock::REBALANCE_LOCK_MAX_LIVE_TIME_MS;
use super::super::tests::{ctx, find, pull_answer, records, respond, NAMESRV};
use super::*;
use crate::client::test_ctx::TestCtx;
use crate::client::ConsumerConfig;
use crate::protocol::{MessageModel, Request};

/// A listener that answers later and notes each call: (queue id, offset, reconsume
/// count).
#[derive(Clone, Default)]
struct Calls(Rc<RefCell<Vec<(i32, u64, i32)>>>);

impl MessageListenerOrderly for Calls {
    fn consume_message(
        &mut self,
        _: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        queue_offset: u64,
        msg: &DeliveredMessage,
    ) -> OrderlyAnswer {
        self.0
            .borrow_mut()
            .push((mq.queue_id, queue_offset, msg.reconsume_times));
        OrderlyAnswer::Later
    }
}

fn mq(queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: "T".into(),
        broker_name: "a".into(),
        queue_id,
    }
}

/// An orderly consumer owning a0 (from offset 5) and a1, locked at 0 ms, with a listener
/// that answers later; a0's pull in flight.
fn orderly_owning_a0(ctx: &mut TestCtx, calls: &Calls) -> (PushConsumer, Message) {
    let mut c = PushConsumer::new(ConsumerConfig {
        consumer_group: "G".into(),
        namesrv_addrs: vec![NAMESRV.into()],
        topic: "T".into(),
        message_model: MessageModel::Clustering,
        consume_orderly: true,
        ..ConsumerConfig::default()
    });
    c.register_message_listener_orderly(Box::new(calls.clone()));
    let pulls = owning_a_locked(&mut c, ctx);
    let a0 = find(
        &pulls,
        |r| matches!(r, Request::PullMessage(p) if p.queue_id == 0),
    )[0]
    .1
    .clone();
    (c, a0)
}

fn delivered(events: &[ClientEvent]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered { queue_offset, .. } => Some(*queue_offset),
            _ => None,
        })
        .collect()
}

#[test]
fn one_message_at_a_time_and_a_suspended_one_is_retried_in_place() {
    use ConsumeOrderlyStatus::{Success, SuspendCurrentQueueAMoment};
    let mut ctx = ctx();
    let calls = Calls::default();
    let (mut c, a0) = orderly_owning_a0(&mut ctx, &calls);
    // Three records arrive: only the first goes to the listener.
    let recs = records(0, 5, &[None, None, None]);
    let events = respond(&mut c, &mut ctx, &a0, pull_answer(0, 8, recs));
    assert_eq!(delivered(&events), vec![5]);
    // Suspended: nothing else is handed over, and the offset stays at 5.
    let events = c.consumed_orderly(&mut ctx, &mq(0), 5, SuspendCurrentQueueAMoment);
    assert!(delivered(&events).is_empty(), "{events:?}");
    assert_eq!(c.offsets.read(&mq(0)), Some(5));
    // 1 s later the same message again, its reconsume count raised.
    let mut events = Vec::new();
    for input in ctx.advance_to(SUSPEND_CURRENT_QUEUE_TIME_MS) {
        events.extend(c.handle(&mut ctx, input));
    }
    assert_eq!(delivered(&events), vec![5]);
    assert_eq!(calls.0.borrow().last(), Some(&(0, 5, 1)));
    // Success: the next one follows, and the consumed offset moves past the first.
    let events = c.consumed_orderly(&mut ctx, &mq(0), 5, Success);
    assert_eq!(delivered(&events), vec![6]);
    assert_eq!(c.offsets.read(&mq(0)), Some(6));
    // An answer for an offset not in the listener changes nothing.
    let events = c.consumed_orderly(&mut ctx, &mq(0), 7, Success);
    assert!(delivered(&events).is_empty());
    assert_eq!(c.offsets.read(&mq(0)), Some(6));
    // Once the lock is older than 30 s, the next message waits for a renewal.
    ctx.now_ms = REBALANCE_LOCK_MAX_LIVE_TIME_MS + 1;
    let events = c.consumed_orderly(&mut ctx, &mq(0), 6, Success);
    assert!(delivered(&events).is_empty(), "{events:?}");
    assert_eq!(c.offsets.read(&mq(0)), Some(7));
}
