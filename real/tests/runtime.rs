//! The model's nodes on the real runtime, over loopback TCP and real files: a name
//! server, a SYNC_FLUSH broker, the model's own producer and push consumer. Everything
//! crosses the wire as RocketMQ remoting frames (`real::remoting`).

mod common;

use std::time::Duration;

use common::{assert_all_delivered, start_consumer, start_producer, wait_stored};
use rmq_real::runtime::Ended;

#[test]
fn producer_and_consumer_of_the_model_talk_to_a_hosted_broker_over_remoting_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mut namesrv, mut broker, ns_addr) = common::start_cluster(dir.path());
    // Let the broker register before the clients ask for routes.
    std::thread::sleep(Duration::from_millis(300));

    const COUNT: usize = 200;
    let (mut consumer, consumed) = start_consumer(dir.path().join("consumer"), &ns_addr, "g_real");
    let (mut producer, sent) = start_producer(dir.path().join("producer"), &ns_addr, COUNT);
    let stored = wait_stored(&sent, COUNT);
    assert_eq!(stored.len(), COUNT);
    assert_all_delivered(&stored, &consumed);

    assert_eq!(producer.stop().unwrap(), Ended::Stopped);
    assert_eq!(consumer.stop().unwrap(), Ended::Stopped);
    assert_eq!(broker.stop().unwrap(), Ended::Stopped);
    assert_eq!(namesrv.stop().unwrap(), Ended::Stopped);
    // A clean stop removed the abort marker: the next boot takes the normal path.
    assert!(!dir.path().join("broker/abort").exists());
}

/// Sends `request` two-way on `stream` and reads its answer.
fn call(
    stream: &mut std::net::TcpStream,
    opaque: u32,
    request: &rmq_model::protocol::Request,
) -> rmq_real::remoting::RemotingCommand {
    use std::io::{Read, Write};
    let mut frame = Vec::new();
    rmq_real::remoting::encode_frame(
        &rmq_real::remoting::request_to_wire(opaque, request, false),
        &mut frame,
    );
    stream.write_all(&frame).unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some((cmd, _)) =
            rmq_real::remoting::decode_frame(&buf, rmq_real::remoting::DEFAULT_MAX_FRAME_BYTES)
                .unwrap()
        {
            assert!(cmd.is_response());
            assert_eq!(cmd.opaque, opaque);
            return cmd;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "the broker closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Two things RocketMQ's broker does that its requests do not spell out: it answers an
/// UPDATE_CONSUMER_OFFSET sent two-way (the C++ client does) with SUCCESS, and it takes
/// a message's born host from the connection (the send header has none).
#[test]
fn a_two_way_offset_update_is_answered_and_a_send_takes_its_born_host_from_the_connection() {
    use rmq_model::client::ClientEvent;
    use rmq_model::protocol::{QueueKey, Request, SendMessage};

    let dir = tempfile::tempdir().unwrap();
    let (_namesrv, broker, ns_addr) = common::start_cluster(dir.path());
    let mut stream = std::net::TcpStream::connect(broker.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let sender = stream.local_addr().unwrap();

    let send = Request::SendMessage(SendMessage {
        producer_group: "p_raw".into(),
        topic: common::TOPIC.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp_ms: 1,
        born_host: String::new(),
        flag: 0,
        properties: "TAGS\u{1}TagA\u{2}".into(),
        reconsume_times: 0,
        max_reconsume_times: None,
        body: b"body-raw".to_vec(),
    });
    // The broker answers SERVICE_NOT_AVAILABLE until its boot sync has landed.
    let started = std::time::Instant::now();
    let mut opaque = 100;
    let answer = loop {
        opaque += 1;
        let answer = call(&mut stream, opaque, &send);
        if answer.code != rmq_model::protocol::response_code::SERVICE_NOT_AVAILABLE
            || started.elapsed() > Duration::from_secs(10)
        {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(answer.code, 0, "{answer:?}");

    let key = QueueKey {
        consumer_group: "g_raw".into(),
        topic: common::TOPIC.into(),
        queue_id: 0,
    };
    let update = Request::UpdateConsumerOffset {
        key: key.clone(),
        offset: 1,
    };
    let answer = call(&mut stream, 2, &update);
    assert_eq!(
        answer.code, 0,
        "an UPDATE_CONSUMER_OFFSET sent two-way is answered"
    );
    let answer = call(&mut stream, 3, &Request::QueryConsumerOffset(key));
    let offset = rmq_real::remoting::response_from_wire(
        rmq_model::protocol::request_code::QUERY_CONSUMER_OFFSET,
        &answer,
    )
    .unwrap();
    assert_eq!(offset, rmq_model::protocol::Response::Offset(1));

    let (_consumer, consumed) = common::start_consumer(dir.path().join("c"), &ns_addr, "g_born");
    common::wait_for("the raw message", Duration::from_secs(30), || {
        !common::delivered(&consumed).is_empty()
    });
    let born = consumed
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match e {
            ClientEvent::Delivered { msg, .. } => Some(msg.born_host),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        born.port,
        i32::from(sender.port()),
        "born host {born:?}, sender {sender}"
    );
    assert_eq!(born.ip, sender.ip());
}
