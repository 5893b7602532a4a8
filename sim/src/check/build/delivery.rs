//! Deliveries, the bulk of a history: each `Deliver` becomes a transient
//! [`Dlv`] handed to every rule that folds over deliveries as they stream by.

use crate::history::Entry;

use super::Builder;
use crate::check::queue_log::Holder;
use crate::check::tables::{
    fields_digest_without_host, id_digest, sent_fields_digest, Dlv, Dup, NONE,
};

impl<'h> Builder<'h> {
    /// A `Deliver`: a message handed to a listener, streamed to the observers.
    #[inline]
    pub(super) fn delivered(&mut self, i: u32, e: &'h Entry) {
        let Entry::Deliver {
            at_ms,
            group,
            client,
            topic,
            broker,
            queue_id,
            queue_offset,
            wid,
            reconsume_times,
            body_crc,
            tags,
            fields,
        } = e
        else {
            return;
        };
        let pq = self.process_queue((group, *client, broker, topic, *queue_id));
        let (g, q, topic_id) = (pq.group, pq.queue, pq.topic);
        let tag_id = self.ix.tags.intern(tags.as_deref());
        // Only a delivery from a retry topic was handed back; a raised
        // reconsume count elsewhere is a corrupt field, and the delivery still
        // counts for order and offsets.
        let retry = pq.retry_topic;
        let dlv_id = fields
            .as_ref()
            .and_then(|f| f.msg_id_crc)
            .map_or(0, id_digest);
        self.ix.deliveries += 1;
        let msg = match wid {
            Some(w) => {
                let m = self.msg(*w, *at_ms);
                let msg = &mut self.ix.msgs[m as usize];
                if msg.first_dlv == NONE {
                    msg.first_dlv = i;
                    if !msg.invoked() {
                        // Never sent: what the delivery says is all there is.
                        msg.topic = topic_id;
                        msg.tags = tag_id;
                        msg.crc = *body_crc;
                    }
                }
                m
            }
            None => NONE,
        };
        let tags_taken = self.takes(g, tag_id);
        // Does the group take the message as it was sent (topic and tags)?
        // `None`: not sent yet in this pass, judged at the end.
        let sent_taken = if self.ix.group_info[g as usize].meta.is_none() || msg == NONE {
            Some(true)
        } else if self.ix.msgs[msg as usize].invoked() {
            let m = &self.ix.msgs[msg as usize];
            let (m_topic, m_tags) = (m.topic, m.tags);
            let topic_ok = retry || self.ix.group_info[g as usize].topic == m_topic;
            Some(topic_ok && self.takes(g, m_tags))
        } else {
            None
        };
        let info = &mut self.ix.group_info[g as usize];
        let slot = if !info.broadcasting {
            0
        } else if pq.slot != NONE {
            pq.slot
        } else {
            let slot = match info.clients.iter().position(|c| c == client) {
                Some(p) => p as u32,
                None => {
                    info.clients.push(*client);
                    (info.clients.len() - 1) as u32
                }
            };
            // A client keeps its slot: the group's clients are only appended.
            self.process_queues.get_mut(pq.id).slot = slot;
            slot
        };
        let span = if retry { NONE } else { self.span(&pq, *at_ms) };
        let rehand = !retry
            && *reconsume_times > 0
            && self
                .obs
                .retry
                .is_rehand(*client, q, *queue_offset, *reconsume_times);
        let d = Dlv {
            at_ms: *at_ms,
            offset: *queue_offset,
            entry: i,
            msg,
            group: g,
            client: *client,
            queue: q,
            span,
            slot,
            crc: *body_crc,
            topic: topic_id,
            tags: tag_id,
            retry,
            rehand,
            reconsume: *reconsume_times,
            suspended_at_count: self.orderly_redelivery(
                g,
                *client,
                q,
                *queue_offset,
                retry,
                *reconsume_times,
            ),
            fields: match fields {
                Some(f) if msg != NONE && self.ix.msgs[msg as usize].born_host_unknown => {
                    fields_digest_without_host(f)
                }
                Some(f) => sent_fields_digest(f),
                None => 0,
            },
            tags_taken,
            msg_id: dlv_id,
        };
        self.deliver(&d, sent_taken);
    }

    /// Hands one delivery to every rule that streams deliveries.
    #[inline]
    pub(super) fn deliver(&mut self, d: &Dlv, sent_taken: Option<bool>) {
        let obs = &mut self.obs;
        let prev = obs.table.deliver(d);
        if d.msg != NONE && prev.is_none() {
            obs.latency.deliver(d, &self.ix);
        }
        if let Some(prev) = prev {
            self.ix.dups.push(Dup {
                entry: d.entry,
                msg: d.msg,
                group: d.group,
                span: d.span,
                retry: d.retry || d.rehand,
                after_suspend: d.suspended_at_count.is_some(),
                prev_entry: prev.entry,
                prev_span: prev.span,
            });
        }
        if self.ix.group_info[d.group as usize].orderly && d.msg != NONE {
            // An orderly listener may take a message long after its pull served it:
            // the record is known to have been served only after it was sent.
            let served = Dlv {
                at_ms: self.ix.msgs[d.msg as usize].invoke_ms.min(d.at_ms),
                ..*d
            };
            obs.commits.deliver(&served);
        } else {
            obs.commits.deliver(d);
        }
        let msg = (d.msg != NONE).then(|| &self.ix.msgs[d.msg as usize]);
        obs.phantom.deliver(d, msg);
        obs.corrupt.deliver(d, msg);
        obs.delay.deliver(d, msg, &self.ix.promise);
        obs.retry.deliver(d, &self.ix);
        obs.filter.deliver(d, sent_taken);
        // A consumer's own re-hand comes from its memory, not from the position.
        if !d.retry && !d.rehand && d.msg != NONE {
            let holder = Holder {
                msg: d.msg,
                entry: d.entry,
                at_ms: d.at_ms,
            };
            obs.queue_log
                .observe(self.ix.entries, d.queue, d.offset, holder);
        }
        if d.span != NONE {
            obs.order.deliver(d);
        }
        let info = &self.ix.group_info[d.group as usize];
        if info.orderly {
            obs.key_order.deliver(d);
            if !info.broadcasting {
                obs.exclusivity.begin(d);
            }
        }
    }

    #[inline]
    /// For a delivery to an orderly group (not from `%RETRY%`): the reconsume count of
    /// the delivery before it that its listener suspended, if one did since.
    pub(super) fn orderly_redelivery(
        &mut self,
        g: u32,
        client: u32,
        q: u32,
        offset: u64,
        retry: bool,
        reconsume: i32,
    ) -> Option<i32> {
        if retry || !self.ix.group_info[g as usize].orderly {
            return None;
        }
        let key = (g, client, q, offset);
        self.orderly_counts.insert(key, reconsume);
        self.suspended.remove(&key)
    }
}
