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

use std::collections::{BTreeMap, BTreeSet};

use super::offset_store::OffsetStore;
use super::rebalance::{allocate_averagely, readable_queues};
use super::{
    broker_id_of, host_of, subscribe_addr, timer_kind, ClientEvent, DeliveredMessage, MessageQueue,
    NameServers, RouteAnswer, Rpc, RpcOutcome, CLIENT_API_TIMEOUT_MS, QUERY_OFFSET_TIMEOUT_MS,
};
use crate::message::{offset_msg_id, property, PROPERTY_TAGS, PROPERTY_UNIQ_KEY};
use crate::node::{Ctx, Input, TimerId};
use crate::protocol::{
    pull_sys_flag, response_code, ConsumerData, HeartbeatData, Message, MessageModel, PullMessage,
    PullResponse, QueueKey, Request, Response, TopicRouteData,
};
use crate::store::record::{self, CrcCheck, Slot};
use crate::subscription::SubscriptionData;

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
        }
    }
}

#[derive(Clone, Debug)]
enum Call {
    Route,
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
    queues: BTreeMap<MessageQueue, OwnedQueue>,
    next_generation: u64,
    offsets: OffsetStore,
    /// A consumer-list request is in flight; `rebalance_again`: another rebalance was
    /// asked for meanwhile and runs when it is answered.
    rebalance_in_flight: bool,
    rebalance_again: bool,
    retry_timers: BTreeMap<TimerId, (MessageQueue, u64)>,
    poll_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    rebalance_timer: Option<TimerId>,
    persist_timer: Option<TimerId>,
    started: bool,
    stopped: bool,
    /// Commits made as a side effect of pulls (COMMIT_OFFSET), reported with the
    /// events of the input that caused them.
    pull_commits: Vec<ClientEvent>,
}

impl PushConsumer {
    pub fn new(cfg: ConsumerConfig) -> PushConsumer {
        let namesrv = NameServers::new(cfg.namesrv_addrs.clone());
        let offsets = OffsetStore::broker(&cfg.consumer_group);
        PushConsumer {
            filter: SubscriptionData::parse(&cfg.tag_expression),
            cfg,
            client_id: String::new(),
            rpc: Rpc::new(),
            namesrv,
            route: None,
            route_lookup: None,
            queues: BTreeMap::new(),
            next_generation: 0,
            offsets,
            rebalance_in_flight: false,
            rebalance_again: false,
            retry_timers: BTreeMap::new(),
            poll_timer: None,
            heartbeat_timer: None,
            rebalance_timer: None,
            persist_timer: None,
            started: false,
            stopped: false,
            pull_commits: Vec::new(),
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
        self.queues
            .iter()
            .filter(|(_, q)| q.next_offset.is_some())
            .map(|(mq, _)| mq.clone())
            .collect()
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
    /// host responses and requests other than NOTIFY_CONSUMER_IDS_CHANGED give nothing.
    pub fn handle(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        if !self.started {
            return out;
        }
        if let Input::SyncComplete { ticket, result } = input {
            if let Some(events) = self.offsets.on_sync_complete(ctx.disk(), ticket, result) {
                out.extend(events);
                if !self.stopped {
                    self.resume_moved(ctx, &mut out);
                }
            }
            return out;
        }
        if self.stopped {
            return out;
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
                if let Request::NotifyConsumerIdsChanged { consumer_group } = request {
                    if consumer_group == self.cfg.consumer_group {
                        self.rebalance(ctx, &mut out);
                    }
                }
            }
            Input::Timer { id, kind } => self.on_timer(ctx, id, kind, &mut out),
            other => {
                for (call, outcome) in self.rpc.on_input(ctx, other) {
                    self.on_outcome(ctx, call, outcome, &mut out);
                }
            }
        }
        out.append(&mut self.pull_commits);
        out
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
                    self.pull(ctx, &mq);
                } else {
                    self.locate(ctx, &mq, out);
                }
            }
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
            Call::Pull {
                mq,
                generation,
                from_slave,
            } => {
                if self.is_current(&mq, generation) {
                    self.on_pull(ctx, &mq, from_slave, outcome, out);
                }
            }
        }
    }

    fn is_current(&self, mq: &MessageQueue, generation: u64) -> bool {
        self.queues
            .get(mq)
            .is_some_and(|q| q.generation == generation)
    }

    // ---- route and heartbeat -------------------------------------------------------

    fn lookup_route(&mut self, ctx: &mut dyn Ctx<Message>) {
        let tries = self.namesrv.len();
        self.issue_route_lookup(ctx, tries);
    }

    fn issue_route_lookup(&mut self, ctx: &mut dyn Ctx<Message>, tries_left: usize) {
        let topic = self.cfg.topic.clone();
        match self
            .namesrv
            .request_route(ctx, &mut self.rpc, &topic, Call::Route)
        {
            Ok(_) => self.route_lookup = Some(tries_left),
            Err(e) => {
                tracing::debug!(%topic, error = %e, "cannot ask a name server for the route");
                self.route_lookup = None;
            }
        }
    }

    fn on_route(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        answer: RouteAnswer,
        out: &mut Vec<ClientEvent>,
    ) {
        let tries_left = self.route_lookup.take().unwrap_or(0);
        match answer {
            RouteAnswer::Found(route) => {
                let first = self.route.is_none();
                self.route = Some(route);
                if first {
                    // `start()` in RocketMQ: routes, then a heartbeat to every broker,
                    // then a rebalance. Per-link FIFO delivers the heartbeat before the
                    // consumer-list request, so the broker already lists us.
                    self.send_heartbeat(ctx);
                    self.rebalance(ctx, out);
                }
            }
            // An unknown topic (or a failed refresh) keeps the route we have; the next
            // poll asks again.
            RouteAnswer::NotFound => {}
            RouteAnswer::Failed(reason) => {
                tracing::debug!(%reason, "route lookup failed; trying the next name server");
                self.namesrv.rotate();
                if tries_left > 1 {
                    self.issue_route_lookup(ctx, tries_left - 1);
                }
            }
        }
    }

    /// HEART_BEAT to every member (master and slaves) of every broker group in the
    /// route. Its answer changes nothing, so it is not tracked.
    fn send_heartbeat(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Some(route) = self.route.as_ref() else {
            return;
        };
        let data = HeartbeatData {
            client_id: self.client_id.clone(),
            consumers: vec![ConsumerData {
                group_name: self.cfg.consumer_group.clone(),
                message_model: self.cfg.message_model,
                subscriptions: BTreeMap::from([(
                    self.cfg.topic.clone(),
                    self.cfg.tag_expression.clone(),
                )]),
            }],
        };
        let addrs: BTreeSet<String> = route
            .broker_datas
            .iter()
            .flat_map(|b| b.broker_addrs.values().cloned())
            .collect();
        for addr in addrs {
            let _ = self
                .rpc
                .send_untracked(ctx, &addr, Request::HeartBeat(data.clone()));
        }
    }

    // ---- rebalance -----------------------------------------------------------------

    fn rebalance(&mut self, ctx: &mut dyn Ctx<Message>, out: &mut Vec<ClientEvent>) {
        let Some(route) = self.route.as_ref() else {
            return;
        };
        if !self.clustering() {
            let all = readable_queues(&self.cfg.topic, route);
            self.apply_allocation(ctx, all, out);
            return;
        }
        if self.rebalance_in_flight {
            self.rebalance_again = true;
            return;
        }
        // `findConsumerIdList` asks one broker group picked at random: its master, or
        // another member when the master is gone.
        if route.broker_datas.is_empty() {
            return;
        }
        let pick = (ctx.random_u64() % route.broker_datas.len() as u64) as usize;
        let Some((addr, _)) = subscribe_addr(route, &route.broker_datas[pick].broker_name, false)
        else {
            return;
        };
        let addr = addr.to_string();
        let request = Request::GetConsumerListByGroup {
            consumer_group: self.cfg.consumer_group.clone(),
        };
        if self
            .rpc
            .call(
                ctx,
                &addr,
                request,
                CLIENT_API_TIMEOUT_MS,
                Call::ConsumerList,
            )
            .is_ok()
        {
            self.rebalance_in_flight = true;
        }
    }

    fn on_consumer_list(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        self.rebalance_in_flight = false;
        match outcome {
            RpcOutcome::Response(Response::ConsumerList(mut cid_all)) => {
                if let Some(route) = self.route.as_ref() {
                    cid_all.sort();
                    cid_all.dedup();
                    let mq_all = readable_queues(&self.cfg.topic, route);
                    let mine = allocate_averagely(&mq_all, &cid_all, &self.client_id);
                    self.apply_allocation(ctx, mine, out);
                }
            }
            // No list, no change: the current allocation stands until the next try.
            other => tracing::debug!(outcome = %other.describe(), "get consumer list failed"),
        }
        if self.rebalance_again {
            self.rebalance_again = false;
            self.rebalance(ctx, out);
        }
    }

    /// `updateProcessQueueTableInRebalance`: drop the queues no longer ours, take the
    /// new ones.
    fn apply_allocation(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        allocated: Vec<MessageQueue>,
        out: &mut Vec<ClientEvent>,
    ) {
        let allocated: BTreeSet<MessageQueue> = allocated.into_iter().collect();
        let gone: Vec<MessageQueue> = self
            .queues
            .keys()
            .filter(|mq| !allocated.contains(*mq))
            .cloned()
            .collect();
        for mq in gone {
            self.disown(ctx, &mq, out);
        }
        for mq in allocated {
            if !self.queues.contains_key(&mq) {
                self.own(ctx, mq, out);
            }
        }
    }

    fn disown(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        let q = self.queues.remove(mq).expect("disowning an owned queue");
        if let Some(timer) = q.retry_timer {
            self.retry_timers.remove(&timer);
            ctx.cancel_timer(timer);
        }
        if q.next_offset.is_none() {
            // Never started: nothing consumed, nothing announced.
            return;
        }
        if self.clustering() {
            // Hand the offset over before the next owner reads it; then forget it.
            out.extend(self.offsets.commit_to_broker(
                ctx,
                &mut self.rpc,
                self.route.as_ref(),
                [mq],
                true,
            ));
            self.offsets.remove(mq);
        }
        out.push(self.disowned_event(mq));
    }

    fn disowned_event(&self, mq: &MessageQueue) -> ClientEvent {
        ClientEvent::Disowned {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        }
    }

    fn own(&mut self, ctx: &mut dyn Ctx<Message>, mq: MessageQueue, out: &mut Vec<ClientEvent>) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.queues.insert(
            mq.clone(),
            OwnedQueue {
                generation,
                next_offset: None,
                pull_from_slave: false,
                offset_from_broker_id: None,
                retry_timer: None,
                awaiting_file: false,
            },
        );
        self.locate(ctx, &mq, out);
    }

    // ---- where a queue starts --------------------------------------------------------

    /// `computePullFromWhere`: the stored offset, else per `consume_from_where`.
    fn locate(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        if self.offsets.is_local() {
            match self.offsets.read(mq) {
                Some(offset) => self.activate(ctx, mq, offset, true, out),
                None => self.start_without_offset(ctx, mq, out),
            }
            return;
        }
        let generation = self.queues[mq].generation;
        let request = Request::QueryConsumerOffset(QueueKey {
            consumer_group: self.cfg.consumer_group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        });
        let call = Call::QueryOffset {
            mq: mq.clone(),
            generation,
        };
        self.call_broker(ctx, mq, request, QUERY_OFFSET_TIMEOUT_MS, call);
    }

    fn start_without_offset(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        match self.cfg.consume_from_where {
            ConsumeFromWhere::FirstOffset => self.activate(ctx, mq, 0, false, out),
            ConsumeFromWhere::LastOffset => {
                let generation = self.queues[mq].generation;
                let request = Request::GetMaxOffset {
                    topic: mq.topic.clone(),
                    queue_id: mq.queue_id,
                };
                let call = Call::MaxOffset {
                    mq: mq.clone(),
                    generation,
                };
                self.call_broker(ctx, mq, request, CLIENT_API_TIMEOUT_MS, call);
            }
        }
    }

    /// Sends an offset request about `mq` to its broker group (master, else slave), or
    /// schedules a retry when that is impossible now.
    fn call_broker(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        request: Request,
        timeout_ms: u64,
        call: Call,
    ) {
        let target = self.route.as_ref().and_then(|r| {
            let (addr, _) = subscribe_addr(r, &mq.broker_name, false)?;
            Some((addr.to_string(), broker_id_of(r, &mq.broker_name, addr)))
        });
        if let Some((_, id)) = &target {
            self.queues
                .get_mut(mq)
                .expect("asking for an owned queue")
                .offset_from_broker_id = *id;
        }
        let sent = target
            .is_some_and(|(addr, _)| self.rpc.call(ctx, &addr, request, timeout_ms, call).is_ok());
        if !sent {
            self.schedule_retry(ctx, mq);
        }
    }

    /// The start offset is known: announce the queue and begin pulling.
    fn activate(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        offset: u64,
        stored: bool,
        out: &mut Vec<ClientEvent>,
    ) {
        if stored {
            self.offsets.set_known_committed(mq, offset);
        } else {
            self.offsets.update(mq, offset);
        }
        let q = self.queues.get_mut(mq).expect("activating an owned queue");
        q.next_offset = Some(offset);
        let from = q.offset_from_broker_id;
        out.push(self.owned_event(mq, offset, from, false));
        self.pull(ctx, mq);
    }

    /// `Owned` for `mq` from `start_offset`; `offset_from_broker_id` is left out for
    /// broadcasting (the offset came from the local file).
    fn owned_event(
        &self,
        mq: &MessageQueue,
        start_offset: u64,
        offset_from_broker_id: Option<u64>,
        offset_moved: bool,
    ) -> ClientEvent {
        ClientEvent::Owned {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            start_offset,
            offset_from_broker_id: if self.offsets.is_local() {
                None
            } else {
                offset_from_broker_id
            },
            offset_moved,
        }
    }

    /// Broadcasting: every queue waiting after PULL_OFFSET_MOVED whose corrected offset
    /// the local file now holds starts its new span (`Owned`, after the `Committed`)
    /// and pulls again. If some still wait and no write is under way (the one running
    /// at the move held older offsets, or a write failed), a new write starts.
    fn resume_moved(&mut self, ctx: &mut dyn Ctx<Message>, out: &mut Vec<ClientEvent>) {
        let waiting: Vec<(MessageQueue, u64)> = self
            .queues
            .iter()
            .filter(|(_, q)| q.awaiting_file)
            .map(|(mq, q)| {
                (
                    mq.clone(),
                    q.next_offset.expect("a moved queue has an offset"),
                )
            })
            .collect();
        let mut still_waiting = false;
        for (mq, next) in waiting {
            if !self.offsets.is_committed(&mq, next) {
                still_waiting = true;
                continue;
            }
            self.queues
                .get_mut(&mq)
                .expect("waiting queue")
                .awaiting_file = false;
            out.push(self.owned_event(&mq, next, None, true));
            self.pull(ctx, &mq);
        }
        if still_waiting && self.offsets.is_idle() {
            self.offsets.persist_file(ctx.disk(), false);
        }
    }

    fn schedule_retry(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue) {
        let q = self.queues.get_mut(mq).expect("retrying an owned queue");
        debug_assert!(q.retry_timer.is_none(), "one thing under way per queue");
        let timer = ctx.set_timer(self.cfg.pull_retry_delay_ms, timer_kind::PULL_RETRY);
        q.retry_timer = Some(timer);
        self.retry_timers.insert(timer, (mq.clone(), q.generation));
    }

    // ---- pulling -------------------------------------------------------------------

    fn pull(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue) {
        let q = &self.queues[mq];
        let offset = q.next_offset.expect("pulling a located queue");
        let target = self
            .route
            .as_ref()
            .and_then(|r| subscribe_addr(r, &mq.broker_name, q.pull_from_slave))
            .map(|(a, slave)| (a.to_string(), slave));
        let Some((addr, is_slave)) = target else {
            return self.schedule_retry(ctx, mq);
        };
        let mut sys_flag = pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION;
        let commit_offset = self.offsets.read(mq).unwrap_or(0);
        // Clustering lets the master store the consumed offset as a side effect of the
        // pull; slaves never store offsets.
        if self.clustering() && commit_offset > 0 && !is_slave {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
            // The master stores it: that is a commit like UPDATE_CONSUMER_OFFSET.
            self.pull_commits
                .extend(self.offsets.note_pull_commit(mq, commit_offset));
        }
        let request = Request::PullMessage(PullMessage {
            consumer_group: self.cfg.consumer_group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: offset,
            max_msg_nums: self.cfg.pull_batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout_ms: self.cfg.pull_suspend_timeout_ms,
            subscription: Some(self.cfg.tag_expression.clone()),
        });
        let call = Call::Pull {
            mq: mq.clone(),
            generation: q.generation,
            from_slave: is_slave,
        };
        if self
            .rpc
            .call(ctx, &addr, request, self.cfg.pull_rpc_timeout_ms, call)
            .is_err()
        {
            self.schedule_retry(ctx, mq);
        }
    }

    fn on_pull(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        from_slave: bool,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        let pull = match outcome {
            RpcOutcome::Response(Response::Pull(p)) => p,
            other => {
                tracing::debug!(?mq, outcome = %other.describe(), "pull failed; retrying later");
                return self.schedule_retry(ctx, mq);
            }
        };
        self.queues
            .get_mut(mq)
            .expect("current queue")
            .pull_from_slave = pull.suggest_which_broker_id != 0;
        match pull.code {
            response_code::SUCCESS => {
                self.deliver(mq, &pull, out);
                self.advance(mq, pull.next_begin_offset);
            }
            response_code::PULL_NOT_FOUND | response_code::PULL_RETRY_IMMEDIATELY => {
                self.advance(mq, pull.next_begin_offset);
            }
            response_code::PULL_OFFSET_MOVED => {
                // The broker corrected our offset (the queue was truncated or we were
                // past its end): take its offset, even backwards, and store it now.
                // RocketMQ (`OFFSET_ILLEGAL`) drops the process queue, stores the
                // corrected offset and removes the queue 10 s later; the next rebalance
                // creates a new pull request from that offset. Consumption restarts
                // from a new position, so this is a new ownership span: `Owned` again,
                // after the commit, as the new pull request reads the stored offset.
                // Deliberately at once, not after 10 s: the queue is ours throughout.
                // Broadcasting: the file write is asynchronous, so the new span waits
                // for it (`resume_moved`); announcing it first would start a span from
                // an offset no restart could read yet.
                tracing::warn!(?mq, next = pull.next_begin_offset, "pull offset moved");
                let next = pull.next_begin_offset;
                self.queues.get_mut(mq).expect("current queue").next_offset = Some(next);
                self.offsets.update(mq, next);
                if !self.clustering() {
                    self.queues
                        .get_mut(mq)
                        .expect("current queue")
                        .awaiting_file = true;
                    self.offsets.persist_file(ctx.disk(), false);
                    return self.resume_moved(ctx, out);
                }
                out.extend(self.offsets.commit_to_broker(
                    ctx,
                    &mut self.rpc,
                    self.route.as_ref(),
                    [mq],
                    true,
                ));
                out.push(self.owned_event(mq, next, Some(u64::from(from_slave)), true));
            }
            other => {
                tracing::debug!(?mq, code = other, "unexpected pull code; retrying later");
                return self.schedule_retry(ctx, mq);
            }
        }
        self.pull(ctx, mq);
    }

    /// The next pull starts at `next_begin_offset`; the consumed offset only moves
    /// forward (`updateOffset(.., increaseOnly)`): everything before it was delivered,
    /// or filtered out by tag.
    fn advance(&mut self, mq: &MessageQueue, next_begin_offset: u64) {
        self.queues.get_mut(mq).expect("current queue").next_offset = Some(next_begin_offset);
        let consumed = self.offsets.read(mq).unwrap_or(0);
        if next_begin_offset > consumed {
            self.offsets.update(mq, next_begin_offset);
        }
    }

    /// Decodes the records of a FOUND answer one after another and delivers those the
    /// tag filter keeps. A record that does not decode ends the batch, as
    /// `MessageDecoder.decodes` stops at the first it cannot read.
    fn deliver(&self, mq: &MessageQueue, pull: &PullResponse, out: &mut Vec<ClientEvent>) {
        let mut pos = 0;
        while pos < pull.records.len() {
            let view = match record::parse(&pull.records[pos..], CrcCheck::Skip) {
                Ok(Slot::Record(view)) => view,
                Ok(Slot::Blank) => break,
                Err(e) => {
                    tracing::warn!(?mq, error = %e, "undecodable record in a pull answer");
                    break;
                }
            };
            pos += view.total_size;
            let properties = view.user_properties();
            let tags = property(properties, PROPERTY_TAGS);
            if !self.filter.matches_tags(tags) {
                continue;
            }
            let msg_id = match property(properties, PROPERTY_UNIQ_KEY) {
                Some(uniq) => uniq.to_string(),
                None => offset_msg_id(
                    view.store_host.ip,
                    view.store_host.port,
                    view.physical_offset,
                ),
            };
            out.push(ClientEvent::Delivered {
                group: self.cfg.consumer_group.clone(),
                broker_name: mq.broker_name.clone(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                queue_offset: view.queue_offset.max(0) as u64,
                msg: DeliveredMessage {
                    topic: view.topic.to_string(),
                    tags: tags.map(str::to_string),
                    properties: properties.to_string(),
                    body: view.body.to_vec(),
                    reconsume_times: view.reconsume_times,
                    msg_id,
                    born_timestamp_ms: view.born_timestamp_ms,
                    born_host: view.born_host,
                },
            });
        }
    }

    /// Every interval: clustering sends the offset of every owned queue, moved or not
    /// (`RemoteBrokerOffsetStore.persistAll`), so a stale commit another consumer sent
    /// meanwhile (a queue it held for a moment during a rebalance) does not stay;
    /// broadcasting writes the file.
    fn persist_offsets(&mut self, ctx: &mut dyn Ctx<Message>, out: &mut Vec<ClientEvent>) {
        if self.clustering() {
            let owned = self.owned_queues();
            out.extend(self.offsets.commit_to_broker(
                ctx,
                &mut self.rpc,
                self.route.as_ref(),
                &owned,
                true,
            ));
        } else {
            self.offsets.persist_file(ctx.disk(), false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_ctx::TestCtx;
    use super::*;
    use crate::message::encode_properties;
    use crate::node::NodeId;
    use crate::protocol::{BrokerData, QueueData};
    use crate::store::record::{Host, NewRecord};

    const NAMESRV: &str = "10.0.0.1:9876";
    const MASTER_A: &str = "10.0.0.2:10911";
    const MASTER_B: &str = "10.0.0.3:10911";
    const SLAVE_B: &str = "10.0.0.4:10911";

    fn route() -> TopicRouteData {
        let qd = |name: &str| QueueData {
            broker_name: name.into(),
            read_queue_nums: 2,
            write_queue_nums: 2,
            perm: 6,
            topic_sys_flag: 0,
        };
        TopicRouteData {
            queue_datas: vec![qd("a"), qd("b")],
            broker_datas: vec![
                BrokerData {
                    cluster: "c".into(),
                    broker_name: "a".into(),
                    broker_addrs: BTreeMap::from([(0, MASTER_A.to_string())]),
                },
                BrokerData {
                    cluster: "c".into(),
                    broker_name: "b".into(),
                    broker_addrs: BTreeMap::from([
                        (0, MASTER_B.to_string()),
                        (1, SLAVE_B.to_string()),
                    ]),
                },
            ],
            ..TopicRouteData::default()
        }
    }

    fn ctx() -> TestCtx {
        TestCtx::new(&[(NAMESRV, 1), (MASTER_A, 2), (MASTER_B, 3), (SLAVE_B, 4)])
    }

    fn consumer(model: MessageModel) -> PushConsumer {
        PushConsumer::new(ConsumerConfig {
            consumer_group: "G".into(),
            namesrv_addrs: vec![NAMESRV.into()],
            topic: "T".into(),
            tag_expression: "TagA".into(),
            message_model: model,
            ..ConsumerConfig::default()
        })
    }

    fn respond(
        c: &mut PushConsumer,
        ctx: &mut TestCtx,
        to: &Message,
        response: Response,
    ) -> Vec<ClientEvent> {
        let Message::Request { opaque, .. } = to else {
            panic!("not a request: {to:?}")
        };
        let input = Input::Packet {
            from: NodeId(0),
            msg: Message::Response {
                opaque: *opaque,
                response,
            },
        };
        c.handle(ctx, input)
    }

    fn requests(sent: &[(NodeId, Message)]) -> Vec<(NodeId, &Request)> {
        sent.iter()
            .map(|(to, m)| match m {
                Message::Request { request, .. } => (*to, request),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    fn find(
        sent: &[(NodeId, Message)],
        pred: impl Fn(&Request) -> bool,
    ) -> Vec<&(NodeId, Message)> {
        sent.iter()
            .filter(|(_, m)| matches!(m, Message::Request { request, .. } if pred(request)))
            .collect()
    }

    fn pull_of(m: &Message) -> &PullMessage {
        match m {
            Message::Request {
                request: Request::PullMessage(p),
                ..
            } => p,
            other => panic!("not a pull: {other:?}"),
        }
    }

    fn records(queue_id: i32, first_offset: i64, tags: &[Option<&str>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, tag) in tags.iter().enumerate() {
            let uniq = format!("UNIQ{i}");
            let mut pairs = vec![("UNIQ_KEY", uniq.as_str())];
            if let Some(t) = tag {
                pairs.push(("TAGS", t));
            }
            let props = encode_properties(pairs);
            let host = Host {
                ip: "10.0.0.2".parse().unwrap(),
                port: 10911,
            };
            NewRecord {
                topic: "T",
                queue_id,
                flag: 0,
                sys_flag: 0,
                born_timestamp_ms: 1,
                born_host: host,
                store_host: host,
                reconsume_times: 0,
                prepared_transaction_offset: 0,
                body: b"body",
                properties: &props,
            }
            .encode(first_offset + i as i64, 1000 * i as i64, 2, &mut out);
        }
        out
    }

    fn pull_answer(code: i32, next: u64, records: Vec<u8>) -> Response {
        Response::Pull(PullResponse {
            code,
            next_begin_offset: next,
            min_offset: 0,
            max_offset: next,
            suggest_which_broker_id: 0,
            records,
        })
    }

    /// Starts a clustering consumer and brings it to owning `a`'s two queues with
    /// offsets 5 (stored) and 0 (QUERY_NOT_FOUND); returns the two pulls in flight.
    /// Every sync the disk was asked for completes, including those the completions
    /// ask for in turn (a tmp file, then its directory); the events they produce.
    fn complete_syncs(c: &mut PushConsumer, ctx: &mut TestCtx) -> Vec<ClientEvent> {
        let mut events = Vec::new();
        loop {
            let tickets = ctx.disk.take_requested_syncs();
            if tickets.is_empty() {
                return events;
            }
            for ticket in tickets {
                let done = Input::SyncComplete {
                    ticket,
                    result: Ok(()),
                };
                events.extend(c.handle(ctx, done));
            }
        }
    }

    /// A started broadcasting consumer that has consumed a/0 up to offset 3 (two TagA
    /// records and one untagged); its next pull of a/0 is in `ctx`'s sent list.
    fn broadcasting_past_a0_offset_3(ctx: &mut TestCtx) -> PushConsumer {
        let mut c = consumer(MessageModel::Broadcasting);
        c.start(ctx);
        let sent = ctx.take_sent();
        respond(&mut c, ctx, &sent[0].1, Response::Route(route()));
        let sent = ctx.take_sent();
        let a0 = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
            .1
            .clone();
        let three = records(0, 0, &[Some("TagA"), Some("TagA"), None]);
        respond(&mut c, ctx, &a0, pull_answer(0, 3, three));
        c
    }

    fn clustering_owning_a(c: &mut PushConsumer, ctx: &mut TestCtx) -> Vec<(NodeId, Message)> {
        c.start(ctx);
        let sent = ctx.take_sent();
        assert!(matches!(
            requests(&sent)[..],
            [(NodeId(1), Request::GetRouteInfoByTopic { .. })]
        ));
        let events = respond(c, ctx, &sent[0].1, Response::Route(route()));
        assert!(events.is_empty());
        let sent = ctx.take_sent();
        // A heartbeat to every broker address, masters and slave, then one
        // consumer-list request.
        let heartbeats: Vec<NodeId> = find(&sent, |r| matches!(r, Request::HeartBeat(_)))
            .iter()
            .map(|(to, _)| *to)
            .collect();
        assert_eq!(heartbeats, vec![NodeId(2), NodeId(3), NodeId(4)]);
        let list = find(&sent, |r| {
            matches!(r, Request::GetConsumerListByGroup { .. })
        });
        assert_eq!(list.len(), 1);
        // Two consumers: we sort first ("10.0.0.9@.." < "z@1") and take a's queues.
        let cids = vec!["z@1".to_string(), c.client_id().to_string()];
        let events = respond(c, ctx, &list[0].1, Response::ConsumerList(cids));
        assert!(
            events.is_empty(),
            "no Owned before the start offset is known"
        );
        let sent = ctx.take_sent();
        let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
        assert_eq!(queries.len(), 2);
        assert!(queries.iter().all(|(to, _)| *to == NodeId(2)));
        let e0 = respond(c, ctx, &queries[0].1, Response::Offset(5));
        let e1 = respond(
            c,
            ctx,
            &queries[1].1,
            Response::Error {
                code: response_code::QUERY_NOT_FOUND,
                remark: String::new(),
            },
        );
        assert!(matches!(
            &e0[..],
            [ClientEvent::Owned {
                queue_id: 0,
                start_offset: 5,
                offset_from_broker_id: Some(0),
                ..
            }]
        ));
        assert!(matches!(
            &e1[..],
            [ClientEvent::Owned {
                queue_id: 1,
                start_offset: 0,
                ..
            }]
        ));
        ctx.take_sent()
    }

    #[test]
    fn the_periodic_heartbeat_follows_the_route_refresh_and_reaches_a_returning_broker() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Clustering);
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        // Broker b is away when the consumer starts: the route lists only a.
        let mut only_a = route();
        only_a.queue_datas.retain(|q| q.broker_name == "a");
        only_a.broker_datas.retain(|b| b.broker_name == "a");
        respond(&mut c, &mut ctx, &sent[0].1, Response::Route(only_a));
        ctx.take_sent();
        let heartbeats_to = |sent: &[(NodeId, Message)]| -> Vec<NodeId> {
            find(sent, |r| matches!(r, Request::HeartBeat(_)))
                .iter()
                .map(|(to, _)| *to)
                .collect()
        };
        // The periodic refresh brings b back; no heartbeat went out with it.
        let mut refresh = None;
        for input in ctx.advance_to(c.cfg.poll_name_server_interval_ms) {
            c.handle(&mut ctx, input);
        }
        let sent = ctx.take_sent();
        for (_, m) in &sent {
            if matches!(
                m,
                Message::Request {
                    request: Request::GetRouteInfoByTopic { .. },
                    ..
                }
            ) {
                refresh = Some(m.clone());
            }
        }
        assert!(heartbeats_to(&sent).is_empty(), "{sent:?}");
        let refresh = refresh.expect("the periodic route refresh");
        respond(&mut c, &mut ctx, &refresh, Response::Route(route()));
        ctx.take_sent();
        // The heartbeat comes HEARTBEAT_PHASE_MS later and reaches b too, so b lists
        // this consumer before the next rebalance asks it.
        for input in ctx.advance_to(c.cfg.heartbeat_interval_ms + HEARTBEAT_PHASE_MS) {
            c.handle(&mut ctx, input);
        }
        let sent = ctx.take_sent();
        assert_eq!(
            heartbeats_to(&sent),
            vec![NodeId(2), NodeId(3), NodeId(4)],
            "{sent:?}"
        );
    }

    #[test]
    fn clustering_owns_pulls_delivers_commits_and_hands_over() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Clustering);
        let pulls = clustering_owning_a(&mut c, &mut ctx);
        assert_eq!(pulls.len(), 2);
        let p0 = pull_of(&pulls[0].1);
        assert_eq!((p0.queue_id, p0.queue_offset, p0.max_msg_nums), (0, 5, 32));
        assert_eq!(p0.suspend_timeout_ms, 15_000);
        assert_eq!(p0.subscription.as_deref(), Some("TagA"));
        // Clustering with a consumed offset > 0 lets the master commit it.
        assert_eq!(
            p0.sys_flag,
            pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION | pull_sys_flag::COMMIT_OFFSET
        );
        assert_eq!(p0.commit_offset, 5);
        let p1 = pull_of(&pulls[1].1);
        assert_eq!(
            p1.sys_flag,
            pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION
        );

        // Queue 0 answers three records; the one tagged TagB is filtered out.
        let recs = records(0, 5, &[Some("TagA"), Some("TagB"), Some("TagA")]);
        let events = respond(&mut c, &mut ctx, &pulls[0].1, pull_answer(0, 8, recs));
        let delivered: Vec<(u64, String)> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Delivered {
                    queue_offset, msg, ..
                } => Some((*queue_offset, msg.msg_id.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(delivered, vec![(5, "UNIQ0".into()), (7, "UNIQ2".into())]);
        // The next pull carries the consumed offset to the master: a commit.
        let committed_now: Vec<&ClientEvent> = events
            .iter()
            .filter(|e| matches!(e, ClientEvent::Committed { .. }))
            .collect();
        assert_eq!(committed_now.len(), 1, "{events:?}");
        assert!(matches!(
            committed_now[0],
            ClientEvent::Committed {
                queue_id: 0,
                offset: 8,
                ..
            }
        ));
        if let ClientEvent::Delivered { msg, .. } = &events[0] {
            assert_eq!(msg.tags.as_deref(), Some("TagA"));
            assert_eq!(msg.body, b"body");
            assert!(!msg.properties.contains("__CRC32#"), "{:?}", msg.properties);
        }
        // The next pull goes out at once from next_begin_offset.
        let sent = ctx.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(pull_of(&sent[0].1).queue_offset, 8);
        let in_flight_q0 = sent[0].1.clone();

        // At 5 s the offsets the broker does not hold yet are committed.
        let mut events = Vec::new();
        for input in ctx.advance_to(5_000) {
            events.extend(c.handle(&mut ctx, input));
        }
        let committed = |queue_id, offset| ClientEvent::Committed {
            group: "G".into(),
            broker_name: "a".into(),
            topic: "T".into(),
            queue_id,
            offset,
        };
        // Every owned queue's offset goes out, q0's 8 although it already went out on
        // the pull (`persistAll`); q1 started at 0 without a stored offset.
        assert_eq!(events, vec![committed(0, 8), committed(1, 0)]);
        let sent = ctx.take_sent();
        assert!(matches!(
            requests(&sent)[..],
            [
                (NodeId(2), Request::UpdateConsumerOffset { offset: 8, .. }),
                (NodeId(2), Request::UpdateConsumerOffset { offset: 0, .. })
            ]
        ));
        // Nothing moved since, yet the next interval sends them again: a stale commit
        // another consumer made meanwhile (chaos seed 68924) does not stay.
        let mut events = Vec::new();
        for input in ctx.advance_to(10_000) {
            events.extend(c.handle(&mut ctx, input));
        }
        assert_eq!(events, vec![committed(0, 8), committed(1, 0)]);
        assert_eq!(requests(&ctx.take_sent()).len(), 2);

        // A third consumer joins: the broker notifies, we rebalance and keep only a0.
        let notify = Input::Packet {
            from: NodeId(2),
            msg: Message::Request {
                opaque: 77,
                request: Request::NotifyConsumerIdsChanged {
                    consumer_group: "G".into(),
                },
            },
        };
        assert!(c.handle(&mut ctx, notify.clone()).is_empty());
        let sent = ctx.take_sent();
        let list = find(&sent, |r| {
            matches!(r, Request::GetConsumerListByGroup { .. })
        });
        assert_eq!(
            list.len(),
            1,
            "the notification is not answered, only acted on"
        );
        assert_eq!(sent.len(), 1);
        let cids = vec![c.client_id().to_string(), "y@1".into(), "z@1".into()];
        let events = respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
        // 4 queues, 3 consumers: the first takes 2, so nothing changes for us.
        assert!(events.is_empty(), "{events:?}");
        // A fourth joins: 1 queue each, and we give a1 away.
        c.handle(&mut ctx, notify.clone());
        let sent = ctx.take_sent();
        let list = find(&sent, |r| {
            matches!(r, Request::GetConsumerListByGroup { .. })
        });
        let cids = vec![
            c.client_id().to_string(),
            "x@1".into(),
            "y@1".into(),
            "z@1".into(),
        ];
        let events = respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
        assert_eq!(
            events,
            vec![
                committed(1, 0),
                ClientEvent::Disowned {
                    group: "G".into(),
                    broker_name: "a".into(),
                    topic: "T".into(),
                    queue_id: 1
                }
            ]
        );
        assert_eq!(c.owned_queues().len(), 1);
        // The late answer to a1's pull belongs to the old ownership: dropped.
        let late = respond(
            &mut c,
            &mut ctx,
            &pulls[1].1,
            pull_answer(0, 1, records(1, 0, &[Some("TagA")])),
        );
        assert!(late.is_empty());
        assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
        // a0 still works.
        let events = respond(
            &mut c,
            &mut ctx,
            &in_flight_q0,
            pull_answer(0, 9, records(0, 8, &[Some("TagA")])),
        );
        // One delivery, and the commit the next pull carries.
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            events[0],
            ClientEvent::Delivered {
                queue_offset: 8,
                ..
            }
        ));
        assert!(matches!(
            events[1],
            ClientEvent::Committed {
                queue_id: 0,
                offset: 9,
                ..
            }
        ));

        // Shutdown commits what is owned and gives it up.
        let events = c.shutdown(&mut ctx);
        assert!(matches!(
            &events[..],
            [
                ClientEvent::Committed {
                    queue_id: 0,
                    offset: 9,
                    ..
                },
                ClientEvent::Disowned { queue_id: 0, .. }
            ]
        ));
        assert!(c.handle(&mut ctx, notify.clone()).is_empty());
    }

    #[test]
    fn failed_pulls_retry_after_3_s_and_a_moved_offset_is_committed_at_once() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Clustering);
        let pulls = clustering_owning_a(&mut c, &mut ctx);
        // q0 times out after 30 s... first q1's connection breaks at 1 s.
        ctx.now_ms = 1_000;
        let events = c.handle(&mut ctx, Input::ConnectionBroken { peer: NodeId(2) });
        assert!(events.is_empty());
        assert!(ctx.take_sent().is_empty(), "no pull before the retry delay");
        let mut events = Vec::new();
        for input in ctx.advance_to(3_999) {
            events.extend(c.handle(&mut ctx, input));
        }
        assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
        for input in ctx.advance_to(4_000) {
            events.extend(c.handle(&mut ctx, input));
        }
        let sent = ctx.take_sent();
        let retried = find(&sent, |r| matches!(r, Request::PullMessage(_)));
        assert_eq!(retried.len(), 2, "both pulls broke and are retried");
        // The pulls that broke were dropped: their late answers do nothing.
        assert!(respond(
            &mut c,
            &mut ctx,
            &pulls[0].1,
            pull_answer(0, 6, records(0, 5, &[Some("TagA")]))
        )
        .is_empty());

        // An offset-moved answer resets the offset (backwards here) and commits it now.
        let q0 = retried
            .iter()
            .find(|(_, m)| pull_of(m).queue_id == 0)
            .unwrap();
        let events = respond(
            &mut c,
            &mut ctx,
            &q0.1,
            pull_answer(response_code::PULL_OFFSET_MOVED, 2, Vec::new()),
        );
        // Consumption restarts from the corrected offset: a new ownership span, as
        // RocketMQ's dropped and re-created process queue.
        assert!(matches!(
            &events[..],
            [
                ClientEvent::Committed {
                    queue_id: 0,
                    offset: 2,
                    ..
                },
                ClientEvent::Owned {
                    queue_id: 0,
                    start_offset: 2,
                    offset_from_broker_id: Some(0),
                    ..
                }
            ]
        ));
        let sent = ctx.take_sent();
        assert!(matches!(
            requests(&sent)[..],
            [
                (_, Request::UpdateConsumerOffset { offset: 2, .. }),
                (
                    _,
                    Request::PullMessage(PullMessage {
                        queue_offset: 2,
                        ..
                    })
                )
            ]
        ));
        // A slave suggestion moves the next pull of that broker group to the slave —
        // broker a has none, so it stays on the master.
        let q1 = retried
            .iter()
            .find(|(_, m)| pull_of(m).queue_id == 1)
            .unwrap();
        let suggest_slave = Response::Pull(PullResponse {
            code: response_code::PULL_NOT_FOUND,
            next_begin_offset: 0,
            min_offset: 0,
            max_offset: 0,
            suggest_which_broker_id: 1,
            records: Vec::new(),
        });
        respond(&mut c, &mut ctx, &q1.1, suggest_slave);
        let sent = ctx.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, NodeId(2));
    }

    #[test]
    fn pulls_go_to_the_slave_when_suggested_and_without_commit() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Clustering);
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
        let sent = ctx.take_sent();
        let list = find(&sent, |r| {
            matches!(r, Request::GetConsumerListByGroup { .. })
        });
        // Two consumers, we are second: b's queues.
        let cids = vec!["0@1".to_string(), c.client_id().to_string()];
        respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
        let sent = ctx.take_sent();
        let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
        assert!(
            queries.iter().all(|(to, _)| *to == NodeId(3)),
            "the master of b"
        );
        respond(&mut c, &mut ctx, &queries[0].1, Response::Offset(4));
        let sent = ctx.take_sent();
        let suggest_slave = Response::Pull(PullResponse {
            code: response_code::SUCCESS,
            next_begin_offset: 5,
            min_offset: 0,
            max_offset: 9,
            suggest_which_broker_id: 1,
            records: records(0, 4, &[Some("TagA")]),
        });
        let events = respond(&mut c, &mut ctx, &sent[0].1, suggest_slave);
        assert_eq!(events.len(), 1);
        let sent = ctx.take_sent();
        assert_eq!(sent[0].0, NodeId(4), "the slave of b");
        let p = pull_of(&sent[0].1);
        assert_eq!(p.queue_offset, 5);
        assert_eq!(
            p.sys_flag & pull_sys_flag::COMMIT_OFFSET,
            0,
            "slaves store no offsets"
        );
    }

    #[test]
    fn offsets_go_to_the_slave_only_when_the_route_lists_no_master() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Clustering);
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        // b's master is missing from the route (a name server that restarted).
        let mut slave_only = route();
        slave_only.broker_datas[1].broker_addrs.remove(&0);
        respond(&mut c, &mut ctx, &sent[0].1, Response::Route(slave_only));
        let sent = ctx.take_sent();
        let list = find(&sent, |r| {
            matches!(r, Request::GetConsumerListByGroup { .. })
        });
        let cids = vec!["0@1".to_string(), c.client_id().to_string()];
        respond(&mut c, &mut ctx, &list[0].1, Response::ConsumerList(cids));
        let sent = ctx.take_sent();
        let queries = find(&sent, |r| matches!(r, Request::QueryConsumerOffset(_)));
        assert_eq!(queries.len(), 2);
        assert!(
            queries.iter().all(|(to, _)| *to == NodeId(4)),
            "the slave of b"
        );
        let events = respond(&mut c, &mut ctx, &queries[0].1, Response::Offset(4));
        assert!(
            matches!(
                &events[..],
                [ClientEvent::Owned {
                    start_offset: 4,
                    offset_from_broker_id: Some(1),
                    ..
                }]
            ),
            "{events:?}"
        );
        let sent = ctx.take_sent();
        assert_eq!(sent[0].0, NodeId(4));
        let p = pull_of(&sent[0].1);
        assert_eq!(
            p.sys_flag & pull_sys_flag::COMMIT_OFFSET,
            0,
            "no commit rides on a pull to a slave"
        );
        // Consuming moves the offset: the periodic commit goes to the slave too.
        let found = Response::Pull(PullResponse {
            code: response_code::SUCCESS,
            next_begin_offset: 5,
            min_offset: 0,
            max_offset: 9,
            suggest_which_broker_id: 0,
            records: records(0, 4, &[Some("TagA")]),
        });
        respond(&mut c, &mut ctx, &sent[0].1, found);
        ctx.take_sent();
        c.persist_offsets(&mut ctx, &mut Vec::new());
        let sent = ctx.take_sent();
        let commits = find(&sent, |r| matches!(r, Request::UpdateConsumerOffset { .. }));
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].0, NodeId(4));
    }

    #[test]
    fn a_broadcasting_consumer_takes_a_returning_brokers_queues_when_notified() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Broadcasting);
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        // Broker b is away when the consumer starts: it owns a's queues only.
        let mut only_a = route();
        only_a.queue_datas.retain(|q| q.broker_name == "a");
        only_a.broker_datas.retain(|b| b.broker_name == "a");
        let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(only_a));
        assert_eq!(events.len(), 2, "{events:?}");
        ctx.take_sent();
        // The periodic refresh (after the first periodic rebalance) brings b back.
        let mut refresh = None;
        for input in ctx.advance_to(c.cfg.poll_name_server_interval_ms) {
            c.handle(&mut ctx, input);
        }
        for (_, m) in ctx.take_sent() {
            if matches!(
                m,
                Message::Request {
                    request: Request::GetRouteInfoByTopic { .. },
                    ..
                }
            ) {
                refresh = Some(m);
            }
        }
        let refresh = refresh.expect("the periodic route refresh");
        assert!(respond(&mut c, &mut ctx, &refresh, Response::Route(route())).is_empty());
        // b, reached by the heartbeat, notifies: the consumer takes b's queues now,
        // not at the next periodic rebalance.
        let notify = Input::Packet {
            from: NodeId(3),
            msg: Message::Request {
                opaque: 7,
                request: Request::NotifyConsumerIdsChanged {
                    consumer_group: "G".into(),
                },
            },
        };
        let owned: Vec<(String, i32)> = c
            .handle(&mut ctx, notify)
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Owned {
                    broker_name,
                    queue_id,
                    ..
                } => Some((broker_name.clone(), *queue_id)),
                _ => None,
            })
            .collect();
        assert_eq!(owned, vec![("b".into(), 0), ("b".into(), 1)]);
        assert_eq!(c.owned_queues().len(), 4);
    }

    #[test]
    fn broadcasting_takes_every_queue_and_resumes_from_its_file() {
        let mut ctx = ctx();
        let mut c = consumer(MessageModel::Broadcasting);
        c.start(&mut ctx);
        assert_eq!(c.client_id(), "10.0.0.9@DEFAULT");
        let sent = ctx.take_sent();
        let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
        // No consumer list, no offset query: every queue, from 0.
        let owned: Vec<(String, i32, u64)> = events
            .iter()
            .map(|e| match e {
                ClientEvent::Owned {
                    broker_name,
                    queue_id,
                    start_offset,
                    ..
                } => (broker_name.clone(), *queue_id, *start_offset),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            owned,
            vec![
                ("a".into(), 0, 0),
                ("a".into(), 1, 0),
                ("b".into(), 0, 0),
                ("b".into(), 1, 0)
            ]
        );
        let sent = ctx.take_sent();
        assert!(find(&sent, |r| matches!(
            r,
            Request::GetConsumerListByGroup { .. } | Request::QueryConsumerOffset(_)
        ))
        .is_empty());
        let pulls = find(&sent, |r| matches!(r, Request::PullMessage(_)));
        assert_eq!(pulls.len(), 4);
        assert!(pulls
            .iter()
            .all(|(_, m)| pull_of(m).sys_flag & pull_sys_flag::COMMIT_OFFSET == 0));
        let a0 = pulls[0].1.clone();
        respond(
            &mut c,
            &mut ctx,
            &a0,
            pull_answer(0, 3, records(0, 0, &[Some("TagA"), Some("TagA"), None])),
        );

        // At 5 s the file is written; Committed comes when its syncs complete.
        let mut events = Vec::new();
        for input in ctx.advance_to(5_000) {
            events.extend(c.handle(&mut ctx, input));
        }
        assert!(events
            .iter()
            .all(|e| !matches!(e, ClientEvent::Committed { .. })));
        assert!(find(&ctx.take_sent(), |r| matches!(
            r,
            Request::UpdateConsumerOffset { .. }
        ))
        .is_empty());
        events.extend(complete_syncs(&mut c, &mut ctx));
        let committed: Vec<(String, i32, u64)> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Committed {
                    broker_name,
                    queue_id,
                    offset,
                    ..
                } => Some((broker_name.clone(), *queue_id, *offset)),
                _ => None,
            })
            .collect();
        assert_eq!(
            committed,
            vec![
                ("a".into(), 0, 3),
                ("a".into(), 1, 0),
                ("b".into(), 0, 0),
                ("b".into(), 1, 0)
            ]
        );

        // A restarted process (same disk) starts a0 at 3.
        let disk = std::mem::take(&mut ctx.disk);
        drop(c);
        let mut ctx = self::ctx();
        ctx.disk = disk;
        let mut c = consumer(MessageModel::Broadcasting);
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        let events = respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route()));
        assert!(matches!(
            events[0],
            ClientEvent::Owned {
                queue_id: 0,
                start_offset: 3,
                ..
            }
        ));
    }

    #[test]
    fn a_broadcasting_moved_offset_starts_its_span_once_the_file_holds_it() {
        let mut ctx = ctx();
        let mut c = broadcasting_past_a0_offset_3(&mut ctx);
        let sent = ctx.take_sent();
        let a0 = find(&sent, |r| matches!(r, Request::PullMessage(_)))[0]
            .1
            .clone();
        // The periodic write of the file (offset 3) is under way when the broker moves
        // the offset back to 2 (it lost its tail).
        for input in ctx.advance_to(5_000) {
            c.handle(&mut ctx, input);
        }
        let events = respond(
            &mut c,
            &mut ctx,
            &a0,
            pull_answer(response_code::PULL_OFFSET_MOVED, 2, Vec::new()),
        );
        assert!(events.is_empty(), "no new span before the file holds 2");
        assert!(find(&ctx.take_sent(), |r| matches!(r, Request::PullMessage(_))).is_empty());
        // The write in flight lands offset 3, then a write of 2 follows; only once that
        // one is renamed into place does the new span start, after its commit.
        let mut events = Vec::new();
        events.extend(complete_syncs(&mut c, &mut ctx));
        let a0_events: Vec<&ClientEvent> = events
            .iter()
            .filter(|e| {
                matches!(e, ClientEvent::Committed { broker_name, queue_id: 0, .. }
                    | ClientEvent::Owned { broker_name, queue_id: 0, .. } if broker_name == "a")
            })
            .collect();
        assert!(
            matches!(
                &a0_events[..],
                [
                    ClientEvent::Committed { offset: 3, .. },
                    ClientEvent::Committed { offset: 2, .. },
                    ClientEvent::Owned {
                        start_offset: 2,
                        offset_from_broker_id: None,
                        ..
                    }
                ]
            ),
            "{a0_events:?}"
        );
        let sent = ctx.take_sent();
        assert!(matches!(
            requests(&sent)[..],
            [(
                _,
                Request::PullMessage(PullMessage {
                    queue_id: 0,
                    queue_offset: 2,
                    ..
                })
            )]
        ));
    }

    #[test]
    fn a_broadcasting_consumer_stops_only_after_its_offset_file_is_written() {
        let mut ctx = ctx();
        let mut c = broadcasting_past_a0_offset_3(&mut ctx);
        // The periodic write of the file (offset 3) is under way at shutdown.
        for input in ctx.advance_to(5_000) {
            c.handle(&mut ctx, input);
        }
        // Its tmp file is synced and renamed into place; the directory sync is pending.
        let tmp_sync = ctx.disk.take_requested_syncs();
        assert_eq!(tmp_sync.len(), 1);
        let mut events = c.handle(
            &mut ctx,
            Input::SyncComplete {
                ticket: tmp_sync[0],
                result: Ok(()),
            },
        );
        // A restart would read it from now on: its offsets are committed.
        assert!(events.iter().any(|e| matches!(
            e,
            ClientEvent::Committed {
                queue_id: 0,
                offset: 3,
                ..
            }
        )));
        events.extend(c.shutdown(&mut ctx));
        assert!(
            !c.is_stopped(),
            "exiting now could leave a file a restart reads, never reported Committed"
        );
        events.extend(complete_syncs(&mut c, &mut ctx));
        assert!(c.is_stopped());
    }

    #[test]
    fn last_offset_asks_for_the_max_offset() {
        let mut ctx = ctx();
        let mut c = PushConsumer::new(ConsumerConfig {
            consume_from_where: ConsumeFromWhere::LastOffset,
            ..consumer(MessageModel::Broadcasting).cfg
        });
        c.start(&mut ctx);
        let sent = ctx.take_sent();
        assert!(respond(&mut c, &mut ctx, &sent[0].1, Response::Route(route())).is_empty());
        let sent = ctx.take_sent();
        let max = find(&sent, |r| matches!(r, Request::GetMaxOffset { .. }));
        assert_eq!(max.len(), 4);
        let events = respond(&mut c, &mut ctx, &max[0].1, Response::Offset(42));
        assert!(matches!(
            events[..],
            [ClientEvent::Owned {
                start_offset: 42,
                ..
            }]
        ));
    }
}
