//! The producer's side of the pass: each send becomes a [`Msg`](crate::check::tables::Msg)
//! (its first `SendInvoke` defines it), and a `SendOk` places it in its queue's log.

use crate::history::Entry;

use super::Builder;
use crate::check::queue_log::Holder;
use crate::check::tables::{id_digest, sent_fields_digest, Msg, QueueKey, NONE, SCHEDULE_TOPIC};

impl<'h> Builder<'h> {
    /// A `SendInvoke`: the message as its producer sent it.
    #[inline]
    pub(super) fn send_invoke(&mut self, i: u32, e: &'h Entry) {
        let Entry::SendInvoke {
            at_ms,
            wid,
            topic,
            tags,
            body_crc,
            fields,
            delay_level,
            ..
        } = e
        else {
            return;
        };
        let m = self.msg(*wid, *at_ms) as usize;
        if self.ix.msgs[m].invoked() {
            return; // a reused wid: the first send defines the message
        }
        self.ix.msgs[m].delay_level = *delay_level;
        self.ix.msgs[m].fields = fields.as_ref().map_or(0, sent_fields_digest);
        self.ix.msgs[m].born_host_unknown = fields.as_ref().is_some_and(|f| f.born_host_crc == 0);
        let topic = self.ix.topics.intern(topic);
        let tags = self.ix.tags.intern(tags.as_deref());
        let msg = &mut self.ix.msgs[m];
        msg.invoke = i;
        msg.invoke_ms = *at_ms;
        msg.topic = topic;
        msg.tags = tags;
        msg.crc = *body_crc;
    }

    /// A `SendOk`: where the broker stored the message.
    #[inline]
    pub(super) fn send_ok(&mut self, i: u32, e: &'h Entry) {
        let Entry::SendOk {
            at_ms,
            wid,
            status,
            broker,
            queue_id,
            queue_offset,
            msg_id,
            retried_after_unknown,
            ..
        } = e
        else {
            return;
        };
        let m = self.msg(*wid, *at_ms);
        self.ix.msgs[m as usize].retried_after_unknown |= *retried_after_unknown;
        if self.ix.msgs[m as usize].acked() {
            return;
        }
        // The queue's topic is the sent topic; a result for a wid never sent
        // has no topic to name, so it files under the empty topic.
        // A delayed message's result names its place in the schedule queue of
        // its level (RocketMQ answers with the queue asked for and the schedule
        // queue's offset); its copy reaches its own queue when due.
        let (topic, queue_id) = match self.ix.msgs[m as usize] {
            Msg { delay_level, .. } if delay_level > 0 => {
                let levels = self.ix.promise.delay_levels_ms.len().max(1) as u32;
                let level = delay_level.min(levels);
                (self.ix.topics.intern(SCHEDULE_TOPIC), level as i32 - 1)
            }
            Msg { topic: NONE, .. } => (self.ix.topics.intern(""), *queue_id),
            Msg { topic, .. } => (topic, *queue_id),
        };
        let broker = self.ix.brokers.intern(broker);
        let q = self.queue_key(QueueKey {
            broker,
            topic,
            queue_id,
        });
        let msg = &mut self.ix.msgs[m as usize];
        msg.ok = i;
        msg.ok_ms = *at_ms;
        msg.status = Some(*status);
        msg.queue = q;
        msg.offset = *queue_offset;
        msg.msg_id = id_digest(crc32fast::hash(msg_id.as_bytes()));
        self.ix.acks.push(m);
        let holder = Holder {
            msg: m,
            entry: i,
            at_ms: *at_ms,
        };
        self.obs
            .queue_log
            .observe(self.ix.entries, q, *queue_offset, holder);
    }

    /// A `SendFail`: the send was refused, or its outcome is unknown.
    #[inline]
    pub(super) fn send_fail(&mut self, i: u32, e: &'h Entry) {
        let Entry::SendFail {
            at_ms,
            wid,
            definite,
            retried_after_unknown,
            ..
        } = e
        else {
            return;
        };
        let m = self.msg(*wid, *at_ms) as usize;
        let msg = &mut self.ix.msgs[m];
        if msg.fail == NONE {
            msg.fail = i;
        }
        msg.retried_after_unknown |= *retried_after_unknown;
        if *definite {
            msg.failed_definite = true;
        } else {
            msg.failed_unknown = true;
        }
    }
}
