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

    /// The connections of `group`'s members.
    pub(super) fn channels(&self, group: &str) -> Vec<NodeId> {
        self.groups
            .get(group)
            .map(|g| g.values().map(|c| c.node).collect())
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

    /// UNREGISTER_CLIENT (`ConsumerManager.unregisterConsumer`): RocketMQ removes the
    /// channel the request came on from the group, whatever client id it names, and
    /// tells the remaining members.
    pub(super) fn unregister(&mut self, ctx: &mut dyn Ctx<Message>, group: &str, peer: NodeId) {
        let Some(members) = self.groups.get_mut(group) else {
            return;
        };
        let before = members.len();
        members.retain(|_, c| c.node != peer);
        if members.len() != before {
            Self::notify(ctx, group, members);
        }
        if members.is_empty() {
            self.groups.remove(group);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::test_ctx::TestCtx;
    use crate::protocol::MessageModel;

    fn channel(node: u32) -> Channel {
        Channel {
            node: NodeId(node),
            last_heartbeat_ms: 0,
            data: ConsumerData {
                group_name: "G".into(),
                message_model: MessageModel::Clustering,
                subscriptions: BTreeMap::from([("T".to_string(), "*".to_string())]),
            },
        }
    }

    #[test]
    fn unregister_drops_the_sending_channel_and_notifies_the_rest() {
        let mut ctx = TestCtx::new(&[]);
        let mut groups = ConsumerGroups::default();
        groups.groups.insert(
            "G".into(),
            BTreeMap::from([
                ("c1".to_string(), channel(1)),
                ("c2".to_string(), channel(2)),
            ]),
        );
        groups.unregister(&mut ctx, "other", NodeId(1));
        groups.unregister(&mut ctx, "G", NodeId(3));
        assert!(ctx.take_sent().is_empty(), "nothing changed, nobody told");
        assert_eq!(groups.client_ids("G"), vec!["c1", "c2"]);

        groups.unregister(&mut ctx, "G", NodeId(1));
        assert_eq!(groups.client_ids("G"), vec!["c2"]);
        let sent = ctx.take_sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, NodeId(2));
        assert!(matches!(
            &sent[0].1,
            Message::Request {
                request: Request::NotifyConsumerIdsChanged { consumer_group },
                ..
            } if consumer_group == "G"
        ));

        groups.unregister(&mut ctx, "G", NodeId(2));
        assert!(groups.client_ids("G").is_empty());
        assert!(groups.groups.is_empty(), "an empty group is dropped");
    }
}
