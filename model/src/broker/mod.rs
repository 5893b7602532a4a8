//! The broker (`BrokerController`): a node that owns a message store and answers
//! producers, consumers, name servers and its master or slaves.
//!
//! Boot is recovery: [`Broker::boot`] rebuilds the store from the disk (abnormal mode if
//! the abort marker survived) and loads the config files; the broker answers requests
//! once the store's boot sync has completed.
//!
//! Where to look: sends and their flush/replica waits in `send.rs`; group commit and
//! the timed flush in `flush.rs`; pulls and long polling in `pull.rs`; consumer groups
//! in `consumers.rs`; consumer offsets in `offsets.rs`; topics and auto-creation in
//! `topics.rs`; master/slave replication in `ha.rs`; orderly consumers' queue locks
//! (LOCK_BATCH_MQ) in `rebalance_lock_manager.rs`; what `mqadmin` asks (topic
//! creation, topic and consume stats, messages by offset) in `admin_processor.rs`,
//! and resetting a group's offsets to a time in `reset_offset.rs`; delivery of
//! delayed messages in `schedule_message_service.rs`; messages consumers hand back
//! (retry and dead-letter queues) in `consumer_send_msg_back.rs`; settings in
//! `config.rs`.

mod admin_processor;
mod broker_stats;
pub mod config;
mod consumer_send_msg_back;
mod consumers;
mod flush;
mod ha;
mod high_watermark;
mod offsets;
mod pull;
mod rebalance_lock_manager;
mod reset_offset;
mod schedule_message_service;
mod send;
mod send_batch;
#[cfg(test)]
mod test_harness;
mod topics;

use std::net::IpAddr;

use crate::node::{Ctx, Input, Node, NodeId};
use crate::protocol::{response_code, BrokerIdentity, Message, RegisterBroker, Request, Response};
use crate::store::config_file::ConfigEvent;
use crate::store::disk::{Disk, DiskError, SyncTicket};
use crate::store::{recover, Host, MessageStore, StoreEvent, StoreState};
pub use config::{BrokerConfig, BrokerRole, FlushDiskType};
pub use consumer_send_msg_back::{
    send_back_target, SendBackTarget, DLQ_NUMS_PER_GROUP, RETRY_MAX_TIMES, RETRY_QUEUE_NUMS,
};

/// Timer kinds: a tag in the high 32 bits, an id (for per-request timers) below.
mod timer {
    pub const REGISTER: u64 = 1 << 32;
    pub const ASYNC_FLUSH: u64 = 2 << 32;
    pub const LOGIC_FLUSH: u64 = 3 << 32;
    pub const PERSIST_OFFSETS: u64 = 4 << 32;
    pub const HOLD_CHECK: u64 = 5 << 32;
    pub const CLIENT_SCAN: u64 = 6 << 32;
    pub const HA_TICK: u64 = 7 << 32;
    pub const SEND_DEADLINE: u64 = 8 << 32;
    pub const SLAVE_SYNC: u64 = 9 << 32;
    /// The delay level in the low bits.
    pub const SCHEDULE: u64 = 10 << 32;
    pub const PERSIST_DELAY_OFFSETS: u64 = 11 << 32;
    pub const TAG_MASK: u64 = !0xffff_ffff;
}

/// A slave's first SlaveSynchronize comes this long after boot (RocketMQ: 3 s).
const SLAVE_SYNC_FIRST_MS: u64 = 3_000;

/// Where the broker is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The store's boot sync is in flight.
    Booting,
    Running,
    /// A clean shutdown is flushing.
    ShuttingDown,
    /// Shut down cleanly: the process may exit.
    Stopped,
    /// Recovery or the disk failed: the broker answers every request with an error.
    Failed,
}

pub struct Broker {
    config: BrokerConfig,
    store: Option<MessageStore>,
    phase: Phase,
    store_host: Host,
    topics: topics::Topics,
    offsets: offsets::ConsumerOffsets,
    schedule: schedule_message_service::ScheduleMessageService,
    consumers: consumers::ConsumerGroups,
    rebalance_locks: rebalance_lock_manager::RebalanceLockManager,
    sends: send::PendingSends,
    flush: flush::FlushState,
    holds: pull::HeldPulls,
    hw: high_watermark::HighWatermark,
    ha: ha::HaState,
    stats: broker_stats::BrokerStats,
    /// When this broker started (its clock), for GET_BROKER_RUNTIME_INFO.
    boot_timestamp_ms: u64,
    /// The master's broker address a name server told this slave (`masterAddr`).
    learned_master_addr: Option<String>,
    /// The master's HA address a name server told this slave (`haServerAddr`).
    learned_master_ha_addr: Option<String>,
}

impl Broker {
    /// Boots from `disk`: store recovery, then the config files.
    pub fn boot(config: BrokerConfig, disk: &mut dyn Disk) -> Broker {
        let (store, phase) = match recover(disk, config.store.clone()) {
            Ok((store, report)) => {
                tracing::info!(?report.mode, records = report.records_recovered, "store recovered");
                (Some(store), Phase::Booting)
            }
            Err(e) => {
                tracing::error!(error = %e, "store recovery failed; broker serves nothing");
                (None, Phase::Failed)
            }
        };
        let topics = topics::Topics::load(&config, disk);
        let offsets = offsets::ConsumerOffsets::load(disk);
        let schedule = schedule_message_service::ScheduleMessageService::load(disk);
        Broker {
            store_host: Host {
                ip: IpAddr::from([127, 0, 0, 1]),
                port: 10911,
            },
            topics,
            offsets,
            schedule,
            consumers: consumers::ConsumerGroups::default(),
            rebalance_locks: rebalance_lock_manager::RebalanceLockManager::default(),
            sends: send::PendingSends::default(),
            flush: flush::FlushState::default(),
            holds: pull::HeldPulls::default(),
            hw: high_watermark::HighWatermark::default(),
            ha: ha::HaState::default(),
            stats: broker_stats::BrokerStats::default(),
            boot_timestamp_ms: 0,
            learned_master_addr: None,
            learned_master_ha_addr: None,
            store,
            phase,
            config,
        }
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn store(&self) -> Option<&MessageStore> {
        self.store.as_ref()
    }

    /// Starts a clean shutdown: flush everything, persist consumer offsets, write the
    /// checkpoint and remove the abort marker; [`Phase::Stopped`] once every sync has
    /// landed.
    fn begin_shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        if !matches!(self.phase, Phase::Running | Phase::Booting) {
            return;
        }
        self.phase = Phase::ShuttingDown;
        self.unregister(ctx);
        self.persist_offsets(ctx);
        self.persist_delay_offsets(ctx);
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.begin_shutdown(ctx.disk()) {
                tracing::error!(error = %e, "shutdown flush failed");
                self.phase = Phase::Failed;
            }
        }
        self.check_stopped();
    }

    /// Recovery is done and nothing more is waited for: the broker serves.
    fn run(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.phase = Phase::Running;
        self.register(ctx);
        self.connect_to_master(ctx);
        self.schedule_start(ctx);
    }

    fn check_stopped(&mut self) {
        if self.phase == Phase::ShuttingDown
            && self
                .store
                .as_ref()
                .is_none_or(|s| s.state() == StoreState::Closed)
            && self.offsets.persisted().file().is_idle()
            && self.schedule.persisted().file().is_idle()
            && self.topics.is_idle()
        {
            self.phase = Phase::Stopped;
        }
    }

    fn arm_periodic(&mut self, ctx: &mut dyn Ctx<Message>) {
        ctx.set_timer(0, timer::REGISTER);
        if self.config.flush_disk_type == FlushDiskType::AsyncFlush || self.config.is_slave() {
            ctx.set_timer(self.config.flush_interval_commit_log_ms, timer::ASYNC_FLUSH);
        }
        ctx.set_timer(
            self.config.flush_interval_consume_queue_ms,
            timer::LOGIC_FLUSH,
        );
        ctx.set_timer(
            self.config.flush_consumer_offset_interval_ms,
            timer::PERSIST_OFFSETS,
        );
        ctx.set_timer(
            self.config.long_polling_check_interval_ms,
            timer::HOLD_CHECK,
        );
        ctx.set_timer(self.config.client_scan_interval_ms, timer::CLIENT_SCAN);
        ctx.set_timer(self.config.ha_heartbeat_interval_ms, timer::HA_TICK);
        if self.config.is_slave() {
            // RocketMQ: first after 3 s, then every 10 s.
            let first_ms = SLAVE_SYNC_FIRST_MS.min(self.config.slave_synchronize_interval_ms);
            ctx.set_timer(first_ms, timer::SLAVE_SYNC);
        }
    }

    fn on_timer(&mut self, ctx: &mut dyn Ctx<Message>, kind: u64) {
        if matches!(self.phase, Phase::Stopped | Phase::Failed) {
            return;
        }
        let again = |ctx: &mut dyn Ctx<Message>, after_ms: u64| {
            ctx.set_timer(after_ms, kind);
        };
        match kind & timer::TAG_MASK {
            timer::REGISTER => {
                if self.phase == Phase::Running {
                    self.register(ctx);
                }
                again(ctx, self.config.register_name_server_period_ms);
            }
            timer::ASYNC_FLUSH => {
                self.async_flush_tick(ctx);
                again(ctx, self.config.flush_interval_commit_log_ms);
            }
            timer::LOGIC_FLUSH => {
                if let Some(store) = self.store.as_mut().filter(|s| s.is_ready()) {
                    if let Err(e) = store.request_logic_flush(ctx.disk()) {
                        tracing::error!(error = %e, "consume queue flush failed");
                    }
                }
                again(ctx, self.config.flush_interval_consume_queue_ms);
            }
            timer::PERSIST_OFFSETS => {
                self.persist_offsets(ctx);
                again(ctx, self.config.flush_consumer_offset_interval_ms);
            }
            timer::HOLD_CHECK => {
                self.check_held_pulls(ctx);
                again(ctx, self.config.long_polling_check_interval_ms);
            }
            timer::CLIENT_SCAN => {
                self.scan_clients(ctx);
                self.stats.sample(ctx.now_ms());
                again(ctx, self.config.client_scan_interval_ms);
            }
            timer::HA_TICK => {
                self.ha_tick(ctx);
                again(ctx, self.config.ha_heartbeat_interval_ms);
            }
            timer::SLAVE_SYNC => {
                if self.phase == Phase::Running {
                    self.slave_synchronize(ctx);
                }
                again(ctx, self.config.slave_synchronize_interval_ms);
            }
            timer::SEND_DEADLINE => self.send_deadline(ctx, kind & !timer::TAG_MASK),
            timer::SCHEDULE => {
                let level = (kind & !timer::TAG_MASK) as i32;
                self.schedule_run(ctx, level);
            }
            timer::PERSIST_DELAY_OFFSETS => self.schedule_persist_tick(ctx),
            _ => {}
        }
    }

    fn on_sync_complete(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) {
        let mut what = "consumer offsets";
        let mut event =
            self.offsets
                .persisted()
                .file()
                .on_sync_complete(ctx.disk(), ticket, result.clone());
        if event == ConfigEvent::NotMine {
            what = "delay offsets";
            event = self.schedule.persisted().file().on_sync_complete(
                ctx.disk(),
                ticket,
                result.clone(),
            );
        }
        if event != ConfigEvent::NotMine {
            if let ConfigEvent::Failed(e) = event {
                tracing::warn!(error = %e, "{what} not persisted");
            }
            if self.phase == Phase::Booting && self.schedule_on_boot_persisted() {
                self.run(ctx);
            }
            self.check_stopped();
            return;
        }
        if self
            .topics
            .on_sync_complete(ctx.disk(), ticket, result.clone())
        {
            return;
        }
        let Some(store) = self.store.as_mut() else {
            return;
        };
        match store.on_sync_complete(ctx.disk(), ticket, result) {
            StoreEvent::Ready => {
                if self.phase == Phase::Booting && !self.schedule_correct_at_boot(ctx) {
                    self.run(ctx);
                }
            }
            StoreEvent::CommitLogDurable(durable) => {
                self.schedule_on_durable(durable);
                self.on_durable(ctx, durable);
            }
            StoreEvent::Closed => self.check_stopped(),
            StoreEvent::Failed(e) => {
                tracing::error!(error = %e, "store failed; broker no longer accepts writes");
            }
            StoreEvent::Nothing | StoreEvent::NotMine => {}
        }
        // Group commit: records that arrived while a flush was in flight need the next.
        self.maybe_group_commit(ctx);
    }

    fn on_request(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        request: Request,
    ) {
        let reply = |ctx: &mut dyn Ctx<Message>, response: Response| {
            ctx.send(from, Message::Response { opaque, response });
        };
        if self.phase != Phase::Running {
            // Oneway requests get no answer, whatever the state.
            if request.is_oneway() {
                return;
            }
            let remark = format!("broker is {:?}", self.phase);
            return reply(
                ctx,
                Response::Error {
                    code: response_code::SERVICE_NOT_AVAILABLE,
                    remark,
                },
            );
        }
        match request {
            Request::SendMessage(mut req) => {
                self.handle_retry_and_dlq(ctx, &mut req);
                if let Some(response) = self.on_send(ctx, from, opaque, req) {
                    reply(ctx, response);
                }
            }
            Request::SendBatchMessage(req) => {
                if let Some(response) = self.on_send_batch(ctx, from, opaque, req) {
                    reply(ctx, response);
                }
            }
            Request::PullMessage(req) => {
                if let Some(response) = self.on_pull(ctx, from, opaque, req, true) {
                    reply(ctx, response);
                }
            }
            Request::QueryConsumerOffset(key) => {
                let response = self.query_offset(&key);
                reply(ctx, response);
            }
            Request::UpdateConsumerOffset { key, offset } => {
                self.commit_offset(ctx, &key, offset);
            }
            Request::GetAllConsumerOffset => {
                let table = self.offsets.table().clone();
                reply(ctx, Response::ConsumerOffsets(table));
            }
            Request::GetAllDelayOffset => {
                let response = Self::all_delay_offset(ctx.disk());
                reply(ctx, response);
            }
            Request::GetMaxOffset { topic, queue_id } => {
                // What a pull may serve, not the page cache's end (`high_watermark.rs`).
                let max = self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), &topic, queue_id);
                reply(ctx, Response::Offset(max));
            }
            Request::HeartBeat(data) => {
                self.create_retry_topics(ctx, &data);
                let now_ms = ctx.now_ms();
                self.on_heartbeat(ctx, from, data, now_ms);
                reply(ctx, Response::HeartBeat);
            }
            Request::UnregisterClient { consumer_group, .. } => {
                // Producers are not tracked, so only a consumer group has anything to drop.
                if let Some(group) = consumer_group {
                    self.consumers.unregister(ctx, &group, from);
                }
                reply(ctx, Response::UnregisterClient);
            }
            Request::GetConsumerListByGroup { consumer_group } => {
                let ids = self.consumers.client_ids(&consumer_group);
                let response = if ids.is_empty() {
                    Response::Error {
                        code: response_code::SYSTEM_ERROR,
                        remark: format!("no consumer for this group, {consumer_group}"),
                    }
                } else {
                    Response::ConsumerList(ids)
                };
                reply(ctx, response);
            }
            Request::ConsumerSendMsgBack(req) => {
                let response = self.on_consumer_send_msg_back(ctx, from, opaque, req);
                reply(ctx, response);
            }
            Request::LockBatchMq(body) => {
                let locked = self.rebalance_locks.lock(
                    &body.consumer_group,
                    &body.client_id,
                    &body.queues,
                    // Aged by a clock a step of the wall clock cannot move: a lock
                    // must neither outlive its 60 s nor lapse early.
                    ctx.monotonic_ms(),
                );
                reply(ctx, Response::LockBatchMq(locked));
            }
            Request::UnlockBatchMq(body) => {
                self.rebalance_locks
                    .unlock(&body.consumer_group, &body.client_id, &body.queues);
                reply(ctx, Response::UnlockBatchMq);
            }
            Request::UpdateAndCreateTopic(config) => {
                let response = self.update_and_create_topic(ctx, config);
                reply(ctx, response);
            }
            Request::GetMinOffset { topic, queue_id } => {
                let min = self.min_queue_offset(&topic, queue_id);
                reply(ctx, Response::Offset(min));
            }
            Request::ViewMessageById { commit_log_offset } => {
                let response = self.view_message(ctx, commit_log_offset);
                reply(ctx, response);
            }
            Request::GetTopicStatsInfo { topic } => {
                let response = self.topic_stats(ctx, &topic);
                reply(ctx, response);
            }
            Request::GetBrokerRuntimeInfo => {
                let response = self.runtime_info(ctx);
                reply(ctx, response);
            }
            Request::GetConsumeStats {
                consumer_group,
                topic,
            } => {
                let response = self.consume_stats(ctx, &consumer_group, topic.as_deref());
                reply(ctx, response);
            }
            Request::InvokeBrokerToResetOffset(req) => {
                let response = self.reset_offset(ctx, req);
                reply(ctx, response);
            }
            Request::HaReport { slave_max_offset } => {
                self.on_ha_report(ctx, from, slave_max_offset);
            }
            Request::HaTransfer {
                master_offset,
                data,
            } => self.on_ha_transfer(ctx, from, master_offset, &data),
            // Never answer a oneway request, even one a broker has no use for.
            other if other.is_oneway() => {}
            other => reply(
                ctx,
                Response::Error {
                    code: response_code::REQUEST_CODE_NOT_SUPPORTED,
                    remark: format!("request code {} not supported by a broker", other.code()),
                },
            ),
        }
    }

    fn identity(&self, ctx: &dyn Ctx<Message>) -> BrokerIdentity {
        BrokerIdentity {
            cluster_name: self.config.cluster_name.clone(),
            broker_name: self.config.broker_name.clone(),
            broker_addr: ctx.my_addr(),
            broker_id: self.config.broker_id,
        }
    }

    /// REGISTER_BROKER to every name server (`registerBrokerAll`).
    fn register(&mut self, ctx: &mut dyn Ctx<Message>) {
        let request = Request::RegisterBroker(RegisterBroker {
            broker: self.identity(ctx),
            ha_server_addr: self
                .config
                .ha_server_addr
                .clone()
                .unwrap_or_else(|| ctx.my_addr()),
            topic_config_table: self.topics.table().topic_config_table.clone(),
            data_version: self.topics.table().data_version.clone(),
        });
        self.send_to_namesrvs(ctx, &request);
    }

    fn unregister(&mut self, ctx: &mut dyn Ctx<Message>) {
        let request = Request::UnregisterBroker(self.identity(ctx));
        self.send_to_namesrvs(ctx, &request);
    }

    fn send_to_namesrvs(&mut self, ctx: &mut dyn Ctx<Message>, request: &Request) {
        for addr in &self.config.namesrv_addrs {
            match ctx.resolve(addr) {
                Some(ns) => ctx.send(
                    ns,
                    Message::Request {
                        opaque: 0,
                        request: request.clone(),
                    },
                ),
                None => tracing::warn!(addr, "name server address resolves to nothing"),
            }
        }
    }

    fn on_response(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        response: Response,
    ) {
        // The only requests a broker sends that are answered: REGISTER_BROKER and a
        // slave's GET_ALL_CONSUMER_OFFSET and GET_ALL_DELAY_OFFSET.
        match response {
            Response::RegisterBroker(result) if self.config.is_slave() => {
                if let Some(addr) = result.master_addr.filter(|a| !a.is_empty()) {
                    self.learned_master_addr = Some(addr);
                }
                if let Some(addr) = result.ha_server_addr.filter(|a| !a.is_empty()) {
                    let first = self.learned_master_ha_addr.as_deref() != Some(addr.as_str());
                    self.learned_master_ha_addr = Some(addr);
                    // Without `haMasterAddress` this is the first the slave hears of
                    // where to replicate from: report now, not at the next 5 s tick.
                    if first && self.config.ha_master_addr.is_none() {
                        tracing::info!(
                            master_ha_addr = self.learned_master_ha_addr.as_deref(),
                            "replicating from the master the name server gave"
                        );
                        self.connect_to_master(ctx);
                    }
                }
            }
            Response::ConsumerOffsets(table) if self.phase == Phase::Running => {
                self.on_master_offsets(ctx, from, opaque, &table);
            }
            Response::DelayOffsets(text) if self.phase == Phase::Running => {
                self.on_master_delay_offsets(ctx, from, &text);
            }
            _ => {}
        }
    }
}

impl Node<Message> for Broker {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.boot_timestamp_ms = ctx.now_ms();
        self.stats.sample(self.boot_timestamp_ms);
        let addr = ctx.my_addr();
        if let Some((ip, port)) = addr.rsplit_once(':') {
            if let (Ok(ip), Ok(port)) = (ip.parse(), port.parse()) {
                self.store_host = Host { ip, port };
            }
        }
        if self.phase == Phase::Failed {
            return;
        }
        // Recovery may have finished without any sync to wait for (the REGISTER timer
        // armed below then registers).
        if self.store.as_ref().is_some_and(|s| s.is_ready()) && !self.schedule_correct_at_boot(ctx)
        {
            self.phase = Phase::Running;
            self.connect_to_master(ctx);
            self.schedule_start(ctx);
        }
        self.arm_periodic(ctx);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Packet {
                from,
                msg: Message::Request { opaque, request },
            } => self.on_request(ctx, from, opaque, request),
            Input::Packet {
                from,
                msg: Message::Response { opaque, response },
            } => self.on_response(ctx, from, opaque, response),
            Input::Timer { kind, .. } => self.on_timer(ctx, kind),
            Input::SyncComplete { ticket, result } => self.on_sync_complete(ctx, ticket, result),
            Input::ConnectionBroken { peer } => {
                self.consumers.on_channel_closed(ctx, peer);
                self.ha_on_broken(peer);
                self.offsets_on_broken(ctx, peer);
                self.holds.drop_peer(peer);
                self.sends.drop_peer(peer);
            }
        }
    }

    fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.begin_shutdown(ctx);
    }

    fn is_stopped(&self) -> bool {
        matches!(self.phase, Phase::Stopped | Phase::Failed)
    }
}
