//! The run's `meta` entry: the cluster's shape (broker groups, flush and replication
//! modes, consumer groups) and the promises it declares, which every window the checker
//! uses comes from.

use serde::{Deserialize, Serialize};

/// How a broker group flushes its commit log (`flushDiskType`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    SyncFlush,
    AsyncFlush,
}

/// How a broker group replicates (`brokerRole` of its master; `None`: no slave).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    None,
    Sync,
    Async,
}

/// One broker group as the checker needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerGroupMeta {
    pub broker_name: String,
    pub master_node: u32,
    pub slave_node: Option<u32>,
    pub flush: FlushMode,
    pub replication: Replication,
}

/// The timing promises the run was judged against: declared by the scenario's
/// `[promise]` section, recorded in `Meta`, and the only windows the checker reads —
/// never the configuration of the broker under test, so a broker that flushes or
/// replicates less often than declared fails instead of widening its own allowance.
///
/// Defaults are RocketMQ's documented values (`docs/history.md` lists each field with
/// its RocketMQ name). Every field has a default, so a history or a scenario names
/// only what it changes; a new promise is one more field here with its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Promise {
    /// `flushIntervalCommitLog`: an ASYNC_FLUSH master looks at its page cache at
    /// least this often (and a master with a slave ships new records at least this
    /// often).
    pub flush_interval_commit_log_ms: u64,
    /// `flushCommitLogThoroughInterval`: an ASYNC_FLUSH master flushes everything at
    /// least this often, however few pages are dirty.
    pub flush_commit_log_thorough_interval_ms: u64,
    /// Not a RocketMQ setting: the longest one fsync of the commit log takes once
    /// issued (the simulator's disks take at most 10 ms; a real-disk harness declares
    /// its own).
    pub fsync_max_ms: u64,
    /// `haSendHeartbeatInterval`: a slave reports to its master this often; a slave
    /// cut off reconnects within two of these.
    pub ha_send_heartbeat_interval_ms: u64,
    /// SlaveSynchronize's period (fixed in `BrokerController`): how often a slave
    /// copies its master's consumer offsets.
    pub slave_synchronize_interval_ms: u64,
    /// `flushConsumerOffsetInterval`: a broker persists consumer offsets this often.
    pub flush_consumer_offset_interval_ms: u64,
    /// `persistConsumerOffsetInterval`: a consumer commits its offsets this often.
    pub persist_consumer_offset_interval_ms: u64,
    /// `rocketmq.client.rebalance.waitInterval`: a consumer rebalances this often.
    pub rebalance_interval_ms: u64,
    /// `BROKER_SUSPEND_MAX_TIME_MILLIS`: the longest a broker holds a long-polling pull
    /// before answering it.
    pub broker_suspend_max_time_ms: u64,
    /// `haHousekeepingInterval`: a master drops a slave connection silent this long,
    /// and a reconnected slave catches up within it, so a fault on the slave this long
    /// before a send may still explain a slave status.
    pub ha_housekeeping_interval_ms: u64,
    /// `pollNameServerInterval` (client): producers and consumers refresh their topic
    /// routes this often.
    pub poll_name_server_interval_ms: u64,
    /// `registerNameServerPeriod` (broker): a broker registers with every name server
    /// this often, so a restarted name server knows it again within one period.
    pub register_name_server_period_ms: u64,
    /// `heartbeatBrokerInterval` (client): a client heartbeats every broker of its
    /// routes this often, so a restarted broker knows a group's consumers again within
    /// one interval.
    pub heartbeat_broker_interval_ms: u64,
    /// Not a RocketMQ setting — the scenario's own bound: how long after the heal every
    /// delivery still owed is made and the cluster has settled. `None` (the default):
    /// [`Promise::settle_window_ms`]'s derivation from RocketMQ's intervals.
    pub settle_after_heal_ms: Option<u64>,
    /// Not a RocketMQ setting — the scenario's own bound: send to first delivery for a
    /// message sent once the cluster settled (a held pull is woken by its arrival).
    pub settled_delivery_ms: u64,
    /// Not a RocketMQ setting — the scenario's own bound: how long after the heal a
    /// send may still fail or answer weaker than SEND_OK. `None` (the default):
    /// [`Promise::ack_grace_window_ms`]'s derivation.
    pub ack_grace_ms: Option<u64>,
    /// `messageDelayLevel`, in ms per level (level n is entry n − 1): a message sent
    /// with DELAY n is never delivered before its store time plus entry n − 1 (a
    /// level above the table's length waits the last entry). RocketMQ's 18 levels by
    /// default; a scenario shortens them so delayed messages fit a run.
    #[serde(skip_serializing_if = "is_rocketmq_delay_levels")]
    pub delay_levels_ms: Vec<u64>,
    /// `flushDelayOffsetInterval`: a master persists how far each delay level has
    /// delivered this often, so a crash re-delivers only the copies made since (and
    /// not yet durable by) its last persist.
    pub flush_delay_offset_interval_ms: u64,
    /// `maxReconsumeTimes` (a group's `retryMaxTimes`): a message the group's listener
    /// failed this many times after its first failure is dead-lettered at the next
    /// one; each retry waits delay level 3 + its reconsume count so far. Left out of a
    /// written `meta` when it is RocketMQ's 16.
    #[serde(skip_serializing_if = "is_rocketmq_max_reconsume_times")]
    pub max_reconsume_times: u32,
    /// `rocketmq.broker.rebalance.lockMaxLiveTime`: a broker keeps an orderly
    /// consumer's queue lock this long after its last renewal.
    #[serde(skip_serializing_if = "is_rocketmq_lock_max_live_time")]
    pub lock_max_live_time_ms: u64,
    /// RocketMQ's documented exception to orderly exclusivity, declared by a scenario
    /// that wants it: a broker keeps its queue locks in memory, so after a master's
    /// restart another consumer may lock a queue whose holder still consumes until its
    /// next renewal fails. Off (the default): two orderly listeners of one queue at
    /// once are a violation whatever happened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub orderly_lock_lost_with_broker: bool,
    /// RocketMQ 4.x behaviour, declared by a scenario that wants it: an orderly
    /// consumer locks a queue only at the queue's master, so once a master's machine is
    /// lost for good, what its broker group holds (its slave included) is never
    /// consumed by an orderly group again. Off (the default): an orderly group misses
    /// such a message like any other group would.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub orderly_needs_master: bool,
    /// `consumeTimeout`: a concurrent consumer gives up on a listener that held a
    /// message this long, and hands the message back; its consumeTimeout sweep runs
    /// this often, so by twice this long the message was surely handed back. Left out
    /// of a written `meta` when it is RocketMQ's 15 minutes.
    #[serde(skip_serializing_if = "is_rocketmq_consume_timeout")]
    pub consume_timeout_ms: u64,
}

/// RocketMQ's default `consumeTimeout` (15 minutes).
pub const ROCKETMQ_CONSUME_TIMEOUT_MS: u64 = 15 * 60 * 1_000;

fn is_rocketmq_consume_timeout(ms: &u64) -> bool {
    *ms == ROCKETMQ_CONSUME_TIMEOUT_MS
}

/// RocketMQ's default `maxReconsumeTimes` (`SubscriptionGroupConfig.retryMaxTimes`).
pub const ROCKETMQ_MAX_RECONSUME_TIMES: u32 = 16;

/// The first delay level of a retry (`3 + reconsumeTimes`, reference C.5).
pub const RETRY_FIRST_DELAY_LEVEL: u32 = 3;

fn is_rocketmq_max_reconsume_times(times: &u32) -> bool {
    *times == ROCKETMQ_MAX_RECONSUME_TIMES
}

/// RocketMQ's `lockMaxLiveTime` default.
pub const ROCKETMQ_LOCK_MAX_LIVE_TIME_MS: u64 = 60_000;

fn is_rocketmq_lock_max_live_time(ms: &u64) -> bool {
    *ms == ROCKETMQ_LOCK_MAX_LIVE_TIME_MS
}

/// RocketMQ's default `messageDelayLevel` (`1s 5s 10s 30s 1m … 2h`), in ms.
pub const ROCKETMQ_DELAY_LEVELS_MS: [u64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];

fn is_rocketmq_delay_levels(levels: &[u64]) -> bool {
    levels == ROCKETMQ_DELAY_LEVELS_MS
}

impl Default for Promise {
    fn default() -> Self {
        Promise {
            flush_interval_commit_log_ms: 500,
            flush_commit_log_thorough_interval_ms: 10_000,
            fsync_max_ms: 10,
            ha_send_heartbeat_interval_ms: 5_000,
            slave_synchronize_interval_ms: 10_000,
            flush_consumer_offset_interval_ms: 5_000,
            persist_consumer_offset_interval_ms: 5_000,
            rebalance_interval_ms: 20_000,
            broker_suspend_max_time_ms: 15_000,
            ha_housekeeping_interval_ms: 20_000,
            poll_name_server_interval_ms: 30_000,
            register_name_server_period_ms: 30_000,
            heartbeat_broker_interval_ms: 30_000,
            settle_after_heal_ms: None,
            settled_delivery_ms: 5_000,
            ack_grace_ms: None,
            delay_levels_ms: ROCKETMQ_DELAY_LEVELS_MS.to_vec(),
            flush_delay_offset_interval_ms: 10_000,
            max_reconsume_times: ROCKETMQ_MAX_RECONSUME_TIMES,
            lock_max_live_time_ms: ROCKETMQ_LOCK_MAX_LIVE_TIME_MS,
            orderly_lock_lost_with_broker: false,
            orderly_needs_master: false,
            consume_timeout_ms: ROCKETMQ_CONSUME_TIMEOUT_MS,
        }
    }
}

impl Promise {
    /// The delay a message sent with DELAY `level` waits at least (0: none).
    pub fn delay_ms(&self, level: u32) -> u64 {
        if level == 0 {
            return 0;
        }
        let index = (level as usize).min(self.delay_levels_ms.len());
        index.checked_sub(1).map_or(0, |i| self.delay_levels_ms[i])
    }

    /// The delay a message handed back with reconsume count `reconsume_times` waits
    /// before it comes back: level 3 + that count (clamped to the table).
    pub fn retry_delay_ms(&self, reconsume_times: u32) -> u64 {
        self.delay_ms(RETRY_FIRST_DELAY_LEVEL.saturating_add(reconsume_times))
    }

    /// The longest an acknowledged record may live only in an ASYNC_FLUSH master's
    /// page cache: the thorough flush is due within its interval, looked for every
    /// flush interval, and then takes one fsync.
    pub fn async_flush_window_ms(&self) -> u64 {
        self.flush_commit_log_thorough_interval_ms
            .saturating_add(self.flush_interval_commit_log_ms)
            .saturating_add(self.fsync_max_ms)
    }

    /// The longest a strongly acknowledged record may live only on an ASYNC_MASTER
    /// while both ends are up: shipped within one flush interval and an fsync, and a
    /// dropped slave reconnects within two heartbeats.
    pub fn async_replication_window_ms(&self) -> u64 {
        self.flush_interval_commit_log_ms
            .saturating_add(self.fsync_max_ms)
            .saturating_add(self.ha_send_heartbeat_interval_ms.saturating_mul(2))
    }

    /// The longest two consumers of a clustering group both hold a queue without a
    /// fault: the old owner gives it up at its next rebalance (one rebalance interval)
    /// and its pull in flight may be held one long poll.
    pub fn handover_window_ms(&self) -> u64 {
        self.rebalance_interval_ms
            .saturating_add(self.broker_suspend_max_time_ms)
    }

    /// How long after a fault on a broker, a name server or a consumer the consumers
    /// of a group may still see different routes or consumer lists: a restarted name
    /// server learns a broker at its next registration and a client the route at its
    /// next poll; a restarted broker learns the consumers at their next heartbeat.
    pub fn view_convergence_ms(&self) -> u64 {
        self.register_name_server_period_ms
            .saturating_add(self.poll_name_server_interval_ms)
            .max(self.heartbeat_broker_interval_ms)
    }

    /// How long after the heal the cluster has settled and every delivery still owed is
    /// made: the declared `settle_after_heal_ms`, or by default one route poll (a broker
    /// restarted at the heal, or a name server lost, is learnt only then), one
    /// rebalance interval and one long-poll wake-up.
    pub fn settle_window_ms(&self) -> u64 {
        self.settle_after_heal_ms.unwrap_or_else(|| {
            self.poll_name_server_interval_ms
                .saturating_add(self.rebalance_interval_ms)
                .saturating_add(self.broker_suspend_max_time_ms)
        })
    }

    /// How long after the heal sends may still fail or answer weaker than SEND_OK: the
    /// declared `ack_grace_ms`, or by default one route poll (a producer keeps a stale
    /// route at most that long).
    pub fn ack_grace_window_ms(&self) -> u64 {
        self.ack_grace_ms
            .unwrap_or(self.poll_name_server_interval_ms)
    }
}

/// A consumer group's subscription, as the checker needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub group: String,
    pub topic: String,
    /// `*` or `a || b` (RocketMQ's tag expression).
    pub tag_expression: String,
    pub broadcasting: bool,
    /// The group's listener is orderly (`MessageListenerOrderly`): its members lock
    /// queues at the masters, and each sharding key must be consumed in send order.
    /// Absent (older histories): concurrent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orderly: bool,
    /// The consumers' `maxReconsumeTimes`. Absent: RocketMQ's -1, i.e.
    /// `Promise::max_reconsume_times` for a concurrent group and no maximum (never
    /// dead-lettered) for an orderly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconsume_times: Option<u32>,
    /// Client nodes consuming for the group.
    pub consumers: Vec<u32>,
}
