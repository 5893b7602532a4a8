//! The remoting codec against real clients' bytes and its own output: the C++ client's
//! captured frames (reference `cpp-client-frames.txt`, kept as the fuzz corpus's
//! `seed-cpp-*` files) decode to the expected model requests; every mapped request and
//! response round-trips through JSON and binary headers; a frame decodes the same
//! however the stream splits it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rmq_model::client::MessageQueue;
use rmq_model::protocol::{
    request_code as rc, response_code, BatchMessage, BrokerData, BrokerIdentity, ClusterInfo,
    ConsumeStats, ConsumerData, ConsumerSendMsgBack, HeartbeatData, LockBatch, MessageModel,
    OffsetWrapper, PullMessage, PullResponse, QueueData, QueueKey, RegisterBroker,
    RegisterBrokerResult, Request, ResetOffset, Response, SendBatchMessage, SendMessage,
    SendResponse, TopicOffset, TopicRouteData,
};
use rmq_model::store::config_tables::{ConsumerOffsetTable, DataVersion, TopicConfig};
use rmq_real::remoting::{
    decode_frame, encode_frame, request_from_wire, request_to_wire, response_from_wire,
    response_to_wire, rocketmq_sends_oneway, RemotingCommand, SerializeType,
    DEFAULT_MAX_FRAME_BYTES,
};

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus/remoting")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Decodes a file holding exactly one frame.
fn decode_one(bytes: &[u8]) -> RemotingCommand {
    let (cmd, used) = decode_frame(bytes, DEFAULT_MAX_FRAME_BYTES)
        .expect("decodes")
        .expect("whole frame");
    assert_eq!(used, bytes.len(), "one frame, all of it");
    cmd
}

fn cpp_request(name: &str, opaque: u32) -> (RemotingCommand, Request) {
    let cmd = decode_one(&corpus(name));
    assert_eq!(cmd.language, "CPP");
    assert_eq!(cmd.version, 63);
    assert_eq!(cmd.opaque, opaque);
    assert_eq!(cmd.flag, 0);
    assert!(!cmd.is_response() && !cmd.is_oneway());
    assert_eq!(cmd.remark, None, "the C++ client's \"\" remark is none");
    assert_eq!(cmd.serialize_type, SerializeType::Json);
    assert_eq!(cmd.ext_fields["AccessKey"], "");
    assert_eq!(cmd.ext_fields["OnsChannel"], "ALIYUN");
    let request = request_from_wire(&cmd).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    (cmd, request)
}

fn retry_key(queue_id: i32) -> QueueKey {
    QueueKey {
        consumer_group: "CID_TEST".into(),
        topic: "%RETRY%CID_TEST".into(),
        queue_id,
    }
}

#[test]
fn cpp_route_send_and_unregister_producer() {
    let (cmd, request) = cpp_request("seed-cpp-105-route", 0);
    assert_eq!(cmd.code, rc::GET_ROUTEINFO_BY_TOPIC);
    assert_eq!(
        request,
        Request::GetRouteInfoByTopic {
            topic: "TopicTest".into()
        }
    );

    let (cmd, request) = cpp_request("seed-cpp-10-send", 1);
    assert_eq!(cmd.code, rc::SEND_MESSAGE);
    assert_eq!(
        cmd.ext_fields["defaultTopicQueueNums"], "4",
        "a JSON number"
    );
    assert_eq!(
        request,
        Request::SendMessage(SendMessage {
            producer_group: "PID_TEST".into(),
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp_ms: 1_795_257_841_544,
            born_host: String::new(),
            flag: 0,
            properties: "KEYS\u{1}k1\u{2}TAGS\u{1}tagA\u{2}\
                         UNIQ_KEY\u{1}0100007F000034FF0000081AAA6E0100\u{2}WAIT\u{1}true\u{2}"
                .into(),
            reconsume_times: 0,
            max_reconsume_times: None,
            body: b"hello".to_vec(),
        })
    );

    let (cmd, request) = cpp_request("seed-cpp-35-unregister-producer", 2);
    assert_eq!(cmd.code, rc::UNREGISTER_CLIENT);
    assert_eq!(
        request,
        Request::UnregisterClient {
            client_id: "18879-127.0.0.1@DEFAULT".into(),
            producer_group: Some("PID_TEST".into()),
            consumer_group: None,
        }
    );
}

#[test]
fn cpp_batch_send() {
    // `SendBatchMessage` of the C API: SEND_MESSAGE (10) with the long keys, `batch`
    // "1", the batch's WAIT in the header and each message's own UNIQ_KEY in the body.
    let (cmd, request) = cpp_request("seed-cpp-10-send-batch", 5);
    assert_eq!(cmd.code, rc::SEND_MESSAGE);
    assert_eq!(cmd.ext_fields["batch"], "1");
    let message = |i: u32, tags: &str, uniq: &str| BatchMessage {
        flag: 0,
        properties: format!(
            "KEYS\u{1}key-{i}\u{2}TAGS\u{1}{tags}\u{2}UNIQ_KEY\u{1}{uniq}\u{2}\
             WAIT\u{1}true\u{2}n\u{1}{i}\u{2}"
        ),
        body: format!("body-{i}").into_bytes(),
    };
    assert_eq!(
        request,
        Request::SendBatchMessage(SendBatchMessage {
            header: SendMessage {
                producer_group: "pg".into(),
                topic: "TopicBatchCap".into(),
                default_topic: "TBW102".into(),
                default_topic_queue_nums: 4,
                queue_id: 2,
                sys_flag: 0,
                born_timestamp_ms: 1_796_473_582_110,
                born_host: String::new(),
                flag: 0,
                properties: "WAIT\u{1}true\u{2}".into(),
                reconsume_times: 0,
                max_reconsume_times: None,
                body: Vec::new(),
            },
            messages: vec![
                message(3, "TagA", "0100007F000078E700009E0CA21C0400"),
                message(4, "TagB", "0100007F000078E700009E0CA21C0500"),
                message(5, "TagC", "0100007F000078E700009E0CA21C0600"),
            ],
        })
    );
}

#[test]
fn cpp_push_consumer_frames() {
    let (_, request) = cpp_request("seed-cpp-34-heartbeat", 2);
    assert_eq!(
        request,
        Request::HeartBeat(HeartbeatData {
            client_id: "20526-127.0.0.1@DEFAULT".into(),
            consumers: vec![ConsumerData {
                group_name: "CID_TEST".into(),
                // `"messageModel":1`: an ordinal, not a name.
                message_model: MessageModel::Clustering,
                subscriptions: BTreeMap::from([
                    ("%RETRY%CID_TEST".to_string(), "*".to_string()),
                    ("TopicTest".to_string(), "tagA".to_string()),
                ]),
            }],
        })
    );

    let (_, request) = cpp_request("seed-cpp-38-consumer-list", 3);
    assert_eq!(
        request,
        Request::GetConsumerListByGroup {
            consumer_group: "CID_TEST".into()
        }
    );

    let (_, request) = cpp_request("seed-cpp-14-query-offset", 4);
    assert_eq!(request, Request::QueryConsumerOffset(retry_key(0)));

    let (cmd, request) = cpp_request("seed-cpp-11-pull", 9);
    assert_eq!(cmd.ext_fields["maxMsgNums"], "32", "a JSON number");
    assert_eq!(
        request,
        Request::PullMessage(PullMessage {
            consumer_group: "CID_TEST".into(),
            topic: "%RETRY%CID_TEST".into(),
            queue_id: 1,
            queue_offset: 0,
            max_msg_nums: 32,
            sys_flag: 6,
            commit_offset: 0,
            suspend_timeout_ms: 15_000,
            subscription: Some("*".into()),
        })
    );

    let (_, request) = cpp_request("seed-cpp-15-update-offset", 58);
    assert_eq!(
        request,
        Request::UpdateConsumerOffset {
            key: retry_key(0),
            offset: 0
        }
    );

    let (_, request) = cpp_request("seed-cpp-35-unregister-consumer", 66);
    assert_eq!(
        request,
        Request::UnregisterClient {
            client_id: "20526-127.0.0.1@DEFAULT".into(),
            producer_group: None,
            consumer_group: Some("CID_TEST".into()),
        }
    );
}

#[test]
fn cpp_clients_are_answered_in_json_with_their_opaque() {
    let (cmd, _) = cpp_request("seed-cpp-38-consumer-list", 3);
    let answer = response_to_wire(
        cmd.code,
        cmd.opaque,
        &Response::ConsumerList(vec!["a".into(), "b".into()]),
        cmd.serialize_type,
    );
    let mut frame = Vec::new();
    encode_frame(&answer, &mut frame);
    // The C++ client reads the header length without masking the type byte.
    assert_eq!(frame[4], 0, "JSON");
    let header_len = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&frame[8..8 + header_len]).unwrap();
    assert_eq!(header["code"], 0);
    assert_eq!(header["flag"], 1);
    assert_eq!(header["opaque"], 3);
    assert_eq!(header["language"], "JAVA");
    assert_eq!(&frame[8 + header_len..], br#"{"consumerIdList":["a","b"]}"#);
}

#[test]
fn java_and_binary_seeds_decode() {
    let cmd = decode_one(&corpus("seed-binary-30-get-max-offset"));
    assert_eq!(cmd.serialize_type, SerializeType::RocketMq);
    assert_eq!(cmd.language, "JAVA");
    assert_eq!(cmd.version, 409);
    assert_eq!(
        request_from_wire(&cmd).unwrap(),
        Request::GetMaxOffset {
            topic: "TopicTest".into(),
            queue_id: 3
        }
    );

    // Two frames back to back: a V2 send and GET_ALL_CONSUMER_OFFSET (remark null).
    let bytes = corpus("seed-json-310-send-v2-then-43");
    let (send, used) = decode_frame(&bytes, DEFAULT_MAX_FRAME_BYTES)
        .unwrap()
        .unwrap();
    let Request::SendMessage(m) = request_from_wire(&send).unwrap() else {
        panic!("a send");
    };
    assert_eq!(
        (m.topic.as_str(), m.queue_id, &m.body[..]),
        ("TopicTest", 1, &b"hello"[..])
    );
    let (all, rest) = decode_frame(&bytes[used..], DEFAULT_MAX_FRAME_BYTES)
        .unwrap()
        .unwrap();
    assert_eq!(used + rest, bytes.len());
    assert_eq!(
        request_from_wire(&all).unwrap(),
        Request::GetAllConsumerOffset
    );

    let pull = decode_one(&corpus("seed-binary-response-pull"));
    let Response::Pull(p) = response_from_wire(rc::PULL_MESSAGE, &pull).unwrap() else {
        panic!("a pull response");
    };
    assert_eq!(
        (p.next_begin_offset, p.max_offset, p.records.len()),
        (5, 5, 40)
    );

    // fastjson's unquoted broker-id keys and the pre-4.9 `topicSynFlag`.
    let route = decode_one(&corpus("seed-json-response-route-fastjson"));
    let Response::Route(r) = response_from_wire(rc::GET_ROUTEINFO_BY_TOPIC, &route).unwrap() else {
        panic!("a route");
    };
    assert_eq!(r.broker_datas[0].master_addr(), Some("127.0.0.1:10911"));
    assert_eq!(r.queue_datas[0].write_queue_nums, 4);
}

fn all_requests() -> Vec<Request> {
    let key = QueueKey {
        consumer_group: "G".into(),
        topic: "T".into(),
        queue_id: 3,
    };
    let broker = BrokerIdentity {
        cluster_name: "DefaultCluster".into(),
        broker_name: "broker-a".into(),
        broker_addr: "10.0.0.1:10911".into(),
        broker_id: 1,
    };
    vec![
        Request::RegisterBroker(RegisterBroker {
            broker: broker.clone(),
            ha_server_addr: "10.0.0.1:10912".into(),
            topic_config_table: BTreeMap::from([(
                "T".to_string(),
                TopicConfig {
                    topic_name: "T".into(),
                    read_queue_nums: 4,
                    write_queue_nums: 4,
                    ..TopicConfig::default()
                },
            )]),
            data_version: DataVersion {
                timestamp: 1_700_000_000_000,
                counter: 7,
            },
        }),
        Request::UnregisterBroker(broker),
        Request::GetRouteInfoByTopic { topic: "T".into() },
        Request::GetBrokerClusterInfo,
        Request::SendMessage(SendMessage {
            producer_group: "PG".into(),
            topic: "T".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: -1,
            sys_flag: 0,
            born_timestamp_ms: 1_700_000_000_123,
            born_host: String::new(),
            flag: 0,
            properties: "TAGS\u{1}a\u{2}WAIT\u{1}true\u{2}".into(),
            reconsume_times: 2,
            max_reconsume_times: None,
            body: vec![0, 1, 2, 255],
        }),
        Request::SendBatchMessage(SendBatchMessage {
            header: SendMessage {
                producer_group: "PG".into(),
                topic: "T".into(),
                default_topic: "TBW102".into(),
                default_topic_queue_nums: 4,
                queue_id: 2,
                sys_flag: 0,
                born_timestamp_ms: 1_700_000_000_123,
                born_host: String::new(),
                flag: 0,
                properties: "WAIT\u{1}true".into(),
                reconsume_times: 0,
                max_reconsume_times: None,
                body: Vec::new(),
            },
            messages: vec![
                BatchMessage {
                    flag: 3,
                    properties: "UNIQ_KEY\u{1}U0\u{2}KEYS\u{1}k0".into(),
                    body: vec![0, 1, 2, 255],
                },
                BatchMessage {
                    flag: 0,
                    properties: String::new(),
                    body: Vec::new(),
                },
            ],
        }),
        Request::PullMessage(PullMessage {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id: 3,
            queue_offset: 17,
            max_msg_nums: 32,
            sys_flag: 7,
            commit_offset: 12,
            suspend_timeout_ms: 15_000,
            subscription: Some("a || b".into()),
        }),
        Request::QueryConsumerOffset(key.clone()),
        Request::UpdateConsumerOffset { key, offset: 99 },
        Request::GetMaxOffset {
            topic: "T".into(),
            queue_id: 0,
        },
        Request::HeartBeat(HeartbeatData {
            client_id: "10.0.0.9@1".into(),
            consumers: vec![ConsumerData {
                group_name: "G".into(),
                message_model: MessageModel::Broadcasting,
                subscriptions: BTreeMap::from([
                    ("T".to_string(), "a || b".to_string()),
                    ("%RETRY%G".to_string(), "*".to_string()),
                ]),
            }],
        }),
        Request::UnregisterClient {
            client_id: "10.0.0.9@1".into(),
            producer_group: Some("PG".into()),
            consumer_group: None,
        },
        Request::GetConsumerListByGroup {
            consumer_group: "G".into(),
        },
        Request::NotifyConsumerIdsChanged {
            consumer_group: "G".into(),
        },
        Request::GetAllConsumerOffset,
        Request::ConsumerSendMsgBack(send_back(Some(16))),
        Request::ConsumerSendMsgBack(ConsumerSendMsgBack {
            delay_level: -1,
            origin_msg_id: None,
            origin_topic: None,
            unit_mode: true,
            ..send_back(None)
        }),
        Request::LockBatchMq(lock_batch()),
        Request::UnlockBatchMq(lock_batch()),
        Request::UpdateAndCreateTopic(TopicConfig {
            topic_name: "T".into(),
            read_queue_nums: 3,
            write_queue_nums: 5,
            perm: 4,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: 0,
            order: true,
        }),
        Request::GetMinOffset {
            topic: "T".into(),
            queue_id: 2,
        },
        Request::ViewMessageById {
            commit_log_offset: u64::from(u32::MAX) + 7,
        },
        Request::GetTopicStatsInfo { topic: "T".into() },
        Request::GetAllTopicListFromNameserver,
        Request::GetBrokerRuntimeInfo,
        Request::GetConsumeStats {
            consumer_group: "G".into(),
            topic: None,
        },
        Request::GetConsumeStats {
            consumer_group: "G".into(),
            topic: Some("T".into()),
        },
        Request::InvokeBrokerToResetOffset(ResetOffset {
            topic: "T".into(),
            consumer_group: "G".into(),
            timestamp_ms: 1_700_000_000_000,
            force: true,
            offset_table: BTreeMap::new(),
        }),
        Request::ResetConsumerClientOffset(ResetOffset {
            topic: "T".into(),
            consumer_group: "G".into(),
            timestamp_ms: -1,
            force: false,
            offset_table: queues(&[0, 2]).into_iter().map(|mq| (mq, 17)).collect(),
        }),
    ]
}

fn queues(ids: &[i32]) -> std::collections::BTreeSet<MessageQueue> {
    ids.iter()
        .map(|&queue_id| MessageQueue {
            topic: "T".into(),
            broker_name: "broker-a".into(),
            queue_id,
        })
        .collect()
}

fn lock_batch() -> LockBatch {
    LockBatch {
        consumer_group: "G".into(),
        client_id: "10.0.0.9@1".into(),
        queues: queues(&[0, 3]),
    }
}

/// LOCK_BATCH_MQ as rocketmq-client-cpp sends it (`LockBatchRequestBody::Encode`: a
/// JsonCpp document with `mqSet` entries keyed brokerName/queueId/topic).
#[test]
fn a_cpp_lock_batch_request_decodes() {
    let mut cmd = request_to_wire(7, &Request::LockBatchMq(lock_batch()), false);
    cmd.language = "CPP".into();
    cmd.body = br#"{"clientId":"10.0.0.9@1","consumerGroup":"G","mqSet":[{"brokerName":"broker-a","queueId":0,"topic":"T"},{"brokerName":"broker-a","queueId":3,"topic":"T"}]}"#.to_vec();
    assert_eq!(
        request_from_wire(&cmd).unwrap(),
        Request::LockBatchMq(lock_batch())
    );
    let locked = response_to_wire(
        rc::LOCK_BATCH_MQ,
        7,
        &Response::LockBatchMq(queues(&[3])),
        SerializeType::Json,
    );
    let body: serde_json::Value = serde_json::from_slice(&locked.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"lockOKMQSet": [{"topic": "T", "brokerName": "broker-a", "queueId": 3}]})
    );
}

fn send_back(max_reconsume_times: Option<i32>) -> ConsumerSendMsgBack {
    ConsumerSendMsgBack {
        offset: u64::from(u32::MAX) + 7,
        group: "G".into(),
        delay_level: 0,
        origin_msg_id: Some("0A00000100002A9F0000000000000000".into()),
        origin_topic: Some("T".into()),
        unit_mode: false,
        max_reconsume_times,
    }
}

/// `ConsumerSendMsgBackRequestHeader` as a Java consumer fills it (reference C.5):
/// every field present, `maxReconsumeTimes` 16; `offset`, `group` and `delayLevel`
/// are required.
#[test]
fn a_java_send_back_header_decodes_and_required_fields_are_checked() {
    let mut cmd = request_to_wire(9, &Request::ConsumerSendMsgBack(send_back(Some(16))), false);
    assert_eq!(cmd.code, 36);
    let fields: BTreeMap<&str, &str> = cmd
        .ext_fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        BTreeMap::from([
            ("offset", "4294967302"),
            ("group", "G"),
            ("delayLevel", "0"),
            ("originMsgId", "0A00000100002A9F0000000000000000"),
            ("originTopic", "T"),
            ("unitMode", "false"),
            ("maxReconsumeTimes", "16"),
        ])
    );
    assert_eq!(
        request_from_wire(&cmd).unwrap(),
        Request::ConsumerSendMsgBack(send_back(Some(16)))
    );
    for required in ["offset", "group", "delayLevel"] {
        let mut missing = cmd.clone();
        missing.ext_fields.remove(required);
        let refused = request_from_wire(&missing).unwrap_err();
        assert_ne!(refused.code, response_code::SUCCESS, "{required}");
    }
    cmd.ext_fields
        .insert("maxReconsumeTimes".into(), "many".into());
    assert!(request_from_wire(&cmd).is_err(), "a bad number is refused");
}

/// An orderly consumer's dead-letter copy (`ConsumeMessageOrderlyService.sendMessageBack`
/// through the client's producer): a send to `%RETRY%{group}` carrying
/// `maxReconsumeTimes` in the header (V2 key `l`), which the broker's
/// `handleRetryAndDLQ` compares the reconsume count with.
#[test]
fn a_send_to_a_retry_topic_carries_its_maximum() {
    let copy = SendMessage {
        producer_group: "CLIENT_INNER_PRODUCER".into(),
        topic: "%RETRY%G".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp_ms: 7,
        born_host: String::new(),
        flag: 0,
        properties: "RETRY_TOPIC\u{1}T\u{2}".into(),
        reconsume_times: 4,
        max_reconsume_times: Some(3),
        body: b"b".to_vec(),
    };
    let mut cmd = request_to_wire(3, &Request::SendMessage(copy.clone()), false);
    assert_eq!(
        (cmd.ext_fields["j"].as_str(), cmd.ext_fields["l"].as_str()),
        ("4", "3")
    );
    assert_eq!(
        request_from_wire(&cmd).unwrap(),
        Request::SendMessage(copy.clone())
    );
    let plain = SendMessage {
        max_reconsume_times: None,
        ..copy
    };
    let wire = request_to_wire(4, &Request::SendMessage(plain.clone()), false);
    assert!(!wire.ext_fields.contains_key("l"), "absent when not set");
    assert_eq!(
        request_from_wire(&wire).unwrap(),
        Request::SendMessage(plain)
    );
    cmd.ext_fields.insert("l".into(), "many".into());
    assert!(request_from_wire(&cmd).is_err(), "a bad number is refused");
}

fn reencode(cmd: &RemotingCommand, serialize_type: SerializeType) -> RemotingCommand {
    let cmd = RemotingCommand {
        serialize_type,
        ..cmd.clone()
    };
    let mut frame = Vec::new();
    encode_frame(&cmd, &mut frame);
    let again = decode_one(&frame);
    assert_eq!(again, cmd, "{serialize_type:?} round trip");
    again
}

#[test]
fn every_request_round_trips_in_json_and_binary() {
    for request in all_requests() {
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let wire = request_to_wire(41, &request, false);
            assert_eq!(wire.code, request.code());
            let again = reencode(&wire, serialize_type);
            assert_eq!(request_from_wire(&again).unwrap(), request);
        }
    }
    let oneway = request_to_wire(5, &Request::GetAllConsumerOffset, true);
    assert!(oneway.is_oneway() && !oneway.is_response());
    let oneway: Vec<i32> = all_requests()
        .iter()
        .filter(|r| rocketmq_sends_oneway(r))
        .map(Request::code)
        .collect();
    assert_eq!(
        oneway,
        [
            rc::UPDATE_CONSUMER_OFFSET,
            rc::NOTIFY_CONSUMER_IDS_CHANGED,
            rc::RESET_CONSUMER_CLIENT_OFFSET
        ]
    );
}

/// The V2 (one-letter) send header keys and their long names.
const SEND_KEYS: [(&str, &str); 12] = [
    ("a", "producerGroup"),
    ("b", "topic"),
    ("c", "defaultTopic"),
    ("d", "defaultTopicQueueNums"),
    ("e", "queueId"),
    ("f", "sysFlag"),
    ("g", "bornTimestamp"),
    ("h", "flag"),
    ("i", "properties"),
    ("j", "reconsumeTimes"),
    ("k", "unitMode"),
    ("m", "batch"),
];

#[test]
fn a_batch_decodes_from_every_header_rocketmq_clients_send() {
    let batch = all_requests()
        .into_iter()
        .find(|r| matches!(r, Request::SendBatchMessage(_)))
        .expect("a batch among the requests");
    let wire = request_to_wire(41, &batch, false);
    // As Java sends it: SEND_BATCH_MESSAGE, V2 keys, `m`=true.
    assert_eq!(wire.code, rc::SEND_BATCH_MESSAGE);
    assert_eq!(wire.ext_fields["m"], "true");
    let with = |code: i32, long: bool, batch_value: &str| {
        let mut cmd = wire.clone();
        cmd.code = code;
        if long {
            for (short, long) in SEND_KEYS {
                let v = cmd.ext_fields.remove(short).unwrap();
                cmd.ext_fields.insert(long.to_string(), v);
            }
        }
        let key = if long { "batch" } else { "m" };
        cmd.ext_fields
            .insert(key.to_string(), batch_value.to_string());
        request_from_wire(&cmd)
    };
    // The C++ client: SEND_MESSAGE_V2 with `m`, or SEND_MESSAGE with `batch` ("1" is
    // its boolean); and SEND_BATCH_MESSAGE with the long keys.
    assert_eq!(with(rc::SEND_MESSAGE_V2, false, "true").unwrap(), batch);
    assert_eq!(with(rc::SEND_MESSAGE, true, "1").unwrap(), batch);
    assert_eq!(with(rc::SEND_BATCH_MESSAGE, true, "true").unwrap(), batch);
    // Without `batch`, RocketMQ takes the body as one message, whatever the code.
    let Ok(Request::SendMessage(one)) = with(rc::SEND_BATCH_MESSAGE, false, "false") else {
        panic!("one message");
    };
    assert_eq!(one.body, wire.body);
}

fn all_responses() -> Vec<(i32, Response)> {
    let route = TopicRouteData {
        order_topic_conf: None,
        queue_datas: vec![QueueData {
            broker_name: "broker-a".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_sys_flag: 0,
        }],
        broker_datas: vec![BrokerData {
            cluster: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_addrs: BTreeMap::from([
                (0, "10.0.0.1:10911".into()),
                (1, "10.0.0.2:10911".into()),
            ]),
        }],
        filter_server_table: BTreeMap::new(),
    };
    let mut offsets = ConsumerOffsetTable::default();
    offsets
        .offset_table
        .insert("T@G".into(), BTreeMap::from([(0, 250), (1, 3)]));
    let error = |code: i32, remark: &str| Response::Error {
        code,
        remark: remark.into(),
    };
    vec![
        (
            rc::REGISTER_BROKER,
            Response::RegisterBroker(RegisterBrokerResult {
                master_addr: Some("10.0.0.1:10911".into()),
                ha_server_addr: Some("10.0.0.1:10912".into()),
            }),
        ),
        (
            rc::REGISTER_BROKER,
            Response::RegisterBroker(RegisterBrokerResult::default()),
        ),
        (rc::UNREGISTER_BROKER, Response::UnregisterBroker),
        (rc::GET_ROUTEINFO_BY_TOPIC, Response::Route(route.clone())),
        (
            rc::GET_ROUTEINFO_BY_TOPIC,
            error(response_code::TOPIC_NOT_EXIST, "No topic route info"),
        ),
        (
            rc::GET_BROKER_CLUSTER_INFO,
            Response::ClusterInfo(ClusterInfo {
                broker_addr_table: BTreeMap::from([(
                    "broker-a".to_string(),
                    route.broker_datas[0].clone(),
                )]),
                cluster_addr_table: BTreeMap::from([(
                    "DefaultCluster".to_string(),
                    ["broker-a".to_string()].into(),
                )]),
            }),
        ),
        (
            rc::SEND_MESSAGE_V2,
            Response::Send(SendResponse {
                code: response_code::FLUSH_SLAVE_TIMEOUT,
                msg_id: "0A00000100002A9F0000000000000010".into(),
                queue_id: 2,
                queue_offset: 1234,
            }),
        ),
        (
            rc::SEND_MESSAGE,
            error(response_code::SERVICE_NOT_AVAILABLE, "broker is Booting"),
        ),
        (
            rc::PULL_MESSAGE,
            Response::Pull(PullResponse {
                code: response_code::SUCCESS,
                next_begin_offset: 20,
                min_offset: 0,
                max_offset: 20,
                suggest_which_broker_id: 1,
                records: (0..=255).collect(),
            }),
        ),
        (
            rc::PULL_MESSAGE,
            Response::Pull(PullResponse {
                code: response_code::PULL_OFFSET_MOVED,
                next_begin_offset: 5,
                min_offset: 5,
                max_offset: 9,
                suggest_which_broker_id: 0,
                records: Vec::new(),
            }),
        ),
        (rc::QUERY_CONSUMER_OFFSET, Response::Offset(250)),
        (
            rc::QUERY_CONSUMER_OFFSET,
            error(response_code::QUERY_NOT_FOUND, "Not found"),
        ),
        (
            rc::GET_MAX_OFFSET,
            Response::Offset(u64::from(u32::MAX) + 1),
        ),
        (rc::HEART_BEAT, Response::HeartBeat),
        (rc::UNREGISTER_CLIENT, Response::UnregisterClient),
        (
            rc::GET_CONSUMER_LIST_BY_GROUP,
            Response::ConsumerList(vec!["10.0.0.9@1".into(), "10.0.0.8@1".into()]),
        ),
        (
            rc::GET_CONSUMER_LIST_BY_GROUP,
            error(response_code::SYSTEM_ERROR, "no consumer for this group, G"),
        ),
        (
            rc::GET_ALL_CONSUMER_OFFSET,
            Response::ConsumerOffsets(offsets),
        ),
        (
            rc::GET_ALL_DELAY_OFFSET,
            Response::DelayOffsets(r#"{"offsetTable":{1:12,3:4}}"#.into()),
        ),
        (
            rc::GET_ALL_DELAY_OFFSET,
            error(
                response_code::SYSTEM_ERROR,
                "No delay offset in this broker",
            ),
        ),
        (rc::LOCK_BATCH_MQ, Response::LockBatchMq(queues(&[0, 1]))),
        (rc::LOCK_BATCH_MQ, Response::LockBatchMq(queues(&[]))),
        (rc::UNLOCK_BATCH_MQ, Response::UnlockBatchMq),
        (rc::CONSUMER_SEND_MSG_BACK, Response::ConsumerSendMsgBack),
        (
            rc::CONSUMER_SEND_MSG_BACK,
            error(
                response_code::SYSTEM_ERROR,
                "look message by offset failed, 12345",
            ),
        ),
        (rc::UPDATE_AND_CREATE_TOPIC, Response::TopicUpdated),
        (
            rc::UPDATE_AND_CREATE_TOPIC,
            error(response_code::SYSTEM_ERROR, "The specified topic is blank."),
        ),
        (rc::GET_MIN_OFFSET, Response::Offset(3)),
        (
            rc::VIEW_MESSAGE_BY_ID,
            Response::StoredMessage((0..=255).collect()),
        ),
        (
            rc::GET_TOPIC_STATS_INFO,
            Response::TopicStats(
                queues(&[0, 1])
                    .into_iter()
                    .map(|mq| {
                        let max_offset = mq.queue_id as u64 * 10;
                        let offset = TopicOffset {
                            min_offset: 1,
                            max_offset,
                            last_update_timestamp_ms: 1_700_000_000_123,
                        };
                        (mq, offset)
                    })
                    .collect(),
            ),
        ),
        (
            rc::GET_TOPIC_STATS_INFO,
            error(response_code::TOPIC_NOT_EXIST, "topic[T] not exist"),
        ),
        (
            rc::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            Response::TopicList(vec!["T".into(), "TBW102".into()]),
        ),
        (
            rc::GET_BROKER_RUNTIME_INFO,
            Response::RuntimeInfo(
                [
                    ("brokerVersionDesc", "rocketsim-0.1.0"),
                    ("putTps", "1.00 2.50 0.00"),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ),
        ),
        (
            rc::GET_CONSUME_STATS,
            Response::ConsumeStats(ConsumeStats {
                offset_table: queues(&[3])
                    .into_iter()
                    .map(|mq| {
                        let offset = OffsetWrapper {
                            broker_offset: 9,
                            consumer_offset: 4,
                            last_timestamp_ms: 12,
                        };
                        (mq, offset)
                    })
                    .collect(),
            }),
        ),
        (
            rc::GET_CONSUME_STATS,
            Response::ConsumeStats(ConsumeStats::default()),
        ),
        (
            rc::INVOKE_BROKER_TO_RESET_OFFSET,
            Response::ResetOffset(queues(&[0, 1]).into_iter().map(|mq| (mq, 3)).collect()),
        ),
        (
            rc::INVOKE_BROKER_TO_RESET_OFFSET,
            error(
                response_code::SYSTEM_ERROR,
                "THe consumer group <G> not exist",
            ),
        ),
        (999, error(response_code::REQUEST_CODE_NOT_SUPPORTED, "")),
    ]
}

#[test]
fn every_response_round_trips_in_json_and_binary() {
    for (request_code, response) in all_responses() {
        for serialize_type in [SerializeType::Json, SerializeType::RocketMq] {
            let wire = response_to_wire(request_code, 77, &response, serialize_type);
            assert!(wire.is_response());
            assert_eq!(wire.opaque, 77);
            assert_eq!(wire.language, "JAVA");
            let again = reencode(&wire, serialize_type);
            assert_eq!(
                response_from_wire(request_code, &again).unwrap(),
                response,
                "answer to {request_code}"
            );
        }
    }
}

#[test]
fn send_answers_carry_region_and_trace_and_pulls_carry_records_unchanged() {
    for (request_code, response) in all_responses() {
        let wire = response_to_wire(request_code, 1, &response, SerializeType::Json);
        let is_send = matches!(request_code, rc::SEND_MESSAGE | rc::SEND_MESSAGE_V2);
        assert_eq!(
            wire.ext_fields.get("MSG_REGION").map(String::as_str),
            is_send.then_some("DefaultRegion")
        );
        assert_eq!(
            wire.ext_fields.get("TRACE_ON").map(String::as_str),
            is_send.then_some("true")
        );
        if let Response::Pull(p) = &response {
            assert_eq!(wire.body, p.records);
            assert_eq!(wire.code, p.code);
            assert_eq!(
                wire.ext_fields["suggestWhichBrokerId"],
                p.suggest_which_broker_id.to_string()
            );
        }
        if let Response::Route(_) = &response {
            let body = std::str::from_utf8(&wire.body).unwrap();
            assert!(
                body.contains(r#""brokerAddrs":{"0":"10.0.0.1:10911","1":"#),
                "{body}"
            );
            for key in [
                "orderTopicConf",
                "queueDatas",
                "brokerDatas",
                "filterServerTable",
            ] {
                assert!(body.contains(key), "{key} in {body}");
            }
        }
    }
}
