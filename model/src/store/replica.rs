//! The commit log as a replication stream (RocketMQ's HA, reference A.8).
//!
//! A master hands out its commit-log records verbatim; a slave writes them at the same
//! physical offsets and dispatches them to its own consume queues, so the two logs are
//! byte-identical and every offset (physical and queue) means the same on both.
//!
//! Unlike RocketMQ, the stream carries whole records, not arbitrary byte ranges, and the
//! slave verifies each one (CRC, and that it lands exactly where the master wrote it)
//! before writing: damage in flight or a diverged log is refused instead of copied.
//! End-of-file blank markers are not shipped: both sides roll files at the same points
//! because they use the same file size, and `position_for` writes the marker itself.

use super::consume_queue::CqEntry;
use super::disk::Disk;
use super::message_store::{MessageStore, StoreError, StoreState};
use super::record::{self, CrcCheck, RecordError, Slot};

/// Why a slave refused a batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error("record at {at}: {reason}")]
    Damaged { at: u64, reason: String },
    /// The record belongs somewhere else than this log's end: the logs diverged or a
    /// batch was skipped.
    #[error("record for offset {record_offset} but this log continues at {expected}")]
    Misplaced { record_offset: u64, expected: u64 },
    #[error("record {topic}-{queue_id}@{queue_offset} but that queue continues at {expected}")]
    QueueGap {
        topic: String,
        queue_id: i32,
        queue_offset: u64,
        expected: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records read for a slave: `data` holds whole records, the first at `start`; the
/// next batch starts at `end` (past any end-of-file blank the batch skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationBatch {
    pub start: u64,
    pub end: u64,
    pub data: Vec<u8>,
}

impl MessageStore {
    /// Whole records starting at `from` (skipping an end-of-file blank to the next
    /// file), up to `max_bytes` (at least one record if any) and never past `limit`.
    /// Returns the offset of the first record, the offset where the next batch starts
    /// and the records' bytes. A batch that crosses a file end skips the blank, so its
    /// end is past `start + bytes.len()`: the next batch must start at the end returned.
    pub fn read_for_replication(
        &self,
        disk: &dyn Disk,
        from: u64,
        limit: u64,
        max_bytes: usize,
    ) -> Result<ReplicationBatch, StoreError> {
        let limit = limit.min(self.written_offset());
        let file_size = self.commit_log.file_size();
        let mut at = from;
        let mut start = None;
        let mut out = Vec::new();
        while at < limit && (out.is_empty() || out.len() < max_bytes) {
            let file_start = at - at % file_size;
            let rest = file_start + file_size - at;
            let Some(bytes) = self.commit_log.read(disk, at, rest.min(limit - at))? else {
                break;
            };
            // The bytes up to `limit` were verified when written or recovered; the
            // slave checks each record's CRC again.
            match record::parse(&bytes, CrcCheck::Skip) {
                Ok(Slot::Record(view)) => {
                    let len = view.total_size;
                    if !out.is_empty() && out.len() + len > max_bytes {
                        break;
                    }
                    start.get_or_insert(at);
                    out.extend_from_slice(&bytes[..len]);
                    at += len as u64;
                }
                // A blank, or too little left in this file for a record: next file.
                _ => at = file_start + file_size,
            }
        }
        let start = start.unwrap_or(at.min(limit.max(from)));
        Ok(ReplicationBatch {
            start,
            end: if out.is_empty() { start } else { at },
            data: out,
        })
    }

    /// Writes records received from the master at this log's end, after checking each.
    /// Returns the new written offset. Records before the first bad one are kept.
    pub fn append_replicated(
        &mut self,
        disk: &mut dyn Disk,
        data: &[u8],
    ) -> Result<u64, ReplicaError> {
        if self.state != StoreState::Ready {
            return Err(StoreError::NotReady(self.state).into());
        }
        let mut pos = 0;
        while pos < data.len() {
            let at = self.written_offset();
            // The file's format is only known once the record's place is (below).
            let view = match record::parse(&data[pos..], CrcCheck::TailOrBody) {
                Ok(Slot::Record(v)) => v,
                Ok(Slot::Blank) => {
                    return Err(ReplicaError::Damaged {
                        at,
                        reason: "a blank marker in the stream".into(),
                    })
                }
                Err(e) => {
                    return Err(ReplicaError::Damaged {
                        at,
                        reason: e.to_string(),
                    })
                }
            };
            let len = view.total_size as u64;
            let record_offset = u64::try_from(view.physical_offset).unwrap_or(u64::MAX);
            if len > self.commit_log.file_size() {
                return Err(ReplicaError::Damaged {
                    at,
                    reason: format!("record of {len} bytes exceeds the file size"),
                });
            }
            // Where this log would put it; it must be where the master did.
            let file_size = self.commit_log.file_size();
            let expected = if (at % file_size) + len + record::END_FILE_MIN_BLANK_LENGTH > file_size
            {
                at - at % file_size + file_size
            } else {
                at
            };
            if record_offset != expected {
                return Err(ReplicaError::Misplaced {
                    record_offset,
                    expected,
                });
            }
            // A file's first record sets its format, as recovery reads it; after that
            // a file with tails takes only records with tails.
            let starts_file = expected % file_size == 0;
            if !starts_file
                && !view.has_crc_tail()
                && self.commit_log.crc_check_at(expected) == CrcCheck::Strict
            {
                return Err(ReplicaError::Damaged {
                    at,
                    reason: RecordError::MissingCrcTail.to_string(),
                });
            }
            let without_tail = starts_file && !view.has_crc_tail();
            let dispatched = view.is_dispatched();
            let queue_offset = u64::try_from(view.queue_offset).unwrap_or(u64::MAX);
            let topic = view.topic.to_string();
            let queue_id = view.queue_id;
            if dispatched {
                let next = self.max_queue_offset(&topic, queue_id);
                if queue_offset != next {
                    return Err(ReplicaError::QueueGap {
                        topic,
                        queue_id,
                        queue_offset,
                        expected: next,
                    });
                }
            }
            let tags_code = self.dispatch_tags_code(&view);
            let store_ts = view.store_timestamp_ms;
            let bytes = view.bytes;
            let physical = self
                .commit_log
                .position_for(disk, len, &mut self.commit_log_flush);
            let physical = self.check_replica_disk(physical.map_err(StoreError::from))?;
            debug_assert_eq!(physical, record_offset);
            if without_tail {
                self.commit_log.note_file_without_crc_tail(physical);
            }
            let written = self
                .commit_log
                .write(disk, physical, bytes, &mut self.commit_log_flush);
            self.check_replica_disk(written.map_err(StoreError::from))?;
            self.last_store_timestamp_ms = store_ts;
            if dispatched {
                let entry = CqEntry {
                    commit_log_offset: physical as i64,
                    size: len as i32,
                    tags_code,
                };
                let r = self.dispatch_entry(disk, &topic, queue_id, queue_offset, entry);
                self.check_replica_disk(r.map_err(StoreError::from))?;
            }
            pos += len as usize;
        }
        Ok(self.written_offset())
    }

    fn check_replica_disk<T>(&mut self, r: Result<T, StoreError>) -> Result<T, ReplicaError> {
        r.map_err(|e| {
            if matches!(e, StoreError::Disk(_)) {
                tracing::error!(error = %e, "replicated write failed; store is now read-only");
                self.state = StoreState::Failed;
            }
            ReplicaError::Store(e)
        })
    }
}
