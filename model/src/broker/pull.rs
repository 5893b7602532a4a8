//! PULL_MESSAGE with long polling (`PullMessageProcessor`, `PullRequestHoldService`,
//! reference C.1, C.2): read up to a batch of records from a queue, filtered by tag
//! hash code; when nothing is there yet, hold the request (no answer) until a record
//! arrives on that queue, the 5 s re-check finds one, or the suspend timeout passes.
//!
//! A damaged record (CRC or consume-queue mismatch, unreadable sector) is skipped,
//! never served: the store refuses it and the pull moves past it.
//!
//! Deliberate deviation (`high_watermark.rs`): a master serves only records as durable
//! as the configuration promises — flushed under SYNC_FLUSH, acknowledged by the slave
//! under SYNC_MASTER — so a queue offset holds one message forever. A pull past that
//! limit is held like a pull past the queue's end, and held pulls are also woken when
//! the limit advances (a flush completes, a slave acknowledges), not only on arrival.

use std::collections::BTreeMap;

use super::Broker;
use crate::node::{Ctx, NodeId};
use crate::protocol::{
    pull_sys_flag, response_code, Message, PullMessage, PullResponse, QueueKey, Response,
};
use crate::store::ReadError;
use crate::subscription::CodeFilter;

/// The broker scans at most this many consume-queue bytes per pull
/// (`max(16000, maxMsgNums * 20)`), 20 bytes an entry.
const MIN_SCAN_BYTES: u64 = 16_000;
const CQ_ENTRY_BYTES: u64 = 20;

#[derive(Clone, Debug)]
struct HeldPull {
    from: NodeId,
    opaque: u32,
    req: PullMessage,
    deadline_ms: u64,
}

impl HeldPull {
    /// Whether to answer it now: `max` (one past the last servable queue offset) has
    /// passed its offset, or its time is up.
    fn is_ready(&self, max: u64, now_ms: u64) -> bool {
        max > self.req.queue_offset || now_ms >= self.deadline_ms
    }
}

#[derive(Default)]
pub(super) struct HeldPulls {
    /// (topic, queue) → parked requests, oldest first.
    by_queue: BTreeMap<(String, i32), Vec<HeldPull>>,
}

impl HeldPulls {
    pub(super) fn drop_peer(&mut self, peer: NodeId) {
        for held in self.by_queue.values_mut() {
            held.retain(|h| h.from != peer);
        }
        self.by_queue.retain(|_, v| !v.is_empty());
    }
}

impl Broker {
    /// Answers now (Some), or parks the request (None) when `allow_suspend`.
    pub(super) fn on_pull(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        req: PullMessage,
        allow_suspend: bool,
    ) -> Option<Response> {
        let error = |code: i32, remark: String| Some(Response::Error { code, remark });
        let Some(store) = self.store.as_ref() else {
            return error(response_code::SYSTEM_ERROR, "no store".into());
        };
        let topic_config = self.topics.get(&req.topic);
        if topic_config.is_none() && !store.queues().any(|q| q.topic() == req.topic) {
            return error(
                response_code::TOPIC_NOT_EXIST,
                format!("topic[{}] not exist, apply first please!", req.topic),
            );
        }
        if let Some(t) = topic_config {
            if req.queue_id < 0 || req.queue_id as u32 >= t.read_queue_nums {
                return error(
                    response_code::SYSTEM_ERROR,
                    format!(
                        "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                        req.queue_id, req.topic, t.read_queue_nums
                    ),
                );
            }
        }
        // The consumer's progress rides on the pull (first pass only, masters only).
        if allow_suspend
            && req.sys_flag & pull_sys_flag::COMMIT_OFFSET != 0
            && !self.config.is_slave()
        {
            let key = QueueKey {
                consumer_group: req.consumer_group.clone(),
                topic: req.topic.clone(),
                queue_id: req.queue_id,
            };
            self.commit_offset(ctx, &key, req.commit_offset);
        }
        // What may be served: records as durable as the configuration promises.
        let visible =
            self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), &req.topic, req.queue_id);
        let store = self.store.as_ref().expect("checked above");
        let (min, max) = store
            .queue(&req.topic, req.queue_id)
            .map_or((0, 0), |q| (q.min_offset(), q.max_offset()));
        debug_assert!(visible <= max, "visible past the queue's end");
        let respond = |code: i32, next: u64, records: Vec<u8>| {
            Some(Response::Pull(PullResponse {
                code,
                next_begin_offset: next,
                min_offset: min,
                max_offset: visible,
                suggest_which_broker_id: 0,
                records,
            }))
        };
        let offset = req.queue_offset;
        let slave = self.config.is_slave();
        if max == 0 && !(slave && offset > 0) {
            // NO_MATCHED_LOGIC_QUEUE / NO_MESSAGE_IN_QUEUE.
            if offset != 0 {
                return respond(response_code::PULL_OFFSET_MOVED, 0, Vec::new());
            }
        } else if offset < min {
            return respond(response_code::PULL_OFFSET_MOVED, min, Vec::new());
        } else if offset > max && !slave {
            return respond(response_code::PULL_OFFSET_MOVED, max, Vec::new());
        }
        if offset >= visible {
            // Nothing yet (on a slave that has not caught up, too: it never corrects a
            // consumer's offset, `offsetCheckInSlave=false`, and waits instead of
            // answering RETRY_IMMEDIATELY in a loop; on a master, records written but
            // not yet durable as promised are not there yet either).
            if allow_suspend && req.sys_flag & pull_sys_flag::SUSPEND != 0 {
                let deadline_ms = ctx.now_ms() + req.suspend_timeout_ms;
                self.holds
                    .by_queue
                    .entry((req.topic.clone(), req.queue_id))
                    .or_default()
                    .push(HeldPull {
                        from,
                        opaque,
                        req,
                        deadline_ms,
                    });
                return None;
            }
            return respond(response_code::PULL_NOT_FOUND, offset, Vec::new());
        }
        // Parsed only when there is something to filter: most pulls are held or answered
        // empty, and parsing on every one of them was a visible share of the simulator.
        let registered;
        let expression = if req.sys_flag & pull_sys_flag::SUBSCRIPTION != 0 {
            req.subscription.as_deref()
        } else {
            registered = self.consumers.subscription(&req.consumer_group, &req.topic);
            registered.as_deref()
        };
        let subscription = CodeFilter::parse(expression.unwrap_or("*"));
        let max_count = req.max_msg_nums.min(self.config.max_transfer_count).max(1);
        let max_scan =
            MIN_SCAN_BYTES.max(u64::from(req.max_msg_nums) * CQ_ENTRY_BYTES) / CQ_ENTRY_BYTES;
        let mut records = Vec::new();
        let mut count = 0;
        let mut next = offset;
        let disk = ctx.disk();
        while next < visible && next - offset < max_scan && count < max_count {
            match store.read_message(disk, &req.topic, req.queue_id, next) {
                Ok(m) => {
                    let matched = subscription.matches_code(m.tags_code);
                    if matched {
                        if count > 0
                            && records.len() + m.bytes.len() > self.config.max_transfer_bytes
                        {
                            break;
                        }
                        if count == 0 {
                            // Room for as many records of this size as the pull may
                            // take: growing by doubling copied the answer over and over.
                            let left = (visible - next).min(u64::from(max_count)) as usize;
                            let most = self.config.max_transfer_bytes.max(m.bytes.len());
                            records.reserve(m.bytes.len().saturating_mul(left).min(most));
                        }
                        records.extend_from_slice(&m.bytes);
                        count += 1;
                    }
                }
                Err(ReadError::Corrupt { .. } | ReadError::Disk(_) | ReadError::NoRecordAt(_)) => {
                    tracing::warn!(topic = %req.topic, queue = req.queue_id, offset = next, "damaged record skipped");
                }
                Err(
                    ReadError::OffsetTooSmall { .. }
                    | ReadError::OffsetOverflow { .. }
                    | ReadError::NoSuchQueue { .. },
                ) => break,
            }
            next += 1;
        }
        if count == 0 {
            return respond(response_code::PULL_RETRY_IMMEDIATELY, next, Vec::new());
        }
        self.stats.get_total += u64::from(count);
        respond(response_code::SUCCESS, next, records)
    }

    /// A record arrived on (topic, queue): answer the pulls held for it.
    pub(super) fn notify_arrival(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        topic: &str,
        queue_id: i32,
    ) {
        let key = (topic.to_string(), queue_id);
        if !self.holds.by_queue.contains_key(&key) {
            return;
        }
        self.wake_held(ctx, Some(key));
    }

    /// The serve limit may have advanced (`high_watermark.rs`): answer the held pulls
    /// that now have something to read. Nothing to do where the limit is the page
    /// cache's end, since arrivals wake those already.
    pub(super) fn notify_serve_limit(&mut self, ctx: &mut dyn Ctx<Message>) {
        if self.holds.by_queue.is_empty() || !self.limits_serving() {
            return;
        }
        self.wake_held(ctx, None);
    }

    /// The 5 s re-check: answer held pulls that have data or whose time is up.
    pub(super) fn check_held_pulls(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.wake_held(ctx, None);
    }

    fn wake_held(&mut self, ctx: &mut dyn Ctx<Message>, only: Option<(String, i32)>) {
        let now_ms = ctx.now_ms();
        let keys: Vec<(String, i32)> = match only {
            Some(key) => return self.wake_queue(ctx, key, now_ms),
            None => {
                // Only the queues with a pull ready now: under SYNC_FLUSH this runs at
                // every group commit, and most queues have nothing new to serve.
                let limit = self.serve_limit(now_ms);
                let Some(store) = self.store.as_ref() else {
                    return;
                };
                let disk = ctx.disk();
                let unlimited = limit >= store.written_offset();
                self.holds
                    .by_queue
                    .iter()
                    .filter(|((topic, queue_id), held)| {
                        let Some(queue) = store.queue(topic, *queue_id) else {
                            return held.iter().any(|h| h.is_ready(0, now_ms));
                        };
                        // The queue's end bounds what the limit lets through, and
                        // readiness only grows with it: a queue with nothing ready
                        // against its end (the common case) needs no search for the
                        // limit's queue offset.
                        let end = queue.max_offset();
                        let ready_at_end = held.iter().any(|h| h.is_ready(end, now_ms));
                        if unlimited || !ready_at_end {
                            return ready_at_end;
                        }
                        let max = queue.first_beyond(disk, limit);
                        held.iter().any(|h| h.is_ready(max, now_ms))
                    })
                    .map(|(key, _)| key.clone())
                    .collect()
            }
        };
        for key in keys {
            self.wake_queue(ctx, key, now_ms);
        }
    }

    /// Answers the pulls held on one queue that have something to read or whose time
    /// is up at `now_ms`; the others stay held.
    fn wake_queue(&mut self, ctx: &mut dyn Ctx<Message>, key: (String, i32), now_ms: u64) {
        let max = self.visible_max_queue_offset(ctx.now_ms(), ctx.disk(), &key.0, key.1);
        let Some(held) = self.holds.by_queue.remove(&key) else {
            return;
        };
        // Most wakes answer every pull of the queue or none: no split then.
        let ready = if held.iter().all(|h| h.is_ready(max, now_ms)) {
            held
        } else if !held.iter().any(|h| h.is_ready(max, now_ms)) {
            self.holds.by_queue.insert(key, held);
            return;
        } else {
            let (ready, waiting): (Vec<_>, Vec<_>) =
                held.into_iter().partition(|h| h.is_ready(max, now_ms));
            self.holds.by_queue.insert(key, waiting);
            ready
        };
        for h in ready {
            if let Some(response) = self.on_pull(ctx, h.from, h.opaque, h.req, false) {
                ctx.send(
                    h.from,
                    Message::Response {
                        opaque: h.opaque,
                        response,
                    },
                );
            }
        }
    }
}
