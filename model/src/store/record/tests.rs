//! The record format against RocketMQ's offsets, and every way bytes can fail to be a
//! record.

use super::*;
use crate::message::encode_properties;

fn host(port: i32) -> Host {
    Host {
        ip: "127.0.0.1".parse().unwrap(),
        port,
    }
}

fn sample<'a>(body: &'a [u8], props: &'a str) -> NewRecord<'a> {
    NewRecord {
        topic: "TopicTest",
        queue_id: 3,
        flag: 7,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: host(5555),
        store_host: host(10911),
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body,
        properties: props,
    }
}

#[test]
fn layout_matches_rocketmq_offsets() {
    let props = encode_properties([("TAGS", "TagA")]);
    let rec = sample(b"hello", &props);
    let mut out = Vec::new();
    rec.encode(42, 4096, 1_700_000_000_123, &mut out);
    // Fixed overhead 91 B for IPv4 + body + topic + properties (with CRC tail).
    assert_eq!(out.len(), 91 + 5 + 9 + props.len() + CRC32_RESERVED_LEN);
    assert_eq!(&out[4..8], &MESSAGE_MAGIC_CODE_V1.to_be_bytes());
    assert_eq!(i64::from_be_bytes(out[20..28].try_into().unwrap()), 42);
    assert_eq!(i64::from_be_bytes(out[28..36].try_into().unwrap()), 4096);
    assert_eq!(
        i64::from_be_bytes(out[56..64].try_into().unwrap()),
        1_700_000_000_123
    );
    assert_eq!(&out[64..68], &[127, 0, 0, 1]);
    assert_eq!(i32::from_be_bytes(out[84..88].try_into().unwrap()), 5);
    assert_eq!(&out[88..93], b"hello");
    let Slot::Record(view) = parse(&out, CrcCheck::Strict).unwrap() else {
        panic!("not a record")
    };
    assert_eq!(view.topic, "TopicTest");
    assert_eq!(view.body, b"hello");
    assert_eq!(view.queue_offset, 42);
    assert_eq!(view.user_properties(), props);
    assert_eq!(view.tags_code(), 2598919);
    assert_eq!(view.body_crc, body_crc(b"hello"));
}

#[test]
fn crc_tail_digits_are_least_significant_first() {
    let mut out = Vec::new();
    put_crc_tail(1234567, &mut out);
    assert_eq!(&out[9..19], b"7654321000");
    assert_eq!(parse_crc_tail(&out), Some(1234567));
}

#[test]
fn every_single_bit_flip_is_detected() {
    let rec = sample(b"body bytes", "KEYS\u{1}k\u{2}");
    let mut out = Vec::new();
    rec.encode(0, 0, 1, &mut out);
    for i in 0..out.len() * 8 {
        let mut damaged = out.clone();
        damaged[i / 8] ^= 1 << (i % 8);
        assert!(
            parse(&damaged, CrcCheck::Strict).is_err(),
            "flip of bit {i} went unnoticed"
        );
    }
}

#[test]
fn foreign_records_without_tail_use_body_crc() {
    let rec = sample(b"abc", "");
    let mut out = Vec::new();
    rec.encode(0, 0, 1, &mut out);
    // Rewrite as a RocketMQ record without the CRC property.
    let total = out.len() - CRC32_RESERVED_LEN;
    out.truncate(total);
    out[0..4].copy_from_slice(&(total as i32).to_be_bytes());
    out[total - 2..total].copy_from_slice(&0i16.to_be_bytes());
    assert_eq!(
        parse(&out, CrcCheck::Strict),
        Err(RecordError::MissingCrcTail)
    );
    assert!(parse(&out, CrcCheck::TailOrBody).is_ok());
    let mut bare = Vec::new();
    rec.encode_without_crc_tail(0, 0, 1, &mut bare);
    assert_eq!(bare, out, "the encoder's option writes the same record");
    out[88] ^= 1; // the body
    assert!(matches!(
        parse(&out, CrcCheck::TailOrBody),
        Err(RecordError::CrcMismatch { .. })
    ));
}

#[test]
fn a_damaged_or_torn_tail_never_passes_for_no_tail() {
    let props = encode_properties([("TAGS", "TagA"), ("UNIQ_KEY", "ABC")]);
    let rec = sample(b"body bytes", &props);
    let mut out = Vec::new();
    rec.encode(0, 0, 1, &mut out);
    let tail_at = out.len() - CRC32_RESERVED_LEN;
    for i in tail_at * 8..out.len() * 8 {
        let mut damaged = out.clone();
        damaged[i / 8] ^= 1 << (i % 8);
        assert!(
            parse(&damaged, CrcCheck::TailOrBody).is_err(),
            "flip of bit {i} passed for a record without a tail"
        );
    }
    // A torn write: the tail's sector never reached the disk, from any byte on.
    for from in tail_at - 8..out.len() {
        let mut torn = out.clone();
        torn[from..].fill(0);
        assert!(
            parse(&torn, CrcCheck::TailOrBody).is_err(),
            "zeros from {from} passed for a record without a tail"
        );
    }
}

#[test]
fn bad_headers_are_errors() {
    assert_eq!(
        parse(&[0; 4], CrcCheck::Strict),
        Err(RecordError::Truncated(4))
    );
    assert_eq!(
        parse(&[0; 200], CrcCheck::Strict),
        Err(RecordError::UnknownMagic(0))
    );
    let mut neg = vec![0u8; 200];
    neg[..4].copy_from_slice(&(-5i32).to_be_bytes());
    neg[4..8].copy_from_slice(&MESSAGE_MAGIC_CODE_V1.to_be_bytes());
    assert!(matches!(
        parse(&neg, CrcCheck::Strict),
        Err(RecordError::BadTotalSize { .. })
    ));
    assert_eq!(parse(&blank_marker(16)[..], CrcCheck::Strict).ok(), None);
    let mut blank = blank_marker(16).to_vec();
    blank.resize(16, 0xEE);
    assert_eq!(parse(&blank, CrcCheck::Strict), Ok(Slot::Blank));
}

#[test]
fn non_utf8_topic_is_refused_even_with_a_matching_crc() {
    let rec = sample(b"b", "");
    let mut out = Vec::new();
    rec.encode(0, 0, 1, &mut out);
    let topic_at = 84 + 4 + 1 + 1;
    out[topic_at] = 0xFF;
    let tail_at = out.len() - CRC32_RESERVED_LEN;
    let crc = masked_crc32(&out[..tail_at]);
    out.truncate(tail_at);
    put_crc_tail(crc, &mut out);
    assert_eq!(
        parse(&out, CrcCheck::Strict),
        Err(RecordError::TopicNotUtf8)
    );
    out[topic_at] = b'/';
    let crc = masked_crc32(&out[..tail_at]);
    out.truncate(tail_at);
    put_crc_tail(crc, &mut out);
    assert!(matches!(
        parse(&out, CrcCheck::Strict),
        Err(RecordError::BadTopic(_))
    ));
}

#[test]
fn validation_rejects_illegal_messages() {
    let mut rec = sample(b"", "");
    rec.topic = "../etc";
    assert!(matches!(rec.validate(100), Err(EncodeError::BadTopic(_))));
    let long = "x".repeat(40_000);
    let props = format!("K\u{1}{long}");
    let rec = sample(b"", &props);
    assert!(matches!(
        rec.validate(100),
        Err(EncodeError::PropertiesTooLong(_))
    ));
    let rec = sample(&[0u8; 101], "");
    assert!(matches!(
        rec.validate(100),
        Err(EncodeError::BodyTooLarge(101, 100))
    ));
    let rec = sample(b"", "__CRC32#\u{1}0000000000\u{2}");
    assert_eq!(rec.validate(100), Err(EncodeError::ReservedProperty));
}
