//! The push consumer's tests, against a scripted context.

use crate::message::{encode_properties, property};
use crate::node::NodeId;
use crate::protocol::{
    pull_sys_flag, BrokerData, ConsumerSendMsgBack, PullMessage, PullResponse, QueueData,
    SendMessage, SendResponse,
};
use crate::store::record::{Host, NewRecord};

use super::super::test_ctx::TestCtx;
use super::*;

pub(super) const NAMESRV: &str = "10.0.0.1:9876";
pub(super) const MASTER_A: &str = "10.0.0.2:10911";
pub(super) const MASTER_B: &str = "10.0.0.3:10911";
pub(super) const SLAVE_B: &str = "10.0.0.4:10911";

pub(super) fn route() -> TopicRouteData {
    let qd = |name: &str| QueueData {
        broker_name: name.into(),
        read_queue_nums: 2,
        write_queue_nums: 2,
        perm: 6,
        topic_sys_flag: 0,
    };
    TopicRouteData {
        queue_datas: vec![qd("a"), qd("b")],
        broker_datas: vec![
            BrokerData {
                cluster: "c".into(),
                broker_name: "a".into(),
                broker_addrs: BTreeMap::from([(0, MASTER_A.to_string())]),
            },
            BrokerData {
                cluster: "c".into(),
                broker_name: "b".into(),
                broker_addrs: BTreeMap::from([(0, MASTER_B.to_string()), (1, SLAVE_B.to_string())]),
            },
        ],
        ..TopicRouteData::default()
    }
}

pub(super) fn ctx() -> TestCtx {
    TestCtx::new(&[(NAMESRV, 1), (MASTER_A, 2), (MASTER_B, 3), (SLAVE_B, 4)])
}

fn consumer(model: MessageModel) -> PushConsumer {
    PushConsumer::new(consumer_config(model))
}

fn consumer_config(model: MessageModel) -> ConsumerConfig {
    ConsumerConfig {
        consumer_group: "G".into(),
        namesrv_addrs: vec![NAMESRV.into()],
        topic: "T".into(),
        tag_expression: "TagA".into(),
        message_model: model,
        ..ConsumerConfig::default()
    }
}

pub(super) fn respond(
    c: &mut PushConsumer,
    ctx: &mut TestCtx,
    to: &Message,
    response: Response,
) -> Vec<ClientEvent> {
    let Message::Request { opaque, .. } = to else {
        panic!("not a request: {to:?}")
    };
    let input = Input::Packet {
        from: NodeId(0),
        msg: Message::Response {
            opaque: *opaque,
            response,
        },
    };
    c.handle(ctx, input)
}

pub(super) fn requests(sent: &[(NodeId, Message)]) -> Vec<(NodeId, &Request)> {
    sent.iter()
        .map(|(to, m)| match m {
            Message::Request { request, .. } => (*to, request),
            other => panic!("{other:?}"),
        })
        .collect()
}

pub(super) fn find(
    sent: &[(NodeId, Message)],
    pred: impl Fn(&Request) -> bool,
) -> Vec<&(NodeId, Message)> {
    sent.iter()
        .filter(|(_, m)| matches!(m, Message::Request { request, .. } if pred(request)))
        .collect()
}

pub(super) fn pull_of(m: &Message) -> &PullMessage {
    match m {
        Message::Request {
            request: Request::PullMessage(p),
            ..
        } => p,
        other => panic!("not a pull: {other:?}"),
    }
}

pub(super) fn records(queue_id: i32, first_offset: i64, tags: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        let uniq = format!("UNIQ{i}");
        let mut pairs = vec![("UNIQ_KEY", uniq.as_str())];
        if let Some(t) = tag {
            pairs.push(("TAGS", t));
        }
        let props = encode_properties(pairs);
        let host = Host {
            ip: "10.0.0.2".parse().unwrap(),
            port: 10911,
        };
        NewRecord {
            topic: "T",
            queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: host,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: b"body",
            properties: &props,
        }
        .encode(first_offset + i as i64, 1000 * i as i64, 2, &mut out);
    }
    out
}

pub(super) fn pull_answer(code: i32, next: u64, records: Vec<u8>) -> Response {
    Response::Pull(PullResponse {
        code,
        next_begin_offset: next,
        min_offset: 0,
        max_offset: next,
        suggest_which_broker_id: 0,
        records,
    })
}

/// Starts a clustering consumer and brings it to owning `a`'s two queues with
/// offsets 5 (stored) and 0 (QUERY_NOT_FOUND); returns the two pulls in flight.
/// Every sync the disk was asked for completes, including those the completions
/// ask for in turn (a tmp file, then its directory); the events they produce.
fn complete_syncs(c: &mut PushConsumer, ctx: &mut TestCtx) -> Vec<ClientEvent> {
    let mut events = Vec::new();
    loop {
        let tickets = ctx.disk.take_requested_syncs();
        if tickets.is_empty() {
            return events;
        }
        for ticket in tickets {
            let done = Input::SyncComplete {
                ticket,
                result: Ok(()),
            };
            events.extend(c.handle(ctx, done));
        }
    }
}

/// A started broadcasting consumer that has consumed a/0 up to offset 3 (two TagA
/// records and one untagged); its next pull of a/0 is in `ctx`'s sent list.
fn broadcasting_past_a0_offset_3(ctx: &mut TestCtx) -> PushConsumer {
    let mut c = consumer(MessageModel::Broadcasting);
    c.start(ctx);
    let sent = ctx.take_sent();
    respond(&mut c, ctx, &sent[0].1, Response::Route(route()));
    let sent = ctx.take_sent();
    let a0 = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    let three = records(0, 0, &[Some("TagA"), Some("TagA"), None]);
    respond(&mut c, ctx, &a0, pull_answer(0, 3, three));
    c
}

fn clustering_owning_a(c: &mut PushConsumer, ctx: &mut TestCtx) -> Vec<(NodeId, Message)> {
    c.start(ctx);
    let sent = ctx.take_sent();
    assert!(matches!(
        requests(&sent)[..],
        [(NodeId(1), Request::GetRouteInfoByTopic { .. })]
    ));
    let events = respond(c, ctx, &sent[0].1, Response::Route(route()));
    assert!(events.is_empty());
    let sent = ctx.take_sent();
    // A heartbeat to every broker address, masters and slave, then one
    // consumer-list request.
    let heartbeats: Vec<NodeId> = find(&sent, |r| matches!(r, Request::HeartBeat(_)))
        .iter()
        .map(|(to, _)| *to)
        .collect();
    assert_eq!(heartbeats, vec![NodeId(2), NodeId(3), NodeId(4)]);
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    });
    assert_eq!(list.len(), 1);
    // Two consumers: we sort first ("10.0.0.9@.." < "z@1") and take a's queues.
    let cids = vec!["z@1".to_string(), c.client_id().to_string()];
    let events = respond(c, ctx, &list[0].1, Response::ConsumerList(cids));
    assert!(
        events.is_empty(),
        "no Owned before the start offset is known"
    );
    let sent = ctx.take_sent();
    let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
    assert_eq!(queries.len(), 2);
    assert!(queries.iter().all(|(to, _)| *to == NodeId(2)));
    let e0 = respond(c, ctx, &queries[0].1, Response::Offset(5));
    let e1 = respond(
        c,
        ctx,
        &queries[1].1,
        Response::Error {
            code: response_code::QUERY_NOT_FOUND,
            remark: String::new(),
        },
    );
    // The first pull commits the offset it starts from: that overwrites whatever the
    // previous owner committed since, so it is a commit the history must see.
    assert!(
        matches!(
            &e0[..],
            [
                ClientEvent::Owned {
                    queue_id: 0,
                    start_offset: 5,
                    offset_from_broker_id: Some(0),
                    ..
                },
                ClientEvent::Committed {
                    queue_id: 0,
                    offset: 5,
                    ..
                }
            ]
        ),
        "{e0:?}"
    );
    assert!(matches!(
        &e1[..],
        [ClientEvent::Owned {
            queue_id: 1,
            start_offset: 0,
            ..
        }]
    ));
    ctx.take_sent()
}

#[test]
fn the_periodic_heartbeat_follows_the_route_refresh_and_reaches_a_returning_broker() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    // Broker b is away when the consumer starts: the route lists only a.
    let mut only_a = route();
    only_a.queue_datas.retain(|q| q.broker_name == "a");
    only_a.broker_datas.retain(|b| b.broker_name == "a");
    respond(&mut c, &mut ctx, &sent[0].1, Response::Route(only_a));
    ctx.take_sent();
    let heartbeats_to = |sent: &[(NodeId, Message)]| -> Vec<NodeId> {
        find(sent, |r| matches!(r, Request::HeartBeat(_)))
            .iter()
            .map(|(to, _)| *to)
            .collect()
    };
    // The periodic refresh brings b back; no heartbeat went out with it.
    let mut refresh = None;
    for input in ctx.advance_to(c.cfg.poll_name_server_interval_ms) {
        c.handle(&mut ctx, input);
    }
    let sent = ctx.take_sent();
    for (_, m) in &sent {
        // The topic's refresh, not the retry topic's.
        if matches!(
            m,
            Message::Request {
                request: Request::GetRouteInfoByTopic { topic },
                ..
            } if topic == "T"
        ) {
            refresh = Some(m.clone());
        }
    }
    assert!(heartbeats_to(&sent).is_empty(), "{sent:?}");
    let refresh = refresh.expect("the periodic route refresh");
    respond(&mut c, &mut ctx, &refresh, Response::Route(route()));
    ctx.take_sent();
    // The heartbeat comes HEARTBEAT_PHASE_MS later and reaches b too, so b lists
    // this consumer before the next rebalance asks it.
    for input in ctx.advance_to(c.cfg.heartbeat_interval_ms + HEARTBEAT_PHASE_MS) {
        c.handle(&mut ctx, input);
    }
    let sent = ctx.take_sent();
    assert_eq!(
        heartbeats_to(&sent),
        vec![NodeId(2), NodeId(3), NodeId(4)],
        "{sent:?}"
    );
}

#[test]
fn clustering_owns_pulls_delivers_commits_and_hands_over() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    assert_eq!(pulls.len(), 2);
    let p0 = pull_of(&pulls[0].1);
    assert_eq!((p0.queue_id, p0.queue_offset, p0.max_msg_nums), (0, 5, 32));
    assert_eq!(p0.suspend_timeout_ms, 15_000);
    assert_eq!(p0.subscription.as_deref(), Some("TagA"));
    // Clustering with a consumed offset > 0 lets the master commit it.
    assert_eq!(
        p0.sys_flag,
        pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION | pull_sys_flag::COMMIT_OFFSET
    );
    assert_eq!(p0.commit_offset, 5);
    let p1 = pull_of(&pulls[1].1);
    assert_eq!(
        p1.sys_flag,
        pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION
    );

    // Queue 0 answers three records; the one tagged TagB is filtered out.
    let recs = records(0, 5, &[Some("TagA"), Some("TagB"), Some("TagA")]);
    let events = respond(&mut c, &mut ctx, &pulls[0].1, pull_answer(0, 8, recs));
    let delivered: Vec<(u64, String)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered {
                queue_offset, msg, ..
            } => Some((*queue_offset, msg.msg_id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, vec![(5, "UNIQ0".into()), (7, "UNIQ2".into())]);
    // The next pull carries the consumed offset to the master: a commit.
    let committed_now: Vec<&ClientEvent> = events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Committed { .. }))
        .collect();
    assert_eq!(committed_now.len(), 1, "{events:?}");
    assert!(matches!(
        committed_now[0],
        ClientEvent::Committed {
            queue_id: 0,
            offset: 8,
            ..
        }
    ));
    if let ClientEvent::Delivered { msg, .. } = &events[0] {
        assert_eq!(msg.tags.as_deref(), Some("TagA"));
        assert_eq!(msg.body, b"body");
        assert!(!msg.properties.contains("__CRC32#"), "{:?}", msg.properties);
    }
    // The next pull goes out at once from next_begin_offset.
    let sent = ctx.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(pull_of(&sent[0].1).queue_offset, 8);
    let in_flight_q0 = sent[0].1.clone();

    // At 5 s the offsets the broker does not hold yet are committed.
    let mut events = Vec::new();
    for input in ctx.advance_to(5_000) {
        events.extend(c.handle(&mut ctx, input));
    }
    let committed = |queue_id, offset| ClientEvent::Committed {
        group: "G".into(),
        broker_name: "a".into(),
        topic: "T".into(),
        queue_id,
        offset,
    };
    // Every owned queue's offset goes out, q0's 8 although it already went out on
    // the pull (`persistAll`); q1 started at 0 without a stored offset.
    assert_eq!(events, vec![committed(0, 8), committed(1, 0)]);
    let sent = ctx.take_sent();
    assert!(matches!(
        requests(&sent)[..],
        [
            (NodeId(2), Request::UpdateConsumerOffset { offset: 8, .. }),
            (NodeId(2), Request::UpdateConsumerOffset { offset: 0, .. })
        ]
    ));
    // Nothing moved since, yet the next interval sends them again: a stale commit
    // another consumer made meanwhile (chaos seed 68924) does not stay.
    let mut events = Vec::new();
    for input in ctx.advance_to(10_000) {
        events.extend(c.handle(&mut ctx, input));
    }
    assert_eq!(events, vec![committed(0, 8), committed(1, 0)]);
    assert_eq!(requests(&ctx.take_sent()).len(), 2);

    // A third consumer joins: the broker notifies, we rebalance and keep only a0.
    let notify = Input::Packet {
        from: NodeId(2),
        msg: Message::Request {
            opaque: 77,
            request: Request::NotifyConsumerIdsChanged {
                consumer_group: "G".into(),
            },
        },
    };
    assert!(c.handle(&mut ctx, notify.clone()).is_empty());
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    });
    assert_eq!(
        list.len(),
        1,
        "the notification is not answered, only acted on"
    );
    assert_eq!(sent.len(), 1);
    let cids = vec![c.client_id().to_string(), "y@1".into(), "z@1".into()];
    let events = respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
    // 4 queues, 3 consumers: the first takes 2, so nothing changes for us.
    assert!(events.is_empty(), "{events:?}");
    // A fourth joins: 1 queue each, and we give a1 away.
    c.handle(&mut ctx, notify.clone());
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    });
    let cids = vec![
        c.client_id().to_string(),
        "x@1".into(),
        "y@1".into(),
        "z@1".into(),
    ];
    let events = respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
    assert_eq!(
        events,
        vec![
            committed(1, 0),
            ClientEvent::Disowned {
                group: "G".into(),
                broker_name: "a".into(),
                topic: "T".into(),
                queue_id: 1
            }
        ]
    );
    assert_eq!(c.owned_queues().len(), 1);
    // The late answer to a1's pull belongs to the old ownership: dropped.
    let late = respond(
        &mut c,
        &mut ctx,
        &pulls[1].1,
        pull_answer(0, 1, records(1, 0, &[Some("TagA")])),
    );
    assert!(late.is_empty());
    assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
    // a0 still works.
    let events = respond(
        &mut c,
        &mut ctx,
        &in_flight_q0,
        pull_answer(0, 9, records(0, 8, &[Some("TagA")])),
    );
    // One delivery, consumed at once by the default listener, and the commit the next
    // pull carries.
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(matches!(
        events[0],
        ClientEvent::Delivered {
            queue_offset: 8,
            ..
        }
    ));
    assert!(matches!(
        events[1],
        ClientEvent::Consumed {
            queue_offset: 8,
            status: ConsumeConcurrentlyStatus::ConsumeSuccess,
            ..
        }
    ));
    assert!(matches!(
        events[2],
        ClientEvent::Committed {
            queue_id: 0,
            offset: 9,
            ..
        }
    ));

    // Shutdown commits what is owned and gives it up.
    let events = c.shutdown(&mut ctx);
    assert!(matches!(
        &events[..],
        [
            ClientEvent::Committed {
                queue_id: 0,
                offset: 9,
                ..
            },
            ClientEvent::Disowned { queue_id: 0, .. }
        ]
    ));
    assert!(c.handle(&mut ctx, notify.clone()).is_empty());
}

#[test]
fn failed_pulls_retry_after_3_s_and_a_moved_offset_is_committed_at_once() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    // q0 times out after 30 s... first q1's connection breaks at 1 s.
    ctx.now_ms = 1_000;
    let events = c.handle(&mut ctx, Input::ConnectionBroken { peer: NodeId(2) });
    assert!(events.is_empty());
    assert!(ctx.take_sent().is_empty(), "no pull before the retry delay");
    let mut events = Vec::new();
    for input in ctx.advance_to(3_999) {
        events.extend(c.handle(&mut ctx, input));
    }
    assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
    for input in ctx.advance_to(4_000) {
        events.extend(c.handle(&mut ctx, input));
    }
    let sent = ctx.take_sent();
    let retried = find(&sent, |r| matches!(r, Request::PullMessage(_)));
    assert_eq!(retried.len(), 2, "both pulls broke and are retried");
    // The pulls that broke were dropped: their late answers do nothing.
    assert!(respond(
        &mut c,
        &mut ctx,
        &pulls[0].1,
        pull_answer(0, 6, records(0, 5, &[Some("TagA")]))
    )
    .is_empty());

    // An offset-moved answer resets the offset (backwards here) and commits it now.
    let q0 = retried
        .iter()
        .find(|(_, m)| pull_of(m).queue_id == 0)
        .unwrap();
    let events = respond(
        &mut c,
        &mut ctx,
        &q0.1,
        pull_answer(response_code::PULL_OFFSET_MOVED, 2, Vec::new()),
    );
    // Consumption restarts from the corrected offset: a new ownership span, as
    // RocketMQ's dropped and re-created process queue.
    assert!(matches!(
        &events[..],
        [
            ClientEvent::Committed {
                queue_id: 0,
                offset: 2,
                ..
            },
            ClientEvent::Owned {
                queue_id: 0,
                start_offset: 2,
                offset_from_broker_id: Some(0),
                ..
            }
        ]
    ));
    let sent = ctx.take_sent();
    assert!(matches!(
        requests(&sent)[..],
        [
            (_, Request::UpdateConsumerOffset { offset: 2, .. }),
            (
                _,
                Request::PullMessage(PullMessage {
                    queue_offset: 2,
                    ..
                })
            )
        ]
    ));
    // A slave suggestion moves the next pull of that broker group to the slave —
    // broker a has none, so it stays on the master.
    let q1 = retried
        .iter()
        .find(|(_, m)| pull_of(m).queue_id == 1)
        .unwrap();
    let suggest_slave = Response::Pull(PullResponse {
        code: response_code::PULL_NOT_FOUND,
        next_begin_offset: 0,
        min_offset: 0,
        max_offset: 0,
        suggest_which_broker_id: 1,
        records: Vec::new(),
    });
    respond(&mut c, &mut ctx, &q1.1, suggest_slave);
    let sent = ctx.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, NodeId(2));
}

#[test]
fn pulls_go_to_the_slave_when_suggested_and_without_commit() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    });
    // Two consumers, we are second: b's queues.
    let cids = vec!["0@1".to_string(), c.client_id().to_string()];
    respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
    let sent = ctx.take_sent();
    let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
    assert!(
        queries.iter().all(|(to, _)| *to == NodeId(3)),
        "the master of b"
    );
    respond(&mut c, &mut ctx, &queries[0].1, Response::Offset(4));
    let sent = ctx.take_sent();
    let suggest_slave = Response::Pull(PullResponse {
        code: response_code::SUCCESS,
        next_begin_offset: 5,
        min_offset: 0,
        max_offset: 9,
        suggest_which_broker_id: 1,
        records: records(0, 4, &[Some("TagA")]),
    });
    let events = respond(&mut c, &mut ctx, &sent[0].1, suggest_slave);
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Delivered { .. }, ClientEvent::Consumed { .. }]
        ),
        "{events:?}"
    );
    let sent = ctx.take_sent();
    assert_eq!(sent[0].0, NodeId(4), "the slave of b");
    let p = pull_of(&sent[0].1);
    assert_eq!(p.queue_offset, 5);
    assert_eq!(
        p.sys_flag & pull_sys_flag::COMMIT_OFFSET,
        0,
        "slaves store no offsets"
    );
}

#[test]
fn offsets_go_to_the_slave_only_when_the_route_lists_no_master() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    // b's master is missing from the route (a name server that restarted).
    let mut slave_only = route();
    slave_only.broker_datas[1].broker_addrs.remove(&0);
    respond(&mut c, &mut ctx, &sent[0].1, Response::Route(slave_only));
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    });
    let cids = vec!["0@1".to_string(), c.client_id().to_string()];
    respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
    let sent = ctx.take_sent();
    let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
    assert_eq!(queries.len(), 2);
    assert!(
        queries.iter().all(|(to, _)| *to == NodeId(4)),
        "the slave of b"
    );
    let events = respond(&mut c, &mut ctx, &queries[0].1, Response::Offset(4));
    assert!(
        matches!(
            &events[..],
            [ClientEvent::Owned {
                start_offset: 4,
                offset_from_broker_id: Some(1),
                ..
            }]
        ),
        "{events:?}"
    );
    let sent = ctx.take_sent();
    assert_eq!(sent[0].0, NodeId(4));
    let p = pull_of(&sent[0].1);
    assert_eq!(
        p.sys_flag & pull_sys_flag::COMMIT_OFFSET,
        0,
        "no commit rides on a pull to a slave"
    );
    // Consuming moves the offset: the periodic commit goes to the slave too.
    let found = Response::Pull(PullResponse {
        code: response_code::SUCCESS,
        next_begin_offset: 5,
        min_offset: 0,
        max_offset: 9,
        suggest_which_broker_id: 0,
        records: records(0, 4, &[Some("TagA")]),
    });
    respond(&mut c, &mut ctx, &sent[0].1, found);
    ctx.take_sent();
    c.persist_offsets(&mut ctx, &mut Vec::new());
    let sent = ctx.take_sent();
    let commits = find(&sent, |r| matches!(r, Request::UpdateConsumerOffset { .. }));
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].0, NodeId(4));
}

#[test]
fn a_broadcasting_consumer_takes_a_returning_brokers_queues_when_notified() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Broadcasting);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    // Broker b is away when the consumer starts: it owns a's queues only.
    let mut only_a = route();
    only_a.queue_datas.retain(|q| q.broker_name == "a");
    only_a.broker_datas.retain(|b| b.broker_name == "a");
    let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(only_a));
    assert_eq!(events.len(), 2, "{events:?}");
    ctx.take_sent();
    // The periodic refresh (after the first periodic rebalance) brings b back.
    let mut refresh = None;
    for input in ctx.advance_to(c.cfg.poll_name_server_interval_ms) {
        c.handle(&mut ctx, input);
    }
    for (_, m) in ctx.take_sent() {
        if matches!(
            m,
            Message::Request {
                request: Request::GetRouteInfoByTopic { .. },
                ..
            }
        ) {
            refresh = Some(m);
        }
    }
    let refresh = refresh.expect("the periodic route refresh");
    assert!(respond(&mut c, &mut ctx, &refresh, Response::Route(route())).is_empty());
    // b, reached by the heartbeat, notifies: the consumer takes b's queues now,
    // not at the next periodic rebalance.
    let notify = Input::Packet {
        from: NodeId(3),
        msg: Message::Request {
            opaque: 7,
            request: Request::NotifyConsumerIdsChanged {
                consumer_group: "G".into(),
            },
        },
    };
    let owned: Vec<(String, i32)> = c
        .handle(&mut ctx, notify)
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Owned {
                broker_name,
                queue_id,
                ..
            } => Some((broker_name.clone(), *queue_id)),
            _ => None,
        })
        .collect();
    assert_eq!(owned, vec![("b".into(), 0), ("b".into(), 1)]);
    assert_eq!(c.owned_queues().len(), 4);
}

#[test]
fn broadcasting_takes_every_queue_and_resumes_from_its_file() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Broadcasting);
    c.start(&mut ctx);
    assert_eq!(c.client_id(), "10.0.0.9@DEFAULT");
    let sent = ctx.take_sent();
    let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
    // No consumer list, no offset query: every queue, from 0.
    let owned: Vec<(String, i32, u64)> = events
        .iter()
        .map(|e| match e {
            ClientEvent::Owned {
                broker_name,
                queue_id,
                start_offset,
                ..
            } => (broker_name.clone(), *queue_id, *start_offset),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        owned,
        vec![
            ("a".into(), 0, 0),
            ("a".into(), 1, 0),
            ("b".into(), 0, 0),
            ("b".into(), 1, 0)
        ]
    );
    let sent = ctx.take_sent();
    assert!(find(&sent, |r| matches!(
        r,
        Request::GetConsumerListByGroup { .. } | Request::QueryConsumerOffset(_)
    ))
    .is_empty());
    let pulls = find(&sent, |r| matches!(r, Request::PullMessage(_)));
    assert_eq!(pulls.len(), 4);
    assert!(pulls
        .iter()
        .all(|(_, m)| pull_of(m).sys_flag & pull_sys_flag::COMMIT_OFFSET == 0));
    let a0 = pulls[0].1.clone();
    respond(
        &mut c,
        &mut ctx,
        &a0,
        pull_answer(0, 3, records(0, 0, &[Some("TagA"), Some("TagA"), None])),
    );

    // At 5 s the file is written; Committed comes when its syncs complete.
    let mut events = Vec::new();
    for input in ctx.advance_to(5_000) {
        events.extend(c.handle(&mut ctx, input));
    }
    assert!(events
        .iter()
        .all(|e| !matches!(e, ClientEvent::Committed { .. })));
    assert!(find(&ctx.take_sent(), |r| matches!(
        r,
        Request::UpdateConsumerOffset { .. }
    ))
    .is_empty());
    events.extend(complete_syncs(&mut c, &mut ctx));
    let committed: Vec<(String, i32, u64)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Committed {
                broker_name,
                queue_id,
                offset,
                ..
            } => Some((broker_name.clone(), *queue_id, *offset)),
            _ => None,
        })
        .collect();
    assert_eq!(
        committed,
        vec![
            ("a".into(), 0, 3),
            ("a".into(), 1, 0),
            ("b".into(), 0, 0),
            ("b".into(), 1, 0)
        ]
    );

    // A restarted process (same disk) starts a0 at 3.
    let disk = std::mem::take(&mut ctx.disk);
    drop(c);
    let mut ctx = self::ctx();
    ctx.disk = disk;
    let mut c = consumer(MessageModel::Broadcasting);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
    assert!(matches!(
        events[0],
        ClientEvent::Owned {
            queue_id: 0,
            start_offset: 3,
            ..
        }
    ));
}

#[test]
fn a_broadcasting_moved_offset_starts_its_span_once_the_file_holds_it() {
    let mut ctx = ctx();
    let mut c = broadcasting_past_a0_offset_3(&mut ctx);
    let sent = ctx.take_sent();
    let a0 = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    // The periodic write of the file (offset 3) is under way when the broker moves
    // the offset back to 2 (it lost its tail).
    for input in ctx.advance_to(5_000) {
        c.handle(&mut ctx, input);
    }
    let events = respond(
        &mut c,
        &mut ctx,
        &a0,
        pull_answer(response_code::PULL_OFFSET_MOVED, 2, Vec::new()),
    );
    assert!(events.is_empty(), "no new span before the file holds 2");
    assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
    // The write in flight lands offset 3, then a write of 2 follows; only once that
    // one is renamed into place does the new span start, after its commit.
    let mut events = Vec::new();
    events.extend(complete_syncs(&mut c, &mut ctx));
    let a0_events: Vec<&ClientEvent> = events
        .iter()
        .filter(|e| {
            matches!(e, ClientEvent::Committed { broker_name, queue_id: 0, .. }
                | ClientEvent::Owned { broker_name, queue_id: 0, .. } if broker_name == "a")
        })
        .collect();
    assert!(
        matches!(
            &a0_events[..],
            [
                ClientEvent::Committed { offset: 3, .. },
                ClientEvent::Committed { offset: 2, .. },
                ClientEvent::Owned {
                    start_offset: 2,
                    offset_from_broker_id: None,
                    ..
                }
            ]
        ),
        "{a0_events:?}"
    );
    let sent = ctx.take_sent();
    assert!(matches!(
        requests(&sent)[..],
        [(
            _,
            Request::PullMessage(PullMessage {
                queue_id: 0,
                queue_offset: 2,
                ..
            })
        )]
    ));
}

#[test]
fn a_broadcasting_consumer_stops_only_after_its_offset_file_is_written() {
    let mut ctx = ctx();
    let mut c = broadcasting_past_a0_offset_3(&mut ctx);
    // The periodic write of the file (offset 3) is under way at shutdown.
    for input in ctx.advance_to(5_000) {
        c.handle(&mut ctx, input);
    }
    // Its tmp file is synced and renamed into place; the directory sync is pending.
    let tmp_sync = ctx.disk.take_requested_syncs();
    assert_eq!(tmp_sync.len(), 1);
    let mut events = c.handle(
        &mut ctx,
        Input::SyncComplete {
            ticket: tmp_sync[0],
            result: Ok(()),
        },
    );
    // A restart would read it from now on: its offsets are committed.
    assert!(events.iter().any(|e| matches!(
        e,
        ClientEvent::Committed {
            queue_id: 0,
            offset: 3,
            ..
        }
    )));
    events.extend(c.shutdown(&mut ctx));
    assert!(
        !c.is_stopped(),
        "exiting now could leave a file a restart reads, never reported Committed"
    );
    events.extend(complete_syncs(&mut c, &mut ctx));
    assert!(c.is_stopped());
}

#[test]
fn last_offset_asks_for_the_max_offset() {
    let mut ctx = ctx();
    let mut c = PushConsumer::new(ConsumerConfig {
        consume_from_where: ConsumeFromWhere::LastOffset,
        ..consumer(MessageModel::Broadcasting).cfg
    });
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    assert!(respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route())).is_empty());
    let sent = ctx.take_sent();
    let max = find(&sent, |r| matches!(r, Request::GetMaxOffset { .. }));
    assert_eq!(max.len(), 4);
    let events = respond(&mut c, &mut ctx, &max[0].1, Response::Offset(42));
    assert!(matches!(
        events[..],
        [ClientEvent::Owned {
            start_offset: 42,
            ..
        }]
    ));
}

#[test]
fn a_reset_from_the_broker_drops_what_is_under_way_and_pulls_from_the_new_offsets() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    assert_eq!(pull_of(&pulls[0].1).queue_offset, 5);
    let mq = |broker: &str, queue_id| MessageQueue {
        topic: "T".into(),
        broker_name: broker.into(),
        queue_id,
    };
    let reset = |group: &str, topic: &str| Input::Packet {
        from: NodeId(2),
        msg: Message::Request {
            opaque: 0,
            request: Request::ResetConsumerClientOffset(crate::protocol::ResetOffset {
                topic: topic.into(),
                consumer_group: group.into(),
                timestamp_ms: 0,
                force: true,
                // Broker b's queue is not ours: left alone.
                offset_table: BTreeMap::from([(mq("a", 0), 1), (mq("a", 1), 0), (mq("b", 0), 9)]),
            }),
        },
    };
    assert!(c.handle(&mut ctx, reset("other", "T")).is_empty());
    assert!(c.handle(&mut ctx, reset("G", "other")).is_empty());
    assert!(
        ctx.take_sent().is_empty(),
        "another group's or topic's reset"
    );

    let events = c.handle(&mut ctx, reset("G", "T"));
    assert!(matches!(
        &events[..],
        [
            ClientEvent::Owned {
                queue_id: 0,
                start_offset: 1,
                offset_moved: true,
                ..
            },
            ClientEvent::Owned {
                queue_id: 1,
                start_offset: 0,
                offset_moved: true,
                ..
            }
        ]
    ));
    let sent = ctx.take_sent();
    let offsets: Vec<(i32, u64)> = sent
        .iter()
        .map(|(_, m)| (pull_of(m).queue_id, pull_of(m).queue_offset))
        .collect();
    assert_eq!(offsets, vec![(0, 1), (1, 0)], "pulls from the new offsets");
    // The pull that was in flight belongs to the old generation: its answer is dropped.
    assert!(respond(
        &mut c,
        &mut ctx,
        &pulls[0].1,
        pull_answer(0, 6, records(0, 5, &[Some("TagA")]))
    )
    .is_empty());
    // The new one delivers from offset 1.
    let events = respond(
        &mut c,
        &mut ctx,
        &sent[0].1,
        pull_answer(0, 2, records(0, 1, &[Some("TagA")])),
    );
    assert!(
        matches!(
            &events[..],
            [
                ClientEvent::Delivered {
                    queue_id: 0,
                    queue_offset: 1,
                    ..
                },
                ClientEvent::Consumed {
                    queue_offset: 1,
                    ..
                },
                // The next pull carries the new position.
                ClientEvent::Committed {
                    queue_id: 0,
                    offset: 2,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
}

/// A clustering consumer subscribes `%RETRY%G` with `*`: heartbeat, route, rebalance
/// and pulls cover it, a retry queue without an offset starts at 0, and the listener
/// sees a retried message under the topic it was sent to.
#[test]
fn a_clustering_consumer_consumes_its_retry_topic() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.cfg.consume_from_where = ConsumeFromWhere::LastOffset;
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
    let sent = ctx.take_sent();
    let heartbeat = find(&sent, |r| matches!(r, Request::HeartBeat(_)))[0];
    let Message::Request {
        request: Request::HeartBeat(data),
        ..
    } = &heartbeat.1
    else {
        unreachable!()
    };
    assert_eq!(
        data.consumers[0].subscriptions,
        BTreeMap::from([
            ("%RETRY%G".to_string(), "*".to_string()),
            ("T".to_string(), "TagA".to_string())
        ])
    );
    let retry_lookup = find(
        &sent,
        |r| matches!(r, Request::GetRouteInfoByTopic { topic } if topic == "%RETRY%G"),
    )[0]
    .1
    .clone();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    })[0]
        .1
        .clone();
    let me = vec![c.client_id().to_string()];
    respond(&mut c, &mut ctx, &list, Response::ConsumerList(me.clone()));
    ctx.take_sent();
    let mut retry_route = route();
    for qd in &mut retry_route.queue_datas {
        qd.read_queue_nums = 1;
        qd.write_queue_nums = 1;
    }
    respond(
        &mut c,
        &mut ctx,
        &retry_lookup,
        Response::Route(retry_route),
    );
    let sent = ctx.take_sent();
    let list = find(&sent, |r| {
        matches!(r, Request::GetConsumerListByGroup { .. })
    })[0]
        .1
        .clone();
    respond(&mut c, &mut ctx, &list, Response::ConsumerList(me));
    let sent = ctx.take_sent();
    let queries = find(
        &sent,
        |r| matches!(r, Request::QueryConsumerOffset(k) if k.topic == "%RETRY%G"),
    );
    assert_eq!(queries.len(), 2, "one retry queue on each broker");
    let not_found = Response::Error {
        code: response_code::QUERY_NOT_FOUND,
        remark: String::new(),
    };
    let events = respond(&mut c, &mut ctx, &queries[0].1, not_found);
    assert!(
        matches!(&events[..], [ClientEvent::Owned { topic, start_offset: 0, .. }] if topic == "%RETRY%G"),
        "a retry queue starts at 0 whatever consume_from_where says: {events:?}"
    );
    let sent = ctx.take_sent();
    let pull = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    let p = pull_of(&pull);
    assert_eq!(
        (p.topic.as_str(), p.subscription.as_deref()),
        ("%RETRY%G", Some("*"))
    );
    let props = encode_properties([("UNIQ_KEY", "U1"), ("TAGS", "TagA"), ("RETRY_TOPIC", "T")]);
    let host = Host {
        ip: "10.0.0.2".parse().unwrap(),
        port: 10911,
    };
    let mut bytes = Vec::new();
    NewRecord {
        topic: "%RETRY%G",
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp_ms: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body: b"body",
        properties: &props,
    }
    .encode(0, 10, 2, &mut bytes);
    let events = respond(&mut c, &mut ctx, &pull, pull_answer(0, 1, bytes));
    let delivered: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered { topic, msg, .. } => Some((topic.as_str(), msg)),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), 1, "{events:?}");
    let (queue_topic, msg) = delivered[0];
    assert_eq!(queue_topic, "%RETRY%G", "the queue it came from");
    assert_eq!(msg.topic, "T", "the listener sees RETRY_TOPIC");
    assert_eq!(msg.reconsume_times, 1);
}

#[test]
fn a_broadcasting_consumer_has_no_retry_topic() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Broadcasting);
    c.start(&mut ctx);
    let sent = ctx.take_sent();
    respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
    let sent = ctx.take_sent();
    assert!(find(&sent, |r| matches!(r, Request::GetRouteInfoByTopic { .. })).is_empty());
    for (_, m) in find(&sent, |r| matches!(r, Request::HeartBeat(_))) {
        let Message::Request {
            request: Request::HeartBeat(data),
            ..
        } = m
        else {
            unreachable!()
        };
        assert_eq!(data.consumers[0].subscriptions.len(), 1);
    }
}

/// A listener that keeps every message (answers later).
struct Later;

impl MessageListenerConcurrently for Later {
    fn consume_message(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        _mq: &MessageQueue,
        _queue_offset: u64,
        _msg: &crate::client::DeliveredMessage,
    ) -> ListenerAnswer {
        ListenerAnswer::Later
    }
}

#[test]
fn the_offset_waits_for_the_lowest_message_still_in_a_listener() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.register_message_listener(Box::new(Later));
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    let q0 = find(
        &pulls,
        |r| matches!(r, Request::PullMessage(p) if p.queue_id == 0),
    );
    let tagged = [Some("TagA"); 3];
    let events = respond(
        &mut c,
        &mut ctx,
        &q0[0].1,
        pull_answer(0, 8, records(0, 5, &tagged)),
    );
    let delivered: Vec<u64> = events
        .iter()
        .map(|e| match e {
            ClientEvent::Delivered { queue_offset, .. } => *queue_offset,
            other => panic!("only deliveries while the listener works: {other:?}"),
        })
        .collect();
    assert_eq!(delivered, vec![5, 6, 7]);
    // The pull sent with the deliveries commits how far the queue is consumed; the
    // closure answers the pull in flight and reads what the next one commits.
    let sent = ctx.take_sent();
    assert_eq!(pull_of(&sent[0].1).commit_offset, 5, "nothing consumed yet");
    let mut in_flight = sent[0].1.clone();
    let mut commit_after = |c: &mut PushConsumer, ctx: &mut TestCtx| {
        respond(
            c,
            ctx,
            &in_flight,
            pull_answer(response_code::PULL_NOT_FOUND, 8, Vec::new()),
        );
        in_flight = ctx.take_sent().remove(0).1;
        pull_of(&in_flight).commit_offset
    };
    let mq = MessageQueue {
        topic: "T".into(),
        broker_name: "a".into(),
        queue_id: 0,
    };
    let done = ConsumeConcurrentlyStatus::ConsumeSuccess;
    let events = c.consumed(&mut ctx, &mq, 6, done);
    assert!(matches!(
        &events[..],
        [ClientEvent::Consumed {
            queue_offset: 6,
            ..
        }]
    ));
    assert_eq!(commit_after(&mut c, &mut ctx), 5, "5 still in its listener");
    c.consumed(&mut ctx, &mq, 5, done);
    assert_eq!(commit_after(&mut c, &mut ctx), 7, "7 still in its listener");
    c.consumed(&mut ctx, &mq, 5, done);
    assert_eq!(
        commit_after(&mut c, &mut ctx),
        7,
        "a second answer moves nothing"
    );
    c.consumed(&mut ctx, &mq, 7, done);
    assert_eq!(
        commit_after(&mut c, &mut ctx),
        8,
        "all done: up to the next pull"
    );
}

/// Fails every message it is handed the first time (by queue offset), then succeeds.
#[derive(Default)]
struct FailOnce {
    failed: std::collections::BTreeSet<u64>,
}

impl MessageListenerConcurrently for FailOnce {
    fn consume_message(
        &mut self,
        _ctx: &mut dyn Ctx<Message>,
        _mq: &MessageQueue,
        queue_offset: u64,
        _msg: &crate::client::DeliveredMessage,
    ) -> ListenerAnswer {
        if self.failed.insert(queue_offset) {
            ListenerAnswer::Now(ConsumeConcurrentlyStatus::ReconsumeLater)
        } else {
            ListenerAnswer::Now(ConsumeConcurrentlyStatus::ConsumeSuccess)
        }
    }
}

/// RECONSUME_LATER: the message is handed back to its broker group's master (the
/// commit-log offset it was stored at, the group, level 0, maximum 16) and holds the
/// queue's offset until the broker says SUCCESS; a failed hand-back, then a failed send
/// of it to the retry topic, keep it, and 5 s later the listener gets it again with its
/// reconsume count raised.
#[test]
fn a_failed_message_is_handed_back_and_retried_locally_when_that_fails() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.register_message_listener(Box::<FailOnce>::default());
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    let q0 = find(
        &pulls,
        |r| matches!(r, Request::PullMessage(p) if p.queue_id == 0),
    );
    let events = respond(
        &mut c,
        &mut ctx,
        &q0[0].1,
        pull_answer(0, 7, records(0, 5, &[Some("TagA"), Some("TagA")])),
    );
    let answers: Vec<(u64, ConsumeConcurrentlyStatus)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Consumed {
                queue_offset,
                status,
                ..
            } => Some((*queue_offset, *status)),
            _ => None,
        })
        .collect();
    let later = ConsumeConcurrentlyStatus::ReconsumeLater;
    assert_eq!(answers, vec![(5, later), (6, later)]);
    let sent = ctx.take_sent();
    let backs: Vec<(NodeId, ConsumerSendMsgBack)> = sent
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request {
                request: Request::ConsumerSendMsgBack(b),
                ..
            } => Some((*to, b.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(backs.len(), 2);
    assert_eq!(backs[0].0, NodeId(2), "a's master");
    let b = &backs[0].1;
    assert_eq!(
        (b.group.as_str(), b.delay_level, b.max_reconsume_times),
        ("G", 0, Some(16))
    );
    assert_eq!(b.offset, 0, "the first record's commit-log offset");
    assert_eq!(b.origin_topic.as_deref(), Some("T"));
    let next_pull = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    assert_eq!(pull_of(&next_pull).commit_offset, 5, "both still held");
    let back_msgs: Vec<&Message> = sent
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::Request {
                    request: Request::ConsumerSendMsgBack(_),
                    ..
                }
            )
        })
        .map(|(_, m)| m)
        .collect();
    // 5 is taken back; 6's hand-back is refused.
    respond(
        &mut c,
        &mut ctx,
        back_msgs[0],
        Response::ConsumerSendMsgBack,
    );
    let refused = Response::Error {
        code: response_code::SYSTEM_ERROR,
        remark: "SERVICE_NOT_AVAILABLE".into(),
    };
    assert!(respond(&mut c, &mut ctx, back_msgs[1], refused.clone()).is_empty());
    // 6 goes whole to the retry topic instead; that is refused too.
    let fallback = find(&ctx.take_sent(), |r| matches!(r, Request::SendMessage(_)))[0]
        .1
        .clone();
    assert!(respond(&mut c, &mut ctx, &fallback, refused).is_empty());
    respond(
        &mut c,
        &mut ctx,
        &next_pull,
        pull_answer(response_code::PULL_NOT_FOUND, 7, Vec::new()),
    );
    let sent = ctx.take_sent();
    let pull = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    assert_eq!(
        pull_of(&pull).commit_offset,
        6,
        "6 waits for its local retry"
    );
    let mut events = Vec::new();
    for input in ctx.advance_to(ctx.now_ms + super::send_message_back::CONSUME_LATER_DELAY_MS) {
        events.extend(c.handle(&mut ctx, input));
    }
    let redelivered: Vec<(u64, i32)> = events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Delivered {
                queue_offset, msg, ..
            } => Some((*queue_offset, msg.reconsume_times)),
            _ => None,
        })
        .collect();
    assert_eq!(
        redelivered,
        vec![(6, 1)],
        "again, its count raised: {events:?}"
    );
    respond(
        &mut c,
        &mut ctx,
        &pull,
        pull_answer(response_code::PULL_NOT_FOUND, 7, Vec::new()),
    );
    let sent = ctx.take_sent();
    let pull = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    assert_eq!(pull_of(&pull).commit_offset, 7, "consumed at last");
}

/// consumeTimeout: a message its listener held past the timeout is handed back at the
/// next sweep as if it had failed, and the listener's late answer changes nothing; a
/// message answered in time is never touched.
#[test]
fn a_message_held_past_the_consume_timeout_is_handed_back_and_its_late_answer_ignored() {
    let mut ctx = ctx();
    let mut c = PushConsumer::new(ConsumerConfig {
        consume_timeout_ms: 2_000,
        ..consumer_config(MessageModel::Clustering)
    });
    c.register_message_listener(Box::new(Later));
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    let q0 = find(
        &pulls,
        |r| matches!(r, Request::PullMessage(p) if p.queue_id == 0),
    );
    let t0 = ctx.now_ms;
    respond(
        &mut c,
        &mut ctx,
        &q0[0].1,
        pull_answer(0, 7, records(0, 5, &[Some("TagA"), Some("TagA")])),
    );
    ctx.take_sent();
    let mq = MessageQueue {
        topic: "T".into(),
        broker_name: "a".into(),
        queue_id: 0,
    };
    let done = ConsumeConcurrentlyStatus::ConsumeSuccess;
    // 6 is answered in time; 5's listener goes on working.
    ctx.now_ms = t0 + 1_000;
    c.consumed(&mut ctx, &mq, 6, done);
    let send_backs = |sent: &[(NodeId, Message)]| -> Vec<u64> {
        sent.iter()
            .filter_map(|(_, m)| match m {
                Message::Request {
                    request: Request::ConsumerSendMsgBack(b),
                    ..
                } => Some(b.offset),
                _ => None,
            })
            .collect()
    };
    for input in ctx.advance_to(t0 + 2_000) {
        c.handle(&mut ctx, input);
    }
    let sent = ctx.take_sent();
    assert_eq!(
        send_backs(&sent),
        vec![0],
        "5 (commit-log offset 0) was held 2 s: handed back, 6 not"
    );
    let back = sent
        .iter()
        .find(|(_, m)| send_backs(std::slice::from_ref(&(NodeId(0), m.clone()))) == [0])
        .map(|(_, m)| m.clone())
        .unwrap();
    // The late answer is recorded, and ignored: 5 stays until the broker takes it back.
    let events = c.consumed(&mut ctx, &mq, 5, done);
    assert!(matches!(
        &events[..],
        [ClientEvent::Consumed {
            queue_offset: 5,
            ..
        }]
    ));
    assert_eq!(c.queues[&mq].process_queue.consume_offset(7), 5);
    respond(&mut c, &mut ctx, &back, Response::ConsumerSendMsgBack);
    assert_eq!(c.queues[&mq].process_queue.consume_offset(7), 7);
    // Nothing left in a listener: the sweep is not armed again.
    for input in ctx.advance_to(t0 + 10_000) {
        c.handle(&mut ctx, input);
    }
    assert!(send_backs(&ctx.take_sent()).is_empty());
    assert!(c.clean_expired_timer.is_none());
}

/// A hand-back the broker refuses (its record gone: a crash cut its commit log) falls
/// back to a send of the whole message to `%RETRY%G` at its broker group's master, with
/// its count raised and level 3 + count; stored, the message lets its queue go on.
#[test]
fn a_refused_hand_back_falls_back_to_a_send_to_the_retry_topic() {
    let mut ctx = ctx();
    let mut c = consumer(MessageModel::Clustering);
    c.register_message_listener(Box::<FailOnce>::default());
    let pulls = clustering_owning_a(&mut c, &mut ctx);
    let q0 = find(
        &pulls,
        |r| matches!(r, Request::PullMessage(p) if p.queue_id == 0),
    );
    respond(
        &mut c,
        &mut ctx,
        &q0[0].1,
        pull_answer(0, 6, records(0, 5, &[Some("TagA")])),
    );
    let sent = ctx.take_sent();
    let back = find(&sent, |r| matches!(r, Request::ConsumerSendMsgBack(_)))[0]
        .1
        .clone();
    let mut pull = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
        .1
        .clone();
    let refused = Response::Error {
        code: response_code::SYSTEM_ERROR,
        remark: "look message by offset failed".into(),
    };
    respond(&mut c, &mut ctx, &back, refused);
    let sent = ctx.take_sent();
    let fallback: Vec<(NodeId, SendMessage)> = sent
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Request {
                request: Request::SendMessage(s),
                ..
            } => Some((*to, s.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(fallback.len(), 1, "{sent:?}");
    let (to, s) = &fallback[0];
    assert_eq!(*to, NodeId(2), "a's master: the message's own group");
    assert_eq!(
        (s.topic.as_str(), s.queue_id, s.reconsume_times),
        ("%RETRY%G", 0, 1)
    );
    assert_eq!(property(&s.properties, "RETRY_TOPIC"), Some("T"));
    assert_eq!(property(&s.properties, "DELAY"), Some("3"));
    assert_eq!(property(&s.properties, "MAX_RECONSUME_TIMES"), Some("16"));
    assert!(property(&s.properties, "ORIGIN_MESSAGE_ID").is_some());
    let fallback_msg = sent
        .iter()
        .find(|(_, m)| {
            matches!(
                m,
                Message::Request {
                    request: Request::SendMessage(_),
                    ..
                }
            )
        })
        .unwrap()
        .1
        .clone();
    let commit_after = |c: &mut PushConsumer, ctx: &mut TestCtx, pull: &mut Message| {
        respond(
            c,
            ctx,
            pull,
            pull_answer(response_code::PULL_NOT_FOUND, 6, Vec::new()),
        );
        *pull = find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_)))[0]
            .1
            .clone();
        pull_of(pull).commit_offset
    };
    assert_eq!(
        commit_after(&mut c, &mut ctx, &mut pull),
        5,
        "held meanwhile"
    );
    let stored = Response::Send(SendResponse {
        code: 0,
        msg_id: "M".into(),
        queue_id: 0,
        queue_offset: 0,
    });
    respond(&mut c, &mut ctx, &fallback_msg, stored);
    assert_eq!(
        commit_after(&mut c, &mut ctx, &mut pull),
        6,
        "let go once stored"
    );
}
