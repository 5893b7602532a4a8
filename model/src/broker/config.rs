//! A broker's settings, named and defaulted as RocketMQ's `BrokerConfig` and
//! `MessageStoreConfig` (reference A.7, A.8, B, C, F). `messageDelayLevel` is a store
//! setting, as in RocketMQ: `store.message_delay_level`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::store::config_tables::TopicConfig;
use crate::store::StoreConfig;

/// SlaveSynchronize's period: RocketMQ fixes it at 10 s (`BrokerController`).
pub const SLAVE_SYNCHRONIZE_INTERVAL_MS: u64 = 10_000;

/// `brokerRole`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

/// `flushDiskType`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FlushDiskType {
    SyncFlush,
    AsyncFlush,
}

/// The topic every broker registers so that clients can send to topics that do not
/// exist yet (`TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC`).
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
/// Read, write and inherit (`PermName.PERM_INHERIT`): TBW102's permission.
pub const PERM_READ_WRITE_INHERIT: u32 = 7;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    pub cluster_name: String,
    pub broker_name: String,
    /// 0 = master, > 0 = slave.
    pub broker_id: u64,
    pub role: BrokerRole,
    pub flush_disk_type: FlushDiskType,
    pub namesrv_addrs: Vec<String>,
    /// `haMasterAddress`: where a slave replicates from (the master's HA address). When
    /// set it wins over what name servers say, as in RocketMQ; when not, the slave takes
    /// the `haServerAddr` its master registered.
    pub ha_master_addr: Option<String>,
    /// Where a slave sends its master remoting requests (offset sync) before a name
    /// server says. RocketMQ has no such key (its slaves learn `masterAddr` only from a
    /// name server); the simulator, whose brokers have one address for both, sets it.
    pub master_addr: Option<String>,
    /// The address this broker's slaves replicate from, registered as `haServerAddr`
    /// (`brokerIP2:haListenPort`). None: the broker's own address, as in the
    /// simulator, where one address carries both remoting and HA.
    pub ha_server_addr: Option<String>,
    pub store: StoreConfig,
    /// Topics created at first boot (besides TBW102), like `mqadmin updateTopic`.
    pub topics: BTreeMap<String, TopicConfig>,
    pub auto_create_topic_enable: bool,
    /// `defaultTopicQueueNums`: TBW102's queue count.
    pub default_topic_queue_nums: u32,
    /// `syncFlushTimeout`.
    pub sync_flush_timeout_ms: u64,
    /// `flushIntervalCommitLog`.
    pub flush_interval_commit_log_ms: u64,
    /// `flushCommitLogLeastPages` (4 KiB pages).
    pub flush_commit_log_least_pages: u64,
    /// `flushCommitLogThoroughInterval`.
    pub flush_commit_log_thorough_interval_ms: u64,
    /// `flushIntervalConsumeQueue`.
    pub flush_interval_consume_queue_ms: u64,
    /// `slaveTimeout`: how long a SYNC_MASTER send waits for the slave.
    pub slave_timeout_ms: u64,
    /// `haSlaveFallbehindMax`.
    pub ha_slave_fallbehind_max_bytes: u64,
    /// `haSendHeartbeatInterval`.
    pub ha_heartbeat_interval_ms: u64,
    /// `haHousekeepingInterval`: a slave silent this long is dropped.
    pub ha_housekeeping_interval_ms: u64,
    /// `haTransferBatchSize`.
    pub ha_transfer_batch_bytes: usize,
    /// Unacknowledged bytes a master streams ahead of a slave's last report.
    pub ha_max_unacked_bytes: u64,
    /// `registerNameServerPeriod`.
    pub register_name_server_period_ms: u64,
    /// `flushConsumerOffsetInterval`.
    pub flush_consumer_offset_interval_ms: u64,
    /// `flushDelayOffsetInterval`: how often the delay levels' progress is persisted
    /// (`config/delayOffset.json`).
    pub flush_delay_offset_interval_ms: u64,
    /// How often a slave runs `SlaveSynchronize` (RocketMQ: fixed at 10 s, first after
    /// 3 s): it fetches its master's consumer offsets.
    pub slave_synchronize_interval_ms: u64,
    /// The hold service's re-check period (`PullRequestHoldService`, long polling).
    pub long_polling_check_interval_ms: u64,
    /// Client channels silent this long are dropped (`ClientHousekeepingService`).
    pub channel_expired_timeout_ms: u64,
    /// How often client channels are scanned.
    pub client_scan_interval_ms: u64,
    /// Pull batch limits for data in memory (`maxTransferBytesOnMessageInMemory`,
    /// `maxTransferCountOnMessageInMemory`).
    pub max_transfer_bytes: usize,
    pub max_transfer_count: u32,
    /// Not a RocketMQ setting: a master serves pulls only the records durable as its
    /// `flushDiskType` and `brokerRole` promise (`high_watermark.rs`). `false` serves
    /// the page cache, as RocketMQ does (the `pull-serves-page-cache` mutant measures
    /// what that saves in delivery latency and what it costs in lost records).
    pub serve_only_durable: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            role: BrokerRole::AsyncMaster,
            flush_disk_type: FlushDiskType::AsyncFlush,
            namesrv_addrs: Vec::new(),
            ha_master_addr: None,
            master_addr: None,
            ha_server_addr: None,
            store: StoreConfig::default(),
            topics: BTreeMap::new(),
            auto_create_topic_enable: true,
            default_topic_queue_nums: 8,
            sync_flush_timeout_ms: 5_000,
            flush_interval_commit_log_ms: 500,
            flush_commit_log_least_pages: 4,
            flush_commit_log_thorough_interval_ms: 10_000,
            flush_interval_consume_queue_ms: 1_000,
            slave_timeout_ms: 3_000,
            ha_slave_fallbehind_max_bytes: 256 * 1024 * 1024,
            ha_heartbeat_interval_ms: 5_000,
            ha_housekeeping_interval_ms: 20_000,
            ha_transfer_batch_bytes: 32 * 1024,
            ha_max_unacked_bytes: 256 * 1024,
            register_name_server_period_ms: 30_000,
            flush_consumer_offset_interval_ms: 5_000,
            flush_delay_offset_interval_ms: 10_000,
            slave_synchronize_interval_ms: SLAVE_SYNCHRONIZE_INTERVAL_MS,
            long_polling_check_interval_ms: 5_000,
            channel_expired_timeout_ms: 120_000,
            client_scan_interval_ms: 10_000,
            max_transfer_bytes: 256 * 1024,
            max_transfer_count: 32,
            serve_only_durable: true,
        }
    }
}

impl BrokerConfig {
    pub fn is_slave(&self) -> bool {
        self.role == BrokerRole::Slave
    }

    /// The longest an acknowledged record may sit only in the page cache under
    /// ASYNC_FLUSH: a thorough flush is due within the thorough interval, checked every
    /// flush interval, plus the fsync itself (the checker's allowance uses this).
    pub fn async_flush_window_ms(&self, max_sync_latency_ms: u64) -> u64 {
        self.flush_commit_log_thorough_interval_ms
            + self.flush_interval_commit_log_ms
            + max_sync_latency_ms
    }
}
