//! Consumer offsets (`ConsumerOffsetManager`, reference C.3): `topic@group` → queue →
//! next offset to consume. Updated by UPDATE_CONSUMER_OFFSET and by pulls carrying
//! COMMIT_OFFSET; persisted to `config/consumerOffset.json` every 5 s and at shutdown,
//! so a crash loses at most the last interval's commits (consumers then re-consume:
//! at-least-once).

use super::Broker;
use crate::node::Ctx;
use crate::protocol::{response_code, Message, QueueKey, Response};
use crate::store::config_file::{ConfigEvent, ConfigFile};
use crate::store::config_tables::{ConsumerOffsetTable, CONSUMER_OFFSET_PATH};
use crate::store::disk::{Disk, DiskError, SyncTicket};

pub(super) struct ConsumerOffsets {
    table: ConsumerOffsetTable,
    file: ConfigFile,
    /// Changed since the last persist started.
    dirty: bool,
}

fn table_key(key: &QueueKey) -> String {
    format!("{}@{}", key.topic, key.consumer_group)
}

impl ConsumerOffsets {
    pub(super) fn load(disk: &dyn Disk) -> ConsumerOffsets {
        let file = ConfigFile::new(CONSUMER_OFFSET_PATH);
        let (table, _source) = file.load(disk);
        ConsumerOffsets {
            table,
            file,
            dirty: false,
        }
    }

    pub(super) fn commit(&mut self, key: &QueueKey, offset: u64) {
        let slot = self
            .table
            .offset_table
            .entry(table_key(key))
            .or_default()
            .entry(key.queue_id)
            .or_insert(-1);
        if *slot != offset as i64 {
            *slot = offset as i64;
            self.dirty = true;
        }
    }

    pub(super) fn get(&self, key: &QueueKey) -> Option<u64> {
        let v = *self
            .table
            .offset_table
            .get(&table_key(key))?
            .get(&key.queue_id)?;
        u64::try_from(v).ok()
    }

    pub(super) fn persist(&mut self, disk: &mut dyn Disk) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let json = serde_json::to_string(&self.table).expect("offset table serializes");
        if let Err(e) = self.file.persist(disk, json) {
            tracing::warn!(error = %e, "consumer offsets not persisted");
        }
    }

    pub(super) fn is_idle(&self) -> bool {
        self.file.is_idle()
    }

    pub(super) fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> ConfigEvent {
        self.file.on_sync_complete(disk, ticket, result)
    }
}

impl Broker {
    pub(super) fn persist_offsets(&mut self, ctx: &mut dyn Ctx<Message>) {
        self.offsets.persist(ctx.disk());
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
