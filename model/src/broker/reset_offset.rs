//! INVOKE_BROKER_TO_RESET_OFFSET (`Broker2Client.resetOffset`): move a consumer group
//! on a topic to a point in time. For each write queue of the topic the offset is the
//! first message stored at or after the timestamp (SEARCH_OFFSET_BY_TIMESTAMP's
//! search, `MessageStore::offset_by_time`); without `force` a queue only moves back.
//! Every online consumer of the group is told with RESET_CONSUMER_CLIENT_OFFSET
//! (oneway) and continues from there; the answer is the table.
//!
//! Deviation: RocketMQ leaves the stored offsets to the consumers' next commits and
//! answers CONSUMER_NOT_ONLINE when the group has none, after which its tool writes
//! the offsets itself (`ResetOffsetByTimeOldCommand`). Here the broker stores the new
//! offsets at once whoever is online, so one answer covers both, and a consumer's
//! commit of an old position that crosses the reset cannot undo it for long: the
//! consumer commits the reset offset with its next pull.

use std::collections::BTreeMap;

use super::Broker;
use crate::client::MessageQueue;
use crate::node::Ctx;
use crate::protocol::{response_code, Message, QueueKey, Request, ResetOffset, Response};

impl Broker {
    pub(super) fn reset_offset(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        req: ResetOffset,
    ) -> Response {
        let Some(write_queue_nums) = self.topics.get(&req.topic).map(|t| t.write_queue_nums) else {
            return Response::Error {
                code: response_code::SYSTEM_ERROR,
                remark: format!(
                    "[reset-offset] reset offset failed, no topic in this broker. topic={}",
                    req.topic
                ),
            };
        };
        let mut table = BTreeMap::new();
        for queue_id in 0..write_queue_nums as i32 {
            let key = QueueKey {
                consumer_group: req.consumer_group.clone(),
                topic: req.topic.clone(),
                queue_id,
            };
            let Some(consumer_offset) = self.offsets.get(&key) else {
                return Response::Error {
                    code: response_code::SYSTEM_ERROR,
                    remark: format!("THe consumer group <{}> not exist", req.consumer_group),
                };
            };
            // Never past what a pull may serve.
            let visible =
                self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), &req.topic, queue_id);
            let at_time = self
                .store
                .as_ref()
                .map_or(0, |s| {
                    s.offset_by_time(ctx.disk(), &req.topic, queue_id, req.timestamp_ms)
                })
                .min(visible);
            let offset = if req.force || at_time < consumer_offset {
                at_time
            } else {
                consumer_offset
            };
            self.commit_offset(ctx, &key, offset);
            table.insert(
                MessageQueue {
                    topic: req.topic.clone(),
                    broker_name: self.config.broker_name.clone(),
                    queue_id,
                },
                offset,
            );
        }
        let notice = Request::ResetConsumerClientOffset(ResetOffset {
            offset_table: table.clone(),
            ..req.clone()
        });
        for node in self.consumers.channels(&req.consumer_group) {
            ctx.send(
                node,
                Message::Request {
                    opaque: 0,
                    request: notice.clone(),
                },
            );
        }
        tracing::info!(group = %req.consumer_group, topic = %req.topic, ?table, "consumer offsets reset");
        Response::ResetOffset(table)
    }
}

#[cfg(test)]
mod tests {
    use super::super::admin_processor::tests::{ask, running_broker, send, topic, NS};
    use super::*;
    use crate::client::test_ctx::TestCtx;
    use crate::node::{Input, Node, NodeId};
    use crate::protocol::{ConsumerData, HeartbeatData, MessageModel};

    fn reset(group: &str, timestamp_ms: i64, force: bool) -> Request {
        Request::InvokeBrokerToResetOffset(ResetOffset {
            topic: "T".into(),
            consumer_group: group.into(),
            timestamp_ms,
            force,
            offset_table: BTreeMap::new(),
        })
    }

    fn offsets(response: Response) -> Vec<u64> {
        match response {
            Response::ResetOffset(table) => table.into_values().collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reset_by_time_stores_the_offsets_and_tells_the_groups_consumers() {
        let mut ctx = TestCtx::new(&[(NS, 1)]);
        let mut broker = running_broker(&mut ctx);
        assert!(
            matches!(
                ask(&mut broker, &mut ctx, reset("G", 0, true)),
                Response::Error {
                    code: response_code::SYSTEM_ERROR,
                    ..
                }
            ),
            "no such topic"
        );
        ask(
            &mut broker,
            &mut ctx,
            Request::UpdateAndCreateTopic(topic("T", 2)),
        );
        ctx.now_ms = 1_000;
        send(&mut broker, &mut ctx, 0, "a");
        ctx.now_ms = 2_000;
        send(&mut broker, &mut ctx, 0, "b");
        send(&mut broker, &mut ctx, 1, "c");
        assert!(matches!(
            ask(&mut broker, &mut ctx, reset("G", 0, true)),
            Response::Error { code: response_code::SYSTEM_ERROR, ref remark } if remark.contains("<G> not exist")
        ));
        for (queue_id, offset) in [(0, 2), (1, 1)] {
            let key = QueueKey {
                consumer_group: "G".into(),
                topic: "T".into(),
                queue_id,
            };
            broker.commit_offset(&mut ctx, &key, offset);
        }
        // A consumer of the group is connected (node 60).
        broker.handle(
            &mut ctx,
            Input::Packet {
                from: NodeId(60),
                msg: Message::Request {
                    opaque: 1,
                    request: Request::HeartBeat(HeartbeatData {
                        client_id: "c1".into(),
                        consumers: vec![ConsumerData {
                            group_name: "G".into(),
                            message_model: MessageModel::Clustering,
                            subscriptions: BTreeMap::from([("T".to_string(), "*".to_string())]),
                        }],
                    }),
                },
            },
        );
        ctx.take_sent();

        // Back to 1.5 s: q0 from "b" (stored at 2 s), q1 from "c".
        let answer = ask(&mut broker, &mut ctx, reset("G", 1_500, true));
        assert_eq!(offsets(answer.clone()), vec![1, 0]);
        let key = |queue_id| QueueKey {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id,
        };
        assert_eq!(broker.offsets.get(&key(0)), Some(1), "stored at once");
        assert_eq!(broker.offsets.get(&key(1)), Some(0));
        // `ask` took the notice with the answer; ask again to see it go out.
        broker.handle(
            &mut ctx,
            Input::Packet {
                from: NodeId(50),
                msg: Message::Request {
                    opaque: 9,
                    request: reset("G", 1_500, true),
                },
            },
        );
        let told: Vec<_> = ctx
            .take_sent()
            .into_iter()
            .filter_map(|(to, m)| match m {
                Message::Request {
                    request: Request::ResetConsumerClientOffset(r),
                    ..
                } => Some((to, r.offset_table.into_values().collect::<Vec<_>>())),
                _ => None,
            })
            .collect();
        assert_eq!(told, vec![(NodeId(60), vec![1, 0])]);

        // Forward without force: nothing moves; with force: to the queues' ends.
        assert_eq!(
            offsets(ask(&mut broker, &mut ctx, reset("G", 5_000, false))),
            vec![1, 0]
        );
        assert_eq!(
            offsets(ask(&mut broker, &mut ctx, reset("G", 5_000, true))),
            vec![2, 1]
        );
        // Back to before everything: the queues' starts.
        assert_eq!(
            offsets(ask(&mut broker, &mut ctx, reset("G", 0, false))),
            vec![0, 0]
        );
    }
}
