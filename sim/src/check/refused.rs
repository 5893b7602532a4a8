//! **refused**: a send that ended in a definite failure (`SendFail { definite: true }`:
//! every attempt was refused with an error code or never left the client, so no broker
//! stored it) and has no `SendOk` must never reach a consumer. A failure whose outcome
//! is unknown (a timeout, a broken connection: it may have been stored) is not
//! judged here; a delivery of such a message is proof it was stored (see `lost.rs`).
//!
//! One scan over the messages after the pass; one violation per message, at its first
//! delivery.

use super::tables::{Index, NONE};
use super::{Rule, Sink};
use crate::history::Entry;

pub(crate) fn check(ix: &Index, sink: &mut Sink) {
    for (i, m) in ix.msgs.iter().enumerate() {
        if !m.failed_definite || m.failed_unknown || m.acked() || m.first_dlv == NONE {
            continue;
        }
        sink.report(Rule::Refused, format!("wid {}", m.wid), || {
            let (failed_ms, reason) = match ix.entries.get(m.fail as usize) {
                Some(Entry::SendFail { at_ms, reason, .. }) => (*at_ms, reason.as_str()),
                _ => (0, ""),
            };
            let Some(Entry::Deliver {
                at_ms,
                group,
                client,
                broker,
                topic,
                queue_id,
                queue_offset,
                ..
            }) = ix.entries.get(m.first_dlv as usize)
            else {
                unreachable!("first_dlv is a delivery")
            };
            format!(
                "{} was refused at {failed_ms}ms ({reason}) yet group {group} client \
                 n{client} received it at {at_ms}ms from {broker}/{topic}/q{queue_id} \
                 offset {queue_offset}; {}",
                ix.describe_msg(i as u32),
                ix.faults.before(ix.entries, *at_ms),
            )
        });
    }
}
