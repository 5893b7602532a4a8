//! Pulling (`PullAPIWrapper`, `DefaultMQPushConsumerImpl.pullMessage`): one long poll in
//! flight per owned queue, what an answer delivers, and the periodic offset commit.

use crate::client::{subscribe_addr, ClientEvent, DeliveredMessage, MessageQueue, RpcOutcome};
use crate::message::{offset_msg_id, property, PROPERTY_TAGS, PROPERTY_UNIQ_KEY};
use crate::node::Ctx;
use crate::protocol::{
    pull_sys_flag, response_code, Message, PullMessage, PullResponse, Request, Response,
};
use crate::store::record::{self, CrcCheck, Slot};

use super::{owned_in, Call, PushConsumer};

impl PushConsumer {
    pub(super) fn pull(&mut self, ctx: &mut dyn Ctx<Message>, mq: &MessageQueue) {
        self.pull_owned(ctx, mq.clone());
    }

    /// [`pull`](Self::pull) with a queue of the caller's to keep in the request's
    /// tag: the answer to one pull sends the next with the queue its tag held.
    pub(super) fn pull_owned(&mut self, ctx: &mut dyn Ctx<Message>, owned: MessageQueue) {
        let mq = &owned;
        if !self.holds_lock(mq, ctx.monotonic_ms()) {
            // An orderly queue whose lock lapsed waits for a renewal
            // (`pullMessage`: not locked, try again in 3 s).
            return self.schedule_retry(ctx, mq);
        }
        let q = &self.queues[mq];
        let offset = q.next_offset.expect("pulling a located queue");
        let target = self
            .route
            .as_ref()
            .and_then(|r| subscribe_addr(r, &mq.broker_name, q.pull_from_slave));
        let Some((addr, is_slave)) = target else {
            return self.schedule_retry(ctx, mq);
        };
        let mut sys_flag = pull_sys_flag::SUSPEND | pull_sys_flag::SUBSCRIPTION;
        let commit_offset = self.offsets.read(mq).unwrap_or(0);
        // Clustering lets the master store the consumed offset as a side effect of the
        // pull; slaves never store offsets.
        if self.clustering() && commit_offset > 0 && !is_slave {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
            // The master stores it: that is a commit like UPDATE_CONSUMER_OFFSET.
            self.pull_commits
                .extend(self.offsets.note_pull_commit(mq, commit_offset));
        }
        let request = Request::PullMessage(PullMessage {
            consumer_group: self.cfg.consumer_group.clone(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: offset,
            max_msg_nums: self.cfg.pull_batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout_ms: self.cfg.pull_suspend_timeout_ms,
            subscription: Some(if self.is_retry_queue(mq) {
                "*".to_string()
            } else {
                self.cfg.tag_expression.clone()
            }),
        });
        let generation = q.generation;
        // The tag holds the queue until the answer; a refused call gives it back.
        let call = Call::Pull {
            mq: owned,
            generation,
            from_slave: is_slave,
        };
        let timeout_ms = self.cfg.pull_rpc_timeout_ms;
        if let Err((Call::Pull { mq, .. }, _)) = self
            .rpc
            .call_keeping_tag(ctx, addr, request, timeout_ms, call)
        {
            self.schedule_retry(ctx, &mq);
        }
    }

    pub(super) fn on_pull(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        owned: MessageQueue,
        from_slave: bool,
        outcome: RpcOutcome,
        out: &mut Vec<ClientEvent>,
    ) {
        let mq = &owned;
        let pull = match outcome {
            RpcOutcome::Response(Response::Pull(p)) => p,
            other => {
                tracing::debug!(?mq, outcome = %other.describe(), "pull failed; retrying later");
                return self.schedule_retry(ctx, mq);
            }
        };
        self.queues
            .get_mut(mq)
            .expect("current queue")
            .pull_from_slave = pull.suggest_which_broker_id != 0;
        match pull.code {
            response_code::SUCCESS if !self.holds_lock(mq, ctx.monotonic_ms()) => {
                // The lock lapsed while the pull was held: nothing of the answer is
                // consumed; the queue is pulled again from the same offset once locked.
                return self.schedule_retry(ctx, mq);
            }
            response_code::SUCCESS => {
                self.deliver(ctx, mq, &pull, out);
                self.advance(mq, pull.next_begin_offset);
                if self.cfg.consume_orderly {
                    self.consume_orderly(ctx, mq, out);
                }
            }
            response_code::PULL_NOT_FOUND | response_code::PULL_RETRY_IMMEDIATELY => {
                self.advance(mq, pull.next_begin_offset);
            }
            response_code::PULL_OFFSET_MOVED => {
                // The broker corrected our offset (the queue was truncated or we were
                // past its end): take its offset, even backwards, and store it now.
                // RocketMQ (`OFFSET_ILLEGAL`) drops the process queue, stores the
                // corrected offset and removes the queue 10 s later; the next rebalance
                // creates a new pull request from that offset. Consumption restarts
                // from a new position, so this is a new ownership span: `Owned` again,
                // after the commit, as the new pull request reads the stored offset.
                // Deliberately at once, not after 10 s: the queue is ours throughout.
                // Broadcasting: the file write is asynchronous, so the new span waits
                // for it (`resume_moved`); announcing it first would start a span from
                // an offset no restart could read yet.
                tracing::warn!(?mq, next = pull.next_begin_offset, "pull offset moved");
                let next = pull.next_begin_offset;
                let q = self.queues.get_mut(mq).expect("current queue");
                q.next_offset = Some(next);
                q.process_queue.clear();
                q.orderly.forget();
                self.offsets.update(mq, next);
                if !self.clustering() {
                    self.queues
                        .get_mut(mq)
                        .expect("current queue")
                        .awaiting_file = true;
                    self.offsets.persist_file(ctx.disk(), false);
                    return self.resume_moved(ctx, out);
                }
                out.extend(self.offsets.commit_to_broker(
                    ctx,
                    &mut self.rpc,
                    self.route.as_ref(),
                    [mq],
                    true,
                ));
                out.push(self.owned_event(mq, next, Some(u64::from(from_slave)), true));
            }
            other => {
                tracing::debug!(?mq, code = other, "unexpected pull code; retrying later");
                return self.schedule_retry(ctx, mq);
            }
        }
        self.pull_owned(ctx, owned);
    }

    /// The next pull starts at `next_begin_offset`; the consumed offset only moves
    /// forward (`updateOffset(.., increaseOnly)`), up to the lowest message still in a
    /// listener: everything before it was consumed, or filtered out by tag.
    pub(super) fn advance(&mut self, mq: &MessageQueue, next_begin_offset: u64) {
        let q = self.queues.get_mut(mq).expect("current queue");
        q.next_offset = Some(next_begin_offset);
        let offset = q.process_queue.consume_offset(next_begin_offset);
        let consumed = self.offsets.read(mq).unwrap_or(0);
        if offset > consumed {
            self.offsets.update(mq, offset);
        }
    }

    /// Decodes the records of a FOUND answer one after another and hands those the
    /// tag filter keeps to the listener. A record that does not decode ends the batch,
    /// as `MessageDecoder.decodes` stops at the first it cannot read.
    pub(super) fn deliver(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        mq: &MessageQueue,
        pull: &PullResponse,
        out: &mut Vec<ClientEvent>,
    ) {
        let mut pos = 0;
        while pos < pull.records.len() {
            let view = match record::parse(&pull.records[pos..], CrcCheck::Skip) {
                Ok(Slot::Record(view)) => view,
                Ok(Slot::Blank) => break,
                Err(e) => {
                    tracing::warn!(?mq, error = %e, "undecodable record in a pull answer");
                    break;
                }
            };
            pos += view.total_size;
            let properties = view.user_properties();
            let tags = property(properties, PROPERTY_TAGS);
            if !self.is_retry_queue(mq) && !self.filter.matches_tags(tags) {
                continue;
            }
            let msg_id = match property(properties, PROPERTY_UNIQ_KEY) {
                Some(uniq) => uniq.to_string(),
                None => offset_msg_id(
                    view.store_host.ip,
                    view.store_host.port,
                    view.physical_offset,
                ),
            };
            let queue_offset = view.queue_offset.max(0) as u64;
            let msg = DeliveredMessage {
                topic: self.listener_topic(mq, view.topic, properties).to_string(),
                tags: tags.map(str::to_string),
                properties: properties.to_string(),
                body: view.body.to_vec(),
                reconsume_times: view.reconsume_times,
                msg_id,
                born_timestamp_ms: view.born_timestamp_ms,
                born_host: view.born_host,
                commit_log_offset: view.physical_offset.max(0) as u64,
            };
            if self.cfg.consume_orderly {
                self.put_orderly(mq, queue_offset, msg);
            } else {
                self.hand_to_listener(ctx, mq, queue_offset, msg, out);
            }
        }
    }

    /// Every interval: clustering sends the offset of every owned queue, moved or not
    /// (`RemoteBrokerOffsetStore.persistAll`), so a stale commit another consumer sent
    /// meanwhile (a queue it held for a moment during a rebalance) does not stay;
    /// broadcasting writes the file.
    pub(super) fn persist_offsets(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        out: &mut Vec<ClientEvent>,
    ) {
        if self.clustering() {
            out.extend(self.offsets.commit_to_broker(
                ctx,
                &mut self.rpc,
                self.route.as_ref(),
                owned_in(&self.queues),
                true,
            ));
        } else {
            self.offsets.persist_file(ctx.disk(), false);
        }
    }
}
