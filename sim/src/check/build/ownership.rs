//! Queue ownership: `Own` opens a span, `Disown` (or the client's crash) ends it, and
//! every commit is filed under its span and commit sequence.

use crate::history::Entry;

use super::Builder;
use crate::check::process_queues::ProcessQueue;
use crate::check::tables::{Cmt, CommitMark, Span, NONE};

impl<'h> Builder<'h> {
    /// An `Own`: a consumer starts pulling a queue; a new ownership span.
    #[inline]
    pub(super) fn own(&mut self, e: &'h Entry) {
        let Entry::Own {
            at_ms,
            group,
            client,
            broker,
            topic,
            queue_id,
            start_offset,
            offset_from_broker_id,
            offset_moved,
        } = e
        else {
            return;
        };
        let pq = self.process_queue((group, *client, broker, topic, *queue_id));
        let (g, q) = (pq.group, pq.queue);
        let from_replica = offset_from_broker_id.is_some_and(|id| id != 0);
        self.open_span(
            &pq,
            *at_ms,
            Some(*start_offset),
            from_replica,
            *offset_moved,
        );
        self.obs.commits.own(g, q, *start_offset, *offset_moved);
    }

    /// A `Disown`: the consumer no longer owns the queue; its span ends.
    #[inline]
    pub(super) fn disown(&mut self, e: &'h Entry) {
        let Entry::Disown {
            at_ms,
            group,
            client,
            broker,
            topic,
            queue_id,
        } = e
        else {
            return;
        };
        let pq = self.process_queue((group, *client, broker, topic, *queue_id));
        self.replace_open_span(&pq, NONE, *at_ms);
    }

    /// A `Commit`: an offset committed within its span.
    #[inline]
    pub(super) fn commit(&mut self, i: u32, e: &'h Entry) {
        let Entry::Commit {
            at_ms,
            group,
            client,
            broker,
            topic,
            queue_id,
            offset,
        } = e
        else {
            return;
        };
        let pq = self.process_queue((group, *client, broker, topic, *queue_id));
        let span = self.span(&pq, *at_ms);
        let mark = CommitMark {
            offset: *offset,
            at_ms: *at_ms,
            client: *client,
            incarnation: self.epochs.get(*client),
            high: *offset,
        };
        // Keep the highest offset committed so far.
        let last = &mut self.last_commit[pq.commits as usize];
        *last = Some(match *last {
            Some(c) => CommitMark {
                high: c.high.max(*offset),
                ..mark
            },
            None => mark,
        });
        self.ix.commits.push(Cmt {
            at_ms: *at_ms,
            offset: *offset,
            entry: i,
            group: pq.group,
            queue: pq.queue,
            span,
            seq: pq.commits,
        });
    }

    /// The open span of the process queue, or a new implicit one if none is open (or
    /// the client crashed since it opened).
    #[inline]
    pub(super) fn span(&mut self, pq: &ProcessQueue, at_ms: u64) -> u32 {
        let s = pq.open_span;
        if s != NONE && self.ix.spans[s as usize].incarnation == self.epochs.get(pq.client) {
            return s;
        }
        self.open_span(pq, at_ms, None, false, false)
    }

    pub(super) fn open_span(
        &mut self,
        pq: &ProcessQueue,
        at_ms: u64,
        start: Option<u64>,
        from_replica: bool,
        moved: bool,
    ) -> u32 {
        let prev_commit = if start.is_some() {
            self.last_commit[pq.commits as usize]
        } else {
            None
        };
        let id = self.ix.spans.len() as u32;
        self.ix.spans.push(Span {
            group: pq.group,
            client: pq.client,
            queue: pq.queue,
            commit_seq: pq.commits,
            incarnation: self.epochs.get(pq.client),
            start,
            at_ms,
            prev_commit,
            from_replica,
            moved,
            end_ms: u64::MAX,
        });
        self.replace_open_span(pq, id, at_ms);
        id
    }

    /// Makes `span` (or [`NONE`]) the process queue's open span; the one open before,
    /// if any, ends at `at_ms`.
    fn replace_open_span(&mut self, pq: &ProcessQueue, span: u32, at_ms: u64) {
        let old = std::mem::replace(&mut self.process_queues.get_mut(pq.id).open_span, span);
        if old != NONE {
            let old = &mut self.ix.spans[old as usize];
            old.end_ms = old.end_ms.min(at_ms);
        }
    }
}
