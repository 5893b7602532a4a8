//! `mqbroker`'s configuration (`BrokerStartup`): defaults, then the `-c` properties file,
//! then `-n`; RocketMQ's key names (`BrokerConfig`, `MessageStoreConfig`,
//! `NettyServerConfig`) map onto the model's [`BrokerConfig`] and the process settings
//! of [`BrokerConf`].
//!
//! Deviations, each deliberate:
//! - `brokerIP1` defaults to 127.0.0.1 (RocketMQ picks the first non-loopback address)
//!   and the broker binds it, so a broker started without a config file is not exposed
//!   beyond this machine.
//! - `haListenPort` from the file is honoured; it defaults to `listenPort + 1` (4.x
//!   overwrites it with that unconditionally).
//! - `storePathCommitLog` must be `{storePathRootDir}/commitlog`: the store is one
//!   directory tree (a symbolic link there can move the commit log to another volume).
//! - `deleteWhen` and `fileReservedTime` are checked and kept, but no expired files are
//!   deleted yet; the broker logs that note.
//! - `serveOnlyDurable` is rocketsim's own key (see `BrokerConfig::serve_only_durable`).
//! - `bindAddress` (RocketMQ 5's `NettyServerConfig`, default 0.0.0.0 there) defaults
//!   to the registered addresses: `brokerIP1` for `listenPort`, `brokerIP2` for
//!   `haListenPort`. Set, both ports are bound on it while the name servers still get
//!   `brokerIP1`/`brokerIP2` (a proxy or NAT in front of the broker).

use std::path::{Path, PathBuf};

use rmq_model::broker::{BrokerConfig, BrokerRole, FlushDiskType};
use rmq_model::store::delay_level::MessageDelayLevel;
use rmq_model::store::message_store::MIN_COMMIT_LOG_FILE_SIZE_BYTES;

use super::values::{address, address_list, boolean, host, integer, name, port};
use super::{
    apply_file, apply_one, parse_command_line, read_file, CommandLine, ConfError, Env, KeyAction,
    Loaded, Origin, Setter,
};

/// `listenPort`'s default (`BrokerStartup` sets it on `NettyServerConfig`).
pub const DEFAULT_LISTEN_PORT: u16 = 10911;
/// `brokerIP1`'s default here: loopback unless the file says otherwise.
pub const DEFAULT_BROKER_IP: &str = "127.0.0.1";
/// The commit log's directory under the store root (reference A.1).
pub const COMMIT_LOG_DIR: &str = "commitlog";
/// A consume-queue entry's size: `mappedFileSizeConsumeQueue` counts bytes of these.
pub const CQ_ENTRY_SIZE_BYTES: u64 = 20;
/// `registerNameServerPeriod` is clamped to this range (`BrokerController`).
pub const REGISTER_NAME_SERVER_PERIOD_RANGE_MS: (u64, u64) = (10_000, 60_000);

/// Everything `mqbroker` needs: the model's settings plus ports, addresses and paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConf {
    /// The state machine's settings (cluster, role, flush, store sizes, intervals).
    pub broker: BrokerConfig,
    /// `listenPort`: clients and name servers talk to the broker here.
    pub listen_port: u16,
    /// `haListenPort`: slaves replicate from here.
    pub ha_listen_port: u16,
    /// `brokerIP1`: the address the broker binds and registers.
    pub broker_ip1: String,
    /// `brokerIP2`: the address of the HA port given to slaves (default `brokerIP1`).
    pub broker_ip2: String,
    /// `bindAddress`: where both ports are bound, when not on the registered addresses.
    pub bind_address: Option<String>,
    /// `storePathRootDir`.
    pub store_path_root_dir: PathBuf,
    /// `storePathCommitLog`: always `{storePathRootDir}/commitlog` (see the module doc).
    pub store_path_commit_log: PathBuf,
    /// `deleteWhen`: the hours (0-23, `;`-separated) at which expired files would go.
    pub delete_when: String,
    /// `fileReservedTime`: hours a commit-log file is kept.
    pub file_reserved_time_hours: u64,
}

impl BrokerConf {
    /// `brokerIP1:listenPort`, the address registered with the name servers.
    pub fn broker_addr(&self) -> String {
        join_host_port(&self.broker_ip1, self.listen_port)
    }

    /// `brokerIP2:haListenPort`, the HA address registered for slaves.
    pub fn ha_server_addr(&self) -> String {
        join_host_port(&self.broker_ip2, self.ha_listen_port)
    }

    /// Where `listenPort` is bound: `bindAddress`, else `brokerIP1`.
    pub fn listen_addr(&self) -> String {
        let host = self.bind_address.as_deref().unwrap_or(&self.broker_ip1);
        join_host_port(host, self.listen_port)
    }

    /// Where `haListenPort` is bound: `bindAddress`, else `brokerIP2`.
    pub fn ha_listen_addr(&self) -> String {
        let host = self.bind_address.as_deref().unwrap_or(&self.broker_ip2);
        join_host_port(host, self.ha_listen_port)
    }

    /// Every setting as `key=value` lines in RocketMQ's names (`-p`), leaving out the
    /// unset ones (no name servers, no `haMasterAddress`); reading them back gives the
    /// same configuration.
    pub fn to_properties(&self) -> String {
        self.lines(|_| true)
    }

    fn lines(&self, include: impl Fn(&str) -> bool) -> String {
        KEYS.iter()
            .filter(|key| include(key.name))
            .map(|key| (key.name, (key.get)(self)))
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={value}\n"))
            .collect()
    }

    /// The settings RocketMQ's `-m` prints (roles, addresses, paths).
    pub fn important_properties(&self) -> String {
        const IMPORTANT: &[&str] = &[
            "brokerClusterName",
            "brokerName",
            "brokerId",
            "brokerRole",
            "flushDiskType",
            "namesrvAddr",
            "brokerIP1",
            "listenPort",
            "haListenPort",
            "storePathRootDir",
        ];
        self.lines(|name| IMPORTANT.contains(&name))
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// [`BrokerConf`] while it is read: what defaults to another setting stays unset until
/// every source has been applied.
#[derive(Clone, Debug)]
struct Draft {
    conf: BrokerConf,
    ha_listen_port: Option<u16>,
    broker_ip2: Option<String>,
    store_path_root_dir: Option<PathBuf>,
    store_path_commit_log: Option<PathBuf>,
    namesrv_addr_set: bool,
}

/// One RocketMQ key: how to apply it and how to print it.
struct Key {
    name: &'static str,
    set: Setter<Draft>,
    get: fn(&BrokerConf) -> String,
}

/// Older spellings RocketMQ still reads (`MessageStoreConfig` kept `mapedFile...`
/// until 4.4).
const ALIASES: &[(&str, &str)] = &[
    ("mapedFileSizeCommitLog", "mappedFileSizeCommitLog"),
    ("mapedFileSizeConsumeQueue", "mappedFileSizeConsumeQueue"),
];

/// RocketMQ keys accepted without effect here, with the reason given to the operator.
const NO_EFFECT: &[(&str, &str)] = &[
    (
        "rocketmqHome",
        "no effect: rocketsim needs no install directory",
    ),
    (
        "brokerPermission",
        "no effect: rocketsim brokers are always readable and writable",
    ),
    (
        "sendMessageThreadPoolNums",
        "no effect: one thread runs the broker's state machine",
    ),
    (
        "pullMessageThreadPoolNums",
        "no effect: one thread runs the broker's state machine",
    ),
    (
        "useReentrantLockWhenPutMessage",
        "no effect: appends are never concurrent",
    ),
    (
        "waitTimeMillsInSendQueue",
        "no effect: sends are not queued behind a thread pool",
    ),
    (
        "osPageCacheBusyTimeOutMills",
        "no effect: appends are never concurrent",
    ),
    (
        "transientStorePoolEnable",
        "no effect: writes always go through the page cache",
    ),
    (
        "diskMaxUsedSpaceRatio",
        "no effect: expired files are not deleted yet",
    ),
    (
        "storePathIndex",
        "no effect: rocketsim keeps no index files",
    ),
    (
        "messageIndexEnable",
        "no effect: rocketsim keeps no index files",
    ),
    (
        "storePathConsumeQueue",
        "no effect: consume queues live under storePathRootDir",
    ),
    (
        "enablePropertyFilter",
        "no effect: only tag filtering is implemented",
    ),
    (
        "traceTopicEnable",
        "no effect: message tracing is not implemented",
    ),
    ("aclEnable", "no effect: ACL is not implemented"),
];

fn interval_ms(value: &str) -> Result<u64, String> {
    integer(value, 1, u64::MAX).map_err(|e| format!("{e} (milliseconds)"))
}

fn size_bytes(value: &str, min: u64) -> Result<u64, String> {
    integer(value, min, i32::MAX as u64).map_err(|e| format!("{e} (bytes)"))
}

/// An address the broker registers for others to dial: 0.0.0.0 or :: would send
/// every client to its own machine.
fn advertised_host(value: &str) -> Result<String, String> {
    let unspecified = value
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if unspecified {
        return Err("an address clients can reach (not 0.0.0.0 or ::)".into());
    }
    host(value)
}

fn role_name(role: BrokerRole) -> &'static str {
    match role {
        BrokerRole::AsyncMaster => "ASYNC_MASTER",
        BrokerRole::SyncMaster => "SYNC_MASTER",
        BrokerRole::Slave => "SLAVE",
    }
}

fn flush_name(flush: FlushDiskType) -> &'static str {
    match flush {
        FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
        FlushDiskType::SyncFlush => "SYNC_FLUSH",
    }
}

fn delete_when(value: &str) -> Result<String, String> {
    let ok = value
        .split(';')
        .all(|hour| hour.trim().parse::<u8>().is_ok_and(|h| h < 24));
    if ok {
        Ok(value.to_string())
    } else {
        Err("hours from 00 to 23 separated by ';', e.g. 04 or 04;16".to_string())
    }
}

/// Every key read, in the order `-p` prints them.
const KEYS: &[Key] = &[
    Key {
        name: "brokerClusterName",
        set: |d, v| {
            d.conf.broker.cluster_name = name(v)?;
            Ok(None)
        },
        get: |c| c.broker.cluster_name.clone(),
    },
    Key {
        name: "brokerName",
        set: |d, v| {
            d.conf.broker.broker_name = name(v)?;
            Ok(None)
        },
        get: |c| c.broker.broker_name.clone(),
    },
    Key {
        name: "brokerId",
        set: |d, v| {
            d.conf.broker.broker_id = integer(v, 0, i64::MAX as u64)
                .map_err(|e| format!("{e} (0 = master, > 0 = slave)"))?;
            Ok(None)
        },
        get: |c| c.broker.broker_id.to_string(),
    },
    Key {
        name: "brokerRole",
        set: |d, v| {
            d.conf.broker.role = match v {
                "ASYNC_MASTER" => BrokerRole::AsyncMaster,
                "SYNC_MASTER" => BrokerRole::SyncMaster,
                "SLAVE" => BrokerRole::Slave,
                _ => return Err("ASYNC_MASTER, SYNC_MASTER or SLAVE".into()),
            };
            Ok(None)
        },
        get: |c| role_name(c.broker.role).into(),
    },
    Key {
        name: "flushDiskType",
        set: |d, v| {
            d.conf.broker.flush_disk_type = match v {
                "ASYNC_FLUSH" => FlushDiskType::AsyncFlush,
                "SYNC_FLUSH" => FlushDiskType::SyncFlush,
                _ => return Err("ASYNC_FLUSH or SYNC_FLUSH".into()),
            };
            Ok(None)
        },
        get: |c| flush_name(c.broker.flush_disk_type).into(),
    },
    Key {
        name: "namesrvAddr",
        set: |d, v| {
            d.conf.broker.namesrv_addrs = address_list(v)?;
            d.namesrv_addr_set = true;
            Ok(None)
        },
        get: |c| c.broker.namesrv_addrs.join(";"),
    },
    Key {
        name: "haMasterAddress",
        set: |d, v| {
            d.conf.broker.ha_master_addr = Some(address(v)?);
            Ok(None)
        },
        get: |c| c.broker.ha_master_addr.clone().unwrap_or_default(),
    },
    Key {
        name: "listenPort",
        set: |d, v| {
            d.conf.listen_port = port(v)?;
            Ok(None)
        },
        get: |c| c.listen_port.to_string(),
    },
    Key {
        name: "haListenPort",
        set: |d, v| {
            d.ha_listen_port = Some(port(v)?);
            Ok(None)
        },
        get: |c| c.ha_listen_port.to_string(),
    },
    Key {
        name: "brokerIP1",
        set: |d, v| {
            d.conf.broker_ip1 = advertised_host(v)?;
            Ok(None)
        },
        get: |c| c.broker_ip1.clone(),
    },
    Key {
        name: "brokerIP2",
        set: |d, v| {
            d.broker_ip2 = Some(advertised_host(v)?);
            Ok(None)
        },
        get: |c| c.broker_ip2.clone(),
    },
    Key {
        name: "bindAddress",
        set: |d, v| {
            d.conf.bind_address = Some(host(v)?);
            Ok(None)
        },
        get: |c| c.bind_address.clone().unwrap_or_default(),
    },
    Key {
        name: "storePathRootDir",
        set: |d, v| {
            if v.is_empty() {
                return Err("a directory path".into());
            }
            d.store_path_root_dir = Some(PathBuf::from(v));
            Ok(None)
        },
        get: |c| c.store_path_root_dir.display().to_string(),
    },
    Key {
        name: "storePathCommitLog",
        set: |d, v| {
            if v.is_empty() {
                return Err("a directory path".into());
            }
            d.store_path_commit_log = Some(PathBuf::from(v));
            Ok(None)
        },
        get: |c| c.store_path_commit_log.display().to_string(),
    },
    Key {
        name: "autoCreateTopicEnable",
        set: |d, v| {
            d.conf.broker.auto_create_topic_enable = boolean(v)?;
            Ok(None)
        },
        get: |c| c.broker.auto_create_topic_enable.to_string(),
    },
    Key {
        name: "defaultTopicQueueNums",
        set: |d, v| {
            d.conf.broker.default_topic_queue_nums = integer(v, 1, 1024)? as u32;
            Ok(None)
        },
        get: |c| c.broker.default_topic_queue_nums.to_string(),
    },
    Key {
        name: "mappedFileSizeCommitLog",
        set: |d, v| {
            d.conf.broker.store.commit_log_file_size_bytes =
                size_bytes(v, MIN_COMMIT_LOG_FILE_SIZE_BYTES)?;
            Ok(None)
        },
        get: |c| c.broker.store.commit_log_file_size_bytes.to_string(),
    },
    Key {
        name: "mappedFileSizeConsumeQueue",
        set: |d, v| {
            let size = size_bytes(v, CQ_ENTRY_SIZE_BYTES)?;
            // RocketMQ rounds the size up to whole 20-byte entries.
            let entries = size.div_ceil(CQ_ENTRY_SIZE_BYTES);
            d.conf.broker.store.consume_queue_entries_per_file = entries;
            Ok((size % CQ_ENTRY_SIZE_BYTES != 0).then(|| {
                format!(
                    "rounded up to {} bytes ({entries} entries of 20 bytes)",
                    entries * CQ_ENTRY_SIZE_BYTES
                )
            }))
        },
        get: |c| (c.broker.store.consume_queue_entries_per_file * CQ_ENTRY_SIZE_BYTES).to_string(),
    },
    Key {
        name: "maxMessageSize",
        set: |d, v| {
            d.conf.broker.store.max_message_size_bytes = size_bytes(v, 1)? as usize;
            Ok(None)
        },
        get: |c| c.broker.store.max_message_size_bytes.to_string(),
    },
    Key {
        name: "syncFlushTimeout",
        set: |d, v| {
            d.conf.broker.sync_flush_timeout_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.sync_flush_timeout_ms.to_string(),
    },
    Key {
        name: "flushIntervalCommitLog",
        set: |d, v| {
            d.conf.broker.flush_interval_commit_log_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.flush_interval_commit_log_ms.to_string(),
    },
    Key {
        name: "flushCommitLogLeastPages",
        set: |d, v| {
            // 0 is meaningful: every round flushes whatever is dirty.
            d.conf.broker.flush_commit_log_least_pages =
                integer(v, 0, u32::MAX as u64).map_err(|e| format!("{e} (4 KiB pages)"))?;
            Ok(None)
        },
        get: |c| c.broker.flush_commit_log_least_pages.to_string(),
    },
    Key {
        name: "flushCommitLogThoroughInterval",
        set: |d, v| {
            d.conf.broker.flush_commit_log_thorough_interval_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.flush_commit_log_thorough_interval_ms.to_string(),
    },
    Key {
        name: "flushIntervalConsumeQueue",
        set: |d, v| {
            d.conf.broker.flush_interval_consume_queue_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.flush_interval_consume_queue_ms.to_string(),
    },
    Key {
        name: "slaveTimeout",
        set: |d, v| {
            d.conf.broker.slave_timeout_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.slave_timeout_ms.to_string(),
    },
    Key {
        name: "haSlaveFallbehindMax",
        set: |d, v| {
            d.conf.broker.ha_slave_fallbehind_max_bytes =
                integer(v, 1, u64::MAX).map_err(|e| format!("{e} (bytes)"))?;
            Ok(None)
        },
        get: |c| c.broker.ha_slave_fallbehind_max_bytes.to_string(),
    },
    Key {
        name: "haSendHeartbeatInterval",
        set: |d, v| {
            d.conf.broker.ha_heartbeat_interval_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.ha_heartbeat_interval_ms.to_string(),
    },
    Key {
        name: "haHousekeepingInterval",
        set: |d, v| {
            d.conf.broker.ha_housekeeping_interval_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.ha_housekeeping_interval_ms.to_string(),
    },
    Key {
        name: "haTransferBatchSize",
        set: |d, v| {
            d.conf.broker.ha_transfer_batch_bytes = size_bytes(v, 1)? as usize;
            Ok(None)
        },
        get: |c| c.broker.ha_transfer_batch_bytes.to_string(),
    },
    Key {
        name: "registerNameServerPeriod",
        set: |d, v| {
            let period_ms = interval_ms(v)?;
            let (min_ms, max_ms) = REGISTER_NAME_SERVER_PERIOD_RANGE_MS;
            let clamped_ms = period_ms.clamp(min_ms, max_ms);
            d.conf.broker.register_name_server_period_ms = clamped_ms;
            Ok((clamped_ms != period_ms)
                .then(|| format!("{period_ms} ms clamped to {clamped_ms} ms, as RocketMQ does")))
        },
        get: |c| c.broker.register_name_server_period_ms.to_string(),
    },
    Key {
        name: "flushConsumerOffsetInterval",
        set: |d, v| {
            d.conf.broker.flush_consumer_offset_interval_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.flush_consumer_offset_interval_ms.to_string(),
    },
    Key {
        name: "flushDelayOffsetInterval",
        set: |d, v| {
            d.conf.broker.flush_delay_offset_interval_ms = interval_ms(v)?;
            Ok(None)
        },
        get: |c| c.broker.flush_delay_offset_interval_ms.to_string(),
    },
    Key {
        name: "messageDelayLevel",
        set: |d, v| {
            d.conf.broker.store.message_delay_level =
                MessageDelayLevel::parse(v).map_err(|e| e.to_string())?;
            Ok(None)
        },
        get: |c| c.broker.store.message_delay_level.to_string(),
    },
    Key {
        name: "maxTransferBytesOnMessageInMemory",
        set: |d, v| {
            d.conf.broker.max_transfer_bytes = size_bytes(v, 1)? as usize;
            Ok(None)
        },
        get: |c| c.broker.max_transfer_bytes.to_string(),
    },
    Key {
        name: "maxTransferCountOnMessageInMemory",
        set: |d, v| {
            d.conf.broker.max_transfer_count = integer(v, 1, u32::MAX as u64)? as u32;
            Ok(None)
        },
        get: |c| c.broker.max_transfer_count.to_string(),
    },
    Key {
        name: "serveOnlyDurable",
        set: |d, v| {
            d.conf.broker.serve_only_durable = boolean(v)?;
            Ok(None)
        },
        get: |c| c.broker.serve_only_durable.to_string(),
    },
    Key {
        name: "deleteWhen",
        set: |d, v| {
            d.conf.delete_when = delete_when(v)?;
            Ok(Some(
                "accepted, but expired files are not deleted yet".into(),
            ))
        },
        get: |c| c.delete_when.clone(),
    },
    Key {
        name: "fileReservedTime",
        set: |d, v| {
            d.conf.file_reserved_time_hours =
                integer(v, 0, u64::MAX).map_err(|e| format!("{e} (hours)"))?;
            Ok(Some(
                "accepted, but expired files are not deleted yet".into(),
            ))
        },
        get: |c| c.file_reserved_time_hours.to_string(),
    },
];

/// What `key` (or the key it is an older spelling of) does.
fn lookup(key: &str) -> Option<KeyAction<Draft>> {
    let canonical = ALIASES
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| *new);
    if let Some(found) = KEYS.iter().find(|k| k.name == canonical) {
        return Some(KeyAction::Set(found.set));
    }
    NO_EFFECT
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, reason)| KeyAction::NoEffect(reason))
}

/// Every key name read (not counting older spellings and no-effect keys), in `-p` order.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|k| k.name)
}

/// The defaults, before any file: RocketMQ's, with `brokerIP1` on loopback.
fn defaults(env: &Env) -> Draft {
    Draft {
        conf: BrokerConf {
            broker: BrokerConfig::default(),
            listen_port: DEFAULT_LISTEN_PORT,
            ha_listen_port: DEFAULT_LISTEN_PORT + 1,
            broker_ip1: DEFAULT_BROKER_IP.to_string(),
            broker_ip2: DEFAULT_BROKER_IP.to_string(),
            bind_address: None,
            store_path_root_dir: PathBuf::new(),
            store_path_commit_log: PathBuf::new(),
            delete_when: "04".to_string(),
            file_reserved_time_hours: 72,
        },
        ha_listen_port: None,
        broker_ip2: None,
        store_path_root_dir: env.home_dir.as_ref().map(|home| home.join("store")),
        store_path_commit_log: None,
        namesrv_addr_set: false,
    }
}

/// Parses `mqbroker`'s arguments and reads the `-c` file they name, if any.
pub fn load_broker(
    args: impl IntoIterator<Item = impl Into<String>>,
    env: &Env,
) -> Result<(CommandLine, Loaded<BrokerConf>), ConfError> {
    let command_line = parse_command_line(args)?;
    let loaded = load_broker_conf(&command_line, env)?;
    Ok((command_line, loaded))
}

/// The configuration a parsed command line describes (reads its `-c` file).
pub fn load_broker_conf(
    command_line: &CommandLine,
    env: &Env,
) -> Result<Loaded<BrokerConf>, ConfError> {
    match &command_line.config_file {
        Some(path) => {
            let text = read_file(path)?;
            broker_conf_from_text(Some((path, &text)), command_line, env)
        }
        None => broker_conf_from_text(None, command_line, env),
    }
}

/// The configuration from the text of a properties file (and the path it was read
/// from, for messages), the command line and the environment, in RocketMQ's order:
/// defaults, file, `-n`; `NAMESRV_ADDR` when neither names the name servers.
pub fn broker_conf_from_text(
    file: Option<(&Path, &str)>,
    command_line: &CommandLine,
    env: &Env,
) -> Result<Loaded<BrokerConf>, ConfError> {
    let mut draft = defaults(env);
    let mut unknown_keys = Vec::new();
    let mut notes = Vec::new();
    if let Some((path, text)) = file {
        apply_file(
            &mut draft,
            path,
            text,
            lookup,
            &mut unknown_keys,
            &mut notes,
        )?;
    }
    let namesrv_set = |draft: &mut Draft, value: &str, origin: Origin, notes: &mut Vec<_>| {
        let set: Setter<Draft> = KEYS
            .iter()
            .find(|k| k.name == "namesrvAddr")
            .expect("namesrvAddr is a key")
            .set;
        apply_one(draft, set, "namesrvAddr", value, origin, notes)
    };
    if let Some(addrs) = &command_line.namesrv_addr {
        namesrv_set(&mut draft, addrs, Origin::CommandLine("-n"), &mut notes)?;
    } else if !draft.namesrv_addr_set {
        if let Some(addrs) = &env.namesrv_addr {
            namesrv_set(&mut draft, addrs, Origin::Env("NAMESRV_ADDR"), &mut notes)?;
        }
    }
    let conf = resolve(draft, &mut notes)?;
    Ok(Loaded {
        conf,
        unknown_keys,
        notes,
    })
}

/// Fills the settings that default to others and checks the ones that must agree.
fn resolve(draft: Draft, notes: &mut Vec<String>) -> Result<BrokerConf, ConfError> {
    let mut conf = draft.conf;
    match conf.broker.role {
        BrokerRole::AsyncMaster | BrokerRole::SyncMaster => {
            if conf.broker.broker_id != 0 {
                notes.push(format!(
                    "brokerId {} set to 0: brokerRole={} is a master (RocketMQ does the same)",
                    conf.broker.broker_id,
                    role_name(conf.broker.role)
                ));
                conf.broker.broker_id = 0;
            }
        }
        BrokerRole::Slave => {
            if conf.broker.broker_id == 0 {
                return Err(ConfError::Inconsistent(
                    "brokerRole=SLAVE needs brokerId > 0 (0 is the master's id)".into(),
                ));
            }
        }
    }
    conf.ha_listen_port = match draft.ha_listen_port {
        Some(ha_port) => ha_port,
        None => conf.listen_port.checked_add(1).ok_or_else(|| {
            ConfError::Inconsistent(format!(
                "listenPort={} leaves no port for haListenPort (listenPort + 1): set haListenPort",
                conf.listen_port
            ))
        })?,
    };
    if conf.ha_listen_port == conf.listen_port {
        return Err(ConfError::Inconsistent(format!(
            "haListenPort and listenPort are both {}: they must differ",
            conf.listen_port
        )));
    }
    conf.broker_ip2 = draft.broker_ip2.unwrap_or_else(|| conf.broker_ip1.clone());
    conf.store_path_root_dir = draft.store_path_root_dir.ok_or_else(|| {
        ConfError::Inconsistent(
            "storePathRootDir is not set and HOME is unknown (its default is ~/store)".into(),
        )
    })?;
    let commit_log_dir = conf.store_path_root_dir.join(COMMIT_LOG_DIR);
    if let Some(given) = draft.store_path_commit_log {
        if normalize(&given) != normalize(&commit_log_dir) {
            return Err(ConfError::Inconsistent(format!(
                "storePathCommitLog={} must be {} ({{storePathRootDir}}/{COMMIT_LOG_DIR}): \
                 rocketsim keeps the whole store under one root; remove the key, or make {} \
                 a symbolic link to the other volume",
                given.display(),
                commit_log_dir.display(),
                commit_log_dir.display()
            )));
        }
    }
    conf.store_path_commit_log = commit_log_dir;
    conf.broker
        .store
        .validate()
        .map_err(|e| ConfError::Inconsistent(e.to_string()))?;
    Ok(conf)
}

/// A path compared lexically: `a/./b/` and `a/b` are the same.
fn normalize(path: &Path) -> PathBuf {
    path.components().collect()
}

#[cfg(test)]
#[path = "broker_conf_tests.rs"]
mod tests;
