//! SEND_BATCH_MESSAGE (`SendMessageProcessor.sendBatchMessage`, `CommitLog.putMessages`,
//! reference D "Batch messages"): several messages for one queue of one topic, stored as
//! consecutive records (each its own record with the next queue offset, its own flag,
//! body and properties, and the batch header's properties appended, as
//! `MessageExtBatchEncoder` does), written as one run that never spans two commit-log
//! files, and answered once through the single send's path (`send.rs`): the first
//! message's queue offset, every offset message id joined with ",", after the last
//! record is as durable and replicated as the modes ask.
//!
//! Refused with MESSAGE_ILLEGAL, as RocketMQ refuses them: a `%RETRY%` topic (5.x's
//! remark; 4.9's client refuses it before sending), a delay level or a transaction flag
//! in the header, a batch body over `maxMessageSize` (4.9's `checkMessages`), and a
//! message the store cannot hold (properties past 32767 bytes).
//!
//! Deviations: these refusals come before the topic checks (they depend on the request
//! alone, so a refused batch never auto-creates its topic); and an empty batch is
//! refused, where RocketMQ 4.9 stores nothing and answers SUCCESS with an empty msgId
//! and a queue offset no message has.

use super::send::error;
use super::Broker;
use crate::message::{property, PROPERTY_SEPARATOR, RETRY_GROUP_TOPIC_PREFIX};
use crate::node::{Ctx, NodeId};
use crate::protocol::{batch_body_len, response_code, Message, Response, SendBatchMessage};
use crate::store::record::SYSFLAG_TRANSACTION_MASK;
use crate::store::NewRecord;

/// `MessageConst.PROPERTY_DELAY_TIME_LEVEL`.
const PROPERTY_DELAY_TIME_LEVEL: &str = "DELAY";

/// A batch message's stored properties: its own, then the batch header's, with a
/// separator between when its own do not end with one (`MessageExtBatchEncoder`).
pub(crate) fn batch_record_properties(own: &str, header: &str) -> String {
    let mut out = String::with_capacity(own.len() + 1 + header.len());
    out.push_str(own);
    if !own.is_empty() && !header.is_empty() && !own.ends_with(PROPERTY_SEPARATOR) {
        out.push(PROPERTY_SEPARATOR);
    }
    out.push_str(header);
    out
}

/// `SendMessageProcessor.handlePutMessageResult`'s remark for MESSAGE_ILLEGAL.
fn illegal_remark(max_message_size_bytes: usize) -> String {
    format!(
        "the message is illegal, maybe msg body or properties length not matched. msg body \
         length limit {max_message_size_bytes}B, msg properties length limit 32KB."
    )
}

impl Broker {
    /// Answers now (Some) or later, from a completion or a deadline (None).
    pub(super) fn on_send_batch(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        opaque: u32,
        req: SendBatchMessage,
    ) -> Option<Response> {
        if let Err(response) = self.check_batch(&req) {
            return Some(response);
        }
        let header = &req.header;
        let (queue_id, born_host) = match self.admit_send(ctx, header) {
            Ok(admitted) => admitted,
            Err(response) => return Some(response),
        };
        let properties: Vec<String> = req
            .messages
            .iter()
            .map(|m| batch_record_properties(&m.properties, &header.properties))
            .collect();
        let records: Vec<NewRecord<'_>> = req
            .messages
            .iter()
            .zip(&properties)
            .map(|(m, properties)| NewRecord {
                topic: &header.topic,
                queue_id,
                flag: m.flag,
                sys_flag: header.sys_flag,
                born_timestamp_ms: header.born_timestamp_ms,
                born_host,
                store_host: self.store_host,
                reconsume_times: header.reconsume_times,
                prepared_transaction_offset: 0,
                body: &m.body,
                properties,
            })
            .collect();
        self.store_and_answer(ctx, from, opaque, header, &records)
    }

    /// The refusals that depend on the request alone.
    fn check_batch(&self, req: &SendBatchMessage) -> Result<(), Response> {
        let header = &req.header;
        if header.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
            return Err(error(
                response_code::MESSAGE_ILLEGAL,
                format!(
                    "batch request does not support retry group {}",
                    header.topic
                ),
            ));
        }
        if req.messages.is_empty() {
            return Err(error(
                response_code::MESSAGE_ILLEGAL,
                "the batch holds no message",
            ));
        }
        let max_bytes = self
            .store
            .as_ref()
            .map_or(usize::MAX, |s| s.config().max_message_size_bytes);
        let delay_level = property(&header.properties, PROPERTY_DELAY_TIME_LEVEL)
            .and_then(|d| d.parse::<i32>().ok())
            .unwrap_or(0);
        if delay_level > 0
            || header.sys_flag & SYSFLAG_TRANSACTION_MASK != 0
            || batch_body_len(&req.messages) > max_bytes
        {
            return Err(error(
                response_code::MESSAGE_ILLEGAL,
                illegal_remark(max_bytes),
            ));
        }
        Ok(())
    }
}
