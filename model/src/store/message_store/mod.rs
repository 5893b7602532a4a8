//! The message store as its owner (a broker) sees it: append, read, flush, boot and
//! clean shutdown. Boot is recovery (`recovery/`); reads are in `get_message.rs`;
//! everything else is here.
//!
//! Life cycle: `Booting` (recovery's repairs and a sync of the whole commit log are in
//! flight; nothing may be appended, so a new record can never land next to stale bytes
//! that are not yet durably cut off) → `Ready` → `ShuttingDown` (final flushes) →
//! `Closed` (abort marker durably removed). A failed sync moves any state to `Failed`:
//! the store then refuses appends, as RocketMQ's store turns unwritable.

use std::collections::{BTreeMap, VecDeque};

mod get_message;
pub use get_message::MessageRead;

use super::checkpoint::{Checkpoint, CHECKPOINT_PATH};
use super::commit_log::{CommitLog, END_OF_OFFSET_SPACE};
use super::consume_queue::{ConsumeQueue, CqEntry};
use super::delay_level::{delay_level, InvalidDelayLevel, MessageDelayLevel, SCHEDULE_TOPIC};
use super::disk::{Disk, DiskError, SyncTicket, SyncWaiter};
use super::flush::{FlushTracker, SyncOutcome};
use super::record::{self, NewRecord, END_FILE_MIN_BLANK_LENGTH};

/// The `abort` marker: present while a store runs; absent after a clean shutdown.
pub const ABORT_PATH: &str = "abort";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// `mappedFileSizeCommitLog`; tests use tiny files so that rolling is constant.
    pub commit_log_file_size_bytes: u64,
    /// `mappedFileSizeConsumeQueue / 20`.
    pub consume_queue_entries_per_file: u64,
    /// `maxMessageSize`: the largest body accepted.
    pub max_message_size_bytes: usize,
    /// `messageDelayLevel` (a `MessageStoreConfig` key in RocketMQ too): the put path
    /// rewrites delayed messages with it and every dispatch computes their delivery time.
    pub message_delay_level: MessageDelayLevel,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            commit_log_file_size_bytes: 1024 * 1024 * 1024,
            consume_queue_entries_per_file: 300_000,
            max_message_size_bytes: 4 * 1024 * 1024,
            message_delay_level: MessageDelayLevel::default(),
        }
    }
}

/// A commit-log file must at least hold one smallest record and the blank marker.
pub const MIN_COMMIT_LOG_FILE_SIZE_BYTES: u64 = 512;

impl StoreConfig {
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.commit_log_file_size_bytes < MIN_COMMIT_LOG_FILE_SIZE_BYTES
            || self.commit_log_file_size_bytes > i32::MAX as u64
        {
            return Err(StoreError::Config(format!(
                "commit log file size {} must be in [{MIN_COMMIT_LOG_FILE_SIZE_BYTES}, {}]",
                self.commit_log_file_size_bytes,
                i32::MAX
            )));
        }
        if self.consume_queue_entries_per_file == 0
            || self.consume_queue_entries_per_file > (i32::MAX as u64) / 20
        {
            return Err(StoreError::Config(format!(
                "consume queue entries per file {} out of range",
                self.consume_queue_entries_per_file
            )));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store config: {0}")]
    Config(String),
    #[error("store is {0:?}, not ready for writes")]
    NotReady(StoreState),
    #[error("message illegal: {0}")]
    Illegal(#[from] record::EncodeError),
    #[error("message illegal: {0}")]
    IllegalDelayLevel(#[from] InvalidDelayLevel),
    #[error("message illegal: a batch cannot carry a delay level")]
    DelayInBatch,
    #[error("{len} bytes of records do not fit a {file_size}-byte commit-log file")]
    RecordTooLarge { len: u64, file_size: u64 },
    #[error("commit log is at offset {write_offset}, too near the end of the 63-bit offset space for another file")]
    LogFull { write_offset: u64 },
    #[error("disk: {0}")]
    Disk(#[from] DiskError),
    /// Recovery found a store it cannot make sense of and changed nothing on the disk.
    #[error("refusing to recover the store, nothing was changed: {path}: {reason}")]
    Refused { path: String, reason: String },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StoreState {
    Booting,
    Ready,
    ShuttingDown,
    Closed,
    Failed,
}

/// Where an appended record went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub physical_offset: u64,
    pub size: u32,
    /// None for PREPARED/ROLLBACK transaction records, which take no queue offset.
    pub queue_offset: Option<u64>,
    pub store_timestamp_ms: i64,
    /// The commit-log offset that must be durable for this record to be.
    pub end_offset: u64,
    /// Set when a DELAY level sent the message to `SCHEDULE_TOPIC_XXXX`: the level,
    /// clamped to the table (`queue_offset` is then the schedule queue's).
    pub delay_level: Option<i32>,
}

/// A record read back, with its bytes exactly as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub physical_offset: u64,
    pub queue_offset: i64,
    pub tags_code: i64,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("no queue {topic}-{queue_id}")]
    NoSuchQueue { topic: String, queue_id: i32 },
    #[error("queue offset {offset} below the queue's min {min}")]
    OffsetTooSmall { offset: u64, min: u64 },
    #[error("queue offset {offset} at or past the queue's max {max}")]
    OffsetOverflow { offset: u64, max: u64 },
    #[error("nothing stored at commit-log offset {0}")]
    NoRecordAt(u64),
    /// The record failed verification: it is never handed out.
    #[error("damaged record at commit-log offset {physical_offset}: {reason}")]
    Corrupt {
        physical_offset: u64,
        reason: String,
    },
    #[error("disk: {0}")]
    Disk(#[from] DiskError),
}

/// What a sync completion meant to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// The ticket was not the store's.
    NotMine,
    Nothing,
    /// Every record ending at or below this offset is durable.
    CommitLogDurable(u64),
    /// Boot finished: the store accepts writes.
    Ready,
    /// Shutdown finished: everything flushed and the abort marker durably gone.
    Closed,
    /// A sync failed; the store no longer accepts writes.
    Failed(DiskError),
}

pub struct MessageStore {
    pub(super) config: StoreConfig,
    pub(super) commit_log: CommitLog,
    pub(super) queues: BTreeMap<String, BTreeMap<i32, ConsumeQueue>>,
    pub(super) state: StoreState,
    /// Commit-log files and directory: drives group commit.
    pub(super) commit_log_flush: FlushTracker,
    /// Consume-queue files, the checkpoint and the root directory. Its "offset" is a
    /// counter of requests, not a byte offset: only completion matters.
    pub(super) logic_flush: FlushTracker,
    logic_flush_generation: u64,
    /// Store timestamps at flush targets, to fill the checkpoint when they land.
    flush_timestamps: VecDeque<(u64, i64)>,
    pub(super) checkpoint: Checkpoint,
    pub(super) last_store_timestamp_ms: i64,
    /// Shutdown's last step: the sync of the root directory after deleting `abort`.
    closing_ticket: Option<SyncTicket>,
    encode_buffer: Vec<u8>,
}

impl MessageStore {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn assemble(
        config: StoreConfig,
        commit_log: CommitLog,
        queues: BTreeMap<String, BTreeMap<i32, ConsumeQueue>>,
        commit_log_flush: FlushTracker,
        logic_flush: FlushTracker,
        checkpoint: Checkpoint,
        last_store_timestamp_ms: i64,
    ) -> MessageStore {
        MessageStore {
            config,
            commit_log,
            queues,
            state: StoreState::Booting,
            commit_log_flush,
            logic_flush,
            logic_flush_generation: 1,
            flush_timestamps: VecDeque::new(),
            checkpoint,
            last_store_timestamp_ms,
            closing_ticket: None,
            encode_buffer: Vec::new(),
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn state(&self) -> StoreState {
        self.state
    }

    pub fn is_ready(&self) -> bool {
        self.state == StoreState::Ready
    }

    /// One past the last byte written (page cache).
    pub fn written_offset(&self) -> u64 {
        self.commit_log.write_offset()
    }

    /// Every record ending at or below this offset survives a power cut.
    pub fn durable_offset(&self) -> u64 {
        self.commit_log_flush.durable()
    }

    /// Bytes written but not yet covered by a requested flush (for ASYNC_FLUSH's
    /// least-pages rule).
    pub fn unflushed_bytes(&self) -> u64 {
        self.written_offset() - self.commit_log_flush.requested()
    }

    pub fn commit_log_min_offset(&self) -> u64 {
        self.commit_log.min_offset()
    }

    pub fn commit_log(&self) -> &CommitLog {
        &self.commit_log
    }

    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    pub fn queue(&self, topic: &str, queue_id: i32) -> Option<&ConsumeQueue> {
        self.queues.get(topic)?.get(&queue_id)
    }

    /// Every queue, ordered by topic then queue id.
    pub fn queues(&self) -> impl Iterator<Item = &ConsumeQueue> {
        self.queues.values().flat_map(|q| q.values())
    }

    /// Whether a commit-log flush is in flight (group commit: the next one waits).
    pub fn flush_in_flight(&self) -> bool {
        self.commit_log_flush.in_flight() > 0
    }

    /// The next queue offset of a queue (0 for a queue never written).
    pub fn max_queue_offset(&self, topic: &str, queue_id: i32) -> u64 {
        self.queue(topic, queue_id).map_or(0, |q| q.max_offset())
    }

    /// One past the last queue offset of `(topic, queue_id)` whose record lies below
    /// the commit-log offset `limit` (everything, when `limit` covers the written log).
    pub fn max_queue_offset_at(
        &self,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
        limit: u64,
    ) -> u64 {
        if limit >= self.written_offset() {
            return self.max_queue_offset(topic, queue_id);
        }
        self.max_queue_offset_below(disk, topic, queue_id, limit)
    }

    /// The first queue offset of a queue whose record does not end at or below
    /// `commit_log_offset` (0 for a queue never written): the end of what a reader
    /// limited to that commit-log offset may see.
    pub fn max_queue_offset_below(
        &self,
        disk: &dyn Disk,
        topic: &str,
        queue_id: i32,
        commit_log_offset: u64,
    ) -> u64 {
        self.queue(topic, queue_id)
            .map_or(0, |q| q.first_beyond(disk, commit_log_offset))
    }

    /// Appends a record and dispatches it to its consume queue. It is readable at once
    /// and durable once `durable_offset() >= result.end_offset`.
    pub fn append(
        &mut self,
        disk: &mut dyn Disk,
        rec: &NewRecord<'_>,
        now_ms: i64,
    ) -> Result<AppendResult, StoreError> {
        let mut appended = self.append_batch(disk, std::slice::from_ref(rec), now_ms)?;
        Ok(appended.pop().expect("one record in, one result out"))
    }

    /// Appends records of one queue as one contiguous run, each its own record with the
    /// next queue offset, and dispatches them. As RocketMQ writes a batch as one buffer
    /// (`CommitLog.asyncPutMessages`), the run never spans two files: if it does not fit
    /// the current file, the blank marker closes that file and the whole run starts the
    /// next. The results are in the records' order; the run is durable once
    /// `durable_offset()` reaches the last one's `end_offset`.
    ///
    /// # Panics
    /// If `recs` is empty or its records name different queues (the caller's mistake).
    pub fn append_batch(
        &mut self,
        disk: &mut dyn Disk,
        recs: &[NewRecord<'_>],
        now_ms: i64,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if self.state != StoreState::Ready {
            return Err(StoreError::NotReady(self.state));
        }
        // A delayed message goes to its level's schedule queue (`delay_level.rs`);
        // a batch cannot be delayed (`CommitLog.asyncPutMessages`).
        let delay_levels = &self.config.message_delay_level;
        let delayed = match recs {
            [rec] => delay_levels.rewrite_for_delay(
                rec.topic,
                rec.queue_id,
                rec.sys_flag,
                rec.properties,
            )?,
            _ => {
                if recs
                    .iter()
                    .any(|r| delay_level(r.properties).is_some_and(|l| l > 0))
                {
                    return Err(StoreError::DelayInBatch);
                }
                None
            }
        };
        let scheduled;
        let recs = match &delayed {
            None => recs,
            Some(put) => {
                scheduled = [NewRecord {
                    topic: SCHEDULE_TOPIC,
                    queue_id: put.queue_id,
                    properties: &put.properties,
                    ..recs[0].clone()
                }];
                &scheduled[..]
            }
        };
        let first = recs.first().expect("a batch holds at least one record");
        let mut len = 0u64;
        for rec in recs {
            assert_eq!(rec.topic, first.topic, "a batch goes to one topic");
            assert_eq!(rec.queue_id, first.queue_id, "a batch goes to one queue");
            rec.validate(self.config.max_message_size_bytes)?;
            len += rec.encoded_len() as u64;
        }
        let file_size = self.commit_log.file_size();
        if len + END_FILE_MIN_BLANK_LENGTH > file_size {
            return Err(StoreError::RecordTooLarge { len, file_size });
        }
        // The records land in the current file or the next one, which ends at most two
        // files past the write offset: both must lie inside the offset space. Only a
        // store recovered from files named near 2^63 gets here.
        let write_offset = self.written_offset();
        if write_offset > END_OF_OFFSET_SPACE - 2 * file_size {
            return Err(StoreError::LogFull { write_offset });
        }
        let delay_level = delayed.as_ref().map(|put| put.level);
        let result = self
            .append_checked(disk, recs, len, now_ms)
            .map(|mut appended| {
                for a in &mut appended {
                    a.delay_level = delay_level;
                }
                appended
            });
        if let Err(StoreError::Disk(e)) = &result {
            // A failed page-cache write leaves the log in an unknown state.
            tracing::error!(error = %e, "commit log write failed; store is now read-only");
            self.state = StoreState::Failed;
        }
        result
    }

    /// `len`: the records' encoded lengths, summed.
    fn append_checked(
        &mut self,
        disk: &mut dyn Disk,
        recs: &[NewRecord<'_>],
        len: u64,
        now_ms: i64,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let (topic, queue_id) = (recs[0].topic, recs[0].queue_id);
        let physical_offset =
            self.commit_log
                .position_for(disk, len, &mut self.commit_log_flush)?;
        let queue_offset_before = self.max_queue_offset(topic, queue_id);
        let mut next_queue_offset = queue_offset_before;
        let mut buf = std::mem::take(&mut self.encode_buffer);
        buf.clear();
        let mut appended = Vec::with_capacity(recs.len());
        for rec in recs {
            let at = physical_offset + buf.len() as u64;
            // PREPARED and ROLLBACK records take no queue offset.
            let queue_offset = record::is_dispatched(rec.sys_flag).then_some(next_queue_offset);
            rec.encode(
                queue_offset.unwrap_or(0) as i64,
                at as i64,
                now_ms,
                &mut buf,
            );
            let size = physical_offset + buf.len() as u64 - at;
            debug_assert_eq!(size, rec.encoded_len() as u64);
            next_queue_offset += u64::from(queue_offset.is_some());
            appended.push(AppendResult {
                physical_offset: at,
                size: size as u32,
                queue_offset,
                store_timestamp_ms: now_ms,
                end_offset: at + size,
                delay_level: None,
            });
        }
        debug_assert_eq!(buf.len() as u64, len);
        let written =
            self.commit_log
                .write(disk, physical_offset, &buf, &mut self.commit_log_flush);
        self.encode_buffer = buf;
        written?;
        self.last_store_timestamp_ms = now_ms;
        for (rec, a) in recs.iter().zip(&appended) {
            let Some(queue_offset) = a.queue_offset else {
                continue;
            };
            let entry = CqEntry {
                commit_log_offset: a.physical_offset as i64,
                size: a.size as i32,
                tags_code: self.config.message_delay_level.dispatch_tags_code(
                    rec.topic,
                    rec.properties,
                    now_ms,
                ),
            };
            self.dispatch_entry(disk, topic, queue_id, queue_offset, entry)?;
        }
        debug_assert!(self.durable_offset() <= self.written_offset());
        debug_assert_eq!(self.written_offset(), physical_offset + len);
        debug_assert_eq!(
            self.max_queue_offset(topic, queue_id),
            next_queue_offset,
            "queue offsets are dense"
        );
        Ok(appended)
    }

    /// The consume-queue tag code of a stored record (`delay_level.rs`).
    pub(super) fn dispatch_tags_code(&self, view: &record::RecordView<'_>) -> i64 {
        self.config.message_delay_level.dispatch_tags_code(
            view.topic,
            view.properties,
            view.store_timestamp_ms,
        )
    }

    pub(super) fn dispatch_entry(
        &mut self,
        disk: &mut dyn Disk,
        topic: &str,
        queue_id: i32,
        queue_offset: u64,
        entry: CqEntry,
    ) -> Result<(), DiskError> {
        let entries_per_file = self.config.consume_queue_entries_per_file;
        let queue = self
            .queues
            .entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_insert_with(|| ConsumeQueue::new(topic, queue_id, entries_per_file));
        let files_before = queue.files().starts().len();
        let path = queue.append(disk, queue_offset, entry)?;
        self.logic_flush.note_write(&path);
        if queue.files().starts().len() != files_before {
            // New file (and perhaps new topic/queue directories).
            let dir = queue.files().dir().to_string();
            self.logic_flush.note_dir_change(&dir);
            self.logic_flush
                .note_dir_change(super::disk::parent_dir(&dir));
            self.logic_flush.note_dir_change("consumequeue");
        }
        Ok(())
    }

    /// Asks for everything written so far to become durable (one group commit).
    /// Returns the target offset if syncs were issued.
    pub fn request_flush(&mut self, disk: &mut dyn Disk) -> Result<Option<u64>, StoreError> {
        let target = self.written_offset();
        let issued = self.commit_log_flush.request(disk, target);
        let issued = self.check_disk(issued)?;
        if let Some(target) = issued {
            self.flush_timestamps
                .push_back((target, self.last_store_timestamp_ms));
        }
        Ok(issued)
    }

    /// Flushes consume queues and the checkpoint (RocketMQ's FlushConsumeQueueService).
    pub fn request_logic_flush(&mut self, disk: &mut dyn Disk) -> Result<bool, StoreError> {
        self.logic_flush_generation += 1;
        let issued = self.logic_flush.request(disk, self.logic_flush_generation);
        Ok(self.check_disk(issued)?.is_some())
    }

    fn check_disk<T>(&mut self, r: Result<T, DiskError>) -> Result<T, StoreError> {
        r.map_err(|e| {
            self.state = StoreState::Failed;
            StoreError::Disk(e)
        })
    }

    /// Every sync the store is waiting for.
    pub fn outstanding_syncs(&self) -> Vec<SyncTicket> {
        let mut out: Vec<SyncTicket> = self
            .commit_log_flush
            .outstanding()
            .chain(self.logic_flush.outstanding())
            .chain(self.closing_ticket)
            .collect();
        out.sort();
        out
    }

    /// Takes the completion of a sync the store requested.
    pub fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> StoreEvent {
        if self.closing_ticket == Some(ticket) {
            self.closing_ticket = None;
            return match result {
                Ok(()) => {
                    self.state = StoreState::Closed;
                    StoreEvent::Closed
                }
                Err(e) => self.fail(e),
            };
        }
        let outcome = match self
            .commit_log_flush
            .on_sync_complete(ticket, result.clone())
        {
            SyncOutcome::NotMine => self.logic_flush.on_sync_complete(ticket, result.clone()),
            SyncOutcome::Advanced(durable) => {
                self.note_durable(disk, durable);
                SyncOutcome::Advanced(durable)
            }
            other => other,
        };
        if let Err(e) = result {
            return self.fail(e);
        }
        if outcome == SyncOutcome::NotMine {
            return StoreEvent::NotMine;
        }
        match self.state {
            StoreState::Booting if self.commit_log_flush.in_flight() == 0 => {
                self.state = StoreState::Ready;
                StoreEvent::Ready
            }
            StoreState::ShuttingDown => self.continue_shutdown(disk),
            _ => match outcome {
                SyncOutcome::Advanced(_) if self.commit_log_flush.durable() > 0 => {
                    StoreEvent::CommitLogDurable(self.commit_log_flush.durable())
                }
                _ => StoreEvent::Nothing,
            },
        }
    }

    fn fail(&mut self, e: DiskError) -> StoreEvent {
        tracing::error!(error = %e, "sync failed; store is now read-only");
        self.state = StoreState::Failed;
        StoreEvent::Failed(e)
    }

    /// Records the durable point in the checkpoint (flushed with the next logic flush).
    fn note_durable(&mut self, disk: &mut dyn Disk, durable: u64) {
        while let Some(&(target, ts)) = self.flush_timestamps.front() {
            if target > durable {
                break;
            }
            self.checkpoint.physic_msg_timestamp_ms = ts;
            self.flush_timestamps.pop_front();
        }
        self.checkpoint.logics_msg_timestamp_ms = self.checkpoint.physic_msg_timestamp_ms;
        match self.checkpoint.store(disk) {
            Ok(created) => {
                self.logic_flush.note_write(CHECKPOINT_PATH);
                if created {
                    self.logic_flush.note_dir_change("");
                }
            }
            // The checkpoint is advisory (recovery verifies the log regardless).
            Err(e) => tracing::warn!(error = %e, "checkpoint write failed"),
        }
    }

    /// Starts a clean shutdown: flush everything, then durably remove the abort marker.
    pub fn begin_shutdown(&mut self, disk: &mut dyn Disk) -> Result<StoreEvent, StoreError> {
        if !matches!(self.state, StoreState::Ready | StoreState::Booting) {
            return Err(StoreError::NotReady(self.state));
        }
        self.state = StoreState::ShuttingDown;
        self.request_flush(disk)?;
        self.request_logic_flush(disk)?;
        Ok(self.continue_shutdown(disk))
    }

    fn continue_shutdown(&mut self, disk: &mut dyn Disk) -> StoreEvent {
        if self.commit_log_flush.in_flight() > 0 || self.logic_flush.in_flight() > 0 {
            return StoreEvent::Nothing;
        }
        if self.closing_ticket.is_some() {
            return StoreEvent::Nothing;
        }
        if disk.exists(ABORT_PATH) {
            if let Err(e) = disk.delete(ABORT_PATH) {
                return self.fail(e);
            }
        }
        match disk.request_sync(super::disk::SyncTarget::Dir("")) {
            Ok(t) => {
                self.closing_ticket = Some(t);
                StoreEvent::Nothing
            }
            Err(e) => self.fail(e),
        }
    }
}

impl SyncWaiter for MessageStore {
    type Event = StoreEvent;
    fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> StoreEvent {
        MessageStore::on_sync_complete(self, disk, ticket, result)
    }
}
