//! RocketMQ's clients — the producer and the push consumer — as sans-I/O components.
//!
//! They are library structs, not [`Node`](crate::node::Node)s: a host node (the
//! simulator's workload driver, later the real runtime's client process) owns one and
//! feeds it every input; the client returns [`ClientEvent`]s saying what the
//! application would have seen. Sharing the host's node means sharing its timer kinds
//! and request ids, so the two are split by number: clients use timer kinds from
//! [`CLIENT_TIMER_KIND_BASE`] and opaques from [`CLIENT_OPAQUE_BASE`] up, and ignore
//! anything below (the host's own traffic).
//!
//! This file holds what both clients need: the events, the name-server route lookup
//! and the route helpers that pick a broker address; `response_table.rs` holds the
//! request tracker (opaques, one timeout timer per request, broken connections). A
//! client process crash is the struct being dropped; a restarted process builds a new
//! one.

pub mod consumer;
pub mod offset_store;
pub mod producer;
pub(crate) mod queue_table;
pub mod rebalance;
mod response_table;

pub(crate) use response_table::{Rpc, RpcOutcome, SendRefused};

use crate::node::Ctx;
use crate::protocol::{response_code, Message, Request, Response, TopicRouteData};

pub use consumer::{
    ConsumeConcurrentlyStatus, ConsumeFromWhere, ConsumeOrderlyStatus, ConsumerConfig,
    MessageListenerConcurrently, MessageListenerOrderly, OrderlyAnswer, PushConsumer,
};
pub use producer::{MessageQueueSelector, OutgoingMessage, Producer, ProducerConfig, SendId};

/// Clients use timer kinds at or above this; hosts keep theirs below.
pub const CLIENT_TIMER_KIND_BASE: u64 = 1_000;
/// Clients number their requests at or above this; hosts may use the opaques below.
pub const CLIENT_OPAQUE_BASE: u32 = 1 << 24;

/// The timer kinds clients arm. Each component also remembers the ids of the timers
/// it armed and reacts only to those, so a stale or foreign timer is never mistaken
/// for its own.
pub mod timer_kind {
    use super::CLIENT_TIMER_KIND_BASE as BASE;
    /// A request's answer is overdue.
    pub const RPC_TIMEOUT: u64 = BASE;
    /// `pollNameServerInterval`: refresh the routes of the topics in use.
    pub const POLL_NAME_SERVER: u64 = BASE + 1;
    /// `heartbeatBrokerInterval`.
    pub const HEARTBEAT: u64 = BASE + 2;
    /// `RebalanceService`'s wait interval.
    pub const REBALANCE: u64 = BASE + 3;
    /// `persistConsumerOffsetInterval`.
    pub const PERSIST_OFFSETS: u64 = BASE + 4;
    /// A queue's pull (or offset lookup) is retried after `pull_retry_delay_ms`.
    pub const PULL_RETRY: u64 = BASE + 5;
    /// Results decided inside `Producer::send` come out through the next `handle`.
    pub const REPORT_READY: u64 = BASE + 6;
    /// A failed message that could not be handed back goes to the listener again.
    pub const CONSUME_LATER: u64 = BASE + 7;
    /// An orderly consumer renews its queue locks (`lockMQPeriodically`).
    pub const LOCK_ALL: u64 = BASE + 8;
    /// An orderly consumer's rebalance that could not lock a queue runs again.
    pub const REBALANCE_LATER: u64 = BASE + 9;
    /// An orderly queue's rest after a suspend is over.
    pub const CONSUME_ORDERLY_LATER: u64 = BASE + 10;
    /// The consumeTimeout sweep of messages stuck in a concurrent listener.
    pub const CLEAN_EXPIRED_MSG: u64 = BASE + 11;
}

/// `mqClientApiTimeout`: name-server lookups, heartbeats, consumer lists, max offsets.
pub const CLIENT_API_TIMEOUT_MS: u64 = 3_000;
/// QUERY_CONSUMER_OFFSET's timeout (`RebalancePushImpl` asks with 5 s).
pub const QUERY_OFFSET_TIMEOUT_MS: u64 = 5_000;
/// Requests one client may have waiting for answers. Sends, pulls (one per owned
/// queue) and lookups all count; past this a new request fails at once instead of
/// growing the table without end.
pub const MAX_PENDING_REQUESTS: usize = 65_536;

/// Clients name queues as the protocol does.
pub use crate::message_queue::MessageQueue;

/// How a send ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The master stored the message: SUCCESS (0), FLUSH_DISK_TIMEOUT (10),
    /// SLAVE_NOT_AVAILABLE (11) or FLUSH_SLAVE_TIMEOUT (12). `msg_id` is the client's
    /// `UNIQ_KEY` (RocketMQ's `SendResult.msgId`), the id consumers see too.
    /// `after_unknown`: an earlier attempt of this send got no answer (a timeout or a
    /// broken connection), so a second copy of the message may be stored elsewhere.
    Stored {
        code: i32,
        broker_name: String,
        queue_id: i32,
        queue_offset: u64,
        msg_id: String,
        /// An earlier attempt timed out or lost its connection after sending, so it may
        /// have stored a second copy of the message (at another offset).
        retried_after_unknown: bool,
    },
    /// No attempt succeeded. `definite`: no attempt can have stored the message (each
    /// one either never left the client or was refused with an error code); otherwise
    /// it may still be stored (a timeout or a broken connection after sending).
    Failed {
        definite: bool,
        reason: String,
        /// Another attempt followed one whose outcome is unknown: two copies may exist.
        retried_after_unknown: bool,
    },
}

/// A message as the consuming application receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveredMessage {
    pub topic: String,
    pub tags: Option<String>,
    /// The properties as stored, without the store's `__CRC32#` tail.
    pub properties: String,
    pub body: Vec<u8>,
    pub reconsume_times: i32,
    /// `UNIQ_KEY` when the message has one, else the offset message id.
    pub msg_id: String,
    /// bornTimestamp: the producer's clock when it sent the message, ms.
    pub born_timestamp_ms: i64,
    pub born_host: crate::store::record::Host,
    /// Where the record sits in its broker's commit log (`commitLogOffset`): what a
    /// hand-back names.
    pub commit_log_offset: u64,
}

/// What the application of a client observes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    SendResult {
        id: SendId,
        outcome: SendOutcome,
    },
    /// Handed to the listener (`consumer::MessageListenerConcurrently`).
    Delivered {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        queue_offset: u64,
        msg: DeliveredMessage,
    },
    /// The listener returned for the message delivered at `queue_offset` of the queue.
    Consumed {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        queue_offset: u64,
        status: consumer::ConsumeConcurrentlyStatus,
    },
    /// The consumer gave up on the listener still holding the message delivered at
    /// `queue_offset` after `consume_timeout_ms` (`ConsumeReturnType.TIME_OUT`), and
    /// hands the message back; the listener's answer, when it comes, changes nothing.
    ConsumeTimedOut {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        queue_offset: u64,
    },
    /// The orderly listener returned for the message delivered at `queue_offset`.
    ConsumedOrderly {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        queue_offset: u64,
        status: consumer::ConsumeOrderlyStatus,
    },
    /// This consumer now pulls the queue, starting at `start_offset`.
    Owned {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        start_offset: u64,
        /// The broker id (0 = master) the start offset was asked of; `None` when it
        /// came from a local offset file.
        offset_from_broker_id: Option<u64>,
        /// The start is a position the broker corrected (PULL_OFFSET_MOVED), not a
        /// committed offset read at a rebalance.
        offset_moved: bool,
    },
    /// This consumer stopped pulling the queue (rebalance gave it away).
    Disowned {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
    },
    /// An UPDATE_CONSUMER_OFFSET went out (clustering), or the local offset file holding
    /// this offset was persisted (broadcasting).
    Committed {
        group: String,
        broker_name: String,
        topic: String,
        queue_id: i32,
        offset: u64,
    },
}

/// What a GET_ROUTEINFO_BY_TOPIC came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RouteAnswer {
    Found(TopicRouteData),
    /// The name server knows no such topic (TOPIC_NOT_EXIST).
    NotFound,
    /// No usable answer (timeout, broken connection, another error): ask elsewhere.
    Failed(String),
}

impl RouteAnswer {
    pub(crate) fn from_outcome(outcome: RpcOutcome) -> RouteAnswer {
        match outcome {
            RpcOutcome::Response(Response::Route(route)) => RouteAnswer::Found(route),
            RpcOutcome::Response(Response::Error { code, .. })
                if code == response_code::TOPIC_NOT_EXIST =>
            {
                RouteAnswer::NotFound
            }
            other => RouteAnswer::Failed(other.describe()),
        }
    }
}

/// The configured name servers, tried round-robin: a lookup goes to the current one,
/// and a lookup that failed (timeout, broken connection) moves on to the next, as the
/// client's remoting layer drops a dead name-server channel and picks another.
#[derive(Clone, Debug)]
pub(crate) struct NameServers {
    addrs: Vec<String>,
    current: usize,
}

impl NameServers {
    pub(crate) fn new(addrs: Vec<String>) -> NameServers {
        NameServers { addrs, current: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Starts at a random name server, as RocketMQ picks a random first index.
    pub(crate) fn start(&mut self, ctx: &mut dyn Ctx<Message>) {
        if !self.addrs.is_empty() {
            self.current = (ctx.random_u64() % self.addrs.len() as u64) as usize;
        }
    }

    pub(crate) fn rotate(&mut self) {
        if !self.addrs.is_empty() {
            self.current = (self.current + 1) % self.addrs.len();
        }
    }

    /// Asks the current name server (moving past unresolvable ones) for `topic`'s route.
    pub(crate) fn request_route<T>(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        rpc: &mut Rpc<T>,
        topic: &str,
        tag: T,
    ) -> Result<u32, String> {
        let mut last_error = "no name server configured".to_string();
        let mut tag = Some(tag);
        for _ in 0..self.addrs.len() {
            let addr = self.addrs[self.current].clone();
            let request = Request::GetRouteInfoByTopic {
                topic: topic.to_string(),
            };
            match ctx.resolve(&addr) {
                Some(_) => {
                    let tag = tag.take().expect("used once");
                    return rpc
                        .call(ctx, &addr, request, CLIENT_API_TIMEOUT_MS, tag)
                        .map_err(|e| e.to_string());
                }
                None => {
                    last_error = SendRefused::Unresolvable(addr).to_string();
                    self.rotate();
                }
            }
        }
        Err(last_error)
    }
}

/// The address of broker `broker_name`'s member `broker_id` in `route`.
pub fn broker_addr<'a>(
    route: &'a TopicRouteData,
    broker_name: &str,
    broker_id: u64,
) -> Option<&'a str> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)
        .and_then(|b| b.broker_addrs.get(&broker_id))
        .map(String::as_str)
}

/// Where a consumer talks to broker group `broker_name` (`findBrokerAddressInSubscribe`):
/// the master (id 0), unless `prefer_slave` and slave 1 is there, or there is no
/// master; then slave 1; then any member. Returns the address and whether it is a slave.
/// The id under which `addr` is listed in `broker_name`'s group.
pub(crate) fn broker_id_of(route: &TopicRouteData, broker_name: &str, addr: &str) -> Option<u64> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)?
        .broker_addrs
        .iter()
        .find(|(_, a)| *a == addr)
        .map(|(&id, _)| id)
}

pub(crate) fn subscribe_addr<'a>(
    route: &'a TopicRouteData,
    broker_name: &str,
    prefer_slave: bool,
) -> Option<(&'a str, bool)> {
    let data = route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)?;
    let master = data.broker_addrs.get(&0).map(|a| (a.as_str(), false));
    let slave = data.broker_addrs.get(&1).map(|a| (a.as_str(), true));
    let first = if prefer_slave {
        slave.or(master)
    } else {
        master.or(slave)
    };
    first.or_else(|| {
        data.broker_addrs
            .iter()
            .next()
            .map(|(&id, a)| (a.as_str(), id != 0))
    })
}

/// The IPv4 part of an `ip:port` address as four bytes; any other address is hashed
/// (FNV-1a) into four bytes so that ids built from it stay distinct per address.
pub(crate) fn ip_bytes(addr: &str) -> [u8; 4] {
    let ip = addr.rsplit_once(':').map_or(addr, |(ip, _)| ip);
    if let Ok(v4) = ip.parse::<std::net::Ipv4Addr>() {
        return v4.octets();
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in addr.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_be_bytes()
}

/// The host part of an `ip:port` address.
pub(crate) fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or(addr, |(ip, _)| ip)
}

#[cfg(test)]
pub(crate) mod test_ctx {
    //! A hand-driven [`Ctx`] for unit tests: records what a client sends and arms,
    //! resolves addresses from a table, and fires timers when the test says so.

    use super::*;
    use std::collections::BTreeMap;

    use crate::node::{Input, NodeId, TimerId};

    use crate::store::{Disk, MemDisk};

    pub struct TestCtx {
        /// The true time: the monotonic clock's reading.
        pub now_ms: u64,
        /// How far the wall clock (`Ctx::now_ms`) reads off the true time.
        pub wall_skew_ms: i64,
        pub addr: String,
        pub peers: BTreeMap<String, NodeId>,
        pub sent: Vec<(NodeId, Message)>,
        /// Armed, not yet fired or cancelled: id → (due at ms, kind).
        pub timers: BTreeMap<TimerId, (u64, u64)>,
        pub next_timer: u64,
        pub rng_state: u64,
        pub disk: MemDisk,
    }

    impl TestCtx {
        pub fn new(peers: &[(&str, u32)]) -> TestCtx {
            TestCtx {
                now_ms: 0,
                wall_skew_ms: 0,
                addr: "10.0.0.9:10911".to_string(),
                peers: peers
                    .iter()
                    .map(|(a, n)| (a.to_string(), NodeId(*n)))
                    .collect(),
                sent: Vec::new(),
                timers: BTreeMap::new(),
                next_timer: 0,
                rng_state: 0x1234_5678,
                disk: MemDisk::new(),
            }
        }

        pub fn take_sent(&mut self) -> Vec<(NodeId, Message)> {
            std::mem::take(&mut self.sent)
        }

        /// Moves the clock to `t_ms` and returns the timers due by then (earliest first),
        /// removing them; the caller hands each to the client.
        pub fn advance_to(&mut self, t_ms: u64) -> Vec<Input<Message>> {
            self.now_ms = t_ms;
            let mut due: Vec<(u64, TimerId, u64)> = self
                .timers
                .iter()
                .filter(|(_, (at, _))| *at <= t_ms)
                .map(|(&id, &(at, kind))| (at, id, kind))
                .collect();
            due.sort();
            for (_, id, _) in &due {
                self.timers.remove(id);
            }
            due.into_iter()
                .map(|(_, id, kind)| Input::Timer { id, kind })
                .collect()
        }
    }

    impl Ctx<Message> for TestCtx {
        fn me(&self) -> NodeId {
            NodeId(9)
        }
        fn my_addr(&self) -> String {
            self.addr.clone()
        }
        fn resolve(&mut self, addr: &str) -> Option<NodeId> {
            self.peers.get(addr).copied()
        }
        fn now_ms(&self) -> u64 {
            self.now_ms.saturating_add_signed(self.wall_skew_ms)
        }
        fn monotonic_ms(&self) -> u64 {
            self.now_ms
        }
        fn random_u64(&mut self) -> u64 {
            // xorshift: deterministic and good enough for tests.
            self.rng_state ^= self.rng_state << 13;
            self.rng_state ^= self.rng_state >> 7;
            self.rng_state ^= self.rng_state << 17;
            self.rng_state
        }
        fn send(&mut self, to: NodeId, msg: Message) {
            self.sent.push((to, msg));
        }
        fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
            let id = TimerId(self.next_timer);
            self.next_timer += 1;
            self.timers.insert(id, (self.now_ms + after_ms, kind));
            id
        }
        fn cancel_timer(&mut self, id: TimerId) {
            self.timers.remove(&id);
        }
        fn disk(&mut self) -> &mut dyn Disk {
            &mut self.disk
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_ctx::TestCtx;
    use super::*;
    use crate::node::{Input, NodeId};
    use crate::protocol::BrokerData;

    /// The outcomes `input` decides, in their order.
    fn decided(
        rpc: &mut Rpc<&'static str>,
        ctx: &mut TestCtx,
        input: Input<Message>,
    ) -> Vec<(&'static str, RpcOutcome)> {
        rpc.on_input(ctx, input).into_iter().collect()
    }

    #[test]
    fn rpc_reports_response_timeout_and_broken_once_each() {
        let mut ctx = TestCtx::new(&[("a:1", 1), ("b:1", 2)]);
        let mut rpc: Rpc<&str> = Rpc::new();
        let o1 = rpc
            .call(&mut ctx, "a:1", Request::GetBrokerClusterInfo, 100, "first")
            .unwrap();
        let _o2 = rpc
            .call(
                &mut ctx,
                "a:1",
                Request::GetBrokerClusterInfo,
                100,
                "second",
            )
            .unwrap();
        let _o3 = rpc
            .call(&mut ctx, "b:1", Request::GetBrokerClusterInfo, 50, "third")
            .unwrap();
        assert!(o1 >= CLIENT_OPAQUE_BASE);
        assert_eq!(
            rpc.call(&mut ctx, "c:1", Request::GetBrokerClusterInfo, 1, "x"),
            Err(SendRefused::Unresolvable("c:1".into()))
        );
        // A host's own response (opaque below the base) is not ours.
        let host = Input::Packet {
            from: NodeId(1),
            msg: Message::Response {
                opaque: 5,
                response: Response::HeartBeat,
            },
        };
        assert!(decided(&mut rpc, &mut ctx, host.clone()).is_empty());
        let answer = Input::Packet {
            from: NodeId(1),
            msg: Message::Response {
                opaque: o1,
                response: Response::HeartBeat,
            },
        };
        assert_eq!(
            decided(&mut rpc, &mut ctx, answer.clone()),
            vec![("first", RpcOutcome::Response(Response::HeartBeat))]
        );
        // A duplicate answer is dropped.
        assert!(decided(&mut rpc, &mut ctx, answer.clone()).is_empty());
        // The 50 ms timer of "third" fires first.
        let due = ctx.advance_to(60);
        assert_eq!(due.len(), 1);
        assert_eq!(
            decided(&mut rpc, &mut ctx, due[0].clone()),
            vec![("third", RpcOutcome::TimedOut)]
        );
        let broken = Input::ConnectionBroken { peer: NodeId(1) };
        assert_eq!(
            decided(&mut rpc, &mut ctx, broken.clone()),
            vec![("second", RpcOutcome::Broken)]
        );
        // Its timeout was cancelled.
        assert!(ctx.advance_to(1_000).is_empty());
    }

    #[test]
    fn subscribe_addr_prefers_master_then_slave() {
        let route = |addrs: &[(u64, &str)]| TopicRouteData {
            broker_datas: vec![BrokerData {
                cluster: "c".into(),
                broker_name: "a".into(),
                broker_addrs: addrs.iter().map(|(i, s)| (*i, s.to_string())).collect(),
            }],
            ..TopicRouteData::default()
        };
        let both = route(&[(0, "m"), (1, "s")]);
        assert_eq!(subscribe_addr(&both, "a", false), Some(("m", false)));
        assert_eq!(subscribe_addr(&both, "a", true), Some(("s", true)));
        let slave_only = route(&[(1, "s")]);
        assert_eq!(subscribe_addr(&slave_only, "a", false), Some(("s", true)));
        let master_only = route(&[(0, "m")]);
        assert_eq!(subscribe_addr(&master_only, "a", true), Some(("m", false)));
        assert_eq!(subscribe_addr(&master_only, "b", false), None);
    }

    #[test]
    fn ip_bytes_of_sim_addresses() {
        assert_eq!(ip_bytes("10.0.1.7:10911"), [10, 0, 1, 7]);
        assert_ne!(ip_bytes("host-a:1"), ip_bytes("host-b:1"));
        assert_eq!(host_of("10.0.1.7:10911"), "10.0.1.7");
    }
}
