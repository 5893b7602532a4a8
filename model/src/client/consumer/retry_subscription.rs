//! The group's retry topic (`DefaultMQPushConsumerImpl.copySubscription`, reference
//! C.5): a clustering consumer also subscribes `%RETRY%{group}` with `*`, so the
//! messages it handed back come back to the group. Its route is looked up like the
//! topic's (with the topic's, and at every name-server poll until found: the broker
//! creates the retry topic at the group's first heartbeat; a changed route rebalances
//! at once, where RocketMQ waits for the next 20 s rebalance); its queues are allocated
//! among the group's members like the topic's; what it delivers is shown to the
//! listener under the topic it was first sent to (`RETRY_TOPIC`,
//! `resetRetryAndNamespace`). Broadcasting consumers have none: RocketMQ never retries
//! a broadcast message.
//!
//! Deviation: broker addresses come from the subscribed topic's route (RocketMQ keeps
//! one address table for every route); the retry topic lives on the brokers the group
//! heartbeats to, which are that route's.

use crate::client::rebalance::readable_queues;
use crate::client::{ClientEvent, MessageQueue, RouteAnswer};
use crate::message::{property, retry_topic, PROPERTY_RETRY_TOPIC};
use crate::node::Ctx;
use crate::protocol::{Message, TopicRouteData};

use super::{Call, PushConsumer};

/// `%RETRY%{group}` as this consumer subscribes it.
#[derive(Clone, Debug)]
pub(super) struct RetrySubscription {
    pub(super) topic: String,
    pub(super) route: Option<TopicRouteData>,
    lookup_in_flight: bool,
    /// Name servers the lookup under way may still try: a lookup that fails (a
    /// timeout, a broken connection) moves on to the next at once, as the topic's
    /// does, instead of waiting a whole poll interval on a dead one.
    tries_left: usize,
}

impl RetrySubscription {
    pub(super) fn new(group: &str) -> RetrySubscription {
        RetrySubscription {
            topic: retry_topic(group),
            route: None,
            lookup_in_flight: false,
            tries_left: 0,
        }
    }
}

impl RetrySubscription {
    /// The retry topic's route, once looked up.
    pub(super) fn route(&self) -> Option<&TopicRouteData> {
        self.route.as_ref()
    }
}

impl PushConsumer {
    /// Whether `mq` is one of the group's retry queues.
    pub(super) fn is_retry_queue(&self, mq: &MessageQueue) -> bool {
        self.retry.as_ref().is_some_and(|r| r.topic == mq.topic)
    }

    /// Asks a name server for the retry topic's route, unless a lookup is under way;
    /// each name server is tried once before the lookup gives up until the next poll.
    pub(super) fn lookup_retry_route(&mut self, ctx: &mut dyn Ctx<Message>) {
        let tries = self.namesrv.len();
        if let Some(retry) = self.retry.as_mut() {
            if !retry.lookup_in_flight {
                retry.tries_left = tries;
            }
        }
        self.issue_retry_route_lookup(ctx);
    }

    fn issue_retry_route_lookup(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Some(retry) = self.retry.as_mut() else {
            return;
        };
        if retry.lookup_in_flight || retry.tries_left == 0 {
            return;
        }
        retry.tries_left -= 1;
        let topic = retry.topic.clone();
        match self
            .namesrv
            .request_route(ctx, &mut self.rpc, &topic, Call::RetryRoute)
        {
            Ok(_) => retry.lookup_in_flight = true,
            Err(e) => tracing::debug!(%topic, error = %e, "cannot ask for the retry route"),
        }
    }

    /// The retry topic's route: kept when found; a new or changed one rebalances at
    /// once (the brokers create the topic one by one, at the group's heartbeats, so
    /// the first routes a consumer sees may list only some of them, and the group's
    /// members must not hold one retry queue together for longer than a rebalance); a
    /// failed or empty answer keeps the old one until the next poll.
    pub(super) fn on_retry_route(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        answer: RouteAnswer,
        out: &mut Vec<ClientEvent>,
    ) {
        let Some(retry) = self.retry.as_mut() else {
            return;
        };
        retry.lookup_in_flight = false;
        match answer {
            RouteAnswer::Found(route) => {
                let changed = retry.route.as_ref() != Some(&route);
                retry.route = Some(route);
                if changed && self.route.is_some() {
                    self.rebalance(ctx, out);
                }
            }
            RouteAnswer::NotFound => {}
            RouteAnswer::Failed(reason) => {
                tracing::debug!(%reason, "retry route lookup failed; trying the next name server");
                self.namesrv.rotate();
                self.issue_retry_route_lookup(ctx);
            }
        }
    }

    /// The retry topic's readable queues, as far as its route is known.
    pub(super) fn retry_queues(&self) -> Vec<MessageQueue> {
        match &self.retry {
            Some(RetrySubscription {
                topic,
                route: Some(route),
                ..
            }) => readable_queues(topic, route),
            _ => Vec::new(),
        }
    }

    /// The topic the listener sees for a message pulled from `mq`: for a retry queue,
    /// the one it was first sent to.
    pub(super) fn listener_topic<'a>(
        &self,
        mq: &MessageQueue,
        record_topic: &'a str,
        properties: &'a str,
    ) -> &'a str {
        if self.is_retry_queue(mq) {
            property(properties, PROPERTY_RETRY_TOPIC).unwrap_or(record_topic)
        } else {
            record_topic
        }
    }
}
