//! The model's nodes on the real runtime, over loopback TCP and real files: a name
//! server, a SYNC_FLUSH broker, the model's own producer and push consumer. Everything
//! crosses the wire as RocketMQ remoting frames (`real::remoting`).

mod common;

use std::time::Duration;

use common::{assert_all_delivered, start_consumer, start_producer, wait_stored};
use rmq_model::broker::{Broker, BrokerConfig, FlushDiskType};
use rmq_model::namesrv::{NameServer, NamesrvConfig};
use rmq_real::process::Hosted;
use rmq_real::runtime::Ended;

#[test]
fn producer_and_consumer_of_the_model_talk_to_a_hosted_broker_over_remoting_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut namesrv = Hosted::start(dir.path().join("ns"), true, |_, _| {
        Box::new(NameServer::new(NamesrvConfig::default()))
    })
    .unwrap();
    let ns_addr = namesrv.addr.to_string();
    let ns = ns_addr.clone();
    let mut broker = Hosted::start(dir.path().join("broker"), true, move |_, disk| {
        let config = BrokerConfig {
            namesrv_addrs: vec![ns],
            flush_disk_type: FlushDiskType::SyncFlush,
            default_topic_queue_nums: 4,
            ..BrokerConfig::default()
        };
        Box::new(Broker::boot(config, disk))
    })
    .unwrap();
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
