//! The producer (reference D; 4.9.8 `DefaultMQProducerImpl.sendDefaultImpl`,
//! `TopicPublishInfo`, `MQClientInstance.topicRouteData2TopicPublishInfo`).
//!
//! A send looks up the topic's route (any name server; TBW102's route when the topic
//! does not exist yet, so the broker auto-creates it), picks a queue round-robin and
//! sends SEND_MESSAGE_V2 to that broker group's master. Timeouts, broken connections
//! and a few broker codes are retried on another broker, up to
//! `1 + retry_times_when_send_failed` attempts, all within one `send_msg_timeout_ms`.
//! Every other answer ends the send at once.
//!
//! A send with a queue selector (`message_queue_selector.rs`, orderly messages) goes to
//! the queue the selector picks and makes one attempt only.
//!
//! The outcome of a failed send says whether the message may have been stored anyway:
//! that is what a checker needs to judge a later delivery of it (not a phantom) and its
//! absence (not a loss).

use std::collections::BTreeMap;

use super::{
    broker_addr, timer_kind, ClientEvent, MessageQueue, NameServers, RouteAnswer, Rpc, RpcOutcome,
    SendOutcome,
};
use crate::message::{
    encode_properties, is_valid_topic, push_upper_hex, PROPERTY_KEYS, PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY, PROPERTY_WAIT_STORE_MSG_OK,
};
use crate::node::{Ctx, Input, TimerId};
use crate::protocol::{perm, response_code, Message, Response, SendMessage, TopicRouteData};
use crate::store::delay_level::PROPERTY_DELAY_TIME_LEVEL;

mod message_queue_selector;

pub use message_queue_selector::{java_string_hash_code, select_by_hash, MessageQueueSelector};

/// `createTopicKey`: the topic whose route a producer borrows for a topic that does
/// not exist yet, and whose config the broker copies when it auto-creates the topic.
pub const DEFAULT_TOPIC: &str = "TBW102";
/// `maxMessageSize`.
pub const MAX_MESSAGE_SIZE_BYTES: usize = 4 * 1024 * 1024;
/// Sends in progress at once; a send beyond this fails at once (definitely).
pub const MAX_PENDING_SENDS: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    pub producer_group: String,
    /// `ip:port` of each name server.
    pub namesrv_addrs: Vec<String>,
    /// `sendMsgTimeout`: covers every attempt of one send.
    pub send_msg_timeout_ms: u64,
    /// `retryTimesWhenSendFailed`: attempts = 1 + this.
    pub retry_times_when_send_failed: u32,
    /// `pollNameServerInterval`.
    pub poll_name_server_interval_ms: u64,
    /// `defaultTopicQueueNums`: queues per broker of an auto-created topic.
    pub default_topic_queue_nums: u32,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            producer_group: "DEFAULT_PRODUCER".to_string(),
            namesrv_addrs: Vec::new(),
            send_msg_timeout_ms: 3_000,
            retry_times_when_send_failed: 2,
            poll_name_server_interval_ms: 30_000,
            default_topic_queue_nums: 4,
        }
    }
}

/// A message the application sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    pub topic: String,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub user_properties: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Message.setDelayTimeLevel`: 0 delivers at once; level n waits the broker's
    /// n-th `messageDelayLevel` (a level above its maximum waits the maximum).
    pub delay_time_level: u32,
}

/// Names one [`Producer::send`]; its [`SendOutcome`] comes back with the same id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SendId(pub u64);

/// The sendable queues of a route (`topicRouteData2TopicPublishInfo`): for each broker
/// group in name order whose queue data is writable and that has a master (id 0),
/// `write_queue_nums` queues.
pub fn publish_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut datas: Vec<_> = route.queue_datas.iter().collect();
    datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    let mut queues = Vec::new();
    for qd in datas {
        if qd.perm & perm::WRITE == 0 {
            continue;
        }
        if broker_addr(route, &qd.broker_name, 0).is_none() {
            // A group without its master cannot take writes.
            continue;
        }
        for queue_id in 0..qd.write_queue_nums {
            queues.push(MessageQueue {
                topic: topic.to_string(),
                broker_name: qd.broker_name.clone(),
                queue_id: queue_id as i32,
            });
        }
    }
    queues
}

/// TBW102's route made into the route of a topic to be auto-created: each broker gets
/// `min(default_topic_queue_nums, its TBW102 write queues)` queues.
pub fn route_from_default_topic(
    mut default_route: TopicRouteData,
    default_topic_queue_nums: u32,
) -> TopicRouteData {
    for qd in &mut default_route.queue_datas {
        let nums = default_topic_queue_nums.min(qd.write_queue_nums);
        qd.read_queue_nums = nums;
        qd.write_queue_nums = nums;
    }
    default_route
}

/// `TopicPublishInfo.selectOneMessageQueue`: the next queue round-robin on the topic's
/// counter; on a retry (`last_failed_broker` set) the next one on another broker, if
/// any broker other than that one has queues.
pub fn select_queue<'a>(
    queues: &'a [MessageQueue],
    send_which_queue: &mut u64,
    last_failed_broker: Option<&str>,
) -> Option<&'a MessageQueue> {
    if queues.is_empty() {
        return None;
    }
    let mut next = || {
        *send_which_queue = send_which_queue.wrapping_add(1);
        &queues[(*send_which_queue % queues.len() as u64) as usize]
    };
    if let Some(failed) = last_failed_broker {
        for _ in 0..queues.len() {
            let mq = next();
            if mq.broker_name != failed {
                return Some(mq);
            }
        }
    }
    Some(next())
}

/// Broker answers after which RocketMQ tries again (on another broker): the broker
/// stored nothing and another one may.
pub fn is_retried_code(code: i32) -> bool {
    matches!(
        code,
        response_code::TOPIC_NOT_EXIST
            | response_code::SERVICE_NOT_AVAILABLE
            | response_code::SYSTEM_ERROR
            | response_code::NO_PERMISSION
    )
}

/// The codes of a stored message: SEND_OK, FLUSH_DISK_TIMEOUT, SLAVE_NOT_AVAILABLE,
/// FLUSH_SLAVE_TIMEOUT. None is retried (`retryAnotherBrokerWhenNotStoreOK` is off).
pub fn is_stored_code(code: i32) -> bool {
    matches!(
        code,
        response_code::SUCCESS
            | response_code::FLUSH_DISK_TIMEOUT
            | response_code::SLAVE_NOT_AVAILABLE
            | response_code::FLUSH_SLAVE_TIMEOUT
    )
}

/// A client message id (`UNIQ_KEY`): 16 bytes as 32 upper-case hex characters — the
/// client's IPv4 address, a random number drawn per producer instance (RocketMQ uses
/// the pid and a class-loader hash; a restarted process draws another), and the
/// instance's send counter, so ids never repeat within an instance and differ across
/// hosts and incarnations.
pub fn uniq_key(ip: [u8; 4], instance: u32, counter: u64) -> String {
    let mut out = String::with_capacity(32);
    push_upper_hex(&mut out, &ip);
    push_upper_hex(&mut out, &instance.to_be_bytes());
    push_upper_hex(&mut out, &counter.to_be_bytes());
    out
}

/// The property string a send carries: TAGS and KEYS when set, the client id
/// (`MessageClientIDSetter.setUniqID`), WAIT=true (wait for the store), then the
/// user's properties in order.
pub fn message_properties(
    tags: Option<&str>,
    keys: Option<&str>,
    uniq_key: &str,
    user_properties: &[(String, String)],
) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(tags) = tags {
        pairs.push((PROPERTY_TAGS, tags));
    }
    if let Some(keys) = keys {
        pairs.push((PROPERTY_KEYS, keys));
    }
    pairs.push((PROPERTY_UNIQ_KEY, uniq_key));
    pairs.push((PROPERTY_WAIT_STORE_MSG_OK, "true"));
    pairs.extend(
        user_properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    encode_properties(pairs)
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum RouteStage {
    /// Asking for the topic itself.
    Topic,
    /// The topic is unknown: asking for TBW102.
    DefaultTopic,
}

#[derive(Clone, Debug)]
enum Call {
    Route { topic: String, stage: RouteStage },
    Send { id: SendId },
}

/// A route lookup in flight. At most one per topic.
#[derive(Clone, Debug)]
struct Lookup {
    /// Name servers still to try after this one fails.
    tries_left: usize,
}

/// What the producer knows of a topic it sent to.
#[derive(Clone, Debug, Default)]
struct TopicPublish {
    route: Option<TopicRouteData>,
    queues: Vec<MessageQueue>,
    /// `sendWhichQueue`: the round-robin counter.
    send_which_queue: u64,
    lookup: Option<Lookup>,
}

#[derive(Clone, Debug)]
struct PendingSend {
    topic: String,
    body: Vec<u8>,
    properties: String,
    uniq_key: String,
    born_timestamp_ms: u64,
    deadline_ms: u64,
    attempts: u32,
    /// The broker of the last failed attempt: the retry avoids it.
    last_failed_broker: Option<String>,
    /// Some attempt may have stored the message (no answer, or the connection broke
    /// after it was sent).
    maybe_stored: bool,
    /// An attempt was made after one that may have stored the message.
    retried_after_unknown: bool,
    last_error: String,
    /// The broker an attempt is waiting on; `None` while waiting for a route.
    in_flight: Option<String>,
    /// Set for a send with a queue selector: its queue comes from the selector, and it
    /// makes one attempt.
    selector: Option<MessageQueueSelector>,
}

pub struct Producer {
    cfg: ProducerConfig,
    rpc: Rpc<Call>,
    namesrv: NameServers,
    topics: BTreeMap<String, TopicPublish>,
    sends: BTreeMap<SendId, PendingSend>,
    next_send_id: u64,
    ip: [u8; 4],
    instance: u32,
    next_uniq_counter: u64,
    /// Outcomes decided inside `send`, reported by the next `handle` (REPORT_READY).
    ready: Vec<ClientEvent>,
    report_timer: Option<TimerId>,
    poll_timer: Option<TimerId>,
    started: bool,
}

impl Producer {
    pub fn new(cfg: ProducerConfig) -> Producer {
        let namesrv = NameServers::new(cfg.namesrv_addrs.clone());
        Producer {
            cfg,
            rpc: Rpc::new(),
            namesrv,
            topics: BTreeMap::new(),
            sends: BTreeMap::new(),
            next_send_id: 0,
            ip: [0; 4],
            instance: 0,
            next_uniq_counter: 0,
            ready: Vec::new(),
            report_timer: None,
            poll_timer: None,
            started: false,
        }
    }

    pub fn config(&self) -> &ProducerConfig {
        &self.cfg
    }

    /// Sends in progress.
    pub fn pending_sends(&self) -> usize {
        self.sends.len()
    }

    pub fn start(&mut self, ctx: &mut dyn Ctx<Message>) {
        assert!(!self.started, "a producer starts once");
        self.started = true;
        self.ip = super::ip_bytes(&ctx.my_addr());
        self.instance = ctx.random_u64() as u32;
        self.namesrv.start(ctx);
        self.poll_timer = Some(ctx.set_timer(
            self.cfg.poll_name_server_interval_ms,
            timer_kind::POLL_NAME_SERVER,
        ));
    }

    /// The born timestamp the producer stamped on send `id` (its clock when the send
    /// began), while the send is in flight.
    pub fn born_timestamp_ms(&self, id: SendId) -> Option<u64> {
        self.sends.get(&id).map(|s| s.born_timestamp_ms)
    }

    /// Starts sending `msg`; its outcome comes out of [`Producer::handle`] as a
    /// [`ClientEvent::SendResult`] with the returned id.
    pub fn send(&mut self, ctx: &mut dyn Ctx<Message>, msg: OutgoingMessage) -> SendId {
        self.start_send(ctx, msg, None)
    }

    /// `send(msg, selector, arg)`: starts sending `msg` to the queue `selector` picks
    /// among the topic's publish queues, in one attempt (no other queue, no retry); its
    /// outcome comes out of [`Producer::handle`] as for [`Producer::send`].
    pub fn send_selected(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        msg: OutgoingMessage,
        selector: MessageQueueSelector,
    ) -> SendId {
        self.start_send(ctx, msg, Some(selector))
    }

    fn start_send(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        msg: OutgoingMessage,
        selector: Option<MessageQueueSelector>,
    ) -> SendId {
        let id = SendId(self.next_send_id);
        self.next_send_id += 1;
        let uniq_key = uniq_key(self.ip, self.instance, self.next_uniq_counter);
        self.next_uniq_counter += 1;

        let refusal = if !self.started {
            Some("producer not started".to_string())
        } else if !is_valid_topic(&msg.topic) {
            Some(format!("topic {:?} is not a valid topic name", msg.topic))
        } else if msg.body.is_empty() {
            Some("the message body is empty".to_string())
        } else if msg.body.len() > MAX_MESSAGE_SIZE_BYTES {
            Some(format!(
                "the message body is {} bytes, over {MAX_MESSAGE_SIZE_BYTES}",
                msg.body.len()
            ))
        } else if self.sends.len() >= MAX_PENDING_SENDS {
            Some(format!("more than {MAX_PENDING_SENDS} sends in progress"))
        } else {
            None
        };
        if let Some(reason) = refusal {
            let outcome = SendOutcome::Failed {
                definite: true,
                reason,
                retried_after_unknown: false,
            };
            self.ready.push(ClientEvent::SendResult { id, outcome });
            self.arm_report(ctx);
            return id;
        }

        let mut properties = message_properties(
            msg.tags.as_deref(),
            msg.keys.as_deref(),
            &uniq_key,
            &msg.user_properties,
        );
        if msg.delay_time_level > 0 {
            // `Message.setDelayTimeLevel`.
            let level = msg.delay_time_level.to_string();
            properties.push_str(&encode_properties([(
                PROPERTY_DELAY_TIME_LEVEL,
                level.as_str(),
            )]));
        }

        let now_ms = ctx.now_ms();
        self.sends.insert(
            id,
            PendingSend {
                topic: msg.topic,
                body: msg.body,
                properties,
                uniq_key,
                born_timestamp_ms: now_ms,
                deadline_ms: now_ms + self.cfg.send_msg_timeout_ms,
                attempts: 0,
                last_failed_broker: None,
                maybe_stored: false,
                retried_after_unknown: false,
                last_error: String::new(),
                in_flight: None,
                selector,
            },
        );
        let mut out = Vec::new();
        self.attempt(ctx, id, true, &mut out);
        if !out.is_empty() {
            self.ready.append(&mut out);
            self.arm_report(ctx);
        }
        id
    }

    /// Feeds one input; returns what the application sees because of it. Inputs that
    /// are not the producer's (host timers and responses, requests) give nothing.
    pub fn handle(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        if !self.started {
            return out;
        }
        match input {
            Input::Timer { id, kind } if kind == timer_kind::POLL_NAME_SERVER => {
                if self.poll_timer == Some(id) {
                    self.poll_name_server(ctx);
                    self.poll_timer = Some(ctx.set_timer(
                        self.cfg.poll_name_server_interval_ms,
                        timer_kind::POLL_NAME_SERVER,
                    ));
                }
            }
            Input::Timer { id, kind } if kind == timer_kind::REPORT_READY => {
                if self.report_timer == Some(id) {
                    self.report_timer = None;
                    out.append(&mut self.ready);
                }
            }
            other => {
                for (call, outcome) in self.rpc.on_input(ctx, other) {
                    match call {
                        Call::Route { topic, stage } => {
                            self.on_route(
                                ctx,
                                &topic,
                                stage,
                                RouteAnswer::from_outcome(outcome),
                                &mut out,
                            );
                        }
                        Call::Send { id } => self.on_send_outcome(ctx, id, outcome, &mut out),
                    }
                }
            }
        }
        out
    }

    fn arm_report(&mut self, ctx: &mut dyn Ctx<Message>) {
        if self.report_timer.is_none() {
            self.report_timer = Some(ctx.set_timer(0, timer_kind::REPORT_READY));
        }
    }

    /// A selected send makes one attempt (`sendSelectImpl`); others retry.
    fn max_attempts(&self, send: &PendingSend) -> u32 {
        if send.selector.is_some() {
            1
        } else {
            1 + self.cfg.retry_times_when_send_failed
        }
    }

    fn finish(&mut self, id: SendId, outcome: SendOutcome, out: &mut Vec<ClientEvent>) {
        let removed = self.sends.remove(&id);
        debug_assert!(removed.is_some(), "{id:?} finished twice");
        out.push(ClientEvent::SendResult { id, outcome });
    }

    fn fail(&mut self, id: SendId, reason: String, out: &mut Vec<ClientEvent>) {
        let s = &self.sends[&id];
        let outcome = SendOutcome::Failed {
            definite: !s.maybe_stored,
            reason,
            retried_after_unknown: s.retried_after_unknown,
        };
        self.finish(id, outcome, out);
    }

    /// Makes the next attempt of send `id`, or ends it: out of attempts, out of time,
    /// or no route. Waits (returns with nothing in flight) while a route lookup runs;
    /// `may_lookup` is false when resuming after a lookup, which must not start another.
    fn attempt(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: SendId,
        may_lookup: bool,
        out: &mut Vec<ClientEvent>,
    ) {
        loop {
            let now_ms = ctx.now_ms();
            let s = self.sends.get(&id).expect("attempt of a pending send");
            let max_attempts = self.max_attempts(s);
            debug_assert!(s.in_flight.is_none());
            if s.attempts >= max_attempts {
                let reason = format!(
                    "send failed after {} attempts: {}",
                    s.attempts, s.last_error
                );
                return self.fail(id, reason, out);
            }
            // Checked before every attempt, as RocketMQ does: no new attempt once the
            // send's time is up. (A route lookup is not cut short by it: each lookup
            // has its own 3 s timeout, and the send is judged when the lookup ends.)
            if now_ms >= s.deadline_ms {
                let reason = format!(
                    "send timed out after {} ms and {} attempts: {}",
                    self.cfg.send_msg_timeout_ms, s.attempts, s.last_error
                );
                return self.fail(id, reason, out);
            }
            let topic = s.topic.clone();
            let publish = self.topics.entry(topic.clone()).or_default();
            if publish.queues.is_empty() {
                if publish.lookup.is_some() {
                    return; // resumed when the lookup ends
                }
                if may_lookup {
                    match self.start_lookup(ctx, &topic, RouteStage::Topic) {
                        Ok(()) => return,
                        Err(e) => {
                            let reason = format!("no route info of topic {topic}: {e}");
                            return self.fail(id, reason, out);
                        }
                    }
                }
                let reason = format!("no route info of topic {topic}");
                return self.fail(id, reason, out);
            }
            let s = self.sends.get_mut(&id).expect("pending");
            let mq = match &s.selector {
                Some(selector) => selector.select(&publish.queues),
                None => select_queue(
                    &publish.queues,
                    &mut publish.send_which_queue,
                    s.last_failed_broker.as_deref(),
                ),
            }
            .expect("queues are not empty")
            .clone();
            let route = publish.route.as_ref().expect("queues come from a route");
            let addr = broker_addr(route, &mq.broker_name, 0)
                .expect("publish queues have a master")
                .to_string();
            s.attempts += 1;
            s.retried_after_unknown |= s.maybe_stored;
            let request = crate::protocol::Request::SendMessage(SendMessage {
                producer_group: self.cfg.producer_group.clone(),
                topic: topic.clone(),
                default_topic: DEFAULT_TOPIC.to_string(),
                default_topic_queue_nums: self.cfg.default_topic_queue_nums,
                queue_id: mq.queue_id,
                sys_flag: 0,
                born_timestamp_ms: s.born_timestamp_ms as i64,
                born_host: ctx.my_addr(),
                flag: 0,
                properties: s.properties.clone(),
                reconsume_times: 0,
                max_reconsume_times: None,
                body: s.body.clone(),
            });
            // The attempt may take whatever is left of the send's time.
            let timeout_ms = s.deadline_ms - now_ms;
            match self
                .rpc
                .call(ctx, &addr, request, timeout_ms, Call::Send { id })
            {
                Ok(_) => {
                    self.sends.get_mut(&id).expect("pending").in_flight = Some(mq.broker_name);
                    return;
                }
                Err(refused) => {
                    // Never left the client: this attempt cannot have stored anything.
                    let s = self.sends.get_mut(&id).expect("pending");
                    s.last_error = format!("{}: {refused}", mq.broker_name);
                    s.last_failed_broker = Some(mq.broker_name);
                }
            }
        }
    }

    fn on_send_outcome(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        id: SendId,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        let s = self.sends.get_mut(&id).expect("a tracked send is pending");
        let broker = s.in_flight.take().expect("an answered send was in flight");
        match outcome {
            RpcOutcome::Response(Response::Send(r)) if is_stored_code(r.code) => {
                let outcome = SendOutcome::Stored {
                    code: r.code,
                    broker_name: broker,
                    queue_id: r.queue_id,
                    queue_offset: r.queue_offset,
                    msg_id: s.uniq_key.clone(),
                    retried_after_unknown: s.retried_after_unknown,
                };
                self.finish(id, outcome, out);
            }
            RpcOutcome::Response(Response::Error { code, remark }) if is_retried_code(code) => {
                // Refused: this attempt stored nothing; try another broker.
                s.last_error = format!("{broker}: code {code}: {remark}");
                s.last_failed_broker = Some(broker);
                let topic = s.topic.clone();
                self.refresh_after_failure(ctx, &topic);
                self.attempt(ctx, id, true, out);
            }
            RpcOutcome::Response(Response::Error { code, remark }) => {
                // Any other code is final; the broker stored nothing this time.
                let reason = format!("{broker}: code {code}: {remark}");
                self.fail(id, reason, out);
            }
            RpcOutcome::Response(other) => {
                // Not an answer a send can get: we cannot tell what the broker did.
                s.maybe_stored = true;
                let reason = format!("{broker}: unexpected answer {other:?}");
                self.fail(id, reason, out);
            }
            RpcOutcome::TimedOut | RpcOutcome::Broken => {
                // The request may have reached the broker and been stored.
                s.maybe_stored = true;
                s.last_error = format!("{broker}: {}", outcome.describe());
                s.last_failed_broker = Some(broker);
                let topic = s.topic.clone();
                self.refresh_after_failure(ctx, &topic);
                self.attempt(ctx, id, true, out);
            }
        }
    }

    /// A failed attempt may mean the route changed (a broker died or moved): look it up
    /// again in the background. The retry goes on with the route at hand.
    fn refresh_after_failure(&mut self, ctx: &mut dyn Ctx<Message>, topic: &str) {
        if self.topics.get(topic).is_some_and(|t| t.lookup.is_none()) {
            let _ = self.start_lookup(ctx, topic, RouteStage::Topic);
        }
    }

    fn poll_name_server(&mut self, ctx: &mut dyn Ctx<Message>) {
        let idle: Vec<String> = self
            .topics
            .iter()
            .filter(|(_, t)| t.lookup.is_none())
            .map(|(topic, _)| topic.clone())
            .collect();
        for topic in idle {
            let _ = self.start_lookup(ctx, &topic, RouteStage::Topic);
        }
    }

    fn start_lookup(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        stage: RouteStage,
    ) -> Result<(), String> {
        let tries = self.namesrv.len();
        self.issue_lookup(ctx, topic, stage, tries)
    }

    fn issue_lookup(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        stage: RouteStage,
        tries_left: usize,
    ) -> Result<(), String> {
        let asked = match stage {
            RouteStage::Topic => topic,
            RouteStage::DefaultTopic => DEFAULT_TOPIC,
        };
        let call = Call::Route {
            topic: topic.to_string(),
            stage,
        };
        let result = self.namesrv.request_route(ctx, &mut self.rpc, asked, call);
        let publish = self.topics.entry(topic.to_string()).or_default();
        match result {
            Ok(_) => {
                publish.lookup = Some(Lookup { tries_left });
                Ok(())
            }
            Err(e) => {
                publish.lookup = None;
                Err(e)
            }
        }
    }

    fn on_route(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        stage: RouteStage,
        answer: RouteAnswer,
        out: &mut Vec<ClientEvent>,
    ) {
        let publish = self.topics.entry(topic.to_string()).or_default();
        let Some(lookup) = publish.lookup.take() else {
            return;
        };
        match answer {
            RouteAnswer::Found(route) => {
                let route = match stage {
                    RouteStage::Topic => route,
                    RouteStage::DefaultTopic => {
                        route_from_default_topic(route, self.cfg.default_topic_queue_nums)
                    }
                };
                if publish.route.is_none() {
                    // RocketMQ starts each topic's counter at a random point.
                    publish.send_which_queue = ctx.random_u64() % 1024;
                }
                publish.queues = publish_queues(topic, &route);
                publish.route = Some(route);
            }
            RouteAnswer::NotFound => {
                // A topic we already have a route for keeps it (RocketMQ does not drop
                // a route on a failed refresh); an unknown one borrows TBW102's.
                if stage == RouteStage::Topic && publish.route.is_none() {
                    let tries = self.namesrv.len();
                    if self
                        .issue_lookup(ctx, topic, RouteStage::DefaultTopic, tries)
                        .is_ok()
                    {
                        return;
                    }
                }
            }
            RouteAnswer::Failed(reason) => {
                tracing::debug!(%topic, %reason, "route lookup failed; trying the next name server");
                self.namesrv.rotate();
                let waiting = self.waiting_sends(topic);
                if lookup.tries_left > 1
                    && !waiting.is_empty()
                    && self
                        .issue_lookup(ctx, topic, stage, lookup.tries_left - 1)
                        .is_ok()
                {
                    return;
                }
            }
        }
        for id in self.waiting_sends(topic) {
            self.attempt(ctx, id, false, out);
        }
    }

    /// Sends of `topic` waiting for its route, in send order.
    fn waiting_sends(&self, topic: &str) -> Vec<SendId> {
        self.sends
            .iter()
            .filter(|(_, s)| s.topic == topic && s.in_flight.is_none())
            .map(|(&id, _)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests;
