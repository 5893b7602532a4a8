//! Planted bugs in the push consumer's subscription and tag filter
//! (`client/consumer/pull.rs`'s filter, the expression the broker filters by): a group gets
//! fewer tags than it subscribed to.

use rmq_model::node::NodeId;
use rmq_model::protocol::{Message, Request};

use super::tamper::{consumer_config, tamper_consumers, Rewrite};
use super::{Component, Mutant};
use crate::check::Rule;

pub(super) fn mutants() -> Vec<Mutant> {
    let m = |name, description, nodes| Mutant {
        name,
        component: Component::ClientFilter,
        description,
        scenario: "case1_kill",
        variant: "",
        seeds: 4,
        expected: Rule::Lost,
        nodes,
    };
    vec![
        m(
            "filter-first-alternative",
            "parses `TagA || TagB` as `TagA`: the client subscribes to and keeps only the first tag",
            || consumer_config(|c| c.tag_expression = first_alternative(&c.tag_expression)),
        ),
        m(
            "filter-pull-narrowed",
            "sends the broker only the first tag of its expression in each pull's subscription",
            || tamper_consumers(|_| Some(Rewrite(narrow_pull_subscription))),
        ),
        Mutant {
            expected: Rule::Filter,
            ..m(
                "filter-subscribes-all",
                "subscribes to `*` whatever the group's tag expression: it receives unsubscribed tags",
                || consumer_config(|c| c.tag_expression = "*".to_string()),
            )
        },
    ]
}

fn first_alternative(expression: &str) -> String {
    expression
        .split("||")
        .next()
        .unwrap_or(expression)
        .trim()
        .to_string()
}

fn narrow_pull_subscription(_: NodeId, msg: Message) -> Option<Message> {
    Some(match msg {
        Message::Request {
            opaque,
            request: Request::PullMessage(mut pull),
        } => {
            pull.subscription = pull.subscription.map(|s| first_alternative(&s));
            Message::Request {
                opaque,
                request: Request::PullMessage(pull),
            }
        }
        m => m,
    })
}
