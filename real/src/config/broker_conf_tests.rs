use std::path::{Path, PathBuf};

use rmq_model::broker::{BrokerConfig, BrokerRole, FlushDiskType};

use super::*;
use crate::config::{UnknownKey, USAGE};

fn env() -> Env {
    Env {
        namesrv_addr: None,
        home_dir: Some(PathBuf::from("/home/mq")),
    }
}

fn from_with(
    text: &str,
    command_line: &CommandLine,
    env: &Env,
) -> Result<Loaded<BrokerConf>, ConfError> {
    broker_conf_from_text(Some((Path::new("broker.conf"), text)), command_line, env)
}

fn from(text: &str) -> Result<Loaded<BrokerConf>, ConfError> {
    from_with(text, &CommandLine::default(), &env())
}

#[test]
fn defaults_without_a_file() {
    let loaded = broker_conf_from_text(None, &CommandLine::default(), &env()).unwrap();
    let conf = &loaded.conf;
    assert_eq!(conf.broker, BrokerConfig::default());
    assert_eq!(conf.listen_port, 10911);
    assert_eq!(conf.ha_listen_port, 10912);
    assert_eq!(conf.broker_addr(), "127.0.0.1:10911");
    assert_eq!(conf.ha_server_addr(), "127.0.0.1:10912");
    assert_eq!(conf.store_path_root_dir, Path::new("/home/mq/store"));
    assert_eq!(
        conf.store_path_commit_log,
        Path::new("/home/mq/store/commitlog")
    );
    assert!(conf.broker.namesrv_addrs.is_empty());
    assert!(loaded.warnings().is_empty(), "{:?}", loaded.warnings());
    // `-p` of the defaults reads back as the defaults (unset keys are left out).
    let again = from(&conf.to_properties()).unwrap();
    assert_eq!(&again.conf, conf);
    assert!(!conf.to_properties().contains("namesrvAddr"));

    let no_home = Env::default();
    let err = broker_conf_from_text(None, &CommandLine::default(), &no_home).unwrap_err();
    assert!(err.to_string().contains("storePathRootDir"), "{err}");
}

/// `conf/broker.conf` as RocketMQ 4.x ships it (license header shortened).
const SHIPPED_BROKER_CONF: &str = "\
# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.
brokerClusterName = DefaultCluster
brokerName = broker-a
brokerId = 0
deleteWhen = 04
fileReservedTime = 48
brokerRole = ASYNC_MASTER
flushDiskType = ASYNC_FLUSH
";

/// `conf/2m-2s-sync/broker-a.properties`.
const SHIPPED_2M_2S_SYNC_MASTER: &str = "\
# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=0
deleteWhen=04
fileReservedTime=48
brokerRole=SYNC_MASTER
flushDiskType=ASYNC_FLUSH
";

/// `conf/2m-2s-sync/broker-a-s.properties`.
const SHIPPED_2M_2S_SYNC_SLAVE: &str = "\
# Licensed to the Apache Software Foundation (ASF) under one or more
# contributor license agreements.
brokerClusterName=DefaultCluster
brokerName=broker-a
brokerId=1
deleteWhen=04
fileReservedTime=48
brokerRole=SLAVE
flushDiskType=ASYNC_FLUSH
";

#[test]
fn rocketmq_shipped_files() {
    let conf = from(SHIPPED_BROKER_CONF).unwrap();
    assert_eq!(conf.conf.broker.role, BrokerRole::AsyncMaster);
    assert_eq!(conf.conf.file_reserved_time_hours, 48);
    assert_eq!(conf.conf.delete_when, "04");
    assert!(conf.unknown_keys.is_empty());
    // deleteWhen and fileReservedTime are accepted and noted.
    assert_eq!(conf.notes.len(), 2, "{:?}", conf.notes);
    assert!(conf.notes[0].starts_with("broker.conf:6: deleteWhen: accepted"));

    let master = from(SHIPPED_2M_2S_SYNC_MASTER).unwrap().conf;
    assert_eq!(master.broker.cluster_name, "DefaultCluster");
    assert_eq!(master.broker.broker_name, "broker-a");
    assert_eq!(master.broker.broker_id, 0);
    assert_eq!(master.broker.role, BrokerRole::SyncMaster);
    assert_eq!(master.broker.flush_disk_type, FlushDiskType::AsyncFlush);

    let slave = from(SHIPPED_2M_2S_SYNC_SLAVE).unwrap().conf;
    assert_eq!(slave.broker.broker_id, 1);
    assert!(slave.broker.is_slave());
    assert_eq!(slave.broker.broker_name, "broker-a");
}

/// Every key, each away from its default.
const EVERY_KEY: &str = "\
brokerClusterName=ClusterX
brokerName=broker-b
brokerId=2
brokerRole=SLAVE
flushDiskType=SYNC_FLUSH
namesrvAddr=10.0.0.1:9876;10.0.0.2:9876
haMasterAddress=10.0.0.3:10912
listenPort=20911
haListenPort=20999
brokerIP1=10.0.0.4
brokerIP2=10.0.0.5
bindAddress=10.0.0.6
storePathRootDir=/data/store
storePathCommitLog=/data/store/commitlog
autoCreateTopicEnable=false
defaultTopicQueueNums=4
mappedFileSizeCommitLog=1048576
mappedFileSizeConsumeQueue=6000
maxMessageSize=65536
syncFlushTimeout=2000
flushIntervalCommitLog=200
flushCommitLogLeastPages=0
flushCommitLogThoroughInterval=5000
flushIntervalConsumeQueue=700
slaveTimeout=1500
haSlaveFallbehindMax=1000000
haSendHeartbeatInterval=1000
haHousekeepingInterval=9000
haTransferBatchSize=8192
registerNameServerPeriod=20000
flushConsumerOffsetInterval=2500
flushDelayOffsetInterval=4000
messageDelayLevel=1s 2s 3m 1h
maxTransferBytesOnMessageInMemory=131072
maxTransferCountOnMessageInMemory=16
serveOnlyDurable=false
deleteWhen=04;16
fileReservedTime=24
";

#[test]
fn every_key() {
    let loaded = from(EVERY_KEY).unwrap();
    let c = &loaded.conf;
    let b = &c.broker;
    assert_eq!(b.cluster_name, "ClusterX");
    assert_eq!(b.broker_name, "broker-b");
    assert_eq!(b.broker_id, 2);
    assert_eq!(b.role, BrokerRole::Slave);
    assert_eq!(b.flush_disk_type, FlushDiskType::SyncFlush);
    assert_eq!(b.namesrv_addrs, vec!["10.0.0.1:9876", "10.0.0.2:9876"]);
    assert_eq!(b.ha_master_addr.as_deref(), Some("10.0.0.3:10912"));
    assert_eq!(c.listen_port, 20911);
    assert_eq!(c.ha_listen_port, 20999);
    assert_eq!(c.broker_ip1, "10.0.0.4");
    assert_eq!(c.broker_ip2, "10.0.0.5");
    assert_eq!(c.broker_addr(), "10.0.0.4:20911");
    assert_eq!(c.ha_server_addr(), "10.0.0.5:20999");
    // Bound apart from the registered addresses (a proxy in front of the broker).
    assert_eq!(c.bind_address.as_deref(), Some("10.0.0.6"));
    assert_eq!(c.listen_addr(), "10.0.0.6:20911");
    assert_eq!(c.ha_listen_addr(), "10.0.0.6:20999");
    assert_eq!(c.store_path_root_dir, Path::new("/data/store"));
    assert_eq!(c.store_path_commit_log, Path::new("/data/store/commitlog"));
    assert!(!b.auto_create_topic_enable);
    assert_eq!(b.default_topic_queue_nums, 4);
    assert_eq!(b.store.commit_log_file_size_bytes, 1_048_576);
    assert_eq!(b.store.consume_queue_entries_per_file, 300);
    assert_eq!(b.store.max_message_size_bytes, 65_536);
    assert_eq!(b.sync_flush_timeout_ms, 2_000);
    assert_eq!(b.flush_interval_commit_log_ms, 200);
    assert_eq!(b.flush_commit_log_least_pages, 0);
    assert_eq!(b.flush_commit_log_thorough_interval_ms, 5_000);
    assert_eq!(b.flush_interval_consume_queue_ms, 700);
    assert_eq!(b.slave_timeout_ms, 1_500);
    assert_eq!(b.ha_slave_fallbehind_max_bytes, 1_000_000);
    assert_eq!(b.ha_heartbeat_interval_ms, 1_000);
    assert_eq!(b.ha_housekeeping_interval_ms, 9_000);
    assert_eq!(b.ha_transfer_batch_bytes, 8_192);
    assert_eq!(b.register_name_server_period_ms, 20_000);
    assert_eq!(b.flush_consumer_offset_interval_ms, 2_500);
    assert_eq!(b.flush_delay_offset_interval_ms, 4_000);
    assert_eq!(b.store.message_delay_level.max_level(), 4);
    assert_eq!(b.store.message_delay_level.delay_ms(3), Some(180_000));
    assert_eq!(b.store.message_delay_level.to_string(), "1s 2s 3m 1h");
    assert_eq!(b.max_transfer_bytes, 131_072);
    assert_eq!(b.max_transfer_count, 16);
    assert!(!b.serve_only_durable);
    assert_eq!(c.delete_when, "04;16");
    assert_eq!(c.file_reserved_time_hours, 24);
    assert!(loaded.unknown_keys.is_empty());

    // Every key the table reads appears in the file above.
    for key in known_keys() {
        assert!(
            EVERY_KEY.lines().any(|l| l.split('=').next() == Some(key)),
            "{key} is not covered"
        );
    }
    // `-p` prints every key, and reading it back gives the same configuration.
    let printed = c.to_properties();
    assert_eq!(printed.lines().count(), known_keys().count());
    let again = from(&printed).unwrap();
    assert_eq!(&again.conf, c);
    assert!(c.important_properties().contains("brokerRole=SLAVE\n"));
}

#[test]
fn both_spellings_of_the_file_sizes() {
    for key in ["mappedFileSizeCommitLog", "mapedFileSizeCommitLog"] {
        let conf = from(&format!("{key}=2048")).unwrap();
        assert_eq!(conf.conf.broker.store.commit_log_file_size_bytes, 2048);
        assert!(conf.unknown_keys.is_empty());
    }
    for key in ["mappedFileSizeConsumeQueue", "mapedFileSizeConsumeQueue"] {
        let conf = from(&format!("{key}=200")).unwrap();
        assert_eq!(conf.conf.broker.store.consume_queue_entries_per_file, 10);
        assert!(conf.notes.is_empty());
    }
    // Not a multiple of 20: rounded up, as RocketMQ does, and noted.
    let conf = from("mappedFileSizeConsumeQueue=201").unwrap();
    assert_eq!(conf.conf.broker.store.consume_queue_entries_per_file, 11);
    assert!(
        conf.notes[0].contains("rounded up to 220 bytes"),
        "{:?}",
        conf.notes
    );
}

#[test]
fn bad_values_name_the_key_the_value_and_what_is_accepted() {
    let cases = [
        ("brokerRole=FOO", "ASYNC_MASTER, SYNC_MASTER or SLAVE"),
        (
            "brokerRole=async_master",
            "ASYNC_MASTER, SYNC_MASTER or SLAVE",
        ),
        ("flushDiskType=SYNC", "ASYNC_FLUSH or SYNC_FLUSH"),
        ("listenPort=abc", "a port from 1 to 65535"),
        ("listenPort=65536", "a port from 1 to 65535"),
        ("haListenPort=-1", "a port from 1 to 65535"),
        ("brokerId=-1", "0 = master"),
        ("brokerName=", "a non-empty name"),
        ("brokerClusterName=a b", "a non-empty name"),
        (
            "namesrvAddr=127.0.0.1",
            "host:port addresses separated by ';'",
        ),
        ("namesrvAddr=", "host:port addresses separated by ';'"),
        ("haMasterAddress=10.0.0.1", "host:port"),
        ("brokerIP1=10.0.0.1:1", "an IP address or a host name"),
        ("brokerIP1=0.0.0.0", "an address clients can reach"),
        ("brokerIP2=::", "an address clients can reach"),
        ("bindAddress=a b", "an IP address or a host name"),
        ("autoCreateTopicEnable=yes", "true or false"),
        ("defaultTopicQueueNums=0", "an integer from 1 to 1024"),
        ("mappedFileSizeCommitLog=0", "an integer from 512"),
        ("mapedFileSizeCommitLog=1g", "an integer from 512"),
        ("mappedFileSizeConsumeQueue=0", "an integer from 20"),
        ("maxMessageSize=0", "an integer from 1"),
        ("flushIntervalCommitLog=0", "an integer >= 1 (milliseconds)"),
        ("flushCommitLogLeastPages=x", "4 KiB pages"),
        ("syncFlushTimeout=5s", "milliseconds"),
        ("haTransferBatchSize=0", "bytes"),
        ("deleteWhen=25", "hours from 00 to 23"),
        ("fileReservedTime=-2", "hours"),
        ("storePathRootDir=", "a directory path"),
        (
            "messageDelayLevel=1s 5",
            "not a number followed by s, m, h or d",
        ),
        ("messageDelayLevel=", "messageDelayLevel is empty"),
        ("flushDelayOffsetInterval=0", "milliseconds"),
    ];
    for (line, expected) in cases {
        let (key, value) = line.split_once('=').unwrap();
        let text = format!("# first line\n{line}\n");
        let err = from(&text).unwrap_err();
        let ConfError::InvalidValue {
            origin,
            key: err_key,
            value: err_value,
            ..
        } = &err
        else {
            panic!("{line}: {err}");
        };
        assert_eq!(err_key, key);
        assert_eq!(err_value, value);
        assert_eq!(
            origin,
            &Origin::File {
                path: PathBuf::from("broker.conf"),
                line: 2
            }
        );
        let message = err.to_string();
        assert!(message.starts_with("broker.conf:2: "), "{message}");
        assert!(message.contains(&format!("{key}={value:?}")), "{message}");
        assert!(message.contains(expected), "{line}: {message}");
    }
    // The older spelling is named as written.
    let err = from("mapedFileSizeCommitLog=0").unwrap_err();
    assert!(
        err.to_string().contains("mapedFileSizeCommitLog=\"0\""),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_reported_once_and_ignored() {
    let loaded =
        from("brokerName=b\nfooBar=1\nbrokerNmae=x\nfooBar=2\nrocketmqHome=/opt\n").unwrap();
    assert_eq!(loaded.conf.broker.broker_name, "b");
    let keys: Vec<&str> = loaded.unknown_keys.iter().map(|u| u.key.as_str()).collect();
    assert_eq!(keys, vec!["fooBar", "brokerNmae"]);
    assert_eq!(
        loaded.unknown_keys[0],
        UnknownKey {
            key: "fooBar".into(),
            origin: Origin::File {
                path: PathBuf::from("broker.conf"),
                line: 2
            }
        }
    );
    let warnings = loaded.warnings();
    assert_eq!(
        warnings[0],
        "unknown config keys ignored: fooBar (broker.conf:2), brokerNmae (broker.conf:3)"
    );
    // The duplicate is noted, and the known no-effect key says why.
    assert!(warnings
        .iter()
        .any(|w| w.contains("fooBar given again (first on line 2)")));
    assert!(warnings.iter().any(
        |w| w == "broker.conf:5: rocketmqHome: no effect: rocketsim needs no install directory"
    ));
}

#[test]
fn name_servers_from_file_command_line_and_environment() {
    let with_env = Env {
        namesrv_addr: Some("10.9.9.9:9876".into()),
        ..env()
    };
    let minus_n = CommandLine {
        namesrv_addr: Some("127.0.0.1:9876;127.0.0.2:9876".into()),
        ..CommandLine::default()
    };
    let none = CommandLine::default();
    let addrs = |text: &str, cmd: &CommandLine, env: &Env| {
        from_with(text, cmd, env).unwrap().conf.broker.namesrv_addrs
    };
    // NAMESRV_ADDR only when nothing else says.
    assert_eq!(addrs("", &none, &with_env), vec!["10.9.9.9:9876"]);
    assert_eq!(
        addrs("namesrvAddr=1.1.1.1:9876", &none, &with_env),
        vec!["1.1.1.1:9876"]
    );
    // -n wins over both.
    assert_eq!(
        addrs("namesrvAddr=1.1.1.1:9876", &minus_n, &with_env),
        vec!["127.0.0.1:9876", "127.0.0.2:9876"]
    );
    // Errors name where the bad value came from.
    let bad_env = Env {
        namesrv_addr: Some("nope".into()),
        ..env()
    };
    let err = from_with("", &none, &bad_env).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("environment variable NAMESRV_ADDR: namesrvAddr=\"nope\""),
        "{err}"
    );
    let bad_n = CommandLine {
        namesrv_addr: Some("nope".into()),
        ..CommandLine::default()
    };
    let err = from_with("", &bad_n, &env()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("command line -n: namesrvAddr=\"nope\""),
        "{err}"
    );
}

#[test]
fn roles_ids_ports_and_paths_must_agree() {
    // A master's id is 0 whatever the file says, as in RocketMQ.
    let loaded = from("brokerRole=SYNC_MASTER\nbrokerId=3").unwrap();
    assert_eq!(loaded.conf.broker.broker_id, 0);
    assert!(
        loaded.notes[0].contains("brokerId 3 set to 0"),
        "{:?}",
        loaded.notes
    );
    // A slave needs an id.
    let err = from("brokerRole=SLAVE\nbrokerId=0").unwrap_err();
    assert!(
        err.to_string()
            .contains("brokerRole=SLAVE needs brokerId > 0"),
        "{err}"
    );
    // The HA port follows the listen port unless given.
    assert_eq!(from("listenPort=30000").unwrap().conf.ha_listen_port, 30001);
    let err = from("listenPort=65535").unwrap_err();
    assert!(err.to_string().contains("haListenPort"), "{err}");
    assert_eq!(
        from("listenPort=65535\nhaListenPort=65534")
            .unwrap()
            .conf
            .ha_listen_port,
        65534
    );
    let err = from("listenPort=30000\nhaListenPort=30000").unwrap_err();
    assert!(err.to_string().contains("must differ"), "{err}");
    // brokerIP2 follows brokerIP1.
    let conf = from("brokerIP1=::1").unwrap().conf;
    assert_eq!(conf.ha_server_addr(), "[::1]:10912");
    // Unset, bindAddress is each port's registered address.
    assert_eq!(conf.listen_addr(), "[::1]:10911");
    assert_eq!(conf.ha_listen_addr(), "[::1]:10912");
    // The commit log stays under the root; the root moves it.
    let conf = from("storePathRootDir=/srv/mq/\nstorePathCommitLog=/srv/mq/./commitlog/").unwrap();
    assert_eq!(
        conf.conf.store_path_commit_log,
        Path::new("/srv/mq/commitlog")
    );
    let err = from("storePathRootDir=/srv/mq\nstorePathCommitLog=/fast/commitlog").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("storePathCommitLog=/fast/commitlog"),
        "{message}"
    );
    assert!(message.contains("/srv/mq/commitlog"), "{message}");
    // registerNameServerPeriod is clamped, as in BrokerController.
    let loaded = from("registerNameServerPeriod=1000").unwrap();
    assert_eq!(loaded.conf.broker.register_name_server_period_ms, 10_000);
    assert!(loaded.notes[0].contains("clamped"), "{:?}", loaded.notes);
}

#[test]
fn load_from_arguments_and_a_real_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker-a.properties");
    std::fs::write(&path, SHIPPED_2M_2S_SYNC_MASTER).unwrap();
    let (command_line, loaded) = load_broker(
        ["-n", "127.0.0.1:9876", "-c", path.to_str().unwrap()],
        &env(),
    )
    .unwrap();
    assert_eq!(command_line.config_file.as_deref(), Some(path.as_path()));
    assert_eq!(loaded.conf.broker.role, BrokerRole::SyncMaster);
    assert_eq!(loaded.conf.broker.namesrv_addrs, vec!["127.0.0.1:9876"]);
    // Notes carry the real path and line.
    assert!(loaded.notes[0].starts_with(&format!("{}:6: deleteWhen", path.display())));

    let err = load_broker(["-c", "/no/such/broker.conf"], &env()).unwrap_err();
    assert!(
        err.to_string()
            .contains("/no/such/broker.conf: cannot read"),
        "{err}"
    );
    let err = load_broker(["--bogus"], &env()).unwrap_err();
    assert!(err.to_string().ends_with(USAGE), "{err}");
    // A syntax error names the file and line.
    std::fs::write(&path, "brokerName=a\nbad=\\u00zz\n").unwrap();
    let err = load_broker(["-c", path.to_str().unwrap()], &env()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: line 2: ", path.display())),
        "{message}"
    );
    assert!(message.contains("\\u00zz"), "{message}");
}

/// The 2m-2s example the README starts (conf/2m-2s-sync): every file loads without a
/// warning, the two groups each have a SYNC_MASTER and a SLAVE, and no two brokers share
/// a port or a store.
#[test]
fn the_2m_2s_example_configs_load_and_do_not_collide() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/2m-2s-sync");
    let mut ports = std::collections::BTreeSet::new();
    let mut stores = std::collections::BTreeSet::new();
    let mut roles = Vec::new();
    for name in [
        "broker-a.properties",
        "broker-a-s.properties",
        "broker-b.properties",
        "broker-b-s.properties",
    ] {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let loaded =
            broker_conf_from_text(Some((&path, &text)), &CommandLine::default(), &env()).unwrap();
        assert!(
            loaded.warnings().is_empty(),
            "{name}: {:?}",
            loaded.warnings()
        );
        let conf = loaded.conf;
        assert!(ports.insert(conf.listen_port), "{name}: listenPort reused");
        assert!(
            ports.insert(conf.ha_listen_port),
            "{name}: haListenPort reused"
        );
        assert!(stores.insert(conf.store_path_root_dir.clone()), "{name}");
        assert_eq!(
            conf.broker.ha_master_addr, None,
            "{name}: learnt from the name server"
        );
        roles.push((
            conf.broker.broker_name,
            conf.broker.broker_id,
            conf.broker.role,
        ));
    }
    assert_eq!(
        roles,
        [
            ("broker-a".to_string(), 0, BrokerRole::SyncMaster),
            ("broker-a".to_string(), 1, BrokerRole::Slave),
            ("broker-b".to_string(), 0, BrokerRole::SyncMaster),
            ("broker-b".to_string(), 1, BrokerRole::Slave),
        ]
    );
}
