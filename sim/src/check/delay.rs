//! **delay**: a message sent with a delay level is never delivered before its level's
//! delay has passed since it was stored. The store time lies between the `SendInvoke`
//! and the `SendOk`, so the bound the history can prove is `SendInvoke + delay`:
//! every delivery of the message (to any group) comes at or after it. The delay of a
//! level is the declared `Promise::delay_levels_ms` (a level above the table waits the
//! last entry), never the broker's configuration.
//!
//! Excuse (`clock_skew`): a broker measures the delay with its own clock, so a clock
//! skew or jump on the broker group the delivery came from, before the delivery,
//! may move it earlier in true time (RocketMQ even delivers at once a message whose
//! delivery time lies further ahead than its level's delay: a clock that went back).
//!
//! Not lost: a delayed message counts for the lost and liveness rules like any
//! other; its re-stored copy carries the same workload id, so it is the same
//! message, not a phantom.

use super::faults::bit;
use super::tables::{Dlv, Index, Msg};
use super::{Rule, Sink};
use crate::history::{FaultKind, Promise};

/// The first clock skew or jump on the broker group `d` was delivered from, before it:
/// that broker measured a delay with a clock that moved.
pub(crate) fn clock_skew_before(ix: &Index, d: &Dlv) -> Option<String> {
    let nodes: Vec<u32> = ix
        .broker_group(ix.queues[d.queue as usize].broker)
        .map(|g| g.slave_node.into_iter().chain([g.master_node]).collect())
        .unwrap_or_default();
    ix.faults
        .first_on_any(&nodes, bit(FaultKind::ClockSkew), 0, d.at_ms)
        .map(|skew| skew.label())
}

#[derive(Default)]
pub(crate) struct Delay {
    /// Deliveries before their message's due time.
    early: Vec<Dlv>,
}

impl Delay {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, msg: Option<&Msg>, promise: &Promise) {
        let Some(m) = msg else { return };
        if m.delay_level == 0 || !m.invoked() {
            return;
        }
        if d.at_ms < m.invoke_ms.saturating_add(promise.delay_ms(m.delay_level)) {
            self.early.push(*d);
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        for d in &self.early {
            let m = &ix.msgs[d.msg as usize];
            let delay_ms = ix.promise.delay_ms(m.delay_level);
            let due_ms = m.invoke_ms + delay_ms;
            // The broker that re-stored the copy is the one it was delivered from (a
            // producer retry may have stored another copy elsewhere).
            if let Some(evidence) = clock_skew_before(ix, d) {
                sink.excuses.record(Rule::Delay, "clock_skew", || evidence);
                continue;
            }
            sink.report(Rule::Delay, format!("wid {}", m.wid), || {
                let early_ms = due_ms - d.at_ms;
                let whereto = format!("group {} client n{}", ix.group_name(d.group), d.client);
                let wherefrom = format!("{} offset {}", ix.queue_name(d.queue), d.offset);
                format!(
                    "{} with delay level {} ({delay_ms} ms) was delivered to {whereto} at \
                     {}ms from {wherefrom}, {early_ms} ms before it was due; {}",
                    ix.describe_msg(d.msg),
                    m.delay_level,
                    d.at_ms,
                    ix.faults.before(ix.entries, d.at_ms),
                )
            });
        }
    }
}
