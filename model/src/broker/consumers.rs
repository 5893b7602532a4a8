//! Consumer groups (`ConsumerManager`, reference C.4): who consumes for a group, learned
//! from heartbeats. A membership change (a new client, a channel closed or silent for
//! 120 s) is pushed to every member with NOTIFY_CONSUMER_IDS_CHANGED so they rebalance
//! at once instead of within 20 s.

use std::collections::BTreeMap;

use super::Broker;
use crate::node::{Ctx, NodeId};
use crate::protocol::{ConsumerData, HeartbeatData, Message, Request};

#[derive(Clone, Debug)]
struct Channel {
    node: NodeId,
    last_heartbeat_ms: u64,
    data: ConsumerData,
}

#[derive(Default)]
pub(super) struct ConsumerGroups {
    /// group → client id → channel.
    groups: BTreeMap<String, BTreeMap<String, Channel>>,
}

impl ConsumerGroups {
    pub(super) fn client_ids(&self, group: &str) -> Vec<String> {
        self.groups
            .get(group)
            .map(|g| g.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether some member of `group` subscribes to `topic` (for pulls without a
    /// subscription in the request).
    pub(super) fn subscription(&self, group: &str, topic: &str) -> Option<String> {
        self.groups
            .get(group)?
            .values()
            .find_map(|c| c.data.subscriptions.get(topic).cloned())
    }

    fn notify(ctx: &mut dyn Ctx<Message>, group: &str, members: &BTreeMap<String, Channel>) {
        for c in members.values() {
            ctx.send(
                c.node,
                Message::Request {
                    opaque: 0,
                    request: Request::NotifyConsumerIdsChanged {
                        consumer_group: group.to_string(),
                    },
                },
            );
        }
    }

    /// Drops the channels `gone` selects, telling the survivors of each group.
    fn remove_where(&mut self, ctx: &mut dyn Ctx<Message>, gone: impl Fn(&Channel) -> bool) {
        for (group, members) in self.groups.iter_mut() {
            let before = members.len();
            members.retain(|_, c| !gone(c));
            if members.len() != before {
                Self::notify(ctx, group, members);
            }
        }
        self.groups.retain(|_, m| !m.is_empty());
    }

    pub(super) fn on_channel_closed(&mut self, ctx: &mut dyn Ctx<Message>, peer: NodeId) {
        self.remove_where(ctx, |c| c.node == peer);
    }
}

impl Broker {
    pub(super) fn on_heartbeat(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        data: HeartbeatData,
        now_ms: u64,
    ) {
        for consumer in data.consumers {
            let group = consumer.group_name.clone();
            let members = self.consumers.groups.entry(group.clone()).or_default();
            let changed = match members.get(&data.client_id) {
                None => true,
                Some(c) => c.data != consumer || c.node != from,
            };
            members.insert(
                data.client_id.clone(),
                Channel {
                    node: from,
                    last_heartbeat_ms: now_ms,
                    data: consumer,
                },
            );
            if changed {
                ConsumerGroups::notify(ctx, &group, members);
            }
        }
    }

    /// Drops channels silent for `channel_expired_timeout_ms`.
    pub(super) fn scan_clients(&mut self, ctx: &mut dyn Ctx<Message>) {
        let now_ms = ctx.now_ms();
        let timeout_ms = self.config.channel_expired_timeout_ms;
        self.consumers.remove_where(ctx, |c| {
            now_ms.saturating_sub(c.last_heartbeat_ms) > timeout_ms
        });
    }
}
