//! The producer's tests, against a scripted context.

use super::super::test_ctx::TestCtx;
use super::super::CLIENT_OPAQUE_BASE;
use super::*;
use crate::message::property;
use crate::node::NodeId;
use crate::protocol::{BrokerData, QueueData, Request, SendResponse};

const NAMESRV: &str = "10.0.0.1:9876";
const BROKER_A: &str = "10.0.0.2:10911";
const BROKER_B: &str = "10.0.0.3:10911";

fn route(brokers: &[(&str, u32, u32, Option<&str>)]) -> TopicRouteData {
    TopicRouteData {
        queue_datas: brokers
            .iter()
            .map(|(name, queues, perm, _)| QueueData {
                broker_name: name.to_string(),
                read_queue_nums: *queues,
                write_queue_nums: *queues,
                perm: *perm,
                topic_sys_flag: 0,
            })
            .collect(),
        broker_datas: brokers
            .iter()
            .map(|(name, _, _, master)| BrokerData {
                cluster: "c".into(),
                broker_name: name.to_string(),
                broker_addrs: match master {
                    Some(addr) => BTreeMap::from([(0, addr.to_string())]),
                    None => BTreeMap::from([(1, "10.0.0.99:1".to_string())]),
                },
            })
            .collect(),
        ..TopicRouteData::default()
    }
}

fn names(queues: &[MessageQueue]) -> Vec<(String, i32)> {
    queues
        .iter()
        .map(|q| (q.broker_name.clone(), q.queue_id))
        .collect()
}

#[test]
fn publish_info_takes_writable_queues_of_brokers_with_a_master_in_name_order() {
    let r = route(&[
        ("b", 2, 6, Some(BROKER_B)),
        ("a", 1, 6, Some(BROKER_A)),
        ("c", 3, 4, Some("x:1")), // read-only
        ("d", 3, 6, None),        // no master
    ]);
    assert_eq!(
        names(&publish_queues("T", &r)),
        vec![("a".into(), 0), ("b".into(), 0), ("b".into(), 1)]
    );
    let tbw = route(&[("a", 8, 7, Some(BROKER_A)), ("b", 2, 6, Some(BROKER_B))]);
    let adapted = route_from_default_topic(tbw, 4);
    assert_eq!(
        names(&publish_queues("T", &adapted)),
        vec![
            ("a".into(), 0),
            ("a".into(), 1),
            ("a".into(), 2),
            ("a".into(), 3),
            ("b".into(), 0),
            ("b".into(), 1)
        ]
    );
}

fn queues(spec: &[(&str, i32)]) -> Vec<MessageQueue> {
    spec.iter()
        .flat_map(|(b, n)| {
            (0..*n).map(move |q| MessageQueue {
                topic: "T".into(),
                broker_name: b.to_string(),
                queue_id: q,
            })
        })
        .collect()
}

#[test]
fn selection_is_round_robin_and_a_retry_skips_the_failed_broker() {
    let qs = queues(&[("a", 2), ("b", 2)]);
    let mut counter = u64::MAX; // wraps to 0 on the first pick
    let picks: Vec<(String, i32)> = (0..5)
        .map(|_| {
            let q = select_queue(&qs, &mut counter, None).unwrap();
            (q.broker_name.clone(), q.queue_id)
        })
        .collect();
    assert_eq!(
        picks,
        vec![
            ("a".into(), 0),
            ("a".into(), 1),
            ("b".into(), 0),
            ("b".into(), 1),
            ("a".into(), 0)
        ]
    );
    // The counter points at a1 next; a retry after broker a failed skips to b0.
    let q = select_queue(&qs, &mut counter, Some("a")).unwrap();
    assert_eq!((q.broker_name.as_str(), q.queue_id), ("b", 0));
    // With only the failed broker left, it is used anyway.
    let only_a = queues(&[("a", 2)]);
    let q = select_queue(&only_a, &mut counter, Some("a")).unwrap();
    assert_eq!(q.broker_name, "a");
    assert!(select_queue(&[], &mut counter, None).is_none());
}

#[test]
fn uniq_keys_are_32_upper_hex_and_distinct() {
    let a = uniq_key([10, 0, 0, 3], 0xDEAD_BEEF, 1);
    assert_eq!(a, "0A000003DEADBEEF0000000000000001");
    assert_ne!(a, uniq_key([10, 0, 0, 3], 0xDEAD_BEEF, 2));
    assert_ne!(a, uniq_key([10, 0, 0, 4], 0xDEAD_BEEF, 1));
}

/// A producer started on a TestCtx knowing one name server and two brokers.
fn started(cfg: ProducerConfig) -> (Producer, TestCtx) {
    let mut ctx = TestCtx::new(&[(NAMESRV, 1), (BROKER_A, 2), (BROKER_B, 3)]);
    let mut p = Producer::new(ProducerConfig {
        namesrv_addrs: vec![NAMESRV.into()],
        ..cfg
    });
    p.start(&mut ctx);
    (p, ctx)
}

fn msg(topic: &str) -> OutgoingMessage {
    OutgoingMessage {
        topic: topic.into(),
        tags: Some("TagA".into()),
        keys: Some("k1".into()),
        user_properties: vec![("WID".into(), "7".into())],
        body: b"hello".to_vec(),
        delay_time_level: 0,
    }
}

fn respond(
    p: &mut Producer,
    ctx: &mut TestCtx,
    to: &Message,
    response: Response,
) -> Vec<ClientEvent> {
    let Message::Request { opaque, .. } = to else {
        panic!("not a request: {to:?}")
    };
    assert!(*opaque >= CLIENT_OPAQUE_BASE);
    let input = Input::Packet {
        from: NodeId(0),
        msg: Message::Response {
            opaque: *opaque,
            response,
        },
    };
    p.handle(ctx, input)
}

/// Sends one message and answers its route lookup with `r`; returns the request
/// of the first attempt.
fn send_with_route(
    p: &mut Producer,
    ctx: &mut TestCtx,
    r: TopicRouteData,
) -> (SendId, NodeId, Message) {
    let id = p.send(ctx, msg("T"));
    let sent = ctx.take_sent();
    assert_eq!(sent.len(), 1, "a route lookup first");
    assert!(matches!(
        &sent[0].1,
        Message::Request { request: Request::GetRouteInfoByTopic { topic }, .. } if topic == "T"
    ));
    assert!(respond(p, ctx, &sent[0].1, Response::Route(r)).is_empty());
    let mut sent = ctx.take_sent();
    assert_eq!(sent.len(), 1, "then the first attempt");
    let (to, m) = sent.remove(0);
    (id, to, m)
}

fn send_request(m: &Message) -> &SendMessage {
    match m {
        Message::Request {
            request: Request::SendMessage(s),
            ..
        } => s,
        other => panic!("not a send: {other:?}"),
    }
}

fn two_brokers() -> TopicRouteData {
    route(&[("a", 2, 6, Some(BROKER_A)), ("b", 2, 6, Some(BROKER_B))])
}

#[test]
fn a_delayed_send_carries_its_level_in_delay() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (_, _, m) = send_with_route(&mut p, &mut ctx, two_brokers());
    assert_eq!(property(&send_request(&m).properties, "DELAY"), None);
    p.send(
        &mut ctx,
        OutgoingMessage {
            delay_time_level: 3,
            ..msg("T")
        },
    );
    let sent = ctx.take_sent();
    let s = send_request(&sent.last().expect("sent at once: the route is known").1);
    assert_eq!(property(&s.properties, "DELAY"), Some("3"));
}

#[test]
fn a_send_carries_the_properties_and_reports_the_stored_result() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (id, to, m) = send_with_route(&mut p, &mut ctx, two_brokers());
    let s = send_request(&m);
    assert_eq!(s.topic, "T");
    assert_eq!(s.default_topic, "TBW102");
    assert_eq!(s.default_topic_queue_nums, 4);
    assert_eq!(property(&s.properties, "TAGS"), Some("TagA"));
    assert_eq!(property(&s.properties, "KEYS"), Some("k1"));
    assert_eq!(property(&s.properties, "WAIT"), Some("true"));
    assert_eq!(property(&s.properties, "WID"), Some("7"));
    let uniq = property(&s.properties, "UNIQ_KEY").unwrap().to_string();
    assert_eq!(uniq.len(), 32);
    assert!(
        uniq.starts_with("0A000009"),
        "derived from my address: {uniq}"
    );
    let events = respond(
        &mut p,
        &mut ctx,
        &m,
        Response::Send(SendResponse {
            code: response_code::FLUSH_DISK_TIMEOUT,
            msg_id: "X".into(),
            queue_id: s.queue_id,
            queue_offset: 41,
        }),
    );
    assert_eq!(
        events,
        vec![ClientEvent::SendResult {
            id,
            outcome: SendOutcome::Stored {
                code: 10,
                broker_name: ctx_to_broker(&to).into(),
                queue_id: s.queue_id,
                queue_offset: 41,
                msg_id: uniq,
                retried_after_unknown: false,
            }
        }]
    );
    assert_eq!(p.pending_sends(), 0);
}

/// Answers `m` with SYSTEM_ERROR, a code after which a round-robin send is retried.
fn refuse_busy(p: &mut Producer, ctx: &mut TestCtx, m: &Message) -> Vec<ClientEvent> {
    let busy = Response::Error {
        code: response_code::SYSTEM_ERROR,
        remark: "busy".into(),
    };
    respond(p, ctx, m, busy)
}

fn ctx_to_broker(to: &NodeId) -> &'static str {
    match to.0 {
        2 => "a",
        3 => "b",
        other => panic!("not a broker: n{other}"),
    }
}

#[test]
fn a_refused_attempt_is_retried_on_the_other_broker_and_the_failure_is_definite() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (id, to, m) = send_with_route(&mut p, &mut ctx, two_brokers());
    let first = ctx_to_broker(&to);
    let events = refuse_busy(&mut p, &mut ctx, &m);
    assert!(events.is_empty());
    let sent = ctx.take_sent();
    // A background route refresh and the retry, on the other broker.
    let sends: Vec<_> = sent
        .iter()
        .filter(|(_, m)| {
            matches!(
                m,
                Message::Request {
                    request: Request::SendMessage(_),
                    ..
                }
            )
        })
        .collect();
    assert_eq!(sends.len(), 1);
    let second = ctx_to_broker(&sends[0].0);
    assert_ne!(first, second, "the retry avoids the broker that failed");
    let m2 = sends[0].1.clone();
    // The second answer is a code that is not retried: the send ends at once, and
    // definitely, as no broker stored it.
    let events = respond(
        &mut p,
        &mut ctx,
        &m2,
        Response::Error {
            code: response_code::MESSAGE_ILLEGAL,
            remark: "bad".into(),
        },
    );
    match &events[..] {
        [ClientEvent::SendResult {
            id: got,
            outcome: SendOutcome::Failed { definite, .. },
        }] => {
            assert_eq!(*got, id);
            assert!(*definite);
        }
        other => panic!("{other:?}"),
    }
    assert!(ctx.take_sent().iter().all(|(_, m)| !matches!(
        m,
        Message::Request {
            request: Request::SendMessage(_),
            ..
        }
    )));
}

#[test]
fn three_refusals_fail_definitely_after_three_attempts() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (id, _, mut m) = send_with_route(&mut p, &mut ctx, two_brokers());
    let mut brokers = Vec::new();
    for attempt in 1..=3 {
        let events = respond(
            &mut p,
            &mut ctx,
            &m,
            Response::Error {
                code: response_code::SERVICE_NOT_AVAILABLE,
                remark: "no".into(),
            },
        );
        let sent = ctx.take_sent();
        let next = sent.into_iter().find(|(_, m)| {
            matches!(
                m,
                Message::Request {
                    request: Request::SendMessage(_),
                    ..
                }
            )
        });
        if attempt < 3 {
            assert!(events.is_empty());
            let (to, next) = next.expect("a retry");
            brokers.push(ctx_to_broker(&to));
            m = next;
        } else {
            assert!(next.is_none(), "no fourth attempt");
            assert!(matches!(
                &events[..],
                [ClientEvent::SendResult { id: got, outcome: SendOutcome::Failed { definite: true, .. } }] if *got == id
            ));
        }
    }
    // Each retry moved to the broker that did not just fail.
    assert_ne!(brokers[0], brokers[1]);
}

#[test]
fn the_timeout_covers_all_attempts_and_a_timeout_is_not_definite() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (id, _, m) = send_with_route(&mut p, &mut ctx, two_brokers());
    // The first attempt broke after 1 s: maybe stored. A retry goes out with the
    // 2 s that are left.
    ctx.now_ms = 1_000;
    let to = ctx_node(&p, &m);
    let events = p.handle(&mut ctx, Input::ConnectionBroken { peer: to });
    assert!(events.is_empty());
    let retry = ctx
        .take_sent()
        .into_iter()
        .find(|(_, m)| {
            matches!(
                m,
                Message::Request {
                    request: Request::SendMessage(_),
                    ..
                }
            )
        })
        .expect("a retry");
    assert_ne!(retry.0, to);
    // Nobody answers: at 3 s the send's time is up and no third attempt is made,
    // although one attempt is left.
    let mut events = Vec::new();
    for input in ctx.advance_to(3_000) {
        events.extend(p.handle(&mut ctx, input));
    }
    match &events[..] {
        [ClientEvent::SendResult {
            id: got,
            outcome: SendOutcome::Failed {
                definite, reason, ..
            },
        }] => {
            assert_eq!(*got, id);
            assert!(!definite, "the first attempt may have been stored");
            assert!(reason.contains("timed out"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(ctx.take_sent().iter().all(|(_, m)| !matches!(
        m,
        Message::Request {
            request: Request::SendMessage(_),
            ..
        }
    )));
}

/// The node a send request went to, from the producer's own tracking.
fn ctx_node(p: &Producer, m: &Message) -> NodeId {
    let Message::Request { opaque, .. } = m else {
        unreachable!()
    };
    p.rpc.peer_of(*opaque).expect("a pending request")
}

#[test]
fn an_unknown_topic_borrows_tbw102_with_the_default_queue_count() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let id = p.send(&mut ctx, msg("NewTopic"));
    let sent = ctx.take_sent();
    let events = respond(
        &mut p,
        &mut ctx,
        &sent[0].1,
        Response::Error {
            code: response_code::TOPIC_NOT_EXIST,
            remark: "none".into(),
        },
    );
    assert!(events.is_empty());
    let sent = ctx.take_sent();
    assert!(matches!(
        &sent[0].1,
        Message::Request { request: Request::GetRouteInfoByTopic { topic }, .. } if topic == "TBW102"
    ));
    let tbw = route(&[("a", 8, 7, Some(BROKER_A))]);
    respond(&mut p, &mut ctx, &sent[0].1, Response::Route(tbw));
    let sent = ctx.take_sent();
    let s = send_request(&sent[0].1);
    assert_eq!(s.topic, "NewTopic");
    assert!((0..4).contains(&s.queue_id), "queue {}", s.queue_id);
    assert_eq!(p.topics["NewTopic"].queues.len(), 4);
    // Neither the topic nor TBW102: the send fails definitely.
    let id2 = p.send(&mut ctx, msg("Other"));
    let sent = ctx.take_sent();
    respond(
        &mut p,
        &mut ctx,
        &sent[0].1,
        Response::Error {
            code: 17,
            remark: String::new(),
        },
    );
    let sent = ctx.take_sent();
    let events = respond(
        &mut p,
        &mut ctx,
        &sent[0].1,
        Response::Error {
            code: 17,
            remark: String::new(),
        },
    );
    assert!(matches!(
        &events[..],
        [ClientEvent::SendResult { id: got, outcome: SendOutcome::Failed { definite: true, .. } }] if *got == id2
    ));
    assert_ne!(id, id2);
}

#[test]
fn route_lookups_move_to_the_next_name_server_on_failure() {
    let ns2 = "10.0.0.4:9876";
    let mut ctx = TestCtx::new(&[(NAMESRV, 1), (ns2, 4), (BROKER_A, 2)]);
    let mut p = Producer::new(ProducerConfig {
        namesrv_addrs: vec![NAMESRV.into(), ns2.into()],
        ..ProducerConfig::default()
    });
    p.start(&mut ctx);
    p.send(&mut ctx, msg("T"));
    let (first, _) = ctx.take_sent().remove(0);
    assert!(p
        .handle(&mut ctx, Input::ConnectionBroken { peer: first })
        .is_empty());
    let (second, m) = ctx.take_sent().remove(0);
    assert_ne!(first, second);
    respond(
        &mut p,
        &mut ctx,
        &m,
        Response::Route(route(&[("a", 1, 6, Some(BROKER_A))])),
    );
    let (to, _) = ctx.take_sent().remove(0);
    assert_eq!(to, NodeId(2));
}

#[test]
fn sync_failures_and_foreign_inputs() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    // An invalid message fails at once; the result comes out of handle via a
    // zero-delay timer.
    let id = p.send(
        &mut ctx,
        OutgoingMessage {
            body: Vec::new(),
            ..msg("T")
        },
    );
    assert!(ctx.take_sent().is_empty());
    let events: Vec<ClientEvent> = ctx
        .advance_to(0)
        .into_iter()
        .flat_map(|input| p.handle(&mut ctx, input))
        .collect();
    assert!(matches!(
        &events[..],
        [ClientEvent::SendResult { id: got, outcome: SendOutcome::Failed { definite: true, .. } }] if *got == id
    ));
    // Host timers and host responses are not the producer's.
    let host_timer = Input::Timer {
        id: TimerId(999),
        kind: 5,
    };
    assert!(p.handle(&mut ctx, host_timer.clone()).is_empty());
    let host_response = Input::Packet {
        from: NodeId(1),
        msg: Message::Response {
            opaque: 3,
            response: Response::HeartBeat,
        },
    };
    assert!(p.handle(&mut ctx, host_response.clone()).is_empty());
    // The route poll re-asks for known topics every 30 s.
    p.send(&mut ctx, msg("T"));
    let sent = ctx.take_sent();
    respond(&mut p, &mut ctx, &sent[0].1, Response::Route(two_brokers()));
    ctx.take_sent();
    for input in ctx.advance_to(30_000) {
        p.handle(&mut ctx, input);
    }
    assert!(ctx.take_sent().iter().any(|(_, m)| matches!(
        m,
        Message::Request {
            request: Request::GetRouteInfoByTopic { .. },
            ..
        }
    )));
}

fn is_send(m: &Message) -> bool {
    matches!(
        m,
        Message::Request {
            request: Request::SendMessage(_),
            ..
        }
    )
}

/// A producer that knows `two_brokers()` as T's route, with nothing in flight.
fn route_known() -> (Producer, TestCtx) {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    let (_, _, m) = send_with_route(&mut p, &mut ctx, two_brokers());
    let stored = SendResponse {
        code: response_code::SUCCESS,
        msg_id: "X".into(),
        queue_id: send_request(&m).queue_id,
        queue_offset: 0,
    };
    respond(&mut p, &mut ctx, &m, Response::Send(stored));
    assert_eq!(p.pending_sends(), 0);
    (p, ctx)
}

/// A selected send of key `key` with the route `two_brokers()` known: its id and the
/// one attempt's request.
fn selected_send(p: &mut Producer, ctx: &mut TestCtx, key: &str) -> (SendId, NodeId, Message) {
    let id = p.send_selected(ctx, msg("T"), MessageQueueSelector::by_hash(key));
    let mut sends: Vec<_> = ctx
        .take_sent()
        .into_iter()
        .filter(|(_, m)| is_send(m))
        .collect();
    assert_eq!(sends.len(), 1, "one attempt at once");
    let (to, m) = sends.remove(0);
    (id, to, m)
}

#[test]
fn a_selected_send_goes_to_the_queue_of_its_key_every_time() {
    let (mut p, mut ctx) = route_known();
    let publish = publish_queues("T", &two_brokers());
    for key in ["order-1", "order-2", "order-123456789", "x"] {
        let expected = MessageQueueSelector::by_hash(key)
            .select(&publish)
            .unwrap()
            .clone();
        for _ in 0..3 {
            let (_, to, m) = selected_send(&mut p, &mut ctx, key);
            assert_eq!(ctx_to_broker(&to), expected.broker_name, "{key}");
            assert_eq!(send_request(&m).queue_id, expected.queue_id, "{key}");
        }
    }
}

/// The one failure `events` holds, of send `id`, and whether it was definite.
fn failed_definite(events: &[ClientEvent], id: SendId) -> bool {
    match events {
        [ClientEvent::SendResult {
            id: got,
            outcome: SendOutcome::Failed { definite, .. },
        }] if *got == id => *definite,
        other => panic!("expected the failure of {id:?}: {other:?}"),
    }
}

#[test]
fn a_selected_send_makes_one_attempt_and_never_fails_over() {
    let (mut p, mut ctx) = route_known();
    // Refused with a code a round-robin send would retry on the other broker.
    let (id, _, m) = selected_send(&mut p, &mut ctx, "order-7");
    let events = refuse_busy(&mut p, &mut ctx, &m);
    assert!(ctx.take_sent().iter().all(|(_, m)| !is_send(m)), "no retry");
    assert!(failed_definite(&events, id), "refused: nothing stored");
    // Broken after it was sent: maybe stored, and still no second attempt.
    let (id, to, _) = selected_send(&mut p, &mut ctx, "order-7");
    let events = p.handle(&mut ctx, Input::ConnectionBroken { peer: to });
    assert!(ctx.take_sent().iter().all(|(_, m)| !is_send(m)), "no retry");
    assert!(
        !failed_definite(&events, id),
        "the attempt may have been stored"
    );
}

#[test]
fn a_selected_send_waits_for_the_route_like_any_send() {
    let (mut p, mut ctx) = started(ProducerConfig::default());
    p.send_selected(&mut ctx, msg("T"), MessageQueueSelector::by_hash("k"));
    let sent = ctx.take_sent();
    assert_eq!(sent.len(), 1, "a route lookup first");
    assert!(respond(&mut p, &mut ctx, &sent[0].1, Response::Route(two_brokers())).is_empty());
    let sends: Vec<_> = ctx
        .take_sent()
        .into_iter()
        .filter(|(_, m)| is_send(m))
        .collect();
    assert_eq!(sends.len(), 1);
    let expected = MessageQueueSelector::by_hash("k")
        .select(&publish_queues("T", &two_brokers()))
        .unwrap()
        .clone();
    assert_eq!(send_request(&sends[0].1).queue_id, expected.queue_id);
    assert_eq!(ctx_to_broker(&sends[0].0), expected.broker_name);
}
