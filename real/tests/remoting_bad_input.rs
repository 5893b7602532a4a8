//! What the remoting codec does with bytes that are not a good frame: each class of bad
//! input gets its own typed error (or error response) naming the problem, and a good
//! frame decodes the same however the stream splits it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rmq_model::protocol::{request_code as rc, response_code, Request};
use rmq_real::remoting::{
    decode_frame, encode_frame, request_from_wire, request_to_wire, response_from_wire,
    try_request_to_wire, FrameError, MappingError, RemotingCommand, SerializeType,
    DEFAULT_MAX_FRAME_BYTES,
};

/// `[total][type | header length][header][body]` with the lengths as given.
fn frame(serialize_type: u8, header: &[u8], body: &[u8]) -> Vec<u8> {
    let total = (4 + header.len() + body.len()) as u32;
    let mut out = total.to_be_bytes().to_vec();
    out.extend_from_slice(&((u32::from(serialize_type) << 24) | header.len() as u32).to_be_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

fn decode_err(bytes: &[u8]) -> FrameError {
    match decode_frame(bytes, DEFAULT_MAX_FRAME_BYTES) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn absurd_lengths_are_refused_before_their_bytes_arrive() {
    // 4 GiB announced, 4 bytes present: refused at once, nothing allocated.
    assert_eq!(
        decode_err(&[0xff, 0xff, 0xff, 0xff]),
        FrameError::FrameTooLarge {
            frame_bytes: 4 + u64::from(u32::MAX),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES
        }
    );
    // Exactly the maximum passes the length check (and waits for the bytes)...
    let at_max = ((DEFAULT_MAX_FRAME_BYTES - 4) as u32).to_be_bytes();
    assert_eq!(decode_frame(&at_max, DEFAULT_MAX_FRAME_BYTES), Ok(None));
    // ...one more is refused; the maximum is configurable.
    let over = ((DEFAULT_MAX_FRAME_BYTES - 3) as u32).to_be_bytes();
    assert!(matches!(
        decode_err(&over),
        FrameError::FrameTooLarge { .. }
    ));
    let small = frame(0, br#"{"code":34}"#, &[0; 100]);
    assert!(matches!(
        decode_frame(&small, 64),
        Err(FrameError::FrameTooLarge {
            max_frame_bytes: 64,
            ..
        })
    ));
    assert_eq!(
        decode_err(&[0, 0, 0, 3, 0, 0, 0]),
        FrameError::FrameTooShort { total_len: 3 }
    );
}

#[test]
fn bad_prefix_words_are_refused_before_the_frame_arrives() {
    // Serialize type 2, of a 1000-byte frame of which 8 bytes are here.
    let mut bytes = 1000u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&(2u32 << 24).to_be_bytes());
    assert_eq!(decode_err(&bytes), FrameError::UnknownSerializeType(2));
    // A header longer than the frame.
    let mut bytes = 10u32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&7u32.to_be_bytes());
    assert_eq!(
        decode_err(&bytes),
        FrameError::HeaderPastFrame {
            header_len: 7,
            room: 6
        }
    );
}

#[test]
fn bad_json_headers_name_their_problem() {
    assert!(matches!(
        decode_err(&frame(0, b"{\"code\":", b"")),
        FrameError::InvalidJson(_)
    ));
    assert_eq!(
        decode_err(&frame(0, b"{\"code\":1,\"remark\":\"\xff\"}", b"")),
        FrameError::HeaderNotUtf8 { valid_up_to: 20 }
    );
    assert_eq!(
        decode_err(&frame(0, b"[1]", b"")),
        FrameError::HeaderNotObject
    );
    assert_eq!(
        decode_err(&frame(0, b"{\"opaque\":1}", b"")),
        FrameError::MissingHeaderField("code")
    );
    for header in [
        &br#"{"code":3000000000}"#[..],
        br#"{"code":"ten"}"#,
        br#"{"code":1.5}"#,
        br#"{"code":1,"opaque":-3000000000}"#,
        br#"{"code":1,"remark":5}"#,
        br#"{"code":1,"extFields":[]}"#,
        br#"{"code":1,"language":300}"#,
    ] {
        assert!(
            matches!(
                decode_err(&frame(0, header, b"")),
                FrameError::InvalidHeaderField { .. }
            ),
            "{}",
            String::from_utf8_lossy(header)
        );
    }
    // An empty header is not JSON either.
    assert!(matches!(
        decode_err(&frame(0, b"", b"body")),
        FrameError::InvalidJson(_)
    ));
}

#[test]
fn json_headers_are_read_liberally() {
    let header = br#" {"code":"30","extFields":{"topic":"T","queueId":3,"unitMode":true,
        "gone":null,"nested":{"a":[1]}},"flag":"0","language":9,"opaque":-1,
        "remark":null,"serializeTypeCurrentRPC":"JSON","version":409,"whatever":{}}
    "#;
    let (cmd, _) = decode_frame(&frame(0, header, b""), DEFAULT_MAX_FRAME_BYTES)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.code, 30);
    assert_eq!(cmd.language, "GO");
    assert_eq!(cmd.opaque, u32::MAX, "Java's -1");
    assert_eq!(cmd.remark, None);
    assert_eq!(cmd.ext_fields["queueId"], "3");
    assert_eq!(cmd.ext_fields["unitMode"], "true");
    assert_eq!(cmd.ext_fields["nested"], r#"{"a":[1]}"#);
    assert!(!cmd.ext_fields.contains_key("gone"));
    // And written back with opaque as a Java int.
    let mut out = Vec::new();
    encode_frame(&cmd, &mut out);
    assert!(String::from_utf8_lossy(&out).contains(r#""opaque":-1"#));
}

/// A binary header: fixed part, then the given remark and ext lengths and bytes.
fn binary(remark_len: i32, rest: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&30i16.to_be_bytes());
    h.push(0);
    h.extend_from_slice(&409i16.to_be_bytes());
    h.extend_from_slice(&1i32.to_be_bytes());
    h.extend_from_slice(&0i32.to_be_bytes());
    h.extend_from_slice(&remark_len.to_be_bytes());
    h.extend_from_slice(rest);
    frame(1, &h, b"")
}

#[test]
fn bad_binary_headers_name_their_problem() {
    assert!(matches!(
        decode_err(&frame(1, &[0, 30], b"")),
        FrameError::BinaryHeaderTruncated {
            what: "language",
            ..
        }
    ));
    assert_eq!(
        decode_err(&binary(-1, &[])),
        FrameError::NegativeLength {
            what: "remark",
            len: -1
        }
    );
    assert!(matches!(
        decode_err(&binary(1_000_000, b"short")),
        FrameError::BinaryHeaderTruncated {
            what: "remark",
            needed: 1_000_000,
            ..
        }
    ));
    let mut rest = b"\xff".to_vec();
    rest.extend_from_slice(&0i32.to_be_bytes());
    assert_eq!(
        decode_err(&binary(1, &rest)),
        FrameError::BinaryNotUtf8 { what: "remark" }
    );
    // An ext entry cut inside its value.
    let mut rest = 9i32.to_be_bytes().to_vec();
    rest.extend_from_slice(&1i16.to_be_bytes());
    rest.extend_from_slice(b"k");
    rest.extend_from_slice(&5i32.to_be_bytes());
    rest.extend_from_slice(b"vv");
    assert!(matches!(
        decode_err(&binary(0, &rest)),
        FrameError::BinaryHeaderTruncated {
            what: "extFields value",
            ..
        }
    ));
    // An ext length past the header.
    let rest = 100i32.to_be_bytes();
    assert!(matches!(
        decode_err(&binary(0, &rest)),
        FrameError::BinaryHeaderTruncated {
            what: "extFields",
            ..
        }
    ));
}

fn request(code: i32, ext: &[(&str, &str)], body: &[u8]) -> RemotingCommand {
    RemotingCommand {
        code,
        language: "JAVA".into(),
        version: 409,
        opaque: 12,
        flag: 0,
        remark: None,
        ext_fields: ext
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_vec(),
        serialize_type: SerializeType::RocketMq,
    }
}

/// The error response `request_from_wire` gives for `cmd`: its code and remark.
fn refusal(cmd: &RemotingCommand) -> (i32, String) {
    let answer = request_from_wire(cmd).expect_err("refused");
    assert!(answer.is_response());
    assert_eq!(answer.opaque, cmd.opaque);
    assert_eq!(
        answer.serialize_type, cmd.serialize_type,
        "answered in its own type"
    );
    (answer.code, answer.remark.unwrap_or_default())
}

#[test]
fn unmappable_requests_get_error_responses_naming_the_problem() {
    let (code, remark) = refusal(&request(1234, &[], b""));
    assert_eq!(code, response_code::REQUEST_CODE_NOT_SUPPORTED);
    assert!(remark.contains("1234"), "{remark}");

    let (code, remark) = refusal(&request(rc::GET_MAX_OFFSET, &[("topic", "T")], b""));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("`queueId`"), "{remark}");

    let (code, remark) = refusal(&request(
        rc::GET_MAX_OFFSET,
        &[("topic", "T"), ("queueId", "three")],
        b"",
    ));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(
        remark.contains("`queueId`") && remark.contains("three"),
        "{remark}"
    );

    let (code, _) = refusal(&request(
        rc::UPDATE_CONSUMER_OFFSET,
        &[
            ("consumerGroup", "G"),
            ("topic", "T"),
            ("queueId", "0"),
            ("commitOffset", "-1"),
        ],
        b"",
    ));
    assert_eq!(code, response_code::SYSTEM_ERROR, "a negative offset");

    let (code, remark) = refusal(&request(rc::SEND_BATCH_MESSAGE, &[], b""));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("`a`"), "{remark}");
    // A batch body that does not add up: the message and field are named.
    let header = [
        ("a", "PG"),
        ("b", "T"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "0"),
        ("f", "0"),
        ("g", "0"),
        ("h", "0"),
        ("m", "true"),
    ];
    let mut body = Vec::new();
    body.extend_from_slice(&27i32.to_be_bytes()); // TOTALSIZE: 22 + 5 + 0
    body.extend_from_slice(&[0; 12]); // MAGICCODE, BODYCRC, FLAG
    body.extend_from_slice(&5i32.to_be_bytes());
    body.extend_from_slice(b"hello");
    body.extend_from_slice(&0i16.to_be_bytes());
    let good = request(rc::SEND_BATCH_MESSAGE, &header, &body);
    assert!(
        request_from_wire(&good).is_ok(),
        "the untouched body decodes"
    );
    let mut torn = body.clone();
    torn.extend_from_slice(&body[..9]);
    let (code, remark) = refusal(&request(rc::SEND_BATCH_MESSAGE, &header, &torn));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("batch: message 1: "), "{remark}");
    let mut lying = body.clone();
    lying[16..20].copy_from_slice(&i32::MAX.to_be_bytes()); // body length
    let (_, remark) = refusal(&request(rc::SEND_MESSAGE_V2, &header, &lying));
    assert!(
        remark.contains("message 0: body of 2147483647 bytes"),
        "{remark}"
    );

    let (code, remark) = refusal(&request(
        rc::PULL_MESSAGE,
        &[("expressionType", "SQL92")],
        b"",
    ));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("SQL92"), "{remark}");

    let (code, remark) = refusal(&request(
        rc::HEART_BEAT,
        &[],
        br#"{"clientID":"c","consumerDataSet":[{"groupName":"G","messageModel":"SIDEWAYS"}]}"#,
    ));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("SIDEWAYS"), "{remark}");
    let (_, remark) = refusal(&request(rc::HEART_BEAT, &[], b"not json"));
    assert!(remark.contains("invalid body"), "{remark}");

    let broker = [
        ("clusterName", "C"),
        ("brokerName", "b"),
        ("brokerAddr", "1.2.3.4:10911"),
        ("brokerId", "0"),
        ("haServerAddr", "1.2.3.4:10912"),
    ];
    let mut bad_crc = broker.to_vec();
    bad_crc.push(("bodyCrc32", "12345"));
    let (code, remark) = refusal(&request(rc::REGISTER_BROKER, &bad_crc, b"{}"));
    assert_eq!(code, response_code::SYSTEM_ERROR);
    assert!(remark.contains("crc32"), "{remark}");
    let mut compressed = broker.to_vec();
    compressed.push(("compressed", "true"));
    let (_, remark) = refusal(&request(rc::REGISTER_BROKER, &compressed, b"x"));
    assert!(remark.contains("compressed"), "{remark}");
    // No body at all: an empty topic table, as Java reads it.
    let Ok(Request::RegisterBroker(r)) =
        request_from_wire(&request(rc::REGISTER_BROKER, &broker, b""))
    else {
        panic!("registers");
    };
    assert!(r.topic_config_table.is_empty());

    // A response is not a request.
    let mut response = request(rc::GET_ALL_CONSUMER_OFFSET, &[], b"");
    response.flag = 1;
    assert_eq!(refusal(&response).0, response_code::SYSTEM_ERROR);
}

#[test]
fn unmappable_responses_are_typed_errors() {
    let mut cmd = request(response_code::SUCCESS, &[], b"");
    cmd.flag = 1;
    assert_eq!(
        response_from_wire(rc::GET_MAX_OFFSET, &cmd),
        Err(MappingError::MissingField {
            code: rc::GET_MAX_OFFSET,
            field: "offset"
        })
    );
    assert!(matches!(
        response_from_wire(rc::GET_ROUTEINFO_BY_TOPIC, &cmd),
        Err(MappingError::InvalidBody { .. })
    ));
    assert!(matches!(
        response_from_wire(rc::UPDATE_CONSUMER_OFFSET, &cmd),
        Err(MappingError::NoModelResponse { .. })
    ));
    cmd.flag = 0;
    assert_eq!(
        response_from_wire(rc::HEART_BEAT, &cmd),
        Err(MappingError::NotAResponse { flag: 0 })
    );
    assert_eq!(
        try_request_to_wire(
            1,
            &Request::HaReport {
                slave_max_offset: 0
            },
            true
        ),
        Err(MappingError::NotRemoting("HA_REPORT"))
    );
}

fn corpus_frames() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/remoting");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).expect("readable"))
        .collect()
}

/// Everything in `stream`, decoded as bytes arrive `chunk` at a time.
fn decode_streamed(stream: &[u8], chunk: usize) -> Vec<RemotingCommand> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some((cmd, used)) = decode_frame(&buf, DEFAULT_MAX_FRAME_BYTES).unwrap() {
            buf.drain(..used);
            out.push(cmd);
        }
    }
    assert!(buf.is_empty(), "nothing left over");
    out
}

#[test]
fn a_frame_split_anywhere_decodes_the_same() {
    let frames = corpus_frames();
    assert!(frames.len() >= 9, "the C++ frames and the seeds");
    let mut stream = Vec::new();
    for bytes in &frames {
        let whole = decode_streamed(bytes, bytes.len());
        for cut in 0..bytes.len() {
            // Every prefix of a good stream only asks for more (or is whole frames).
            let mut rest = &bytes[..cut];
            while let Some((_, used)) = decode_frame(rest, DEFAULT_MAX_FRAME_BYTES).unwrap() {
                rest = &rest[used..];
            }
            let mut two_pieces = Vec::new();
            for piece in [&bytes[..cut], &bytes[cut..]] {
                two_pieces.extend_from_slice(piece);
            }
            assert_eq!(decode_streamed(&two_pieces, cut.max(1)), whole);
        }
        stream.extend_from_slice(bytes);
    }
    // The whole corpus as one connection, arriving in chunks of every small size.
    let all = decode_streamed(&stream, stream.len());
    assert!(all.len() > frames.len(), "a seed holds two frames");
    for chunk in 1..=17 {
        assert_eq!(decode_streamed(&stream, chunk), all, "chunks of {chunk}");
    }
}

#[test]
fn large_codes_fall_back_to_json_and_our_requests_always_encode() {
    let mut cmd = request(200_050, &[("k", "v")], b"");
    cmd.serialize_type = SerializeType::RocketMq;
    let mut out = Vec::new();
    encode_frame(&cmd, &mut out);
    assert_eq!(out[4], 0, "written as JSON");
    let (back, _) = decode_frame(&out, DEFAULT_MAX_FRAME_BYTES)
        .unwrap()
        .unwrap();
    assert_eq!(back.code, 200_050);
    assert_eq!(
        back.ext_fields,
        BTreeMap::from([("k".to_string(), "v".to_string())])
    );
    let wire = request_to_wire(3, &Request::GetBrokerClusterInfo, false);
    assert_eq!(wire.serialize_type, SerializeType::Json);
}
