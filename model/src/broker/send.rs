//! SEND_MESSAGE (and the shared path of SEND_BATCH_MESSAGE, `send_batch.rs`): validate,
//! append to the store, then answer — at once (ASYNC_FLUSH,
//! ASYNC_MASTER), or once the covering fsync completed (SYNC_FLUSH, group commit in
//! `flush.rs`) and the slave acknowledged (SYNC_MASTER), or with FLUSH_DISK_TIMEOUT /
//! FLUSH_SLAVE_TIMEOUT when those do not happen in time (reference A.7, A.8).

use std::collections::BTreeMap;

use super::{timer, Broker, FlushDiskType};
use crate::message::{offset_msg_id, property, PROPERTY_WAIT_STORE_MSG_OK};
use crate::node::{Ctx, NodeId};
use crate::protocol::{perm, response_code, Message, Response, SendMessage, SendResponse};
use crate::store::{Host, NewRecord, StoreError};

/// A stored record whose answer waits for durability and/or the slave.
#[derive(Clone, Debug)]
struct PendingSend {
    to: NodeId,
    opaque: u32,
    end_offset: u64,
    response: SendResponse,
    wait_flush: bool,
    wait_slave: bool,
    flush_deadline_ms: u64,
    slave_deadline_ms: u64,
    /// Set when a wait gave up: the code it contributes.
    flush_code: i32,
    slave_code: i32,
}

#[derive(Default)]
pub(super) struct PendingSends {
    next_id: u64,
    waiting: BTreeMap<u64, PendingSend>,
}

impl PendingSends {
    /// The producer's connection closed: its answers would be written to a dead channel
    /// (RocketMQ's write fails), so none is sent. The records stay stored and keep
    /// shipping to the slave; only the answers are forgotten. Otherwise a restarted
    /// producer, whose requests reuse the old process's opaques, would take an answer
    /// meant for the old process as its own.
    pub(super) fn drop_peer(&mut self, peer: NodeId) {
        self.waiting.retain(|_, p| p.to != peer);
    }
}

pub(super) fn error(code: i32, remark: impl Into<String>) -> Response {
    Response::Error {
        code,
        remark: remark.into(),
    }
}

fn parse_host(addr: &str) -> Option<Host> {
    let (ip, port) = addr.rsplit_once(':')?;
    Some(Host {
        ip: ip.parse().ok()?,
        port: port.parse().ok()?,
    })
}

impl Broker {
    /// Answers now (Some) or later, from a completion or a deadline (None).
    pub(super) fn on_send(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        req: SendMessage,
    ) -> Option<Response> {
        let (queue_id, born_host) = match self.admit_send(ctx, &req) {
            Ok(admitted) => admitted,
            Err(response) => return Some(response),
        };
        let record = NewRecord {
            topic: &req.topic,
            queue_id,
            flag: req.flag,
            sys_flag: req.sys_flag,
            born_timestamp_ms: req.born_timestamp_ms,
            born_host,
            store_host: self.store_host,
            reconsume_times: req.reconsume_times,
            prepared_transaction_offset: 0,
            body: &req.body,
            properties: &req.properties,
        };
        self.store_and_answer(ctx, from, opaque, &req, std::slice::from_ref(&record))
    }

    /// What every send passes before it is stored (`AbstractSendMessageProcessor.msgCheck`
    /// and the store's status check): a master, a known (or auto-created) writable
    /// topic, a legal queue. Returns the queue (picked at random when the producer left
    /// it to the broker) and the born host.
    pub(super) fn admit_send(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        req: &SendMessage,
    ) -> Result<(i32, Host), Response> {
        if self.config.is_slave() {
            return Err(error(
                response_code::SERVICE_NOT_AVAILABLE,
                "the broker is a slave, and does not accept messages",
            ));
        }
        let (topic_config, created) = self.topics.for_send(ctx, &self.config, req)?;
        if created {
            // New topics reach the name servers at once (`registerBrokerAll`).
            self.register(ctx);
        }
        if topic_config.perm & perm::WRITE == 0 {
            return Err(error(
                response_code::NO_PERMISSION,
                format!("the topic[{}] sending message is forbidden", req.topic),
            ));
        }
        let queue_id = if req.queue_id < 0 {
            (ctx.random_u64() % u64::from(topic_config.write_queue_nums.max(1))) as i32
        } else {
            req.queue_id
        };
        if queue_id as u32 >= topic_config.write_queue_nums {
            return Err(error(
                response_code::SYSTEM_ERROR,
                format!(
                    "request queueId[{queue_id}] is illegal, topic {} writeQueueNums {}",
                    req.topic, topic_config.write_queue_nums
                ),
            ));
        }
        let born_host = parse_host(&req.born_host).unwrap_or(self.store_host);
        Ok((queue_id, born_host))
    }

    /// Appends `records` (one message, or a batch's messages to one queue) as one run
    /// and answers for all of them: the first's queue offset, every offset message id
    /// joined with "," (`AppendMessageResult.msgIdSupplier`), once the last is as
    /// durable and replicated as `header`'s `WAIT` and the broker's modes ask.
    pub(super) fn store_and_answer(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        header: &SendMessage,
        records: &[NewRecord<'_>],
    ) -> Option<Response> {
        let Some(store) = self.store.as_mut() else {
            return Some(error(response_code::SERVICE_NOT_AVAILABLE, "no store"));
        };
        let now_ms = ctx.now_ms();
        let appended = match store.append_batch(ctx.disk(), records, now_ms as i64) {
            Ok(r) => r,
            Err(StoreError::Illegal(e)) => {
                return Some(error(response_code::MESSAGE_ILLEGAL, e.to_string()))
            }
            Err(e @ StoreError::RecordTooLarge { .. }) => {
                return Some(error(response_code::MESSAGE_ILLEGAL, e.to_string()))
            }
            Err(e @ (StoreError::NotReady(_) | StoreError::LogFull { .. })) => {
                return Some(error(response_code::SERVICE_NOT_AVAILABLE, e.to_string()))
            }
            Err(e) => return Some(error(response_code::SYSTEM_ERROR, e.to_string())),
        };
        self.stats.put_total += appended.len() as u64;
        let (first, last) = (&appended[0], &appended[appended.len() - 1]);
        let queue_id = records[0].queue_id;
        self.notify_arrival(ctx, &header.topic, queue_id);
        if let Some(level) = first.delay_level {
            self.schedule_on_put(ctx, level);
        }
        let mut msg_id = String::with_capacity(appended.len() * 33);
        for (i, a) in appended.iter().enumerate() {
            if i > 0 {
                msg_id.push(',');
            }
            msg_id.push_str(&offset_msg_id(
                self.store_host.ip,
                self.store_host.port,
                a.physical_offset as i64,
            ));
        }
        let response = SendResponse {
            code: response_code::SUCCESS,
            msg_id,
            queue_id,
            queue_offset: first.queue_offset.unwrap_or(0),
        };
        let end_offset = last.end_offset;
        // `WAIT=false` asks for no flush or replica wait (default true).
        let wait = property(&header.properties, PROPERTY_WAIT_STORE_MSG_OK) != Some("false");
        let wait_flush = wait && self.config.flush_disk_type == FlushDiskType::SyncFlush;
        let mut slave_code = response_code::SUCCESS;
        let mut wait_slave = false;
        if wait && self.config.role == super::BrokerRole::SyncMaster {
            if self.slave_ok(end_offset) {
                wait_slave = true;
            } else {
                slave_code = response_code::SLAVE_NOT_AVAILABLE;
            }
        }
        if !wait_flush && !wait_slave {
            if self.config.flush_disk_type == FlushDiskType::SyncFlush {
                // WAIT=false: the group commit is woken, the producer is not held.
                self.flush.wanted = true;
                self.maybe_group_commit(ctx);
            }
            let mut response = response;
            response.code = slave_code;
            return Some(Response::Send(response));
        }
        let id = self.sends.next_id;
        self.sends.next_id += 1;
        let pending = PendingSend {
            to: from,
            opaque,
            end_offset,
            response,
            wait_flush,
            wait_slave,
            flush_deadline_ms: now_ms + self.config.sync_flush_timeout_ms,
            slave_deadline_ms: now_ms + self.config.slave_timeout_ms,
            flush_code: response_code::SUCCESS,
            slave_code,
        };
        let first_deadline = match (wait_flush, wait_slave) {
            (true, true) => pending.flush_deadline_ms.min(pending.slave_deadline_ms),
            (true, false) => pending.flush_deadline_ms,
            _ => pending.slave_deadline_ms,
        };
        self.sends.waiting.insert(id, pending);
        ctx.set_timer(first_deadline - now_ms, timer::SEND_DEADLINE | id);
        // A master ships only durable records (`ha.rs`), so a send waiting for its
        // slave needs a flush too: a group commit now, not the next ASYNC_FLUSH tick
        // (up to 500 ms later).
        if wait_flush || wait_slave {
            self.flush.wanted = true;
            self.maybe_group_commit(ctx);
        }
        if wait_slave {
            self.ha_push(ctx);
        }
        None
    }

    /// The commit log is durable up to `durable`: answer sends waiting for it, and ship
    /// the newly durable records to slaves.
    pub(super) fn on_durable(&mut self, ctx: &mut dyn Ctx<Message>, durable: u64) {
        self.ha.note_durable(durable, ctx.now_ms());
        for p in self.sends.waiting.values_mut() {
            if p.wait_flush && p.end_offset <= durable {
                p.wait_flush = false;
            }
        }
        self.answer_ready(ctx);
        self.ha_push(ctx);
        self.notify_serve_limit(ctx);
    }

    /// The slaves acknowledged up to `acked`.
    pub(super) fn on_slave_acked(&mut self, ctx: &mut dyn Ctx<Message>, acked: u64) {
        for p in self.sends.waiting.values_mut() {
            if p.wait_slave && p.end_offset <= acked {
                p.wait_slave = false;
            }
        }
        self.answer_ready(ctx);
        self.notify_serve_limit(ctx);
    }

    fn answer_ready(&mut self, ctx: &mut dyn Ctx<Message>) {
        let done: Vec<u64> = self
            .sends
            .waiting
            .iter()
            .filter(|(_, p)| !p.wait_flush && !p.wait_slave)
            .map(|(&id, _)| id)
            .collect();
        for id in done {
            let p = self.sends.waiting.remove(&id).expect("listed above");
            Self::answer(ctx, p);
        }
    }

    /// The replica's verdict overrides the flush's (`CommitLog.handleDiskFlushAndHA`).
    fn answer(ctx: &mut dyn Ctx<Message>, p: PendingSend) {
        let mut response = p.response;
        response.code = if p.slave_code != response_code::SUCCESS {
            p.slave_code
        } else {
            p.flush_code
        };
        ctx.send(
            p.to,
            Message::Response {
                opaque: p.opaque,
                response: Response::Send(response),
            },
        );
    }

    pub(super) fn send_deadline(&mut self, ctx: &mut dyn Ctx<Message>, id: u64) {
        let now_ms = ctx.now_ms();
        let Some(p) = self.sends.waiting.get_mut(&id) else {
            return;
        };
        if p.wait_flush && now_ms >= p.flush_deadline_ms {
            p.wait_flush = false;
            p.flush_code = response_code::FLUSH_DISK_TIMEOUT;
        }
        if p.wait_slave && now_ms >= p.slave_deadline_ms {
            p.wait_slave = false;
            p.slave_code = response_code::FLUSH_SLAVE_TIMEOUT;
        }
        let next = [
            p.wait_flush.then_some(p.flush_deadline_ms),
            p.wait_slave.then_some(p.slave_deadline_ms),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(at_ms) => {
                ctx.set_timer(at_ms - now_ms, timer::SEND_DEADLINE | id);
            }
            None => {
                let p = self.sends.waiting.remove(&id).expect("looked up above");
                Self::answer(ctx, p);
            }
        }
    }
}
