//! Tests' broker: one [`Broker`] on a `MemDisk`, its syncs completed as soon as they
//! are asked for and its timers fired at exactly their due time.

use std::collections::BTreeMap;

use super::{Broker, BrokerConfig, Phase};
use crate::client::test_ctx::TestCtx;
use crate::message::property;
use crate::node::{Input, Node, NodeId};
use crate::protocol::{Message, Request, Response};
use crate::store::config_tables::TopicConfig;
use crate::store::delay_level::MessageDelayLevel;
use crate::store::record::{parse, CrcCheck, Slot};
use crate::store::{MemDisk, StoreConfig};

/// A broker with one topic `topic` of `queues` queues, a small store and the delay
/// table `levels`.
pub(super) fn config_with(topic: &str, queues: u32, levels: MessageDelayLevel) -> BrokerConfig {
    let topic_config = TopicConfig {
        topic_name: topic.into(),
        read_queue_nums: queues,
        write_queue_nums: queues,
        ..TopicConfig::default()
    };
    BrokerConfig {
        store: StoreConfig {
            commit_log_file_size_bytes: 256 * 1024,
            consume_queue_entries_per_file: 64,
            message_delay_level: levels,
            ..StoreConfig::default()
        },
        topics: BTreeMap::from([(topic.to_string(), topic_config)]),
        ..BrokerConfig::default()
    }
}

/// The node id requests come from.
pub(super) const CLIENT: NodeId = NodeId(5);

pub(super) struct BrokerHarness {
    pub(super) ctx: TestCtx,
    pub(super) broker: Broker,
    next_opaque: u32,
}

impl BrokerHarness {
    /// Boots a broker on `disk` at `now_ms`, the nodes `peers` names (address, id)
    /// resolvable.
    pub(super) fn start(
        config: BrokerConfig,
        peers: &[(&str, u32)],
        disk: MemDisk,
        now_ms: u64,
    ) -> BrokerHarness {
        let mut ctx = TestCtx::new(peers);
        ctx.disk = disk;
        ctx.now_ms = now_ms;
        let mut broker = Broker::boot(config, &mut ctx.disk);
        broker.on_start(&mut ctx);
        let mut h = BrokerHarness {
            ctx,
            broker,
            next_opaque: 0,
        };
        h.pump();
        assert_eq!(h.broker.phase(), Phase::Running);
        h
    }

    pub(super) fn pump(&mut self) {
        loop {
            let tickets = self.ctx.disk.take_requested_syncs();
            if tickets.is_empty() {
                return;
            }
            for ticket in tickets {
                let input = Input::SyncComplete {
                    ticket,
                    result: Ok(()),
                };
                self.broker.handle(&mut self.ctx, input);
            }
        }
    }

    /// Fires every timer due up to `t_ms`, each at its own time.
    pub(super) fn advance_to(&mut self, t_ms: u64) {
        loop {
            let next = self
                .ctx
                .timers
                .values()
                .map(|&(at, _)| at)
                .filter(|&at| at <= t_ms)
                .min();
            let Some(at_ms) = next else { break };
            for input in self.ctx.advance_to(at_ms.max(self.ctx.now_ms)) {
                self.broker.handle(&mut self.ctx, input);
                self.pump();
            }
        }
        self.ctx.now_ms = t_ms;
    }

    /// Hands `request` to the broker from [`CLIENT`]; the last response it sent
    /// anyone since, if any.
    pub(super) fn request(&mut self, request: Request) -> Option<Response> {
        self.next_opaque += 1;
        let packet = Message::Request {
            opaque: self.next_opaque,
            request,
        };
        self.broker.handle(
            &mut self.ctx,
            Input::Packet {
                from: CLIENT,
                msg: packet,
            },
        );
        self.pump();
        let sent = self.ctx.take_sent();
        sent.into_iter().rev().find_map(|(_, m)| match m {
            Message::Response { response, .. } => Some(response),
            _ => None,
        })
    }

    /// Every record of `topic`-`queue_id`, in order: (commit-log offset, reconsume
    /// times, UNIQ_KEY, properties). Each body must equal its UNIQ_KEY.
    pub(super) fn records(&self, topic: &str, queue_id: i32) -> Vec<(u64, i32, String, String)> {
        let store = self.broker.store().unwrap();
        (0..store.max_queue_offset(topic, queue_id))
            .map(|offset| {
                let m = store
                    .get_message(&self.ctx.disk, topic, queue_id, offset)
                    .unwrap();
                let Ok(Slot::Record(view)) = parse(&m.bytes, CrcCheck::Strict) else {
                    panic!("a stored record parses");
                };
                let props = view.user_properties().to_string();
                let key = property(&props, "UNIQ_KEY").unwrap().to_string();
                assert_eq!(view.body, key.as_bytes(), "the body is kept");
                (m.physical_offset, view.reconsume_times, key, props)
            })
            .collect()
    }

    /// (UNIQ_KEY, properties) of every message in `topic`-`queue_id`, in order.
    pub(super) fn queue(&self, topic: &str, queue_id: i32) -> Vec<(String, String)> {
        self.records(topic, queue_id)
            .into_iter()
            .map(|(_, _, k, p)| (k, p))
            .collect()
    }

    pub(super) fn keys(&self, topic: &str, queue_id: i32) -> Vec<String> {
        self.queue(topic, queue_id)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
}
