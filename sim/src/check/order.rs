//! **order**: per ownership span (see [`super::tables`]: `(group, client, queue)` from
//! an `Own` to the next `Own`/`Disown` of the key or a crash/restart of the client's
//! node; a delivery or commit outside any span opens an implicit one without a start
//! offset), consumers go forward in queue offset. Deliveries from the retry topic take
//! no part (they carry the retry queue's coordinates).
//!
//! 1. **Behind**: a delivery of an offset not yet delivered in this span must be above
//!    every offset delivered in the span so far. Redelivering an offset already seen
//!    in the span is a duplicate (fine); filling a gap behind is a violation.
//! 2. **Start skips**: the span's first delivery must be at or below the `Own`'s
//!    `start_offset`, unless nothing in `[start, first)` is evidence of a skip.
//! 3. **New owner past the commit**: an `Own`'s `start_offset` must not be above the
//!    last `Commit` of its commit key (group and queue; plus client for broadcasting)
//!    made before it by a *different* consumer incarnation (another client, or the same
//!    one before a crash), unless nothing in `[committed, start)` is evidence. When an
//!    earlier commit of the key reached `start` (the broker answered that one, not the
//!    later, lower commit), or the last commit came less than `RACE_MS` before the
//!    `Own`, messages the group got are not evidence: its position went back and
//!    forward again over what it had consumed.
//!
//! *Evidence* of a skip over `[a, b)`: a known offset there (from a `SendOk` or any
//! delivery, see [`super::queue_log`]) holding a message the group subscribes to,
//! unless the loss allowance covers that message's copy in this queue (a copy that
//! may have vanished in a crash may legitimately be skipped; see
//! [`super::allowance::allowance_at`]: an unacknowledged copy on another broker than
//! the one that acked the message goes with that broker's page cache). Offsets nobody observed are not evidence,
//! and neither are messages the group's tag expression filters out.
//!
//! Excuses fired (see `excuses.rs`), each with its evidence: `order/<allowance>` when
//! every message in a gap is covered by the allowance (the first one's faults),
//! `order/received_anyway` when the group got them all (under `RACE_MS` or an earlier
//! higher commit), `order/offset_reused` for a delivery behind at a position an
//! allowably lost message held.

use std::cmp::Ordering;

use super::allowance::allowance_at;
use super::deliveries::DeliveryTable;
use super::excuses::Excuses;
use super::lost::Reused;
use super::queue_log::QueueLog;
use super::tables::{Dlv, Index, NONE};
use super::{Rule, Sink};
use crate::hasher::FastMap;
use crate::history::Entry;

/// A delivery as the reports need it: the rest is in its history entry.
#[derive(Clone, Copy, Debug)]
struct Seen {
    offset: u64,
    at_ms: u64,
    entry: u32,
    msg: u32,
}

/// Per span: what has been delivered in it.
#[derive(Default, Clone)]
struct SpanState {
    /// The delivery of the highest offset.
    max: Option<Seen>,
    /// Offsets delivered, sorted (appended in order unless something went behind).
    seen: Vec<u64>,
    first: Option<Seen>,
}

/// Messages the group subscribes to in a range of a queue, that no allowance covers.
struct Evidence {
    /// Subscribed messages known in the range (allowed or not).
    known: u64,
    /// The first few unexcused ones: (offset, message).
    examples: Vec<(u64, u32)>,
}

const EXAMPLES: usize = 3;
/// A commit made less than this before a new owner's `Own` may not have reached the
/// broker when the owner read the offset (simulated latency is a few ms): the owner
/// may then start from an earlier commit's higher value, skipping messages the stale
/// commit points back to. That is only excused when the group got those messages.
const RACE_MS: u64 = 100;
/// Gaps up to this long are scanned directly.
const SMALL_GAP: u64 = 256;
/// Room for a span's first offsets delivered.
const SEEN_FIRST_CAPACITY: usize = 16;

/// Answers "is there evidence of a skip in [a, b)" in time linear overall: per
/// (group, queue) a prefix count of subscribed messages over the queue's dense
/// offset table, built the first time that pair is asked about.
struct Gaps<'a, 'h> {
    ix: &'a Index<'h>,
    log: &'a QueueLog,
    table: &'a DeliveryTable,
    prefix: FastMap<(u32, u32), Vec<u32>>,
}

impl<'a, 'h> Gaps<'a, 'h> {
    fn subscribed(&self, g: u32, m: u32) -> bool {
        self.ix.subscribes(g, &self.ix.msgs[m as usize])
    }

    /// `slot`: the consumer's delivery slot in the group (0 for clustering).
    ///
    /// When every subscribed message there is excused (an allowance covers its copy,
    /// or with `delivered_ok` the group got it anyway), the excuse is recorded.
    #[allow(clippy::too_many_arguments)]
    fn evidence(
        &mut self,
        excuses: &mut Excuses,
        g: u32,
        slot: u32,
        delivered_ok: bool,
        q: u32,
        from: u64,
        to: u64,
        before: u64,
    ) -> Option<Evidence> {
        if from >= to {
            return None;
        }
        let pos = self.log.queue(q)?;
        let ix = self.ix;
        let broker = ix.queues[q as usize].broker;
        if to - from <= SMALL_GAP {
            // A short gap (the common one: a few messages the tag filter skipped) is
            // cheaper to look at directly than through a prefix table.
            if !pos.range(from, to).any(|(_, m)| self.subscribed(g, m)) {
                return None;
            }
        } else if self.count(g, q, from, to) == 0 {
            return None;
        }
        let known = self.count(g, q, from, to);
        let mut examples = Vec::new();
        // The first excuse used, recorded if every message in the gap is excused.
        let mut excused: Option<(&'static str, String)> = None;
        for (offset, m) in pos.range(from, to) {
            if !self.subscribed(g, m) {
                continue;
            }
            // Sent after the skip: the position was reused later (its holder then was
            // lost, which lost judges); this message was not there to be skipped.
            if ix.msgs[m as usize].invoke_ms > before {
                continue;
            }
            if let Some(a) = allowance_at(ix, m, broker, before) {
                excused.get_or_insert_with(|| (a.kind, a.evidence()));
                continue;
            }
            // With `delivered_ok`, a message the group got anyway was not lost by the
            // skip (see `RACE_MS`).
            if delivered_ok && self.table.received(g, slot, m) {
                excused.get_or_insert_with(|| {
                    let w = ix.msgs[m as usize].wid;
                    ("received_anyway", format!("group received wid {w}"))
                });
                continue;
            }
            examples.push((offset, m));
            if examples.len() == EXAMPLES {
                break;
            }
        }
        if examples.is_empty() {
            if let Some((kind, ev)) = excused {
                excuses.record(Rule::Order, kind, || ev);
            }
            return None;
        }
        examples.sort_unstable();
        Some(Evidence { known, examples })
    }

    /// Known messages of `[from, to)` in `q` that group `g` subscribes to.
    fn count(&mut self, g: u32, q: u32, from: u64, to: u64) -> u64 {
        let Some(pos) = self.log.queue(q) else {
            return 0;
        };
        let (base, dense) = pos.dense();
        let ix = self.ix;
        let prefix = self.prefix.entry((g, q)).or_insert_with(|| {
            let mut p = Vec::with_capacity(dense.len() + 1);
            let mut n = 0u32;
            p.push(0);
            for &h in dense {
                if h != 0 && ix.subscribes(g, &ix.msgs[(h - 1) as usize]) {
                    n += 1;
                }
                p.push(n);
            }
            p
        });
        let lo = from.max(base).saturating_sub(base).min(dense.len() as u64) as usize;
        let hi = to.saturating_sub(base).min(dense.len() as u64) as usize;
        let dense_count = u64::from(prefix[hi.max(lo)] - prefix[lo]);
        let sparse_count = pos
            .sparse()
            .range(from..to)
            .filter(|(_, h)| self.subscribed(g, h.msg))
            .count() as u64;
        dense_count + sparse_count
    }
}

enum Found {
    Behind {
        span: u32,
        dlv: Seen,
        max: Seen,
    },
    StartSkips {
        span: u32,
        first: Seen,
        ev: Evidence,
    },
    PastCommit {
        span: u32,
        ev: Evidence,
    },
}

/// The order rule's state while deliveries stream by.
#[derive(Default)]
pub(crate) struct Order {
    spans: Vec<SpanState>,
    found: Vec<(u64, Found)>,
}

impl Order {
    /// A delivery inside span `d.span` (never a retry delivery).
    #[inline]
    pub(crate) fn deliver(&mut self, d: &Dlv) {
        let i = d.span as usize;
        if i >= self.spans.len() {
            self.spans.resize(i + 1, SpanState::default());
        }
        let s = &mut self.spans[i];
        let now = Seen {
            offset: d.offset,
            at_ms: d.at_ms,
            entry: d.entry,
            msg: d.msg,
        };
        match s.max {
            None => {
                s.first = Some(now);
                s.max = Some(now);
                // A span gets a dozen deliveries or so: one allocation instead of the
                // four of growing from empty.
                s.seen.reserve_exact(SEEN_FIRST_CAPACITY);
                s.seen.push(d.offset);
            }
            Some(max) => match d.offset.cmp(&max.offset) {
                Ordering::Greater => {
                    s.max = Some(now);
                    s.seen.push(d.offset);
                }
                Ordering::Equal => {}
                Ordering::Less => {
                    // Behind the highest: a duplicate if seen in this span, else a
                    // gap being filled.
                    if let Err(at) = s.seen.binary_search(&d.offset) {
                        s.seen.insert(at, d.offset);
                        let found = Found::Behind {
                            span: d.span,
                            dlv: now,
                            max,
                        };
                        self.found.push((d.at_ms, found));
                    }
                }
            },
        }
    }

    /// The checks on span starts, then every finding in time order.
    pub(crate) fn finish(
        mut self,
        ix: &Index,
        log: &QueueLog,
        table: &DeliveryTable,
        reused: &Reused,
        sink: &mut Sink,
    ) {
        // A message at a position a lost message held before is not behind anything:
        // the queue's old content at that offset is gone (see `lost.rs`).
        self.found.retain(|(_, f)| match f {
            Found::Behind { dlv, .. } if dlv.msg != NONE && reused.is(dlv.msg) => {
                let ev = || reused.evidence(ix, dlv.msg);
                sink.excuses.record(Rule::Order, "offset_reused", ev);
                false
            }
            _ => true,
        });
        let mut gaps = Gaps {
            ix,
            log,
            table,
            prefix: FastMap::default(),
        };
        for (si, span) in ix.spans.iter().enumerate() {
            let Some(start) = span.start else { continue };
            let slot = ix.group_info[span.group as usize].slot_of(span.client);
            let first = self.spans.get(si).and_then(|s| s.first);
            if let Some(first) = first {
                if first.offset > start {
                    let ev = gaps.evidence(
                        &mut sink.excuses,
                        span.group,
                        slot,
                        false,
                        span.queue,
                        start,
                        first.offset,
                        first.at_ms,
                    );
                    if let Some(ev) = ev {
                        let span = si as u32;
                        self.found
                            .push((first.at_ms, Found::StartSkips { span, first, ev }));
                    }
                }
            }
            if let Some(pc) = span.prev_commit {
                let other = (pc.client, pc.incarnation) != (span.client, span.incarnation);
                if other && start > pc.offset {
                    // A commit this close before the new owner read the offset may still
                    // have been in flight: the owner read the value before it.
                    let racing = span.at_ms.saturating_sub(pc.at_ms) < RACE_MS;
                    // An earlier commit of the key at or above the start explains it:
                    // the broker the owner read holds that commit, not the later, lower
                    // one (lost in flight to a master that was down, overtaken by the
                    // higher one, or made at a slave). The group's position went back
                    // and forward again; only what it never got is skipped.
                    let explained = pc.high >= start;
                    let ev = gaps.evidence(
                        &mut sink.excuses,
                        span.group,
                        slot,
                        racing || explained,
                        span.queue,
                        pc.offset,
                        start,
                        span.at_ms,
                    );
                    if let Some(ev) = ev {
                        self.found.push((
                            span.at_ms,
                            Found::PastCommit {
                                span: si as u32,
                                ev,
                            },
                        ));
                    }
                }
            }
        }
        // Report in time order (stable: discovery order breaks ties).
        self.found.sort_by_key(|(t, _)| *t);
        for (_, f) in self.found {
            report(ix, sink, f);
        }
    }
}

fn span_words(ix: &Index, s: u32) -> String {
    let span = &ix.spans[s as usize];
    let who = format!(
        "client n{} of group {} on {}",
        span.client,
        ix.group_name(span.group),
        ix.queue_name(span.queue)
    );
    match span.start {
        Some(start) => format!("{who} (owned since {}ms from offset {start})", span.at_ms),
        None => format!("{who} (no Own; deliveries since {}ms)", span.at_ms),
    }
}

fn msg_at(ix: &Index, d: Seen) -> String {
    match &ix.entries[d.entry as usize] {
        Entry::Deliver { wid: Some(w), .. } => {
            format!("offset {} (wid {w}) at {}ms", d.offset, d.at_ms)
        }
        _ => format!("offset {} (no wid) at {}ms", d.offset, d.at_ms),
    }
}

fn evidence_words(ix: &Index, ev: &Evidence) -> String {
    let ex: Vec<String> = ev
        .examples
        .iter()
        .map(|&(o, m)| format!("offset {o} holds {}", ix.describe_msg(m)))
        .collect();
    format!(
        "{} known message(s) there are subscribed by the group: {}",
        ev.known,
        ex.join("; ")
    )
}

fn report(ix: &Index, sink: &mut Sink, f: Found) {
    match f {
        Found::Behind { span, dlv, max } => {
            let q = ix.spans[span as usize].queue;
            let label = format!("{} offset {}", ix.queue_name(q), dlv.offset);
            sink.report(Rule::Order, label, || {
                format!(
                    "{} received {} after {}: a new offset behind one already \
                     delivered in the same ownership span; {}",
                    span_words(ix, span),
                    msg_at(ix, dlv),
                    msg_at(ix, max),
                    ix.faults.before(ix.entries, dlv.at_ms)
                )
            });
        }
        Found::StartSkips { span, first, ev } => {
            let s = &ix.spans[span as usize];
            let start = s.start.unwrap_or(0);
            let label = format!("{} from offset {start}", ix.queue_name(s.queue));
            sink.report(Rule::Order, label, || {
                format!(
                    "{} first received {}, skipping offsets {start}..{}; {}; {}",
                    span_words(ix, span),
                    msg_at(ix, first),
                    first.offset,
                    evidence_words(ix, &ev),
                    ix.faults.before(ix.entries, first.at_ms)
                )
            });
        }
        Found::PastCommit { span, ev } => {
            let s = &ix.spans[span as usize];
            let pc = s.prev_commit.expect("checked");
            let start = s.start.unwrap_or(0);
            let label = format!("{} owned from {start}", ix.queue_name(s.queue));
            sink.report(Rule::Order, label, || {
                format!(
                    "new owner starts after the committed offset: {} starts at offset \
                     {start}, but the last commit before it was offset {} by client n{} \
                     (incarnation {}) at {}ms, skipping offsets {}..{start}; {}; {}",
                    span_words(ix, span),
                    pc.offset,
                    pc.client,
                    pc.incarnation,
                    pc.at_ms,
                    pc.offset,
                    evidence_words(ix, &ev),
                    ix.faults.before(ix.entries, s.at_ms)
                )
            });
        }
    }
}
