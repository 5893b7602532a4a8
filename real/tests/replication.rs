//! Master/slave replication between processes: a SYNC_MASTER and its SLAVE, each an
//! `mqbroker` started from its own config file as in RocketMQ's 2m-2s examples,
//! replicating over the master's HA port.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::procs::{free_port, start_broker, start_namesrv, Proc};
use common::{assert_all_delivered, start_consumer, start_producer, wait_for, wait_stored};

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
