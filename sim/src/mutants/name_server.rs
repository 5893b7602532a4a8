//! Planted bugs in the name server's routes (`namesrv/route_info.rs`): clients are told
//! of fewer readable queues than the brokers hold, so some queues are never consumed.

use rmq_model::node::NodeId;
use rmq_model::protocol::{perm, Message, Response, TopicRouteData};

use super::tamper::{tamper_name_servers, Rewrite};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, nodes| Mutant {
        name,
        component: Component::NameServer,
        description,
        scenario: "case1_kill",
        variant: "",
        seeds: 4,
        expected: Rule::Lost,
        nodes,
    };
    vec![
        m(
            "namesrv-half-read-queues",
            "routes advertise half of each broker's read queues (all of its write queues)",
            || tamper_name_servers(|| Rewrite(half_read_queues)),
        ),
        m(
            "namesrv-last-broker-unreadable",
            "routes drop the READ permission of the last broker group's queues",
            || tamper_name_servers(|| Rewrite(last_broker_unreadable)),
        ),
    ]
}

fn map_route(msg: Message, f: fn(&mut TopicRouteData)) -> Option<Message> {
    match msg {
        Message::Response {
            opaque,
            response: Response::Route(mut r),
        } => {
            f(&mut r);
            Some(Message::Response {
                opaque,
                response: Response::Route(r),
            })
        }
        m => Some(m),
    }
}

fn half_read_queues(_: NodeId, msg: Message) -> Option<Message> {
    map_route(msg, |r| {
        for q in &mut r.queue_datas {
            q.read_queue_nums = q.read_queue_nums.div_ceil(2);
        }
    })
}

fn last_broker_unreadable(_: NodeId, msg: Message) -> Option<Message> {
    map_route(msg, |r| {
        if let Some(q) = r
            .queue_datas
            .iter_mut()
            .max_by(|a, b| a.broker_name.cmp(&b.broker_name))
        {
            q.perm &= !perm::READ;
        }
    })
}
