//! **corrupt**: a delivery of a sent message whose body CRC, topic or tags differ from
//! what its `SendInvoke` recorded. A delivery from a retry topic (`%RETRY%...`) may
//! name that topic instead of the original one.
//!
//! Deliveries are compared as they stream by; one whose message was not sent yet is
//! kept and compared at the end (or left to phantom if it never was).

use super::index::{Dlv, Index, Msg, RETRY_PREFIX};
use super::{Rule, Sink};

#[derive(Default)]
pub(crate) struct Corrupt {
    /// Deliveries that differ from their send.
    found: Vec<Dlv>,
    /// Deliveries of messages not sent (yet) when they were delivered.
    later: Vec<Dlv>,
}

/// Which of body, topic, tags differ.
fn differs(ix: &Index, d: &Dlv, m: &Msg) -> (bool, bool, bool) {
    let retry_topic = || ix.topics.name(d.topic).starts_with(RETRY_PREFIX);
    (
        d.crc != m.crc,
        d.topic != m.topic && !retry_topic(),
        d.tags != m.tags,
    )
}

impl Corrupt {
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv, msg: Option<&Msg>) {
        let Some(m) = msg else { return };
        if !m.invoked() {
            self.later.push(*d);
        } else if d.crc != m.crc || d.topic != m.topic || d.tags != m.tags {
            // The retry-topic exception needs names, which only the final index
            // has; comparing ids here decides whether it is needed at all.
            self.found.push(*d);
        }
    }

    pub(crate) fn finish(&self, ix: &Index, sink: &mut Sink) {
        let later = self
            .later
            .iter()
            .filter(|d| ix.msgs[d.msg as usize].invoked());
        let mut all: Vec<&Dlv> = self.found.iter().chain(later).collect();
        all.sort_by_key(|d| (d.at_ms, d.entry));
        for d in all {
            let m = &ix.msgs[d.msg as usize];
            let (crc_differs, topic_differs, tags_differ) = differs(ix, d, m);
            if !(crc_differs || topic_differs || tags_differ) {
                continue;
            }
            sink.report(Rule::Corrupt, format!("wid {}", m.wid), || {
                let mut diffs = Vec::new();
                if crc_differs {
                    diffs.push(format!(
                        "body crc {:#010x} instead of {:#010x}",
                        d.crc, m.crc
                    ));
                }
                if topic_differs {
                    diffs.push(format!(
                        "topic {} instead of {}",
                        ix.topics.name(d.topic),
                        ix.topics.name(m.topic)
                    ));
                }
                if tags_differ {
                    diffs.push(format!(
                        "{} instead of {}",
                        ix.tag_name(d.tags),
                        ix.tag_name(m.tags)
                    ));
                }
                format!(
                    "group {} client n{} received {} at {}ms from {} offset {} with {}; {}",
                    ix.group_name(d.group),
                    d.client,
                    ix.describe_msg(d.msg),
                    d.at_ms,
                    ix.queue_name(d.queue),
                    d.offset,
                    diffs.join(", "),
                    ix.faults.before(ix.entries, d.at_ms),
                )
            });
        }
    }
}
