//! The name server (`NamesrvController`, reference F): brokers register with every name
//! server every 30 s; clients ask any name server for a topic's route. Name servers
//! never talk to each other and keep nothing on disk.

pub mod route_info;

use crate::node::{Ctx, Input, Node};
use crate::protocol::{response_code, Message, Request, Response};
use route_info::RouteInfoManager;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// `scanNotActiveBroker` period.
    pub scan_not_active_broker_interval_ms: u64,
    /// Delay of the first scan after start.
    pub first_scan_delay_ms: u64,
    /// `BROKER_CHANNEL_EXPIRED_TIME`: silence after which a broker is dropped.
    pub broker_channel_expired_time_ms: u64,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        NamesrvConfig {
            scan_not_active_broker_interval_ms: 10_000,
            first_scan_delay_ms: 5_000,
            broker_channel_expired_time_ms: 120_000,
        }
    }
}

const TIMER_SCAN: u64 = 1;

pub struct NameServer {
    config: NamesrvConfig,
    routes: RouteInfoManager,
}

impl NameServer {
    pub fn new(config: NamesrvConfig) -> NameServer {
        NameServer {
            config,
            routes: RouteInfoManager::new(),
        }
    }

    pub fn routes(&self) -> &RouteInfoManager {
        &self.routes
    }

    fn answer(&mut self, request: Request, from: crate::node::NodeId, now_ms: u64) -> Response {
        match request {
            Request::RegisterBroker(req) => {
                Response::RegisterBroker(self.routes.register_broker(&req, from, now_ms))
            }
            Request::UnregisterBroker(b) => {
                self.routes.unregister_broker(&b);
                Response::UnregisterBroker
            }
            Request::GetRouteInfoByTopic { topic } => match self.routes.topic_route(&topic) {
                Some(route) => Response::Route(route),
                None => Response::Error {
                    code: response_code::TOPIC_NOT_EXIST,
                    remark: format!("No topic route info in name server for the topic: {topic}"),
                },
            },
            Request::GetBrokerClusterInfo => Response::ClusterInfo(self.routes.cluster_info()),
            Request::GetAllTopicListFromNameserver => Response::TopicList(self.routes.topic_list()),
            other => Response::Error {
                code: response_code::REQUEST_CODE_NOT_SUPPORTED,
                remark: format!(
                    "request code {} not supported by a name server",
                    other.code()
                ),
            },
        }
    }
}

impl Node<Message> for NameServer {
    fn on_start(&mut self, ctx: &mut dyn Ctx<Message>) {
        ctx.set_timer(self.config.first_scan_delay_ms, TIMER_SCAN);
    }

    fn handle(&mut self, ctx: &mut dyn Ctx<Message>, input: Input<Message>) {
        match input {
            Input::Packet {
                from,
                msg: Message::Request { opaque, request },
            } => {
                let response = self.answer(request, from, ctx.now_ms());
                ctx.send(from, Message::Response { opaque, response });
            }
            // A name server sends no requests, so it expects no responses.
            Input::Packet {
                msg: Message::Response { .. },
                ..
            } => {}
            Input::Timer {
                kind: TIMER_SCAN, ..
            } => {
                self.routes.scan_not_active_brokers(
                    ctx.now_ms(),
                    self.config.broker_channel_expired_time_ms,
                );
                ctx.set_timer(self.config.scan_not_active_broker_interval_ms, TIMER_SCAN);
            }
            Input::Timer { .. } | Input::SyncComplete { .. } => {}
            // RocketMQ drops a broker as soon as its channel closes.
            Input::ConnectionBroken { peer } => {
                self.routes.on_channel_destroy(peer);
            }
        }
    }
}
