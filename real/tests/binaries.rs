//! mqnamesrv and mqbroker as processes, from cargo's build output, on free loopback
//! ports: the model's own producer and consumer (hosted in the test) send and consume
//! through them; a SYNC_FLUSH broker killed with SIGKILL and restarted loses nothing
//! acknowledged; SIGTERM stops it cleanly; a second broker on a held store is refused.

mod common;

use std::time::Duration;

use common::procs::{broker_conf, free_port, start_broker, start_namesrv, Proc};
use common::{assert_all_delivered, start_consumer, start_producer, wait_stored};

#[test]
fn a_sync_flush_broker_killed_and_restarted_loses_nothing_acknowledged() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let (namesrv, ns_addr) = start_namesrv(home);

    let broker_port = free_port();
    let conf = broker_conf(home, broker_port, &ns_addr);
    let mut broker = start_broker("mqbroker", &conf, broker_port, home);

    // A second broker on the same store is refused, naming the directory.
    let mqbroker = env!("CARGO_BIN_EXE_mqbroker");
    let conf_arg = conf.to_str().unwrap();
    let mut second = Proc::start("mqbroker (second)", mqbroker, &["-c", conf_arg], home);
    let code = second.wait_exit(Duration::from_secs(20));
    assert_ne!(code, Some(0));
    let said = second.output();
    assert!(said.contains("in use by another broker"), "{said}");

    // Let the broker register before the producer asks for the route.
    std::thread::sleep(Duration::from_millis(500));
    const COUNT: usize = 300;
    let (mut producer, sent) = start_producer(home.join("producer"), &ns_addr, COUNT);
    let stored = wait_stored(&sent, COUNT);
    let _ = producer.stop();

    // Every SEND_OK was fsynced before it was answered: a SIGKILL takes none of them.
    broker.signal("-KILL");
    broker.wait_exit(Duration::from_secs(10));
    assert!(
        home.join("store/abort").exists(),
        "a killed broker leaves its abort marker"
    );
    let mut broker = start_broker("mqbroker (restarted)", &conf, broker_port, home);
    let said = broker.output();
    assert!(!said.contains("in use by another broker"), "{said}");

    let (mut consumer, consumed) = start_consumer(home.join("consumer"), &ns_addr, "g_bin");
    assert_all_delivered(&stored, &consumed);
    let _ = consumer.stop();

    // SIGTERM: flush, checkpoint, remove the abort marker, exit 0.
    broker.signal("-TERM");
    assert_eq!(
        broker.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        broker.output()
    );
    assert!(
        !home.join("store/abort").exists(),
        "a clean stop removes the abort marker"
    );
    let restarted = broker.output();
    assert!(
        restarted.contains("mode=Abnormal records=300"),
        "{restarted}"
    );
    namesrv.signal("-TERM");
    let mut namesrv = namesrv;
    assert_eq!(namesrv.wait_exit(Duration::from_secs(30)), Some(0));
}
