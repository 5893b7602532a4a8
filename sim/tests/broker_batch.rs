//! SEND_BATCH_MESSAGE in the world: every message its own record with consecutive queue
//! offsets on one queue, written contiguously (into the next commit-log file as a whole
//! when the current one cannot hold it), each keeping its own flag, body and
//! properties with the header's appended; one answer with the first queue offset and
//! every offset message id; refusals as RocketMQ's; and the answer held until the last
//! record is durable (SYNC_FLUSH) or on the slave (SYNC_MASTER).

mod broker_world;

use std::rc::Rc;

use broker_world::*;
use rmq_model::broker::{BrokerConfig, BrokerRole, FlushDiskType};
use rmq_model::message::{decode_offset_msg_id, encode_properties, property};
use rmq_model::protocol::{
    response_code, BatchMessage, Request, Response, SendBatchMessage, SendResponse,
};
use rmq_model::store::record::{parse, CrcCheck, Slot, BLANK_MAGIC_CODE};
use rmq_model::store::Disk;

/// A batch of `bodies` to `queue_id` of `topic`: message i has flag i, UNIQ_KEY u-i,
/// KEYS k-i and the user property n=i; the header carries `header_properties`.
fn batch_to(
    topic: &str,
    queue_id: i32,
    bodies: &[&str],
    header_properties: &[(&str, &str)],
) -> Request {
    let messages = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let (uniq, keys, n) = (format!("u-{i}"), format!("k-{i}"), i.to_string());
            BatchMessage {
                flag: i as i32,
                properties: encode_properties([
                    ("UNIQ_KEY", uniq.as_str()),
                    ("KEYS", keys.as_str()),
                    ("n", n.as_str()),
                ]),
                body: body.as_bytes().to_vec(),
            }
        })
        .collect();
    Request::SendBatchMessage(SendBatchMessage {
        header: send_message(
            topic,
            queue_id,
            encode_properties(header_properties.iter().copied()),
            b"",
        ),
        messages,
    })
}

fn batch(queue_id: i32, bodies: &[&str]) -> Request {
    batch_to("TopicTest", queue_id, bodies, &[("WAIT", "true")])
}

fn sent(answers: &Answers, opaque: u32) -> SendResponse {
    match answer(answers, opaque).1 {
        Response::Send(s) => s,
        other => panic!("request {opaque} answered {other:?}"),
    }
}

fn refused(answers: &Answers, opaque: u32) -> (i32, String) {
    match answer(answers, opaque).1 {
        Response::Error { code, remark } => (code, remark),
        other => panic!("request {opaque} answered {other:?}"),
    }
}

/// The commit-log offsets an answer's msgId names, in order.
fn offsets_of(s: &SendResponse) -> Vec<u64> {
    s.msg_id
        .split(',')
        .map(|id| decode_offset_msg_id(id).expect("an offset message id").2 as u64)
        .collect()
}

/// Every record a pull served: (queue offset, physical offset, size, flag, body,
/// properties).
fn served(records: &[u8]) -> Vec<(i64, i64, usize, i32, String, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let Ok(Slot::Record(v)) = parse(&records[at..], CrcCheck::Strict) else {
            panic!("a served record does not parse");
        };
        out.push((
            v.queue_offset,
            v.physical_offset,
            v.total_size,
            v.flag,
            String::from_utf8(v.body.to_vec()).unwrap(),
            v.properties.to_string(),
        ));
        at += v.total_size;
    }
    out
}

fn async_master() -> BrokerConfig {
    config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush)
}

#[test]
fn a_batch_is_consecutive_records_on_one_queue_answered_once() {
    let answers: Answers = Rc::default();
    let script = vec![
        (1_000, MASTER, send(1, "a", "before")),
        (1_100, MASTER, batch(1, &["b0", "b1", "b2"])),
        (1_200, MASTER, send(1, "a", "after")),
        (1_300, MASTER, batch(0, &["only"])),
        (1_500, MASTER, pull(1, 0, "*")),
    ];
    let mut w = world(1, async_master(), None, script, &answers);
    w.run_until(5_000);
    let before = sent(&answers, 0);
    let b = sent(&answers, 1);
    assert_eq!(b.code, response_code::SUCCESS);
    assert_eq!((b.queue_id, b.queue_offset), (1, 1), "the first message's");
    let ids = offsets_of(&b);
    assert_eq!(ids.len(), 3, "one id per message: {}", b.msg_id);
    assert_eq!(sent(&answers, 2).queue_offset, 4, "the next send follows");
    let only = sent(&answers, 3);
    assert_eq!((only.queue_id, only.queue_offset), (0, 0));
    assert!(!only.msg_id.contains(','));

    let Response::Pull(p) = answer(&answers, 4).1 else {
        panic!("a pull")
    };
    let records = served(&p.records);
    let bodies: Vec<&str> = records.iter().map(|r| r.4.as_str()).collect();
    assert_eq!(bodies, ["before", "b0", "b1", "b2", "after"]);
    assert_eq!(offsets_of(&before)[0], records[0].1 as u64);
    for (i, r) in records[1..4].iter().enumerate() {
        let (queue_offset, physical_offset, _, flag, _, properties) = r;
        assert_eq!(*queue_offset, 1 + i as i64);
        assert_eq!(
            *physical_offset as u64, ids[i],
            "msgId {i} names its record"
        );
        assert_eq!(*flag, i as i32, "each keeps its own flag");
        // Its own properties, then the header's.
        assert_eq!(property(properties, "UNIQ_KEY"), Some(&*format!("u-{i}")));
        assert_eq!(property(properties, "KEYS"), Some(&*format!("k-{i}")));
        assert_eq!(property(properties, "n"), Some(&*i.to_string()));
        assert_eq!(property(properties, "WAIT"), Some("true"));
        if i > 0 {
            let (_, previous, previous_size, ..) = records[i];
            assert_eq!(
                *physical_offset,
                previous + previous_size as i64,
                "written contiguously"
            );
        }
    }
}

#[test]
fn a_batch_that_does_not_fit_the_file_goes_whole_into_the_next() {
    const FILE_BYTES: u64 = 4096;
    let mut config = async_master();
    config.store.commit_log_file_size_bytes = FILE_BYTES;
    let answers: Answers = Rc::default();
    // About 3.5 KiB first: the batch of three ~300-byte messages fits the file's rest
    // only in part, so none of it goes there.
    let filler = "f".repeat(3_500);
    let part = "p".repeat(300);
    let script = vec![
        (1_000, MASTER, send(0, "a", &filler)),
        (1_100, MASTER, batch(0, &[&part, &part, &part])),
        (1_500, MASTER, pull(0, 0, "*")),
    ];
    let mut w = world(2, config, None, script, &answers);
    w.run_until(5_000);
    let filler_at = offsets_of(&sent(&answers, 0))[0];
    assert_eq!(filler_at, 0);
    let b = sent(&answers, 1);
    assert_eq!(b.queue_offset, 1);
    let ids = offsets_of(&b);
    assert_eq!(ids[0], FILE_BYTES, "the batch starts the next file");
    assert!(ids
        .iter()
        .all(|&o| (FILE_BYTES..2 * FILE_BYTES).contains(&o)));
    // The first file ends with the blank marker right after the filler record.
    let Response::Pull(p) = answer(&answers, 2).1 else {
        panic!("a pull")
    };
    let records = served(&p.records);
    assert_eq!(records.len(), 4);
    let blank_at = records[0].2 as u64;
    let disk = w.disk(MASTER);
    let blank = disk
        .read("commitlog/00000000000000000000", blank_at, 8)
        .unwrap();
    assert_eq!(
        &blank[..4],
        &((FILE_BYTES - blank_at) as i32).to_be_bytes(),
        "the blank spans the file's rest"
    );
    assert_eq!(&blank[4..], &BLANK_MAGIC_CODE.to_be_bytes());
    for (i, r) in records[1..].iter().enumerate() {
        assert_eq!(r.0, 1 + i as i64);
        assert_eq!(r.1 as u64, ids[i]);
    }
}

#[test]
fn refusals_are_rocketmqs_and_store_nothing() {
    let mut config = async_master();
    config.store.max_message_size_bytes = 1024;
    let answers: Answers = Rc::default();
    let mut transactional = batch(0, &["tx"]);
    if let Request::SendBatchMessage(b) = &mut transactional {
        b.header.sys_flag = 0x4; // PREPARED
    }
    let big = "x".repeat(600);
    let script = vec![
        (1_000, MASTER, batch_to("%RETRY%g", 0, &["r"], &[])),
        (
            1_100,
            MASTER,
            batch_to("TopicTest", 0, &["d"], &[("DELAY", "3")]),
        ),
        (1_200, MASTER, transactional),
        // Each body fits, the batch does not: 4.9 checks the whole body.
        (1_300, MASTER, batch(0, &[&big, &big])),
        (1_400, MASTER, batch(0, &[])),
        (1_500, MASTER, batch(0, &["fine"])),
    ];
    let mut w = world(3, config, None, script, &answers);
    w.run_until(5_000);
    let (code, remark) = refused(&answers, 0);
    assert_eq!(code, response_code::MESSAGE_ILLEGAL);
    assert_eq!(
        remark,
        "batch request does not support retry group %RETRY%g"
    );
    for opaque in [1, 2, 3] {
        let (code, remark) = refused(&answers, opaque);
        assert_eq!(code, response_code::MESSAGE_ILLEGAL, "{opaque}");
        assert!(
            remark.starts_with("the message is illegal") && remark.contains("1024B"),
            "{opaque}: {remark}"
        );
    }
    let (code, remark) = refused(&answers, 4);
    assert_eq!(code, response_code::MESSAGE_ILLEGAL);
    assert!(remark.contains("no message"), "{remark}");
    let fine = sent(&answers, 5);
    assert_eq!(
        (fine.queue_offset, offsets_of(&fine)),
        (0, vec![0]),
        "nothing refused was stored"
    );
}

#[test]
fn sync_flush_answers_once_the_whole_batch_is_durable() {
    let durable = |flush| {
        let request = batch(1, &["first-durable", "last-durable"]);
        durable_at_answer(flush, request, b"last-durable")
    };
    assert!(
        durable(FlushDiskType::SyncFlush),
        "SEND_OK before the fsync"
    );
    assert!(!durable(FlushDiskType::AsyncFlush));
}

#[test]
fn sync_master_answers_once_the_slave_has_the_whole_batch() {
    let served = sync_master_case(batch(0, &["r0", "r1", "r2"]), batch(0, &["alone"]));
    assert_eq!(served, ["r0", "r1", "r2"]);
}
