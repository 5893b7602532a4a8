//! Route and heartbeat (`MQClientInstance.updateTopicRouteInfoFromNameServer`,
//! `sendHeartbeatToAllBroker`): the topic's route from a name server, and a heartbeat to
//! every broker of it so the brokers know the group's members.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{ClientEvent, RouteAnswer};
use crate::node::Ctx;
use crate::protocol::{ConsumerData, HeartbeatData, Message, Request};

use super::{Call, PushConsumer};

impl PushConsumer {
    pub(super) fn lookup_route(&mut self, ctx: &mut dyn Ctx<Message>) {
        let tries = self.namesrv.len();
        self.issue_route_lookup(ctx, tries);
    }

    pub(super) fn issue_route_lookup(&mut self, ctx: &mut dyn Ctx<Message>, tries_left: usize) {
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

    pub(super) fn on_route(
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
                    self.lookup_retry_route(ctx);
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
    pub(super) fn send_heartbeat(&mut self, ctx: &mut dyn Ctx<Message>) {
        let Some(route) = self.route.as_ref() else {
            return;
        };
        let mut subscriptions =
            BTreeMap::from([(self.cfg.topic.clone(), self.cfg.tag_expression.clone())]);
        if let Some(retry) = &self.retry {
            subscriptions.insert(retry.topic.clone(), "*".to_string());
        }
        let data = HeartbeatData {
            client_id: self.client_id.clone(),
            consumers: vec![ConsumerData {
                group_name: self.cfg.consumer_group.clone(),
                message_model: self.cfg.message_model,
                subscriptions,
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
}
