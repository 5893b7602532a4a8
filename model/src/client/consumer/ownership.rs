//! Rebalance (`RebalanceImpl.rebalanceByTopic`): which queues are ours, from the
//! group's members and the topic's readable queues, and owning or giving up each.

use std::collections::BTreeSet;

use crate::client::rebalance::{allocate_averagely, readable_queues};
use crate::client::{subscribe_addr, ClientEvent, MessageQueue, RpcOutcome, CLIENT_API_TIMEOUT_MS};
use crate::node::Ctx;
use crate::protocol::{Message, Request, Response};

use super::{Call, OwnedQueue, PushConsumer};

impl PushConsumer {
    pub(super) fn rebalance(&mut self, ctx: &mut dyn Ctx<Message>, out: &mut Vec<ClientEvent>) {
        let Some(route) = self.route.as_ref() else {
            return;
        };
        if !self.clustering() {
            let all = readable_queues(&self.cfg.topic, route);
            self.apply_allocation(ctx, all, out);
            return;
        }
        if self.rebalance_in_flight {
            self.rebalance_again = true;
            return;
        }
        // `findConsumerIdList` asks one broker group picked at random: its master, or
        // another member when the master is gone.
        if route.broker_datas.is_empty() {
            return;
        }
        let pick = (ctx.random_u64() % route.broker_datas.len() as u64) as usize;
        let Some((addr, _)) = subscribe_addr(route, &route.broker_datas[pick].broker_name, false)
        else {
            return;
        };
        let addr = addr.to_string();
        let request = Request::GetConsumerListByGroup {
            consumer_group: self.cfg.consumer_group.clone(),
        };
        if self
            .rpc
            .call(
                ctx,
                &addr,
                request,
                CLIENT_API_TIMEOUT_MS,
                Call::ConsumerList,
            )
            .is_ok()
        {
            self.rebalance_in_flight = true;
        }
    }

    pub(super) fn on_consumer_list(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        self.rebalance_in_flight = false;
        match outcome {
            RpcOutcome::Response(Response::ConsumerList(mut cid_all)) => {
                if let Some(route) = self.route.as_ref() {
                    cid_all.sort();
                    cid_all.dedup();
                    // `rebalanceByTopic` for each subscribed topic, with one member list.
                    let mq_all = readable_queues(&self.cfg.topic, route);
                    let mut mine = allocate_averagely(&mq_all, &cid_all, &self.client_id);
                    let retry_all = self.retry_queues();
                    mine.extend(allocate_averagely(&retry_all, &cid_all, &self.client_id));
                    self.apply_allocation(ctx, mine, out);
                }
            }
            // No list, no change: the current allocation stands until the next try.
            other => tracing::debug!(outcome = %other.describe(), "get consumer list failed"),
        }
        if self.rebalance_again {
            self.rebalance_again = false;
            self.rebalance(ctx, out);
        }
    }

    /// `updateProcessQueueTableInRebalance`: drop the queues no longer ours, take the
    /// new ones.
    pub(super) fn apply_allocation(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        allocated: Vec<MessageQueue>,
        out: &mut Vec<ClientEvent>,
    ) {
        let allocated: BTreeSet<MessageQueue> = allocated.into_iter().collect();
        let gone: Vec<MessageQueue> = self
            .queues
            .keys()
            .filter(|mq| !allocated.contains(*mq))
            .cloned()
            .collect();
        for mq in gone {
            self.disown(ctx, &mq, out);
        }
        if self.takes_locks() {
            return self.take_locked(ctx, allocated);
        }
        for mq in allocated {
            if !self.queues.contains_key(&mq) {
                self.own(ctx, mq, out);
            }
        }
    }

    pub(super) fn disown(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        let q = self.queues.get_mut(mq).expect("disowning an owned queue");
        if q.orderly.busy() {
            // `removeUnnecessaryMessageQueue` waits for the consume lock: the queue
            // goes when its listener answers.
            q.orderly.drop_when_answered();
            return;
        }
        let mut q = self.queues.remove(mq).expect("disowning an owned queue");
        if let Some(timer) = q.orderly.take_timer() {
            self.suspend_timers.remove(&timer);
            ctx.cancel_timer(timer);
        }
        if let Some(timer) = q.retry_timer {
            self.retry_timers.remove(&timer);
            ctx.cancel_timer(timer);
        }
        if q.next_offset.is_none() {
            // Never started: nothing consumed, nothing announced.
            self.release_lock(ctx, mq);
            return;
        }
        if self.clustering() {
            // Hand the offset over before the next owner reads it; then forget it.
            out.extend(self.offsets.commit_to_broker(
                ctx,
                &mut self.rpc,
                self.route.as_ref(),
                [mq],
                true,
            ));
            self.offsets.remove(mq);
        }
        self.release_lock(ctx, mq);
        out.push(self.disowned_event(mq));
    }

    pub(super) fn disowned_event(&self, mq: &MessageQueue) -> ClientEvent {
        ClientEvent::Disowned {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        }
    }

    pub(super) fn own(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.queues.insert(
            mq.clone(),
            OwnedQueue {
                generation,
                next_offset: None,
                pull_from_slave: false,
                offset_from_broker_id: None,
                retry_timer: None,
                awaiting_file: false,
                process_queue: Default::default(),
                orderly: Default::default(),
            },
        );
        self.locate(ctx, &mq, out);
    }
}
