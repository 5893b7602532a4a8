//! Consumer offsets (`ConsumerOffsetManager`, reference C.3): `topic@group` → queue →
//! next offset to consume. Updated by UPDATE_CONSUMER_OFFSET and by pulls carrying
//! COMMIT_OFFSET; persisted to `config/consumerOffset.json` every 5 s and at shutdown,
//! so a crash loses at most the last interval's commits (consumers then re-consume:
//! at-least-once). Slaves persist theirs the same way.
//!
//! **SlaveSynchronize** (`SlaveSynchronize.syncConsumerOffset`): every 10 s a slave asks
//! its master for all offsets (GET_ALL_CONSUMER_OFFSET) and merges them into its table,
//! so that a consumer that falls back to the slave (the route lists no master) resumes
//! where the group was, at most one sync interval behind.
//!
//! Deliberate deviations, each closing a way for the group's offset to go back or skip:
//!
//! - **Merge.** RocketMQ overwrites (`putAll`). Here the master's value wins too,
//!   except over a commit a consumer made at this slave that the master may not have
//!   seen: one made after the sync request left, or one whose forward (below) may have
//!   been lost (no master known, or the connection to it broke since). Such a commit
//!   is the newest this slave knows: it is kept, and sent to the master again. A plain
//!   overwrite would let an older, higher master value replace it (say the master was
//!   down when a consumer, resuming from this slave, committed a lower offset), and
//!   the next owner would skip what lies between. A per-queue maximum would do the
//!   same, and would keep a slave above a master that legitimately went back (an
//!   offset corrected after the master lost its log tail). But when the master shows
//!   a value this slave neither had before its commit nor passed on, another consumer
//!   committed at the master since: the master's value is the newer one and wins, and
//!   the slave's commit is dropped instead of being sent again over it.
//! - **Commits at a slave reach the master.** A consumer commits at a slave only when
//!   its route lists no master (the name server lost the master, or restarted and the
//!   master has not registered yet), but the master may well be alive. RocketMQ keeps
//!   such a commit on the slave until the next sync overwrites it, so the group later
//!   resumes at the master from an older offset. Here the slave passes each commit on
//!   to its master (oneway, as the consumer sent it), and again after a sync when it
//!   may have been lost — RocketMQ 5's slave-acting-master does the same in bulk when
//!   the master comes back (`BrokerPreOnlineService`'s reverse metadata sync).
//! - **A master stores no offset past a queue's end.** After a crash that lost the log's
//!   unflushed tail, consumers still hold (and commit) offsets past the recovered end.
//!   Stored as is, the next owner would start there and skip whatever the master writes
//!   at the reused offsets below it. The master clamps such a commit to the queue's
//!   end, the correction a pull there would get (PULL_OFFSET_MOVED to the max offset).
//!   No consumer can have consumed past a master's end otherwise: a slave's log is a
//!   prefix of its master's durable log (see `ha.rs`).

use std::collections::BTreeMap;

use super::Broker;
use crate::node::{Ctx, NodeId};
use crate::protocol::{response_code, Message, QueueKey, Request, Response};
use crate::store::config_file::PersistedTable;
use crate::store::config_tables::{ConsumerOffsetTable, CONSUMER_OFFSET_PATH};
use crate::store::disk::Disk;

pub(super) struct ConsumerOffsets {
    table: PersistedTable<ConsumerOffsetTable>,
    /// Slave only: commits consumers made here that the master's table may not show
    /// yet. At most one per queue.
    local_commits: BTreeMap<QueueKey, LocalCommit>,
    /// Slave only: GET_ALL_CONSUMER_OFFSET requests sent so far; each request carries
    /// its number as its opaque.
    syncs_sent: u32,
}

/// A commit a consumer made at this slave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LocalCommit {
    offset: u64,
    /// `Some(n)`: passed on to the master after `n` sync requests had left, over a
    /// connection that has not broken since — so the answer to any later request
    /// shows it (or something newer). `None`: it may never have reached the master.
    forwarded_after: Option<u32>,
    /// What the master's table could show if no other consumer committed there since
    /// this slave's first local commit of the queue: the value this slave had then,
    /// and what it has passed on since (the latest few).
    master_known: [Option<u64>; MASTER_KNOWN],
}

/// How many values a local commit remembers the master may show without news.
const MASTER_KNOWN: usize = 4;

fn table_key(key: &QueueKey) -> String {
    // Built by hand: every commit makes one, and `format!` cost more than the lookup.
    let mut table_key = String::with_capacity(key.topic.len() + 1 + key.consumer_group.len());
    table_key.push_str(&key.topic);
    table_key.push('@');
    table_key.push_str(&key.consumer_group);
    table_key
}

impl ConsumerOffsets {
    pub(super) fn load(disk: &dyn Disk) -> ConsumerOffsets {
        ConsumerOffsets {
            table: PersistedTable::load(disk, CONSUMER_OFFSET_PATH),
            local_commits: BTreeMap::new(),
            syncs_sent: 0,
        }
    }

    pub(super) fn table(&self) -> &ConsumerOffsetTable {
        self.table.table()
    }

    /// A slave took a consumer's commit: stored here, and remembered until a sync shows
    /// the master has it. `forwarded`: it was passed on to the master.
    pub(super) fn commit_local(&mut self, key: &QueueKey, offset: u64, forwarded: bool) {
        let mut master_known = match self.local_commits.get(key) {
            Some(c) => c.master_known,
            None => [self.get(key), None, None, None],
        };
        if forwarded && !master_known.contains(&Some(offset)) {
            // Keep the base (slot 0); the passed-on values rotate through the rest.
            master_known[1..].rotate_right(1);
            master_known[1] = Some(offset);
        }
        let commit = LocalCommit {
            offset,
            forwarded_after: forwarded.then_some(self.syncs_sent),
            master_known,
        };
        self.commit(key, offset);
        self.local_commits.insert(key.clone(), commit);
    }

    /// The number of the next sync request.
    pub(super) fn next_sync(&mut self) -> u32 {
        self.syncs_sent += 1;
        self.syncs_sent
    }

    /// The connection to the master broke: what was passed on may be lost.
    pub(super) fn forwards_may_be_lost(&mut self) {
        for commit in self.local_commits.values_mut() {
            commit.forwarded_after = None;
        }
    }

    /// SlaveSynchronize: merges the master's table, the answer to sync request `sync`,
    /// into this slave's (see the module comment). Returns the local commits to pass
    /// on to the master again (now: they count as forwarded from here on).
    pub(super) fn merge_from_master(
        &mut self,
        master: &ConsumerOffsetTable,
        sync: u32,
    ) -> Vec<(QueueKey, u64)> {
        for (topic_group, queues) in &master.offset_table {
            let mine = self
                .table
                .table_mut()
                .offset_table
                .entry(topic_group.clone())
                .or_default();
            let mut changed = false;
            for (&queue_id, &offset) in queues {
                changed |= mine.insert(queue_id, offset) != Some(offset);
            }
            if changed {
                self.table.mark_dirty();
            }
        }
        let mut resend = Vec::new();
        let syncs_sent = self.syncs_sent;
        let mut kept = BTreeMap::new();
        for (key, mut commit) in std::mem::take(&mut self.local_commits) {
            match commit.forwarded_after {
                // The master had it before it answered: its value stands.
                Some(n) if n < sync => continue,
                // Passed on after this request left: the next answer will tell.
                Some(_) => {}
                None => {
                    // The master shows a value this slave never had nor passed on:
                    // another consumer committed there since (the master is back and
                    // the group commits to it), newer than this slave's commit. Sent
                    // again, the stale commit would put the group back (wide seed 232).
                    let shown = master
                        .offset_table
                        .get(&table_key(&key))
                        .and_then(|q| q.get(&key.queue_id))
                        .and_then(|&v| u64::try_from(v).ok());
                    if shown.is_some() && !commit.master_known.contains(&shown) {
                        continue;
                    }
                    resend.push((key.clone(), commit.offset));
                    commit.forwarded_after = Some(syncs_sent);
                    if !commit.master_known.contains(&Some(commit.offset)) {
                        commit.master_known[1..].rotate_right(1);
                        commit.master_known[1] = Some(commit.offset);
                    }
                }
            }
            self.commit(&key, commit.offset);
            kept.insert(key, commit);
        }
        self.local_commits = kept;
        resend
    }

    pub(super) fn commit(&mut self, key: &QueueKey, offset: u64) {
        let slot = self
            .table
            .table_mut()
            .offset_table
            .entry(table_key(key))
            .or_default()
            .entry(key.queue_id)
            .or_insert(-1);
        if *slot != offset as i64 {
            *slot = offset as i64;
            self.table.mark_dirty();
        }
    }

    pub(super) fn get(&self, key: &QueueKey) -> Option<u64> {
        let v = *self
            .table
            .table()
            .offset_table
            .get(&table_key(key))?
            .get(&key.queue_id)?;
        u64::try_from(v).ok()
    }

    /// The persisted table (`config/consumerOffset.json`).
    pub(super) fn persisted(&mut self) -> &mut PersistedTable<ConsumerOffsetTable> {
        &mut self.table
    }

    /// `whichTopicByConsumer`: the topics `group` has offsets for, in name order.
    pub(super) fn topics_of_group(&self, group: &str) -> Vec<String> {
        self.table
            .table()
            .offset_table
            .keys()
            .filter_map(|k| k.split_once('@'))
            .filter(|(_, g)| *g == group)
            .map(|(topic, _)| topic.to_string())
            .collect()
    }
}

impl Broker {
    pub(super) fn persist_offsets(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.offsets.persisted().persist(ctx.disk());
    }

    /// A consumer's commit (UPDATE_CONSUMER_OFFSET, or COMMIT_OFFSET on a pull to a
    /// master). A master clamps it to the queue's end; a slave keeps it and passes it
    /// on to its master.
    pub(super) fn commit_offset(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        key: &QueueKey,
        offset: u64,
    ) {
        if self.config.is_slave() {
            let master = self.master_node(ctx);
            self.offsets.commit_local(key, offset, master.is_some());
            if let Some(master) = master {
                Self::forward_commit(ctx, master, key, offset);
            }
            return;
        }
        let end = self
            .store
            .as_ref()
            .map_or(0, |s| s.max_queue_offset(&key.topic, key.queue_id));
        if offset > end {
            tracing::debug!(?key, offset, end, "commit past the queue's end clamped");
        }
        self.offsets.commit(key, offset.min(end));
    }

    fn forward_commit(ctx: &mut dyn Ctx<Message>, master: NodeId, key: &QueueKey, offset: u64) {
        let request = Request::UpdateConsumerOffset {
            key: key.clone(),
            offset,
        };
        ctx.send(master, Message::Request { opaque: 0, request });
    }

    /// Every `slave_synchronize_interval_ms`, on a slave: ask the master for its offsets.
    pub(super) fn slave_synchronize(&mut self, ctx: &mut dyn Ctx<Message>) {
        if !self.config.is_slave() {
            return;
        }
        if let Some(master) = self.master_node(ctx) {
            let opaque = self.offsets.next_sync();
            let request = Request::GetAllConsumerOffset;
            ctx.send(master, Message::Request { opaque, request });
            // `syncDelayOffset`, in the same round; its own opaque, so the two answers
            // are told apart on the wire.
            let request = Request::GetAllDelayOffset;
            let opaque = opaque | super::schedule_message_service::DELAY_SYNC_OPAQUE_BIT;
            ctx.send(master, Message::Request { opaque, request });
        }
    }

    /// A connection broke: if it was to the master, commits passed on may be lost.
    pub(super) fn offsets_on_broken(&mut self, ctx: &mut dyn Ctx<Message>, peer: NodeId) {
        if self.config.is_slave() && self.master_node(ctx) == Some(peer) {
            self.offsets.forwards_may_be_lost();
        }
    }

    /// The master's answer to GET_ALL_CONSUMER_OFFSET request number `sync`.
    pub(super) fn on_master_offsets(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        from: NodeId,
        sync: u32,
        table: &ConsumerOffsetTable,
    ) {
        if !self.config.is_slave() || self.master_node(ctx) != Some(from) {
            return;
        }
        for (key, offset) in self.offsets.merge_from_master(table, sync) {
            Self::forward_commit(ctx, from, &key, offset);
        }
    }

    /// QUERY_CONSUMER_OFFSET: the stored offset; else 0 if the queue still starts at 0
    /// (`ConsumerManageProcessor`); else QUERY_NOT_FOUND, and the client applies its
    /// ConsumeFromWhere.
    pub(super) fn query_offset(&self, key: &QueueKey) -> Response {
        if let Some(offset) = self.offsets.get(key) {
            return Response::Offset(offset);
        }
        let min = self
            .store
            .as_ref()
            .and_then(|s| s.queue(&key.topic, key.queue_id))
            .map_or(0, |q| q.min_offset());
        if min == 0 {
            Response::Offset(0)
        } else {
            Response::Error {
                code: response_code::QUERY_NOT_FOUND,
                remark: "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemDisk;

    fn key(queue_id: i32) -> QueueKey {
        QueueKey {
            consumer_group: "G".into(),
            topic: "T".into(),
            queue_id,
        }
    }

    fn master(entries: &[(i32, i64)]) -> ConsumerOffsetTable {
        let mut t = ConsumerOffsetTable::default();
        t.offset_table
            .insert("T@G".into(), entries.iter().copied().collect());
        t
    }

    #[test]
    fn slave_merge_takes_the_masters_offsets_but_keeps_commits_it_may_not_have_seen() {
        let disk = MemDisk::new();
        let mut slave = ConsumerOffsets::load(&disk);
        let sync = slave.next_sync();
        assert!(slave
            .merge_from_master(&master(&[(0, 10), (1, 10), (2, 10), (3, 10)]), sync)
            .is_empty());
        assert_eq!(slave.get(&key(0)), Some(10));
        assert!(slave.table.is_dirty(), "merged offsets are persisted");

        // Consumers whose route lists no master commit here: queue 1's and 2's are
        // passed on to the master; queue 3's is not (no master known).
        slave.commit_local(&key(1), 15, true);
        slave.commit_local(&key(2), 15, true);
        slave.commit_local(&key(3), 4, false);
        let sync = slave.next_sync();
        // Queue 2's commit is made after the request left.
        slave.commit_local(&key(2), 16, true);
        // The master went back on queue 0 (an offset corrected after it lost its tail)
        // and moved queue 1 on since the commit it got.
        let resend = slave.merge_from_master(&master(&[(0, 7), (1, 20), (2, 15), (3, 10)]), sync);
        assert_eq!(
            slave.get(&key(0)),
            Some(7),
            "the master's value wins, even lower"
        );
        assert_eq!(
            slave.get(&key(1)),
            Some(20),
            "it had the forward: its value stands"
        );
        assert_eq!(
            slave.get(&key(2)),
            Some(16),
            "a commit after the request is kept"
        );
        assert_eq!(
            slave.get(&key(3)),
            Some(4),
            "a commit never passed on wins, even lower"
        );
        assert_eq!(resend, vec![(key(3), 4)], "and is passed on now");

        // The connection to the master breaks: what was passed on may be lost.
        slave.forwards_may_be_lost();
        let sync = slave.next_sync();
        let resend = slave.merge_from_master(&master(&[(2, 15), (3, 10)]), sync);
        assert_eq!(resend, vec![(key(2), 16), (key(3), 4)]);
        assert_eq!(slave.get(&key(2)), Some(16));
        assert_eq!(slave.get(&key(3)), Some(4));

        // Passed on before the next request: from then on the master's table decides.
        let sync = slave.next_sync();
        assert!(slave
            .merge_from_master(&master(&[(2, 16), (3, 2)]), sync)
            .is_empty());
        assert_eq!(slave.get(&key(2)), Some(16));
        assert_eq!(slave.get(&key(3)), Some(2));
        assert!(slave.local_commits.is_empty());
    }

    #[test]
    fn slave_drops_a_lost_commit_once_the_master_shows_anothers_newer_one() {
        // Wide seed 232: a consumer committed 12 here while the master was down; the
        // master came back and the group committed 40 there. Sending 12 again would
        // put the group back by 28 messages.
        let disk = MemDisk::new();
        let mut slave = ConsumerOffsets::load(&disk);
        let sync = slave.next_sync();
        slave.merge_from_master(&master(&[(0, 0), (1, 0)]), sync);
        slave.commit_local(&key(0), 12, false);
        slave.commit_local(&key(1), 12, false);
        let sync = slave.next_sync();
        // Queue 0: the master moved on (another consumer); queue 1: it still shows
        // what this slave had, so it never got the commit.
        let resend = slave.merge_from_master(&master(&[(0, 40), (1, 0)]), sync);
        assert_eq!(resend, vec![(key(1), 12)]);
        assert_eq!(
            slave.get(&key(0)),
            Some(40),
            "the master's newer value wins"
        );
        assert_eq!(slave.get(&key(1)), Some(12));
    }
}
