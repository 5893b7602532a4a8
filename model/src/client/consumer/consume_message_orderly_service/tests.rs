//! The orderly consume service against a scripted context: one message at a time per
//! queue, only under a fresh lock, a suspended message retried in place.

use std::cell::RefCell;
use std::rc::Rc;

use super::super::rebalance_lock::tests::owning_a_locked;
use super::super::rebalance_lock::REBALANCE_LOCK_MAX_LIVE_TIME_MS;
use super::super::tests::{ctx, find, pull_answer, records, respond, NAMESRV};
use super::*;
use crate::client::consumer::send_message_back::CLIENT_INNER_PRODUCER_GROUP;
use crate::client::test_ctx::TestCtx;
use crate::client::ConsumerConfig;
use crate::message::{property, PROPERTY_ORIGIN_MESSAGE_ID, PROPERTY_RETRY_TOPIC};
use crate::protocol::SendMessage;
use crate::protocol::{MessageModel, Request};
use crate::store::delay_level::PROPERTY_DELAY_TIME_LEVEL;

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
    orderly_owning_a0_with(ctx, calls, None)
}

/// [`orderly_owning_a0`], with a maximum of reconsumes.
fn orderly_owning_a0_with(
    ctx: &mut TestCtx,
    calls: &Calls,
    max_reconsume_times: Option<i32>,
) -> (PushConsumer, Message) {
    let mut c = PushConsumer::new(ConsumerConfig {
        consumer_group: "G".into(),
        namesrv_addrs: vec![NAMESRV.into()],
        topic: "T".into(),
        message_model: MessageModel::Clustering,
        consume_orderly: true,
        max_reconsume_times,
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

/// Moves the clock to `at_ms` and runs `c`'s timers due by then; the events they gave.
fn advance(c: &mut PushConsumer, ctx: &mut TestCtx, at_ms: u64) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    for input in ctx.advance_to(at_ms) {
        events.extend(c.handle(ctx, input));
    }
    events
}

/// The dead-letter copies sent since the last look: (the request, its message).
fn dead_letter_copies(ctx: &mut TestCtx) -> Vec<(SendMessage, Message)> {
    ctx.take_sent()
        .into_iter()
        .filter_map(|(_, m)| match &m {
            Message::Request {
                request: Request::SendMessage(s),
                ..
            } => Some((s.clone(), m.clone())),
            _ => None,
        })
        .collect()
}

fn stored() -> Response {
    Response::Send(crate::protocol::SendResponse {
        code: 0,
        msg_id: "M".into(),
        queue_id: 0,
        queue_offset: 0,
    })
}

/// Max 2: the message is suspended at counts 0 and 1; its third failure (count 2)
/// sends a copy with count 3 and max 2 to the retry topic instead, and the queue waits.
fn fail_to_the_maximum(c: &mut PushConsumer, ctx: &mut TestCtx) -> (SendMessage, Message) {
    use ConsumeOrderlyStatus::SuspendCurrentQueueAMoment;
    for n in 0..2u64 {
        let events = c.consumed_orderly(ctx, &mq(0), 5, SuspendCurrentQueueAMoment);
        assert!(delivered(&events).is_empty(), "{events:?}");
        assert!(
            dead_letter_copies(ctx).is_empty(),
            "suspended, not dead-lettered"
        );
        let events = advance(c, ctx, (n + 1) * SUSPEND_CURRENT_QUEUE_TIME_MS);
        assert_eq!(delivered(&events), vec![5]);
    }
    let events = c.consumed_orderly(ctx, &mq(0), 5, SuspendCurrentQueueAMoment);
    assert!(
        delivered(&events).is_empty(),
        "the queue waits for the copy: {events:?}"
    );
    let mut copies = dead_letter_copies(ctx);
    assert_eq!(copies.len(), 1, "{copies:?}");
    copies.remove(0)
}

#[test]
fn past_the_maximum_a_copy_goes_to_the_retry_topic_and_the_queue_goes_on_once_it_is_stored() {
    let mut ctx = ctx();
    let calls = Calls::default();
    let (mut c, a0) = orderly_owning_a0_with(&mut ctx, &calls, Some(2));
    let recs = records(0, 5, &[None, None]);
    respond(&mut c, &mut ctx, &a0, pull_answer(0, 7, recs));
    let (copy, request) = fail_to_the_maximum(&mut c, &mut ctx);
    assert_eq!(copy.topic, "%RETRY%G");
    assert_eq!(copy.producer_group, CLIENT_INNER_PRODUCER_GROUP);
    assert_eq!(
        (copy.reconsume_times, copy.max_reconsume_times),
        (3, Some(2))
    );
    assert_eq!(copy.body, b"body");
    assert_eq!(property(&copy.properties, "UNIQ_KEY"), Some("UNIQ0"));
    assert_eq!(property(&copy.properties, PROPERTY_RETRY_TOPIC), Some("T"));
    assert_eq!(
        property(&copy.properties, PROPERTY_ORIGIN_MESSAGE_ID),
        Some("UNIQ0")
    );
    assert_eq!(
        property(&copy.properties, PROPERTY_DELAY_TIME_LEVEL),
        Some("5")
    );
    // Nothing moves while the copy is in flight, not even after a suspend's rest.
    let sent_ms = ctx.now_ms;
    let events = advance(&mut c, &mut ctx, sent_ms + SEND_DEAD_LETTER_TIMEOUT_MS - 1);
    assert!(delivered(&events).is_empty(), "{events:?}");
    assert_eq!(c.offsets.read(&mq(0)), Some(5));
    // Stored: the consumer commits past it and hands over the next message.
    let events = respond(&mut c, &mut ctx, &request, stored());
    assert_eq!(delivered(&events), vec![6]);
    assert_eq!(c.offsets.read(&mq(0)), Some(6));
    assert_eq!(calls.0.borrow().last(), Some(&(0, 6, 0)));
}

#[test]
fn a_failed_dead_letter_copy_suspends_the_message_again_and_it_is_never_skipped() {
    let mut ctx = ctx();
    let calls = Calls::default();
    let (mut c, a0) = orderly_owning_a0_with(&mut ctx, &calls, Some(2));
    let recs = records(0, 5, &[None, None]);
    respond(&mut c, &mut ctx, &a0, pull_answer(0, 7, recs));
    let (_, request) = fail_to_the_maximum(&mut c, &mut ctx);
    let refused = Response::Error {
        code: crate::protocol::response_code::SYSTEM_ERROR,
        remark: "store refused".into(),
    };
    let events = respond(&mut c, &mut ctx, &request, refused);
    assert!(delivered(&events).is_empty(), "{events:?}");
    assert_eq!(c.offsets.read(&mq(0)), Some(5), "not skipped");
    // The same message again after the rest, its count raised; its next failure tries
    // the copy again, with the count it has now.
    let events = advance(&mut c, &mut ctx, 4 * SUSPEND_CURRENT_QUEUE_TIME_MS);
    assert_eq!(delivered(&events), vec![5]);
    assert_eq!(calls.0.borrow().last(), Some(&(0, 5, 3)));
    let events = c.consumed_orderly(
        &mut ctx,
        &mq(0),
        5,
        ConsumeOrderlyStatus::SuspendCurrentQueueAMoment,
    );
    assert!(delivered(&events).is_empty());
    let copies = dead_letter_copies(&mut ctx);
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].0.reconsume_times, 4);
    // A copy with no answer in time is a failure too: suspended at the timeout, the
    // message is handed over again after the rest.
    let sent_ms = ctx.now_ms;
    let events = advance(&mut c, &mut ctx, sent_ms + SEND_DEAD_LETTER_TIMEOUT_MS);
    assert!(delivered(&events).is_empty());
    let timed_out_ms = ctx.now_ms;
    let events = advance(
        &mut c,
        &mut ctx,
        timed_out_ms + SUSPEND_CURRENT_QUEUE_TIME_MS,
    );
    assert!(dead_letter_copies(&mut ctx).is_empty());
    assert_eq!(
        delivered(&events),
        vec![5],
        "retried after the timeout and a rest"
    );
    assert_eq!(calls.0.borrow().last(), Some(&(0, 5, 4)));
    assert_eq!(c.offsets.read(&mq(0)), Some(5));
}

#[test]
fn without_a_maximum_an_orderly_consumer_suspends_without_end() {
    let mut ctx = ctx();
    let calls = Calls::default();
    let (mut c, a0) = orderly_owning_a0(&mut ctx, &calls);
    let recs = records(0, 5, &[None, None]);
    respond(&mut c, &mut ctx, &a0, pull_answer(0, 7, recs));
    // Past the 16 a concurrent consumer stops at (within one lock lifetime).
    for n in 0..20u64 {
        c.consumed_orderly(
            &mut ctx,
            &mq(0),
            5,
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment,
        );
        assert!(dead_letter_copies(&mut ctx).is_empty());
        let events = advance(&mut c, &mut ctx, (n + 1) * SUSPEND_CURRENT_QUEUE_TIME_MS);
        assert_eq!(delivered(&events), vec![5]);
    }
    assert_eq!(calls.0.borrow().last(), Some(&(0, 5, 20)));
    assert_eq!(c.offsets.read(&mq(0)), Some(5));
}
