//! Where a push consumer keeps how far it consumed each queue (reference C.3).
//!
//! Clustering (`RemoteBrokerOffsetStore`): the group's offsets live on the brokers. The
//! consumer sends UPDATE_CONSUMER_OFFSET, oneway, every `persist_offset_interval_ms`
//! for each queue whose offset moved, when it gives a queue away, and at shutdown.
//!
//! Broadcasting (`LocalFileOffsetStore`): each consumer has its own offsets, in a JSON
//! file on its own disk, `.rocketmq_offsets/{clientId}/{group}/offsets.json`, written
//! through [`ConfigFile`] (tmp + fsync + rename + directory sync) every interval and
//! loaded at start. A broadcasting consumer's client id does not change across
//! restarts (`ip@DEFAULT`), so a restarted process finds its file.
//!
//! Either way an offset counts as committed — and a [`ClientEvent::Committed`] is
//! emitted — when it leaves for the broker or when the file holding it is renamed into
//! place (a restarted process reads it from then on, before the directory sync).

use serde::{Deserialize, Serialize};

use super::queue_table::QueueTable;
use super::{subscribe_addr, ClientEvent, MessageQueue, Rpc};
use crate::node::Ctx;
use crate::protocol::{Message, QueueKey, Request, TopicRouteData};
use crate::store::config_file::{ConfigEvent, ConfigFile, LoadSource};
use crate::store::disk::{Disk, DiskError, SyncTicket};

/// The directory of local offset files (RocketMQ: `~/.rocketmq_offsets`).
pub const LOCAL_OFFSET_DIR: &str = ".rocketmq_offsets";

/// The local offset file of `client_id` consuming for `group`.
pub fn local_offset_path(client_id: &str, group: &str) -> String {
    format!("{LOCAL_OFFSET_DIR}/{client_id}/{group}/offsets.json")
}

/// The local file's content: one entry per queue (a list, because RocketMQ's
/// fastjson map keyed by whole `MessageQueue` objects is not JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct OffsetFile {
    offset_table: Vec<OffsetEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetEntry {
    topic: String,
    broker_name: String,
    queue_id: i32,
    offset: u64,
}

/// A persist of the local file in progress, and the content of each.
#[derive(Debug)]
struct LocalFile {
    config: ConfigFile,
    /// The offsets being written now.
    in_flight: Option<QueueTable<u64>>,
    /// The offsets queued behind them (only at shutdown; see `persist_file`).
    queued: Option<QueueTable<u64>>,
}

#[derive(Debug)]
pub(crate) struct OffsetStore {
    group: String,
    /// The next offset to consume, per queue: what a commit would store.
    consumed: QueueTable<u64>,
    /// What the store holds as far as this client knows: what it last committed, or
    /// what it read from the broker or the file.
    committed: QueueTable<u64>,
    /// `Some` for broadcasting.
    file: Option<LocalFile>,
}

impl OffsetStore {
    /// A clustering consumer's store: offsets go to the brokers.
    pub(crate) fn broker(group: &str) -> OffsetStore {
        OffsetStore {
            group: group.to_string(),
            consumed: QueueTable::new(),
            committed: QueueTable::new(),
            file: None,
        }
    }

    /// A broadcasting consumer's store, loaded from its file (or its backup).
    pub(crate) fn local_file(group: &str, client_id: &str, disk: &dyn Disk) -> OffsetStore {
        let config = ConfigFile::new(local_offset_path(client_id, group));
        let (content, source): (OffsetFile, LoadSource) = config.load(disk);
        if let LoadSource::Backup(reason) | LoadSource::Default(reason) = &source {
            tracing::debug!(path = config.path(), %reason, "local offsets not from the primary file");
        }
        let loaded: QueueTable<u64> = content
            .offset_table
            .into_iter()
            .map(|e| {
                (
                    MessageQueue {
                        topic: e.topic,
                        broker_name: e.broker_name,
                        queue_id: e.queue_id,
                    },
                    e.offset,
                )
            })
            .collect();
        OffsetStore {
            group: group.to_string(),
            consumed: loaded.clone(),
            committed: loaded,
            file: Some(LocalFile {
                config,
                in_flight: None,
                queued: None,
            }),
        }
    }

    pub(crate) fn is_local(&self) -> bool {
        self.file.is_some()
    }

    /// No write of the local file is under way or queued (always, for clustering).
    pub(crate) fn is_idle(&self) -> bool {
        self.file.as_ref().is_none_or(|f| f.config.is_idle())
    }

    /// The consumed offset of `mq`, if any: for broadcasting, where a newly owned queue
    /// starts (the file's offset survives restarts).
    pub(crate) fn read(&self, mq: &MessageQueue) -> Option<u64> {
        self.consumed.get(mq).copied()
    }

    /// The store holds `offset` for `mq`, as far as this client knows, and no write
    /// under way will replace it with another.
    pub(crate) fn is_committed(&self, mq: &MessageQueue, offset: u64) -> bool {
        let replaced = self.file.as_ref().is_some_and(|f| {
            [&f.in_flight, &f.queued]
                .into_iter()
                .flatten()
                .any(|w| w.get(mq).is_some_and(|&o| o != offset))
        });
        self.committed.get(mq) == Some(&offset) && !replaced
    }

    /// Consumption moved `mq` to `offset`.
    pub(crate) fn update(&mut self, mq: &MessageQueue, offset: u64) {
        self.consumed.set(mq, offset);
    }

    /// The store is known to hold `offset` for `mq` (the broker said so): nothing to
    /// commit until consumption moves on.
    pub(crate) fn set_known_committed(&mut self, mq: &MessageQueue, offset: u64) {
        self.consumed.set(mq, offset);
        self.committed.set(mq, offset);
    }

    /// Forgets a queue given away (clustering: its offset now belongs to its next
    /// owner, who reads it from the broker).
    pub(crate) fn remove(&mut self, mq: &MessageQueue) {
        self.consumed.remove(mq);
        self.committed.remove(mq);
    }

    /// A pull carried `offset` with COMMIT_OFFSET: the event, if it moved the commit.
    pub(crate) fn note_pull_commit(
        &mut self,
        mq: &MessageQueue,
        offset: u64,
    ) -> Option<ClientEvent> {
        // Updated in place: this runs on every pull, and most queues are known.
        match self.committed.get_mut(mq) {
            Some(committed) if *committed == offset => return None,
            Some(committed) => *committed = offset,
            None => {
                self.committed.insert(mq.clone(), offset);
            }
        }
        Some(committed_event(&self.group, mq, offset))
    }

    /// Clustering: sends UPDATE_CONSUMER_OFFSET (oneway) for each of `mqs` whose
    /// consumed offset differs from the committed one (or for each, with `force`), to
    /// the broker group's master, or its slave when the route has no master.
    pub(crate) fn commit_to_broker<'a, T>(
        &mut self,
        ctx: &mut dyn Ctx<Message>,
        rpc: &mut Rpc<T>,
        route: Option<&TopicRouteData>,
        mqs: impl IntoIterator<Item = &'a MessageQueue>,
        force: bool,
    ) -> Vec<ClientEvent> {
        debug_assert!(!self.is_local());
        let mut out = Vec::new();
        let Some(route) = route else {
            return out;
        };
        for mq in mqs {
            let Some(&offset) = self.consumed.get(mq) else {
                continue;
            };
            if !force && self.committed.get(mq) == Some(&offset) {
                continue;
            }
            let Some((addr, _)) = subscribe_addr(route, &mq.broker_name, false) else {
                continue;
            };
            let request = Request::UpdateConsumerOffset {
                key: QueueKey {
                    consumer_group: self.group.clone(),
                    topic: mq.topic.clone(),
                    queue_id: mq.queue_id,
                },
                offset,
            };
            if rpc.send_untracked(ctx, addr, request).is_ok() {
                // Most queues were committed before: overwrite in place rather than
                // clone a key the map would drop.
                match self.committed.get_mut(mq) {
                    Some(committed) => *committed = offset,
                    None => {
                        self.committed.insert(mq.clone(), offset);
                    }
                }
                out.push(committed_event(&self.group, mq, offset));
            }
        }
        out
    }

    /// Broadcasting: starts writing every known offset to the local file, unless a
    /// write is in progress (the next interval catches up). With `force` (shutdown)
    /// the content is queued behind the write in progress instead.
    pub(crate) fn persist_file(&mut self, disk: &mut dyn Disk, force: bool) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        // Queuing only at shutdown: after a failed write `ConfigFile` keeps what was
        // queued and would write it after a newer one. Decided before the snapshot and
        // its JSON are made, which a skipped write does not need.
        let idle = file.config.is_idle();
        if !idle && !force {
            return;
        }
        let snapshot = self.consumed.clone();
        let content = OffsetFile {
            offset_table: snapshot
                .iter()
                .map(|(mq, &offset)| OffsetEntry {
                    topic: mq.topic.clone(),
                    broker_name: mq.broker_name.clone(),
                    queue_id: mq.queue_id,
                    offset,
                })
                .collect(),
        };
        let json = serde_json::to_string(&content).expect("offsets serialize");
        match file.config.persist(disk, json) {
            Ok(()) if idle => file.in_flight = Some(snapshot),
            Ok(()) => file.queued = Some(snapshot),
            Err(e) => {
                tracing::warn!(path = file.config.path(), error = %e, "writing local offsets failed")
            }
        }
    }

    /// Broadcasting: a sync completed. `None` if it was not the offset file's; else the
    /// offsets that became committed.
    pub(crate) fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> Option<Vec<ClientEvent>> {
        let file = self.file.as_mut()?;
        match file.config.on_sync_complete(disk, ticket, result) {
            ConfigEvent::NotMine => None,
            // The new file is renamed into place (its directory sync follows): a
            // process restarting now reads it, so its offsets count as committed
            // already. (A power cut may still bring back the older file: a restart
            // then re-consumes, which at-least-once allows.)
            ConfigEvent::InProgress => {
                let written = file.in_flight.as_ref();
                Some(note_written(&self.group, &mut self.committed, written))
            }
            ConfigEvent::Persisted => {
                let written = file.in_flight.take();
                file.in_flight = file.queued.take();
                Some(note_written(
                    &self.group,
                    &mut self.committed,
                    written.as_ref(),
                ))
            }
            ConfigEvent::Failed(e) => {
                tracing::warn!(path = file.config.path(), error = %e, "persisting local offsets failed");
                file.in_flight = None;
                file.queued = None;
                Some(Vec::new())
            }
        }
    }
}

/// The local file now holds `written` (nothing, when no write was tracked): the
/// offsets that changed are committed. Borrows the written table, which the file may
/// still need.
fn note_written(
    group: &str,
    committed: &mut QueueTable<u64>,
    written: Option<&QueueTable<u64>>,
) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    for (mq, &offset) in written.into_iter().flat_map(QueueTable::iter) {
        if committed.get(mq) != Some(&offset) {
            out.push(committed_event(group, mq, offset));
            committed.set(mq, offset);
        }
    }
    out
}

/// `group` committed `offset` for `mq`.
fn committed_event(group: &str, mq: &MessageQueue, offset: u64) -> ClientEvent {
    ClientEvent::Committed {
        group: group.to_string(),
        broker_name: mq.broker_name.clone(),
        topic: mq.topic.clone(),
        queue_id: mq.queue_id,
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemDisk;

    fn mq(q: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "a".into(),
            queue_id: q,
        }
    }

    #[test]
    fn local_file_commits_when_persisted_and_loads_back() {
        let mut disk = MemDisk::new();
        let mut store = OffsetStore::local_file("G", "10.0.0.9@DEFAULT", &disk);
        assert_eq!(store.read(&mq(0)), None);
        store.update(&mq(0), 5);
        store.update(&mq(1), 2);
        store.persist_file(&mut disk, false);
        // A second persist while one is in flight is skipped, not queued.
        store.update(&mq(1), 3);
        store.persist_file(&mut disk, false);
        let mut events = Vec::new();
        loop {
            let tickets = disk.take_requested_syncs();
            if tickets.is_empty() {
                break;
            }
            for t in tickets {
                events.extend(store.on_sync_complete(&mut disk, t, Ok(())).unwrap());
            }
        }
        let offsets: Vec<(i32, u64)> = events
            .iter()
            .map(|e| match e {
                ClientEvent::Committed {
                    queue_id, offset, ..
                } => (*queue_id, *offset),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(offsets, vec![(0, 5), (1, 2)]);
        assert!(disk
            .files()
            .contains_key(".rocketmq_offsets/10.0.0.9@DEFAULT/G/offsets.json"));

        let reloaded = OffsetStore::local_file("G", "10.0.0.9@DEFAULT", &disk);
        assert_eq!(reloaded.read(&mq(0)), Some(5));
        assert_eq!(reloaded.read(&mq(1)), Some(2));
        // Another group's file is another file.
        let other = OffsetStore::local_file("H", "10.0.0.9@DEFAULT", &disk);
        assert_eq!(other.read(&mq(0)), None);
    }
}
