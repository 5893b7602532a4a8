//! The push consumer (reference C; 4.9.8 `DefaultMQPushConsumerImpl`, `RebalanceImpl`,
//! `PullAPIWrapper`), consuming concurrently with a listener that always returns
//! CONSUME_SUCCESS at once: a delivered message counts as consumed when delivered.
//!
//! Life of a consumer: look up the topic's route; heartbeat to every broker of it (at
//! once, then every 30 s) so the brokers know the group's members; rebalance (at once,
//! every 20 s, and when a broker says the membership changed) to decide which queues
//! are ours; for each newly owned queue find where to start (the broker's committed
//! offset, or the local file when broadcasting), then long-poll it: one pull in flight
//! per queue, the next sent as soon as one is answered, 3 s later after an error.
//! Offsets are committed every 5 s (`offset_store.rs`).
//!
//! Each ownership of a queue has a generation: a pull answered after the queue was
//! given away (or given away and taken back) belongs to an older generation and is
//! dropped, so a stale answer can never move the offset or deliver twice.
//!
//! Here: the configuration, the consumer's state, its lifecycle and the dispatch of
//! inputs. `route.rs` looks up routes and heartbeats, `ownership.rs` rebalances,
//! `start_offset.rs` finds where an owned queue starts, `pull.rs` long-polls, delivers
//! and commits, `reset_offset.rs` applies a broker's offset reset, `rebalance_lock.rs`
//! locks an orderly consumer's queues at their masters.

use std::collections::BTreeMap;

use crate::node::{Ctx, Input, TimerId};
use crate::protocol::{response_code, Message, MessageModel, Request, Response, TopicRouteData};
use crate::subscription::SubscriptionData;

use self::rebalance_lock::{LockPurpose, RebalanceLocks};
use super::offset_store::OffsetStore;
use super::queue_table::QueueTable;

use super::{
    host_of, timer_kind, ClientEvent, MessageQueue, NameServers, RouteAnswer, Rpc, RpcOutcome,
};
pub use consume_message_concurrently_service::{
    ConsumeAtOnce, ConsumeConcurrentlyStatus, ListenerAnswer, MessageListenerConcurrently,
};
use consume_message_orderly_service::OrderlyQueue;
pub use consume_message_orderly_service::{
    ConsumeOrderlyAtOnce, ConsumeOrderlyStatus, MessageListenerOrderly, OrderlyAnswer,
    SUSPEND_CURRENT_QUEUE_TIME_MS,
};
#[cfg(feature = "planted-bugs")]
pub use planted_bug::PlantedBug;
use process_queue::ProcessQueue;
pub use rebalance_lock::{
    REBALANCE_LATER_MS, REBALANCE_LOCK_INTERVAL_MS, REBALANCE_LOCK_MAX_LIVE_TIME_MS,
};

mod consume_message_concurrently_service;
mod consume_message_orderly_service;
mod ownership;
mod planted_bug;
mod process_queue;
mod pull;
mod rebalance_lock;
mod reset_offset;
mod retry_subscription;
mod route;
mod send_message_back;
mod start_offset;

/// How long each periodic heartbeat follows a periodic route refresh:
/// `MQClientInstance.startScheduledTask` first runs the refresh after 10 ms and the
/// heartbeat after 1 s, then each every 30 s.
pub const HEARTBEAT_PHASE_MS: u64 = 990;

/// Where a queue without a stored offset starts (`ConsumeFromWhere`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ConsumeFromWhere {
    /// Offset 0: everything the queue still holds.
    FirstOffset,
    /// The queue's max offset: only what arrives from now on.
    LastOffset,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub consumer_group: String,
    /// `ip:port` of each name server.
    pub namesrv_addrs: Vec<String>,
    pub topic: String,
    /// `*`, or tags joined by `||`.
    pub tag_expression: String,
    pub message_model: MessageModel,
    pub consume_from_where: ConsumeFromWhere,
    /// `pullBatchSize`: `maxMsgNums` of each pull.
    pub pull_batch_size: u32,
    pub rebalance_interval_ms: u64,
    /// `heartbeatBrokerInterval`.
    pub heartbeat_interval_ms: u64,
    /// `persistConsumerOffsetInterval`.
    pub persist_offset_interval_ms: u64,
    /// `pollNameServerInterval`.
    pub poll_name_server_interval_ms: u64,
    /// `BROKER_SUSPEND_MAX_TIME_MILLIS`: how long a broker may hold a pull.
    pub pull_suspend_timeout_ms: u64,
    /// `CONSUMER_TIMEOUT_MILLIS_WHEN_SUSPEND`: the RPC timeout of a pull.
    pub pull_rpc_timeout_ms: u64,
    /// `PULL_TIME_DELAY_MILLS_WHEN_EXCEPTION`.
    pub pull_retry_delay_ms: u64,
    /// The listener is a `MessageListenerOrderly`: a clustering consumer locks each
    /// queue at its master before consuming it (`rebalance_lock.rs`).
    pub consume_orderly: bool,
    /// `consumeTimeout`: a concurrent listener still working on a message this long
    /// after it was handed is given up on, and the message handed back for a retry
    /// (`ProcessQueue.cleanExpiredMsg`, swept this often).
    pub consume_timeout_ms: u64,
    /// `maxReconsumeTimes`: how many times a failed message is consumed again before
    /// it is dead-lettered. `None` is RocketMQ's -1: the group's 16 for a concurrent
    /// listener (`send_message_back.rs`), no end for an orderly one
    /// (`consume_message_orderly_service.rs`).
    pub max_reconsume_times: Option<i32>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            consumer_group: "DEFAULT_CONSUMER".to_string(),
            namesrv_addrs: Vec::new(),
            topic: String::new(),
            tag_expression: "*".to_string(),
            message_model: MessageModel::Clustering,
            // RocketMQ defaults to LastOffset; the scenarios want every message.
            consume_from_where: ConsumeFromWhere::FirstOffset,
            pull_batch_size: 32,
            rebalance_interval_ms: 20_000,
            heartbeat_interval_ms: 30_000,
            persist_offset_interval_ms: 5_000,
            poll_name_server_interval_ms: 30_000,
            pull_suspend_timeout_ms: 15_000,
            pull_rpc_timeout_ms: 30_000,
            pull_retry_delay_ms: 3_000,
            consume_orderly: false,
            // RocketMQ's 15 minutes.
            consume_timeout_ms: 15 * 60 * 1_000,
            max_reconsume_times: None,
        }
    }
}

#[derive(Clone, Debug)]
enum Call {
    Route,
    /// The group's retry topic's route (`retry_subscription.rs`).
    RetryRoute,
    ConsumerList,
    QueryOffset {
        mq: MessageQueue,
        generation: u64,
    },
    MaxOffset {
        mq: MessageQueue,
        generation: u64,
    },
    Pull {
        mq: MessageQueue,
        generation: u64,
        /// The pull went to a slave.
        from_slave: bool,
    },
    Lock {
        queues: std::collections::BTreeSet<MessageQueue>,
        asked_ms: u64,
        purpose: LockPurpose,
    },
    /// An orderly consumer's copy of the message at `queue_offset`, past its maximum,
    /// sent to `%RETRY%{group}` for the dead-letter queue
    /// (`consume_message_orderly_service.rs`).
    OrderlyDeadLetter {
        mq: MessageQueue,
        generation: u64,
        queue_offset: u64,
    },
    /// CONSUMER_SEND_MSG_BACK of the message at `queue_offset` (`send_message_back.rs`).
    SendBack {
        mq: MessageQueue,
        generation: u64,
        queue_offset: u64,
    },
    /// The send of a failed message to the retry topic after its hand-back failed.
    SendBackFallback {
        mq: MessageQueue,
        generation: u64,
        queue_offset: u64,
    },
}

/// A queue this consumer owns. At any time exactly one thing is under way for it: a
/// request (offset lookup or pull) in flight, or a retry timer.
#[derive(Clone, Debug)]
struct OwnedQueue {
    generation: u64,
    /// Where the next pull starts; `None` until the start offset is known (and
    /// `Owned` was emitted).
    next_offset: Option<u64>,
    /// The last pull answer suggested reading from the slave (`suggestWhichBrokerId`).
    pull_from_slave: bool,
    /// The broker id the last offset request (query or max offset) went to.
    offset_from_broker_id: Option<u64>,
    retry_timer: Option<TimerId>,
    /// Broadcasting, after PULL_OFFSET_MOVED: the corrected offset (`next_offset`) is
    /// being written to the local file. The new span (`Owned`) and the pulls wait until
    /// the file holding it is in place, the way RocketMQ's re-created pull request
    /// reads its start from the store.
    awaiting_file: bool,
    /// The messages handed to the listener that it has not answered for yet (an
    /// orderly consumer's: every pulled message not consumed yet).
    process_queue: ProcessQueue,
    /// An orderly consumer's one-at-a-time consumption of the queue.
    orderly: OrderlyQueue,
}

pub struct PushConsumer {
    cfg: ConsumerConfig,
    /// The group's subscription, parsed by the parser the broker uses too; the
    /// broker filters by tag hash code, collisions are settled here by the exact TAGS
    /// string (`PullAPIWrapper.processPullResult`).
    filter: SubscriptionData,
    client_id: String,
    rpc: Rpc<Call>,
    namesrv: NameServers,
    route: Option<TopicRouteData>,
    /// `Some(name servers left to try)` while a route lookup is in flight.
    route_lookup: Option<usize>,
    /// Clustering: the group's retry topic, subscribed with `*`.
    retry: Option<retry_subscription::RetrySubscription>,
    queues: QueueTable<OwnedQueue>,
    next_generation: u64,
    offsets: OffsetStore,
    /// A consumer-list request is in flight; `rebalance_again`: another rebalance was
    /// asked for meanwhile and runs when it is answered.
    rebalance_in_flight: bool,
    rebalance_again: bool,
    retry_timers: BTreeMap<TimerId, (MessageQueue, u64)>,
    /// Failed messages that could not be handed back, by the timer that re-hands them.
    consume_later: BTreeMap<TimerId, send_message_back::ConsumeLater>,
    /// The consumeTimeout sweep, armed while a listener holds a message.
    clean_expired_timer: Option<TimerId>,
    poll_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    rebalance_timer: Option<TimerId>,
    persist_timer: Option<TimerId>,
    started: bool,
    stopped: bool,
    /// Commits made as a side effect of pulls (COMMIT_OFFSET), reported with the
    /// events of the input that caused them.
    pull_commits: Vec<ClientEvent>,
    /// An orderly consumer's queue locks.
    locks: RebalanceLocks,
    listener: Box<dyn MessageListenerConcurrently>,
    orderly_listener: Box<dyn MessageListenerOrderly>,
    /// Orderly queues resting after a suspend: timer → (queue, generation).
    suspend_timers: BTreeMap<TimerId, (MessageQueue, u64)>,
    /// A bug this consumer was built with (`planted_bug.rs`); never set by default.
    #[cfg(feature = "planted-bugs")]
    planted: Option<PlantedBug>,
}

impl PushConsumer {
    pub fn new(cfg: ConsumerConfig) -> PushConsumer {
        let namesrv = NameServers::new(cfg.namesrv_addrs.clone());
        let offsets = OffsetStore::broker(&cfg.consumer_group);
        let retry = (cfg.message_model == MessageModel::Clustering)
            .then(|| retry_subscription::RetrySubscription::new(&cfg.consumer_group));
        PushConsumer {
            filter: SubscriptionData::parse(&cfg.tag_expression),
            cfg,
            client_id: String::new(),
            rpc: Rpc::new(),
            namesrv,
            route: None,
            route_lookup: None,
            retry,
            queues: QueueTable::new(),
            next_generation: 0,
            offsets,
            rebalance_in_flight: false,
            rebalance_again: false,
            retry_timers: BTreeMap::new(),
            consume_later: BTreeMap::new(),
            clean_expired_timer: None,
            poll_timer: None,
            heartbeat_timer: None,
            rebalance_timer: None,
            persist_timer: None,
            started: false,
            stopped: false,
            pull_commits: Vec::new(),
            locks: RebalanceLocks::default(),
            listener: Box::new(ConsumeAtOnce),
            orderly_listener: Box::new(ConsumeOrderlyAtOnce),
            suspend_timers: BTreeMap::new(),
            #[cfg(feature = "planted-bugs")]
            planted: None,
        }
    }

    pub fn config(&self) -> &ConsumerConfig {
        &self.cfg
    }

    /// The id this consumer registers with brokers (set by `start`).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The queues this consumer owns and pulls now (start offset known).
    pub fn owned_queues(&self) -> Vec<MessageQueue> {
        owned_in(&self.queues).cloned().collect()
    }

    fn clustering(&self) -> bool {
        self.cfg.message_model == MessageModel::Clustering
    }

    pub fn start(&mut self, ctx: &mut dyn Ctx<Message>) {
        assert!(!self.started, "a consumer starts once");
        self.started = true;
        let my_addr = ctx.my_addr();
        let ip = host_of(&my_addr);
        // RocketMQ gives clustering consumers a per-process instance name (the pid),
        // and leaves broadcasting ones at DEFAULT, which keeps their offset file's
        // path stable across restarts.
        self.client_id = if self.clustering() {
            format!("{ip}@{}", ctx.random_u64() % 1_000_000)
        } else {
            format!("{ip}@DEFAULT")
        };
        if !self.clustering() {
            self.offsets =
                OffsetStore::local_file(&self.cfg.consumer_group, &self.client_id, ctx.disk());
        }
        self.namesrv.start(ctx);
        self.lookup_route(ctx);
        // `start()` has just looked up the routes (and heartbeats once they arrive);
        // the periodic refresh and heartbeat follow, the heartbeat `HEARTBEAT_PHASE_MS`
        // after the refresh as in `MQClientInstance.startScheduledTask`. The phase
        // matters: a heartbeat goes to the brokers of the routes as they are, so one
        // that fired together with the refresh would miss a broker the refresh just
        // brought back, and that broker would not list us (nor would we own its
        // queues) for another heartbeat interval. The scheduler's first runs at 10 ms
        // and 1 s would only repeat what `start()` just did, and are left out.
        self.poll_timer = Some(ctx.set_timer(
            self.cfg.poll_name_server_interval_ms,
            timer_kind::POLL_NAME_SERVER,
        ));
        self.heartbeat_timer = Some(ctx.set_timer(
            self.cfg.heartbeat_interval_ms + HEARTBEAT_PHASE_MS,
            timer_kind::HEARTBEAT,
        ));
        self.rebalance_timer =
            Some(ctx.set_timer(self.cfg.rebalance_interval_ms, timer_kind::REBALANCE));
        self.persist_timer = Some(ctx.set_timer(
            self.cfg.persist_offset_interval_ms,
            timer_kind::PERSIST_OFFSETS,
        ));
        self.start_locking(ctx);
    }

    /// Stops consuming: commits every owned queue's offset (clustering: sent now;
    /// broadcasting: the file write starts, and its `Committed` events come from
    /// `handle` when its syncs complete) and gives up every queue. Afterwards `handle`
    /// only completes that file write.
    pub fn shutdown(&mut self, ctx: &mut dyn Ctx<Message>) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        if !self.started || self.stopped {
            return out;
        }
        self.stopped = true;
        let owned = self.owned_queues();
        if self.clustering() {
            out.extend(self.offsets.commit_to_broker(
                ctx,
                &mut self.rpc,
                self.route.as_ref(),
                &owned,
                true,
            ));
        } else {
            self.offsets.persist_file(ctx.disk(), true);
        }
        for mq in owned {
            out.push(self.disowned_event(&mq));
        }
        // After the commits, on the same connections: the next holder of a queue reads
        // its offset only once it could lock it.
        self.release_all_locks(ctx);
        self.queues.clear();
        for timer in [
            self.poll_timer.take(),
            self.heartbeat_timer.take(),
            self.rebalance_timer.take(),
            self.persist_timer.take(),
        ]
        .into_iter()
        .flatten()
        .chain(std::mem::take(&mut self.retry_timers).into_keys())
        .chain(std::mem::take(&mut self.suspend_timers).into_keys())
        .chain(std::mem::take(&mut self.consume_later).into_keys())
        {
            ctx.cancel_timer(timer);
        }
        out
    }

    /// Shut down (or never started), and the local offset file's last write finished:
    /// the process may exit now. Exiting earlier could leave a file a restart reads
    /// (renamed into place, its directory sync pending) whose offsets were never
    /// reported `Committed`.
    pub fn is_stopped(&self) -> bool {
        (!self.started || self.stopped) && self.offsets.is_idle()
    }

    /// Feeds one input; returns what the application sees because of it. Host timers,
    /// host responses and requests other than NOTIFY_CONSUMER_IDS_CHANGED and
    /// RESET_CONSUMER_CLIENT_OFFSET give nothing.
    pub fn handle(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        self.handle_into(ctx, input, &mut out);
        out
    }

    /// [`handle`](Self::handle), appending the events to `out`: a host that feeds
    /// every input keeps one buffer instead of growing a new vector each time.
    pub fn handle_into(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
        out: &mut Vec<ClientEvent>,
    ) {
        if !self.started {
            return;
        }
        if let Input::SyncComplete { ticket, result } = input {
            if let Some(events) = self.offsets.on_sync_complete(ctx.disk(), ticket, result) {
                out.extend(events);
                if !self.stopped {
                    self.resume_moved(ctx, out);
                }
            }
            return;
        }
        if self.stopped {
            return;
        }
        match input {
            Input::Packet {
                msg: Message::Request { request, .. },
                ..
            } => {
                // Oneway from a broker: rebalance now, answer nothing. RocketMQ's
                // `notifyConsumerIdsChanged` wakes the rebalance service whatever the
                // message model; a broadcasting consumer takes the queues of a broker
                // its last route refresh brought back here, not 20 s later.
                match request {
                    Request::NotifyConsumerIdsChanged { consumer_group }
                        if consumer_group == self.cfg.consumer_group =>
                    {
                        self.rebalance(ctx, out);
                    }
                    // Oneway too: an admin moved the group's offsets (`reset_offset.rs`).
                    Request::ResetConsumerClientOffset(reset)
                        if reset.consumer_group == self.cfg.consumer_group
                            && reset.topic == self.cfg.topic =>
                    {
                        self.reset_offset(ctx, &reset.offset_table, out);
                    }
                    _ => {}
                }
            }
            Input::Timer { id, kind } => self.on_timer(ctx, id, kind, out),
            other => {
                for (call, outcome) in self.rpc.on_input(ctx, other) {
                    self.on_outcome(ctx, call, outcome, out);
                }
            }
        }
        out.append(&mut self.pull_commits);
    }

    fn on_timer(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: TimerId,
        kind: u64,
        out: &mut Vec<ClientEvent>,
    ) {
        let mine = |t: &Option<TimerId>| *t == Some(id);
        match kind {
            timer_kind::RPC_TIMEOUT => {
                let input = Input::Timer { id, kind };
                for (call, outcome) in self.rpc.on_input(ctx, input) {
                    self.on_outcome(ctx, call, outcome, out);
                }
            }
            timer_kind::POLL_NAME_SERVER if mine(&self.poll_timer) => {
                if self.route_lookup.is_none() {
                    self.lookup_route(ctx);
                }
                self.lookup_retry_route(ctx);
                self.poll_timer = Some(ctx.set_timer(
                    self.cfg.poll_name_server_interval_ms,
                    timer_kind::POLL_NAME_SERVER,
                ));
            }
            timer_kind::HEARTBEAT if mine(&self.heartbeat_timer) => {
                self.send_heartbeat(ctx);
                self.heartbeat_timer =
                    Some(ctx.set_timer(self.cfg.heartbeat_interval_ms, timer_kind::HEARTBEAT));
            }
            timer_kind::REBALANCE if mine(&self.rebalance_timer) => {
                self.rebalance(ctx, out);
                self.rebalance_timer =
                    Some(ctx.set_timer(self.cfg.rebalance_interval_ms, timer_kind::REBALANCE));
            }
            timer_kind::PERSIST_OFFSETS if mine(&self.persist_timer) => {
                self.persist_offsets(ctx, out);
                self.persist_timer = Some(ctx.set_timer(
                    self.cfg.persist_offset_interval_ms,
                    timer_kind::PERSIST_OFFSETS,
                ));
            }
            timer_kind::CONSUME_LATER => self.on_consume_later(ctx, id, out),
            timer_kind::CLEAN_EXPIRED_MSG => self.clean_expired_msg(ctx, id, out),
            timer_kind::PULL_RETRY => {
                let Some((mq, generation)) = self.retry_timers.remove(&id) else {
                    return;
                };
                let Some(q) = self.queues.get_mut(&mq) else {
                    return;
                };
                if q.generation != generation {
                    return;
                }
                q.retry_timer = None;
                if q.next_offset.is_some() {
                    self.pull_owned(ctx, mq);
                } else {
                    self.locate(ctx, &mq, out);
                }
            }
            timer_kind::LOCK_ALL | timer_kind::REBALANCE_LATER => {
                self.on_lock_timer(ctx, id, out);
            }
            timer_kind::CONSUME_ORDERLY_LATER => self.on_suspend_timer(ctx, id, out),
            _ => {}
        }
    }

    fn on_outcome(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        call: Call,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        match call {
            Call::Route => self.on_route(ctx, RouteAnswer::from_outcome(outcome), out),
            Call::RetryRoute => self.on_retry_route(ctx, RouteAnswer::from_outcome(outcome), out),
            Call::ConsumerList => self.on_consumer_list(ctx, outcome, out),
            Call::QueryOffset { mq, generation } => {
                if !self.is_current(&mq, generation) {
                    return;
                }
                match outcome {
                    RpcOutcome::Response(Response::Offset(offset)) => {
                        self.activate(ctx, &mq, offset, true, out);
                    }
                    RpcOutcome::Response(Response::Error { code, .. })
                        if code == response_code::QUERY_NOT_FOUND =>
                    {
                        self.start_without_offset(ctx, &mq, out);
                    }
                    other => {
                        tracing::debug!(?mq, outcome = %other.describe(), "query consumer offset failed");
                        self.schedule_retry(ctx, &mq);
                    }
                }
            }
            Call::MaxOffset { mq, generation } => {
                if !self.is_current(&mq, generation) {
                    return;
                }
                match outcome {
                    RpcOutcome::Response(Response::Offset(max)) => {
                        self.activate(ctx, &mq, max, false, out);
                    }
                    other => {
                        tracing::debug!(?mq, outcome = %other.describe(), "get max offset failed");
                        self.schedule_retry(ctx, &mq);
                    }
                }
            }
            Call::SendBack {
                mq,
                generation,
                queue_offset,
            } => {
                if self.is_current(&mq, generation) {
                    self.on_send_back(ctx, &mq, queue_offset, outcome, false);
                }
            }
            Call::SendBackFallback {
                mq,
                generation,
                queue_offset,
            } => {
                if self.is_current(&mq, generation) {
                    self.on_send_back(ctx, &mq, queue_offset, outcome, true);
                }
            }
            Call::OrderlyDeadLetter {
                mq,
                generation,
                queue_offset,
            } => {
                if self.is_current(&mq, generation) {
                    self.on_orderly_dead_letter(ctx, &mq, queue_offset, outcome, out);
                }
            }
            Call::Pull {
                mq,
                generation,
                from_slave,
            } => {
                if self.is_current(&mq, generation) {
                    self.on_pull(ctx, mq, from_slave, outcome, out);
                }
            }
            Call::Lock {
                queues,
                asked_ms,
                purpose,
            } => self.on_lock(ctx, queues, asked_ms, purpose, outcome, out),
        }
    }

    fn is_current(&self, mq: &MessageQueue, generation: u64) -> bool {
        self.queues
            .get(mq)
            .is_some_and(|q| q.generation == generation)
    }
}

/// The owned queues of a queue table, borrowed: [`PushConsumer::owned_queues`] without
/// the copies, for callers that also borrow other parts of the consumer.
fn owned_in(queues: &QueueTable<OwnedQueue>) -> impl Iterator<Item = &MessageQueue> {
    queues
        .iter()
        .filter(|(_, q)| q.next_offset.is_some())
        .map(|(mq, _)| mq)
}

#[cfg(test)]
mod tests;
