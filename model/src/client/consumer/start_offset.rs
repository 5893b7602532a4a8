//! Where a newly owned queue starts (`computePullFromWhere`): the stored offset, else
//! per `consume_from_where`, and a pull corrected by PULL_OFFSET_MOVED.

use crate::client::{
    broker_id_of, subscribe_addr, timer_kind, ClientEvent, MessageQueue, CLIENT_API_TIMEOUT_MS,
    QUERY_OFFSET_TIMEOUT_MS,
};
use crate::node::Ctx;
use crate::protocol::{Message, QueueKey, Request};

use super::{Call, ConsumeFromWhere, PushConsumer};

impl PushConsumer {
    /// `computePullFromWhere`: the stored offset, else per `consume_from_where`.
    pub(super) fn locate(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        if self.offsets.is_local() {
            match self.offsets.read(mq) {
                Some(offset) => self.activate(ctx, mq, offset, true, out),
                None => self.start_without_offset(ctx, mq, out),
            }
            return;
        }
        let generation = self.queues[mq].generation;
        let request = Request::QueryConsumerOffset(QueueKey {
            consumer_group: self.cfg.consumer_group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
        });
        let call = Call::QueryOffset {
            mq: mq.clone(),
            generation,
        };
        self.call_broker(ctx, mq, request, QUERY_OFFSET_TIMEOUT_MS, call);
    }

    pub(super) fn start_without_offset(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        out: &mut Vec<ClientEvent>,
    ) {
        match self.cfg.consume_from_where {
            // A retry queue holds only what the group handed back: all of it is due.
            _ if self.is_retry_queue(mq) => self.activate(ctx, mq, 0, false, out),
            ConsumeFromWhere::FirstOffset => self.activate(ctx, mq, 0, false, out),
            ConsumeFromWhere::LastOffset => {
                let generation = self.queues[mq].generation;
                let request = Request::GetMaxOffset {
                    topic: mq.topic.clone(),
                    queue_id: mq.queue_id,
                };
                let call = Call::MaxOffset {
                    mq: mq.clone(),
                    generation,
                };
                self.call_broker(ctx, mq, request, CLIENT_API_TIMEOUT_MS, call);
            }
        }
    }

    /// Sends an offset request about `mq` to its broker group (master, else slave), or
    /// schedules a retry when that is impossible now.
    pub(super) fn call_broker(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        request: Request,
        timeout_ms: u64,
        call: Call,
    ) {
        let target = self.route.as_ref().and_then(|r| {
            let (addr, _) = subscribe_addr(r, &mq.broker_name, false)?;
            Some((addr.to_string(), broker_id_of(r, &mq.broker_name, addr)))
        });
        if let Some((_, id)) = &target {
            self.queues
                .get_mut(mq)
                .expect("asking for an owned queue")
                .offset_from_broker_id = *id;
        }
        let sent = target
            .is_some_and(|(addr, _)| self.rpc.call(ctx, &addr, request, timeout_ms, call).is_ok());
        if !sent {
            self.schedule_retry(ctx, mq);
        }
    }

    /// The start offset is known: announce the queue and begin pulling.
    pub(super) fn activate(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        offset: u64,
        stored: bool,
        out: &mut Vec<ClientEvent>,
    ) {
        if stored {
            self.offsets.set_known_committed(mq, offset);
        } else {
            self.offsets.update(mq, offset);
        }
        let q = self.queues.get_mut(mq).expect("activating an owned queue");
        q.next_offset = Some(offset);
        let from = q.offset_from_broker_id;
        out.push(self.owned_event(mq, offset, from, false));
        self.pull(ctx, mq);
    }

    /// `Owned` for `mq` from `start_offset`; `offset_from_broker_id` is left out for
    /// broadcasting (the offset came from the local file).
    pub(super) fn owned_event(
        &self,
        mq: &MessageQueue,
        start_offset: u64,
        offset_from_broker_id: Option<u64>,
        offset_moved: bool,
    ) -> ClientEvent {
        ClientEvent::Owned {
            group: self.cfg.consumer_group.clone(),
            broker_name: mq.broker_name.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            start_offset,
            offset_from_broker_id: if self.offsets.is_local() {
                None
            } else {
                offset_from_broker_id
            },
            offset_moved,
        }
    }

    /// Broadcasting: every queue waiting after PULL_OFFSET_MOVED whose corrected offset
    /// the local file now holds starts its new span (`Owned`, after the `Committed`)
    /// and pulls again. If some still wait and no write is under way (the one running
    /// at the move held older offsets, or a write failed), a new write starts.
    pub(super) fn resume_moved(&mut self, ctx: &mut dyn Ctx<Message>, out: &mut Vec<ClientEvent>) {
        let waiting: Vec<(MessageQueue, u64)> = self
            .queues
            .iter()
            .filter(|(_, q)| q.awaiting_file)
            .map(|(mq, q)| {
                (
                    mq.clone(),
                    q.next_offset.expect("a moved queue has an offset"),
                )
            })
            .collect();
        let mut still_waiting = false;
        for (mq, next) in waiting {
            if !self.offsets.is_committed(&mq, next) {
                still_waiting = true;
                continue;
            }
            self.queues
                .get_mut(&mq)
                .expect("waiting queue")
                .awaiting_file = false;
            out.push(self.owned_event(&mq, next, None, true));
            self.pull(ctx, &mq);
        }
        if still_waiting && self.offsets.is_idle() {
            self.offsets.persist_file(ctx.disk(), false);
        }
    }

    pub(super) fn schedule_retry(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue) {
        let q = self.queues.get_mut(mq).expect("retrying an owned queue");
        debug_assert!(q.retry_timer.is_none(), "one thing under way per queue");
        let timer = ctx.set_timer(self.cfg.pull_retry_delay_ms, timer_kind::PULL_RETRY);
        q.retry_timer = Some(timer);
        self.retry_timers.insert(timer, (mq.clone(), q.generation));
    }
}
