//! Master/slave replication between processes: a SYNC_MASTER and its SLAVE, each an
//! `mqbroker` started from its own config file as in RocketMQ's 2m-2s examples,
//! replicating over the master's HA port.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::procs::{free_port, start_broker, start_namesrv, Proc};
use common::{assert_all_delivered, start_consumer, start_producer, wait_for, wait_stored, Events};
use rmq_model::client::{ClientEvent, SendOutcome};
use rmq_model::protocol::response_code;

/// One broker of group `broker-a`, RocketMQ's keys; the slave is not told its master's
/// HA address (`haMasterAddress`), so it takes the one the master registered.
struct Member {
    conf: PathBuf,
    port: u16,
    store: PathBuf,
}

fn member(home: &Path, name: &str, id: u64, role: &str, namesrv: &str) -> Member {
    let port = free_port();
    let store = home.join(format!("store-{name}"));
    let conf = home.join(format!("broker-a-{name}.properties"));
    std::fs::write(
        &conf,
        format!(
            "brokerClusterName=DefaultCluster\n\
             brokerName=broker-a\n\
             brokerId={id}\n\
             brokerRole={role}\n\
             flushDiskType=ASYNC_FLUSH\n\
             listenPort={port}\n\
             haListenPort={}\n\
             namesrvAddr={namesrv}\n\
             storePathRootDir={}\n\
             defaultTopicQueueNums=4\n\
             # Small files, so replication crosses file ends.\n\
             mappedFileSizeCommitLog=65536\n",
            free_port(),
            store.display()
        ),
    )
    .unwrap();
    Member { conf, port, store }
}

/// Every commit-log file of a store: name → bytes.
fn commit_log(store: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(store.join("commitlog")).unwrap() {
        let entry = entry.unwrap();
        files.insert(
            entry.file_name().to_string_lossy().into_owned(),
            std::fs::read(entry.path()).unwrap(),
        );
    }
    files
}

fn wait_output(proc: &Proc, what: &str) {
    wait_for(what, Duration::from_secs(30), || {
        proc.output().contains(what)
    });
}

#[test]
fn a_sync_master_replicates_to_its_slave_over_the_ha_port_and_the_slave_serves_when_the_master_dies(
) {
    let home = tempfile::tempdir().unwrap();
    let (_namesrv, ns_addr) = start_namesrv(home.path());
    let master = member(home.path(), "m", 0, "SYNC_MASTER", &ns_addr);
    let slave = member(home.path(), "s", 1, "SLAVE", &ns_addr);
    let mut master_proc = start_broker("mqbroker (master)", &master.conf, master.port, home.path());
    let mut slave_proc = start_broker("mqbroker (slave)", &slave.conf, slave.port, home.path());
    // The slave learns the HA address from the name server and reports at once.
    wait_output(&master_proc, "a slave connected for replication");
    assert!(
        slave_proc
            .output()
            .contains("replicating from the master the name server gave"),
        "{}",
        slave_proc.output()
    );

    // A SYNC_MASTER answers SUCCESS only once its slave holds the message: every send
    // succeeding is every message on both.
    const COUNT: usize = 600;
    let (producer, sent) = start_producer(home.path().join("producer"), &ns_addr, COUNT);
    let stored = wait_stored(&sent, COUNT);
    drop(producer);
    assert!(
        stored.iter().all(|(broker, _, _)| broker == "broker-a"),
        "{stored:?}"
    );

    // The slave's commit log is the master's, byte for byte, across several files.
    wait_for(
        "the slave's commit log equal to the master's",
        Duration::from_secs(30),
        || commit_log(&master.store) == commit_log(&slave.store),
    );
    let files = commit_log(&master.store);
    assert!(
        files.len() >= 2,
        "one commit-log file only: {:?}",
        files.keys()
    );

    // The master dies; consumers read everything from the slave.
    master_proc.signal("-KILL");
    master_proc.wait_exit(Duration::from_secs(10));
    let (_consumer, consumed) = start_consumer(home.path().join("consumer"), &ns_addr, "g_slave");
    assert_all_delivered(&stored, &consumed);

    slave_proc.signal("-TERM");
    assert_eq!(
        slave_proc.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        slave_proc.output()
    );
}

/// Sends `count` messages with a fresh producer; every send's code (each must be stored)
/// and the positions stored.
fn send_batch(
    home: &Path,
    ns_addr: &str,
    name: &str,
    count: usize,
) -> (Vec<i32>, Vec<(String, i32, u64)>) {
    let (producer, sent) = start_producer(home.join(name), ns_addr, count);
    wait_for("every send's result", Duration::from_secs(60), || {
        results(&sent).len() == count
    });
    drop(producer);
    results(&sent)
        .into_iter()
        .map(|outcome| match outcome {
            SendOutcome::Stored {
                code,
                broker_name,
                queue_id,
                queue_offset,
                ..
            } => (code, (broker_name, queue_id, queue_offset)),
            failed => panic!("{name}: a send was not stored: {failed:?}"),
        })
        .unzip()
}

fn results(sent: &Events) -> Vec<SendOutcome> {
    sent.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::SendResult { outcome, .. } => Some(outcome.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_slave_killed_and_restarted_catches_up_and_meanwhile_its_sync_master_says_slave_not_available()
{
    let home = tempfile::tempdir().unwrap();
    let (_namesrv, ns_addr) = start_namesrv(home.path());
    let master = member(home.path(), "m", 0, "SYNC_MASTER", &ns_addr);
    let slave = member(home.path(), "s", 1, "SLAVE", &ns_addr);
    let master_proc = start_broker("mqbroker (master)", &master.conf, master.port, home.path());
    let mut slave_proc = start_broker("mqbroker (slave)", &slave.conf, slave.port, home.path());
    wait_for("the slave connected", Duration::from_secs(30), || {
        master_proc.output().matches("a slave connected").count() == 1
    });
    let (codes, mut stored) = send_batch(home.path(), &ns_addr, "before", 200);
    assert!(
        codes.iter().all(|&c| c == response_code::SUCCESS),
        "{codes:?}"
    );

    // Without its slave a SYNC_MASTER still stores, and says so.
    slave_proc.signal("-KILL");
    slave_proc.wait_exit(Duration::from_secs(10));
    let (codes, during) = send_batch(home.path(), &ns_addr, "during", 200);
    assert!(
        codes
            .iter()
            .all(|&c| c == response_code::SLAVE_NOT_AVAILABLE),
        "{codes:?}"
    );
    stored.extend(during);

    // Restarted, the slave reports what it kept and the master streams the rest.
    let slave_proc = start_broker(
        "mqbroker (slave, again)",
        &slave.conf,
        slave.port,
        home.path(),
    );
    wait_for("the slave connected again", Duration::from_secs(30), || {
        master_proc.output().matches("a slave connected").count() == 2
    });
    wait_for(
        "the restarted slave's commit log equal to the master's",
        Duration::from_secs(30),
        || commit_log(&master.store) == commit_log(&slave.store),
    );
    let (codes, after) = send_batch(home.path(), &ns_addr, "after", 200);
    assert!(
        codes.iter().all(|&c| c == response_code::SUCCESS),
        "{codes:?}"
    );
    stored.extend(after);
    wait_for(
        "the slave's commit log equal to the master's at the end",
        Duration::from_secs(30),
        || commit_log(&master.store) == commit_log(&slave.store),
    );
    // Read from the slave alone (the master killed: Proc's drop is a SIGKILL): all 600,
    // in queue order.
    drop(master_proc);
    let (_consumer, consumed) = start_consumer(home.path().join("consumer"), &ns_addr, "g_slave");
    assert_all_delivered(&stored, &consumed);
    drop(slave_proc);
}
