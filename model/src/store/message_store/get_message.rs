//! Reads of stored messages (`DefaultMessageStore.getMessage`,
//! `getMessageStoreTimeStamp`, `getOffsetInQueueByTime`, `lookMessageByOffset`): every
//! record read is verified before it is returned.

use std::borrow::Cow;

use super::{MessageStore, ReadError, StoredMessage};
use crate::store::disk::Disk;
use crate::store::record::{self, RecordError, Slot};

/// A verified record as [`MessageStore::read_message`] finds it: its bytes borrowed
/// from the disk where the disk can lend them.
#[derive(Debug)]
pub struct MessageRead<'d> {
    pub physical_offset: u64,
    pub queue_offset: i64,
    pub tags_code: i64,
    pub bytes: Cow<'d, [u8]>,
}

impl MessageStore {
    /// The record at a queue offset, verified (CRC, and that it is the record the
    /// consume queue says: same topic, queue, queue offset and size).
    pub fn get_message(
        &self,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
        queue_offset: u64,
    ) -> Result<StoredMessage, ReadError> {
        let m = self.read_message(disk, topic, queue_id, queue_offset)?;
        Ok(StoredMessage {
            physical_offset: m.physical_offset,
            queue_offset: m.queue_offset,
            tags_code: m.tags_code,
            bytes: m.bytes.into_owned(),
        })
    }

    /// [`MessageStore::get_message`] without a copy of the record: a pull appends
    /// each record it serves to its answer, and copying it first was a visible cost.
    pub fn read_message<'d>(
        &self,
        disk: &'d dyn Disk,
        topic: &str,
        queue_id: i32,
        queue_offset: u64,
    ) -> Result<MessageRead<'d>, ReadError> {
        let queue = self
            .queue(topic, queue_id)
            .ok_or_else(|| ReadError::NoSuchQueue {
                topic: topic.to_string(),
                queue_id,
            })?;
        if queue_offset < queue.min_offset() {
            return Err(ReadError::OffsetTooSmall {
                offset: queue_offset,
                min: queue.min_offset(),
            });
        }
        let entry = queue
            .get(disk, queue_offset)?
            .ok_or(ReadError::OffsetOverflow {
                offset: queue_offset,
                max: queue.max_offset(),
            })?;
        let physical_offset = u64::try_from(entry.commit_log_offset).unwrap_or(u64::MAX);
        let corrupt = |reason: String| ReadError::Corrupt {
            physical_offset,
            reason,
        };
        let size = u64::try_from(entry.size).map_err(|_| corrupt("negative size".into()))?;
        let bytes = self
            .commit_log
            .read(disk, physical_offset, size)?
            .ok_or_else(|| corrupt("consume-queue entry points outside the commit log".into()))?;
        let check = self.commit_log.crc_check_at(physical_offset);
        let view = match record::parse(&bytes, check) {
            Ok(Slot::Record(v)) => v,
            Ok(Slot::Blank) => return Err(corrupt("entry points at a blank marker".into())),
            Err(e) => return Err(corrupt(e.to_string())),
        };
        if view.topic != topic
            || view.queue_id != queue_id
            || view.queue_offset != queue_offset as i64
            || view.total_size as u64 != size
            || view.physical_offset != physical_offset as i64
        {
            return Err(corrupt(format!(
                "entry for {topic}-{queue_id}@{queue_offset} points at a record of {}-{}@{}",
                view.topic, view.queue_id, view.queue_offset
            )));
        }
        // The tag code drives server-side tag filtering (and, in the schedule topic,
        // when a delayed message is due): a damaged one would silently hide the
        // message from a subscriber or deliver it at the wrong time.
        let expected_tags_code = self.dispatch_tags_code(&view);
        if expected_tags_code != entry.tags_code {
            return Err(corrupt(format!(
                "entry for {topic}-{queue_id}@{queue_offset} has tag code {} but the record gives {}",
                entry.tags_code, expected_tags_code
            )));
        }
        let queue_offset = view.queue_offset;
        Ok(MessageRead {
            physical_offset,
            queue_offset,
            tags_code: entry.tags_code,
            bytes,
        })
    }

    /// The store time of the message at a queue offset (`getMessageStoreTimeStamp`);
    /// None when it cannot be read.
    pub fn store_timestamp_at(
        &self,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
        queue_offset: u64,
    ) -> Option<i64> {
        let m = self.get_message(disk, topic, queue_id, queue_offset).ok()?;
        // `get_message` verified the record: its structure is sound.
        match record::parse(&m.bytes, record::CrcCheck::Skip) {
            Ok(Slot::Record(view)) => Some(view.store_timestamp_ms),
            _ => None,
        }
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (`ConsumeQueue.getOffsetInQueueByTime`, 5.x's lower
    /// boundary): the first queue offset whose message was stored at or after
    /// `timestamp_ms`, found by binary search over store times (which rise along a
    /// queue); the queue's max offset when every message is older. A message that
    /// cannot be read counts as older, so the search moves past it.
    pub fn offset_by_time(
        &self,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
        timestamp_ms: i64,
    ) -> u64 {
        let Some(queue) = self.queue(topic, queue_id) else {
            return 0;
        };
        let (mut low, mut high) = (queue.min_offset(), queue.max_offset());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.store_timestamp_at(disk, topic, queue_id, mid) {
                Some(t) if t >= timestamp_ms => high = mid,
                _ => low = mid + 1,
            }
        }
        low
    }

    /// The record starting at a commit-log offset (the offset in a message id), verified.
    pub fn get_by_commit_log_offset(
        &self,
        disk: &dyn Disk,
        physical_offset: u64,
    ) -> Result<StoredMessage, ReadError> {
        // Read the size first: never read (or allocate) more than the record claims,
        // and never trust that claim past the end of its file.
        let header = self
            .commit_log
            .read(disk, physical_offset, 8)?
            .ok_or(ReadError::NoRecordAt(physical_offset))?;
        let total = i32::from_be_bytes(header[..4].try_into().unwrap());
        let total = u64::try_from(total).unwrap_or(0);
        let bytes = self
            .commit_log
            .read(disk, physical_offset, total)?
            .ok_or_else(|| ReadError::Corrupt {
                physical_offset,
                reason: format!("TOTALSIZE {total} runs outside the written log"),
            })?;
        let check = self.commit_log.crc_check_at(physical_offset);
        let view = match record::parse(&bytes, check) {
            Ok(Slot::Record(v)) => v,
            Ok(Slot::Blank) => return Err(ReadError::NoRecordAt(physical_offset)),
            Err(e) => {
                return Err(ReadError::Corrupt {
                    physical_offset,
                    reason: e.to_string(),
                })
            }
        };
        if view.physical_offset != physical_offset as i64
            || physical_offset + view.total_size as u64 > self.written_offset()
        {
            let reason = RecordError::WrongPhysicalOffset {
                field: view.physical_offset,
                actual: physical_offset,
            };
            return Err(ReadError::Corrupt {
                physical_offset,
                reason: reason.to_string(),
            });
        }
        Ok(StoredMessage {
            physical_offset,
            queue_offset: view.queue_offset,
            tags_code: self.dispatch_tags_code(&view),
            bytes: view.bytes.to_vec(),
        })
    }
}
