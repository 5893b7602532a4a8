//! Planted bugs in master–slave replication (`broker/ha.rs`): a SYNC_MASTER that
//! acknowledges what no slave holds, or an ASYNC_MASTER whose slave falls further
//! behind than the declared replication window, so losing the master's machine loses
//! more than the promise allows.

use rmq_model::broker::BrokerRole;
use rmq_model::node::{Ctx, Input, NodeId};
use rmq_model::protocol::{Message, Request};

use super::tamper::{broker_config, tamper_brokers, Tamper};
use super::{Component, Mutant};
use crate::check::Rule;

/// Judged on case 5 (a master's machine is lost), on its SYNC replication seeds unless
/// said otherwise.
const SCENARIO: &str = "case5_machine_lost";
const SYNC: &str = "replication=sync";

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, nodes| Mutant {
        name,
        component: Component::BrokerHa,
        description,
        scenario: SCENARIO,
        variant: SYNC,
        seeds: 60,
        expected: Rule::Lost,
        nodes,
    };
    vec![
        m(
            "ha-slave-acks-unstored",
            "the slave reports every HA transfer as applied without storing it",
            || {
                tamper_brokers(|c| {
                    (c.role == BrokerRole::Slave).then_some(SlaveAcksUnstored)
                })
            },
        ),
        m(
            "ha-sync-master-acks-async",
            "declared SYNC_MASTER but replicates asynchronously: SEND_OK before the slave has the message",
            || {
                broker_config(|c| {
                    if c.role == BrokerRole::SyncMaster {
                        c.role = BrokerRole::AsyncMaster;
                    }
                })
            },
        ),
        Mutant {
            name: "ha-async-master-ships-late",
            component: Component::BrokerHa,
            description: "ASYNC_MASTER that flushes, and so ships to its slave, every 30 s: the slave falls past the declared replication window",
            scenario: SCENARIO,
            variant: "replication=async",
            seeds: 60,
            expected: Rule::Lost,
            nodes: || {
                broker_config(|c| {
                    c.flush_interval_commit_log_ms = 30_000;
                    c.flush_commit_log_thorough_interval_ms = 30_000;
                })
            },
        },
        m(
            "ha-slave-reports-ahead",
            "the slave reports holding 1 MiB more of the commit log than it has",
            || tamper_brokers(|c| (c.role == BrokerRole::Slave).then_some(ReportsAhead)),
        ),
    ]
}

struct SlaveAcksUnstored;

impl Tamper for SlaveAcksUnstored {
    fn incoming(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        input: Input<Message>,
    ) -> Option<Input<Message>> {
        let Input::Packet {
            from,
            msg:
                Message::Request {
                    request:
                        Request::HaTransfer {
                            master_offset,
                            data,
                            ..
                        },
                    ..
                },
        } = &input
        else {
            return Some(input);
        };
        if !data.is_empty() {
            let request = Request::HaReport {
                slave_max_offset: master_offset + data.len() as u64,
            };
            ctx.send(*from, Message::Request { opaque: 0, request });
        }
        None
    }

    /// Its own honest reports would tell the master the truth.
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, _: NodeId, msg: Message) -> Option<Message> {
        match msg {
            Message::Request {
                request: Request::HaReport { slave_max_offset },
                ..
            } if slave_max_offset > 0 => None,
            m => Some(m),
        }
    }
}

struct ReportsAhead;

impl Tamper for ReportsAhead {
    fn outgoing(&mut self, _: &mut dyn Ctx<Message>, _: NodeId, msg: Message) -> Option<Message> {
        match msg {
            Message::Request {
                opaque,
                request: Request::HaReport { slave_max_offset },
            } if slave_max_offset > 0 => Some(Message::Request {
                opaque,
                request: Request::HaReport {
                    slave_max_offset: slave_max_offset + (1 << 20),
                },
            }),
            m => Some(m),
        }
    }
}
