//! One consume queue (`consumequeue/{topic}/{queueId}/`): 20-byte entries — commit-log
//! offset (i64), record size (i32), tag hash code (i64) — one per queue offset, in
//! fixed-size files named by their starting byte offset (reference A.3).

use super::disk::{Disk, DiskError};
use super::mapped_file::MappedFileQueue;

pub const CQ_STORE_UNIT_SIZE: u64 = 20;

/// RocketMQ's filler for slots before a queue's first real entry (`ConsumeQueue.fillPreBlank`).
pub const BLANK_ENTRY: CqEntry = CqEntry {
    commit_log_offset: 0,
    size: i32::MAX,
    tags_code: 0,
};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CqEntry {
    pub commit_log_offset: i64,
    pub size: i32,
    pub tags_code: i64,
}

impl CqEntry {
    pub fn to_bytes(self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&self.commit_log_offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.size.to_be_bytes());
        out[12..].copy_from_slice(&self.tags_code.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> CqEntry {
        CqEntry {
            commit_log_offset: i64::from_be_bytes(bytes[..8].try_into().unwrap()),
            size: i32::from_be_bytes(bytes[8..12].try_into().unwrap()),
            tags_code: i64::from_be_bytes(bytes[12..20].try_into().unwrap()),
        }
    }
}

/// The consume-queue directory of a topic's queue.
pub fn queue_dir(topic: &str, queue_id: i32) -> String {
    format!("consumequeue/{topic}/{queue_id}")
}

#[derive(Clone, Debug)]
pub struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    files: MappedFileQueue,
    /// The lowest queue offset whose entry is served (entries below it point at
    /// commit-log files that no longer exist, or are blanks).
    min_offset: u64,
    /// The next queue offset to be written (= `getMaxOffsetInQueue`).
    max_offset: u64,
}

impl ConsumeQueue {
    pub fn new(topic: &str, queue_id: i32, entries_per_file: u64) -> ConsumeQueue {
        ConsumeQueue {
            topic: topic.to_string(),
            queue_id,
            files: MappedFileQueue::new(
                queue_dir(topic, queue_id),
                entries_per_file * CQ_STORE_UNIT_SIZE,
            ),
            min_offset: 0,
            max_offset: 0,
        }
    }

    /// A queue recovery has rebuilt: `files` hold valid entries for `[min, max)`.
    pub fn recovered(
        topic: &str,
        queue_id: i32,
        files: MappedFileQueue,
        min_offset: u64,
        max_offset: u64,
    ) -> ConsumeQueue {
        debug_assert!(min_offset <= max_offset);
        ConsumeQueue {
            topic: topic.to_string(),
            queue_id,
            files,
            min_offset,
            max_offset,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }

    pub fn min_offset(&self) -> u64 {
        self.min_offset
    }

    pub fn max_offset(&self) -> u64 {
        self.max_offset
    }

    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }

    /// Writes the entry for `queue_offset`, which must be the next one. Returns the
    /// path of the file written, so the caller can track what needs a flush.
    pub fn append(
        &mut self,
        disk: &mut dyn Disk,
        queue_offset: u64,
        entry: CqEntry,
    ) -> Result<String, DiskError> {
        assert_eq!(queue_offset, self.max_offset, "queue offsets are dense");
        let byte_offset = queue_offset * CQ_STORE_UNIT_SIZE;
        let start = self.ensure_file(disk, byte_offset)?;
        let path = self.files.path_of(start);
        disk.write(&path, byte_offset - start, &entry.to_bytes())?;
        self.max_offset += 1;
        Ok(path.into_owned())
    }

    /// Makes sure a file holds `byte_offset`, creating the next one if needed. A queue
    /// whose first file starts late gets blank entries before its first real one.
    fn ensure_file(&mut self, disk: &mut dyn Disk, byte_offset: u64) -> Result<u64, DiskError> {
        if let Some(start) = self.files.file_for(byte_offset) {
            return Ok(start);
        }
        let size = self.files.file_size();
        let start = byte_offset - byte_offset % size;
        let first_file = self.files.is_empty();
        self.files.create_file(disk, start)?;
        if first_file && byte_offset > start {
            let blanks: Vec<u8> = (0..(byte_offset - start) / CQ_STORE_UNIT_SIZE)
                .flat_map(|_| BLANK_ENTRY.to_bytes())
                .collect();
            disk.write(&self.files.path_of(start), 0, &blanks)?;
        }
        Ok(start)
    }

    /// The first queue offset in `[min, max]` whose record does not end at or below
    /// `commit_log_offset`: every entry before it points at a record wholly below that
    /// commit-log offset. Entries of one queue point at increasing commit-log offsets,
    /// so this is a binary search. A blank filler or an unreadable entry counts as
    /// below: it holds no record to wait for (a pull skips it), and a queue must not
    /// stall behind a damaged entry forever.
    pub fn first_beyond(&self, disk: &dyn Disk, commit_log_offset: u64) -> u64 {
        let (mut lo, mut hi) = (self.min_offset, self.max_offset);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = match self.get(disk, mid) {
                Ok(Some(e)) if e != BLANK_ENTRY && e.commit_log_offset >= 0 && e.size >= 0 => {
                    e.commit_log_offset as u64 + e.size as u64 <= commit_log_offset
                }
                _ => true,
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The entry at `queue_offset`, if it is in `[min, max)`.
    pub fn get(&self, disk: &dyn Disk, queue_offset: u64) -> Result<Option<CqEntry>, DiskError> {
        if queue_offset < self.min_offset || queue_offset >= self.max_offset {
            return Ok(None);
        }
        let byte_offset = queue_offset * CQ_STORE_UNIT_SIZE;
        let Some(start) = self.files.file_for(byte_offset) else {
            return Ok(None);
        };
        let bytes = disk.read(
            &self.files.path_of(start),
            byte_offset - start,
            CQ_STORE_UNIT_SIZE as usize,
        )?;
        Ok(Some(CqEntry::from_bytes(&bytes)))
    }
}
