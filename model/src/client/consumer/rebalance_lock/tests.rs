//! An orderly consumer's queue locks, against a scripted context.

use std::collections::BTreeSet;

use super::super::tests::{ctx, find, pull_answer, records, respond, route, NAMESRV};
use super::*;
use crate::client::test_ctx::TestCtx;
use crate::node::NodeId;
use crate::protocol::{MessageModel, Request};

use super::super::ConsumerConfig;

fn orderly() -> PushConsumer {
    PushConsumer::new(ConsumerConfig {
        consumer_group: "G".into(),
        namesrv_addrs: vec![NAMESRV.into()],
        topic: "T".into(),
        message_model: MessageModel::Clustering,
        consume_orderly: true,
        ..ConsumerConfig::default()
    })
}

fn mq(broker: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: "T".into(),
        broker_name: broker.into(),
        queue_id,
    }
}

fn lock_body(m: &Message) -> &LockBatch {
    match m {
        Message::Request {
            request: Request::LockBatchMq(b) | Request::UnlockBatchMq(b),
            ..
        } => b,
        other => panic!("not a lock request: {other:?}"),
    }
}

fn is_lock(r: &Request) -> bool {
    matches!(r, Request::LockBatchMq(_))
}

fn is_unlock(r: &Request) -> bool {
    matches!(r, Request::UnlockBatchMq(_))
}

fn is_query(r: &Request) -> bool {
    matches!(r, Request::QueryConsumerOffset(_))
}

fn is_pull(r: &Request) -> bool {
    matches!(r, Request::PullMessage(_))
}

/// Feeds every timer due by `t_ms`; the events.
fn run_to(c: &mut PushConsumer, ctx: &mut TestCtx, t_ms: u64) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    for input in ctx.advance_to(t_ms) {
        events.extend(c.handle(ctx, input));
    }
    events
}

/// Starts `c` and answers the route and a consumer list naming it and "z@1", so the
/// rebalance gives it broker a's two queues; the requests that follow.
pub(in crate::client::consumer) fn allocated_a(
    c: &mut PushConsumer,
    ctx: &mut TestCtx,
) -> Vec<(NodeId, Message)> {
    c.start(ctx);
    let sent = ctx.take_sent();
    respond(c, ctx, &sent[0].1, Response::Route(route()));
    answer_consumer_list(c, ctx)
}

/// Answers the consumer-list request among the requests sent with a list naming `c`
/// and "z@1" (it sorts first and gets a's queues); the requests that follow.
pub(in crate::client::consumer) fn answer_consumer_list(
    c: &mut PushConsumer,
    ctx: &mut TestCtx,
) -> Vec<(NodeId, Message)> {
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    })[0]
        .1
        .clone();
    let cids = vec!["z@1".to_string(), c.client_id().to_string()];
    respond(c, ctx, &list, Response::ConsumerList(cids));
    ctx.take_sent()
}

/// An orderly consumer owning a0 (offset 5) and a1 (offset 0), both locked at 0 ms; the
/// two pulls in flight.
pub(in crate::client::consumer) fn owning_a_locked(
    c: &mut PushConsumer,
    ctx: &mut TestCtx,
) -> Vec<(NodeId, Message)> {
    let sent = allocated_a(c, ctx);
    let lock = find(&sent, is_lock)[0].1.clone();
    let granted = lock_body(&lock).queues.clone();
    respond(c, ctx, &lock, Response::LockBatchMq(granted));
    let sent = ctx.take_sent();
    let queries = find(&sent, is_query);
    respond(c, ctx, &queries[0].1, Response::Offset(5));
    respond(c, ctx, &queries[1].1, Response::Offset(0));
    ctx.take_sent()
}

#[test]
fn a_queue_is_taken_only_once_its_master_locked_it() {
    let mut ctx = ctx();
    let mut c = orderly();
    let sent = allocated_a(&mut c, &mut ctx);
    // One LOCK_BATCH_MQ for both of a's queues, to a's master; nothing else yet.
    let locks = find(&sent, is_lock);
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].0, NodeId(2));
    let body = lock_body(&locks[0].1);
    assert_eq!(body.consumer_group, "G");
    assert_eq!(body.client_id, c.client_id());
    assert_eq!(body.queues, BTreeSet::from([mq("a", 0), mq("a", 1)]));
    assert!(
        find(&sent, is_query).is_empty(),
        "no offset before the lock"
    );

    // Only a0 is granted (another client holds a1): a0 is taken (its offset looked
    // up), a1 waits for a rebalance 500 ms later.
    let lock = locks[0].1.clone();
    let events = respond(
        &mut c,
        &mut ctx,
        &lock,
        Response::LockBatchMq(BTreeSet::from([mq("a", 0)])),
    );
    assert!(events.is_empty());
    let sent = ctx.take_sent();
    let queries = find(&sent, is_query);
    assert_eq!(queries.len(), 1);
    assert!(matches!(&queries[0].1, Message::Request {
        request: Request::QueryConsumerOffset(k), ..
    } if k.queue_id == 0));
    run_to(&mut c, &mut ctx, REBALANCE_LATER_MS);
    let sent = answer_consumer_list(&mut c, &mut ctx);
    let locks = find(&sent, is_lock);
    assert_eq!(locks.len(), 1);
    assert_eq!(
        lock_body(&locks[0].1).queues,
        BTreeSet::from([mq("a", 1)]),
        "only the queue not taken yet is asked for again"
    );
}

#[test]
fn locks_are_renewed_every_20_s_and_a_lapsed_lock_stops_consuming() {
    let mut ctx = ctx();
    let mut c = orderly();
    let pulls = owning_a_locked(&mut c, &mut ctx);
    assert_eq!(find(&pulls, is_pull).len(), 2);
    // The first renewal after 1 s, then every 20 s, for every owned queue.
    run_to(&mut c, &mut ctx, FIRST_LOCK_ALL_DELAY_MS);
    let sent = ctx.take_sent();
    let renewals = find(&sent, is_lock);
    assert_eq!(renewals.len(), 1);
    assert_eq!(
        lock_body(&renewals[0].1).queues,
        BTreeSet::from([mq("a", 0), mq("a", 1)])
    );
    let renewal = renewals[0].1.clone();
    respond(
        &mut c,
        &mut ctx,
        &renewal,
        Response::LockBatchMq(lock_body(&renewal).queues.clone()),
    );
    run_to(
        &mut c,
        &mut ctx,
        FIRST_LOCK_ALL_DELAY_MS + REBALANCE_LOCK_INTERVAL_MS,
    );
    let sent = ctx.take_sent();
    assert_eq!(find(&sent, is_lock).len(), 1, "the next renewal");
    // That renewal and the next are never answered. The lock counts from when the
    // answered renewal was asked (1 s): at 31 s it has lapsed, and a0's pull answer is
    // not consumed; its pull is retried from the same offset once the lock is back.
    ctx.now_ms = FIRST_LOCK_ALL_DELAY_MS + REBALANCE_LOCK_MAX_LIVE_TIME_MS;
    assert!(c.holds_lock(&mq("a", 0), ctx.now_ms));
    ctx.now_ms += 1;
    assert!(!c.holds_lock(&mq("a", 0), ctx.now_ms));
    let a0 = find(&pulls, is_pull)[0].1.clone();
    let recs = records(0, 5, &[Some("TagA")]);
    let events = respond(&mut c, &mut ctx, &a0, pull_answer(0, 6, recs));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::Delivered { .. })),
        "{events:?}"
    );
    // A renewal the master refuses (the lock went to another client) unlocks a1 too.
    run_to(
        &mut c,
        &mut ctx,
        FIRST_LOCK_ALL_DELAY_MS + 2 * REBALANCE_LOCK_INTERVAL_MS,
    );
    let sent = ctx.take_sent();
    let renewal = find(&sent, is_lock)[0].1.clone();
    respond(
        &mut c,
        &mut ctx,
        &renewal,
        Response::LockBatchMq(BTreeSet::from([mq("a", 0)])),
    );
    assert!(c.holds_lock(&mq("a", 0), ctx.now_ms));
    assert!(!c.holds_lock(&mq("a", 1), ctx.now_ms));
    // a0's retried pull starts where the unconsumed answer did.
    let now = ctx.now_ms;
    run_to(&mut c, &mut ctx, now + 3_000);
    let sent = ctx.take_sent();
    let retried: Vec<_> = find(&sent, is_pull)
        .into_iter()
        .map(|(_, m)| match m {
            Message::Request {
                request: Request::PullMessage(p),
                ..
            } => (p.queue_id, p.queue_offset),
            _ => unreachable!(),
        })
        .collect();
    assert!(retried.contains(&(0, 5)), "{retried:?}");
}

#[test]
fn a_queue_given_up_is_committed_then_unlocked_and_shutdown_unlocks_the_rest() {
    let mut ctx = ctx();
    let mut c = orderly();
    owning_a_locked(&mut c, &mut ctx);
    // A rebalance leaves us a0 only.
    c.apply_allocation(&mut ctx, vec![mq("a", 0)], &mut Vec::new());
    let sent = ctx.take_sent();
    let order: Vec<&str> = sent
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request { request, .. } if *to == NodeId(2) => match request {
                Request::UpdateConsumerOffset { .. } => Some("commit"),
                Request::UnlockBatchMq(_) => Some("unlock"),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(order, vec!["commit", "unlock"], "{sent:?}");
    let unlock = find(&sent, is_unlock)[0].1.clone();
    assert_eq!(lock_body(&unlock).queues, BTreeSet::from([mq("a", 1)]));
    assert!(!c.holds_lock(&mq("a", 1), ctx.now_ms));
    // Shutdown: commits, then unlocks what is left; renewals stop.
    c.shutdown(&mut ctx);
    let sent = ctx.take_sent();
    let kinds: Vec<bool> = sent
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Request { request, .. } if is_unlock(request) => Some(true),
            Message::Request {
                request: Request::UpdateConsumerOffset { .. },
                ..
            } => Some(false),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![false, true], "{sent:?}");
    let unlock = find(&sent, is_unlock)[0].1.clone();
    assert_eq!(lock_body(&unlock).queues, BTreeSet::from([mq("a", 0)]));
    run_to(&mut c, &mut ctx, 100_000);
    assert!(find(&ctx.take_sent(), is_lock).is_empty());
}

#[test]
fn a_grant_for_a_queue_moved_away_meanwhile_is_handed_back() {
    let mut ctx = ctx();
    let mut c = orderly();
    let sent = allocated_a(&mut c, &mut ctx);
    let lock = find(&sent, is_lock)[0].1.clone();
    // Before the answer, a rebalance gives us nothing.
    c.apply_allocation(&mut ctx, Vec::new(), &mut Vec::new());
    assert!(ctx.take_sent().is_empty());
    let events = respond(
        &mut c,
        &mut ctx,
        &lock,
        Response::LockBatchMq(lock_body(&lock).queues.clone()),
    );
    assert!(events.is_empty());
    let sent = ctx.take_sent();
    assert!(find(&sent, is_query).is_empty(), "not taken");
    let unlocks = find(&sent, is_unlock);
    assert_eq!(unlocks.len(), 1);
    assert_eq!(
        lock_body(&unlocks[0].1).queues,
        BTreeSet::from([mq("a", 0), mq("a", 1)])
    );
    assert!(c.owned_queues().is_empty());
}

#[test]
fn a_step_of_the_consumers_wall_clock_neither_lapses_nor_stretches_its_lock() {
    // The lock is aged by the monotonic clock: a wall clock stepped forward would stop
    // a live lock's queue, one stepped back would consume past the 30 s (while the
    // broker may have given the queue to another client).
    let consumes_at = |true_ms: u64, wall_skew_ms: i64| {
        let mut ctx = ctx();
        let mut c = orderly();
        let pulls = owning_a_locked(&mut c, &mut ctx);
        ctx.now_ms = true_ms;
        ctx.wall_skew_ms = wall_skew_ms;
        let a0 = find(&pulls, is_pull)[0].1.clone();
        let recs = records(0, 5, &[Some("TagA")]);
        let events = respond(&mut c, &mut ctx, &a0, pull_answer(0, 6, recs));
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::Delivered { .. }))
    };
    assert!(
        consumes_at(10_000, 40_000),
        "10 s old, whatever the wall clock says"
    );
    assert!(
        !consumes_at(REBALANCE_LOCK_MAX_LIVE_TIME_MS + 1, -30_001),
        "30 s old"
    );
}
