//! **phantom**: a delivery of something the workload never sent — a `Deliver` without
//! a workload id, or with one no `SendInvoke` names. (A delivered message whose send
//! failed is not a phantom: a failure that was not definite may still have stored it,
//! and the lost rule counts such a delivery as proof that it was stored.)
//!
//! While deliveries stream by, those of ids not (yet) sent are kept; at the end the
//! ones whose id never got a `SendInvoke` are reported.

use super::tables::{Dlv, Index, Msg, NONE};
use super::{Rule, Sink};
use crate::history::Entry;

#[derive(Default)]
pub(crate) struct Phantom {
    suspects: Vec<Dlv>,
}

impl Phantom {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, msg: Option<&Msg>) {
        if !msg.is_some_and(Msg::invoked) {
            self.suspects.push(*d);
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        for d in &self.suspects {
            let what = if d.msg == NONE {
                "a message without a workload id".to_string()
            } else if !ix.msgs[d.msg as usize].invoked() {
                format!(
                    "wid {}, which no SendInvoke names",
                    ix.msgs[d.msg as usize].wid
                )
            } else {
                continue; // sent after all (the history is not in time order)
            };
            let label = match d.msg {
                NONE => format!("delivery at {}ms", d.at_ms),
                m => format!("wid {}", ix.msgs[m as usize].wid),
            };
            sink.report(Rule::Phantom, label, || {
                let reconsume = match &ix.entries[d.entry as usize] {
                    Entry::Deliver {
                        reconsume_times, ..
                    } => *reconsume_times,
                    _ => 0,
                };
                format!(
                    "group {} client n{} received {what} at {}ms from {} offset {} \
                     (body crc {:#010x}, {}, reconsume {reconsume}); {}",
                    ix.group_name(d.group),
                    d.client,
                    d.at_ms,
                    ix.queue_name(d.queue),
                    d.offset,
                    d.crc,
                    ix.tag_name(d.tags),
                    ix.faults.before(ix.entries, d.at_ms),
                )
            });
        }
    }
}
