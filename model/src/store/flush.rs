//! Flush bookkeeping and group commit.
//!
//! Writes mark their file (and, for created or deleted files, their directory) dirty. A
//! flush request turns every dirty file and directory into one sync each, all belonging
//! to one *batch* whose target is the written offset at request time: one batch covers
//! every record appended before it was issued (RocketMQ's `GroupCommitService`). The
//! durable offset moves to a batch's target once that batch and every earlier one have
//! completed — a later batch did not re-sync files an earlier one still has in flight.

use std::collections::{BTreeSet, VecDeque};

use super::disk::{Disk, DiskError, SyncTarget, SyncTicket};

/// At most this many flush batches in flight; past it a request waits (returns None)
/// until one completes, so a disk that never answers cannot grow memory without bound.
pub const MAX_FLUSH_BATCHES_IN_FLIGHT: usize = 64;

#[derive(Clone, Debug)]
struct Batch {
    target: u64,
    outstanding: BTreeSet<SyncTicket>,
}

#[derive(Clone, Debug)]
pub struct FlushTracker {
    durable: u64,
    requested: u64,
    batches: VecDeque<Batch>,
    dirty_files: BTreeSet<String>,
    dirty_dirs: BTreeSet<String>,
    failed: Option<DiskError>,
}

/// What a completed sync did to a tracker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncOutcome {
    /// Not this tracker's ticket.
    NotMine,
    /// Counted; the durable point did not move.
    Pending,
    /// The durable point moved to this target.
    Advanced(u64),
}

impl FlushTracker {
    /// A tracker whose data up to `durable` is already durable.
    pub fn new(durable: u64) -> FlushTracker {
        FlushTracker {
            durable,
            requested: durable,
            batches: VecDeque::new(),
            dirty_files: BTreeSet::new(),
            dirty_dirs: BTreeSet::new(),
            failed: None,
        }
    }

    pub fn note_write(&mut self, path: &str) {
        if !self.dirty_files.contains(path) {
            self.dirty_files.insert(path.to_string());
        }
    }

    pub fn note_dir_change(&mut self, dir: &str) {
        if !self.dirty_dirs.contains(dir) {
            self.dirty_dirs.insert(dir.to_string());
        }
    }

    /// Everything up to this point survives a power cut.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// The highest target any flush has been requested for.
    pub fn requested(&self) -> u64 {
        self.requested
    }

    pub fn in_flight(&self) -> usize {
        self.batches.len()
    }

    pub fn failure(&self) -> Option<&DiskError> {
        self.failed.as_ref()
    }

    /// Requests syncs of everything dirty, to make `target` durable. Returns the
    /// target if a batch was issued; None if nothing new needs syncing, too many
    /// batches are in flight, or the disk has failed.
    pub fn request(&mut self, disk: &mut dyn Disk, target: u64) -> Result<Option<u64>, DiskError> {
        if self.failed.is_some()
            || self.batches.len() >= MAX_FLUSH_BATCHES_IN_FLIGHT
            || (target <= self.requested
                && self.dirty_files.is_empty()
                && self.dirty_dirs.is_empty())
        {
            return Ok(None);
        }
        let mut outstanding = BTreeSet::new();
        // Files first, then directories: a new file's entry is only useful once its
        // contents are durable too, and both belong to the same batch anyway.
        for path in std::mem::take(&mut self.dirty_files) {
            match disk.request_sync(SyncTarget::File(&path)) {
                Ok(t) => {
                    outstanding.insert(t);
                }
                // Deleted since it was written: nothing left to make durable.
                Err(DiskError::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        for dir in std::mem::take(&mut self.dirty_dirs) {
            match disk.request_sync(SyncTarget::Dir(&dir)) {
                Ok(t) => {
                    outstanding.insert(t);
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        let target = target.max(self.requested);
        self.requested = target;
        self.batches.push_back(Batch {
            target,
            outstanding,
        });
        self.pop_completed();
        Ok(Some(target))
    }

    fn fail(&mut self, e: DiskError) -> DiskError {
        self.failed = Some(e.clone());
        e
    }

    /// Takes a sync completion. A failed sync fails the tracker for good: what it
    /// covered may or may not be on the media, so nothing after it can be promised.
    pub fn on_sync_complete(
        &mut self,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> SyncOutcome {
        let Some(batch) = self
            .batches
            .iter_mut()
            .find(|b| b.outstanding.contains(&ticket))
        else {
            return SyncOutcome::NotMine;
        };
        batch.outstanding.remove(&ticket);
        if let Err(e) = result {
            self.fail(e);
            return SyncOutcome::Pending;
        }
        let before = self.durable;
        self.pop_completed();
        if self.durable > before {
            SyncOutcome::Advanced(self.durable)
        } else {
            SyncOutcome::Pending
        }
    }

    fn pop_completed(&mut self) {
        if self.failed.is_some() {
            return;
        }
        while let Some(front) = self.batches.front() {
            if !front.outstanding.is_empty() {
                break;
            }
            debug_assert!(front.target >= self.durable);
            self.durable = front.target;
            self.batches.pop_front();
        }
        debug_assert!(self.durable <= self.requested);
    }

    /// Every ticket still outstanding, for a driver that wants to know what it owes.
    pub fn outstanding(&self) -> impl Iterator<Item = SyncTicket> + '_ {
        self.batches
            .iter()
            .flat_map(|b| b.outstanding.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemDisk;

    #[test]
    fn durable_point_waits_for_earlier_batches() {
        let mut disk = MemDisk::new();
        disk.create("a").unwrap();
        disk.create("b").unwrap();
        let mut t = FlushTracker::new(0);
        t.note_write("a");
        assert_eq!(t.request(&mut disk, 100).unwrap(), Some(100));
        let first = disk.take_requested_syncs();
        t.note_write("b");
        assert_eq!(t.request(&mut disk, 200).unwrap(), Some(200));
        let second = disk.take_requested_syncs();
        // The later batch completes first: nothing is durable until the earlier one does.
        assert_eq!(t.on_sync_complete(second[0], Ok(())), SyncOutcome::Pending);
        assert_eq!(t.durable(), 0);
        assert_eq!(
            t.on_sync_complete(first[0], Ok(())),
            SyncOutcome::Advanced(200)
        );
        assert_eq!(
            t.on_sync_complete(SyncTicket(999), Ok(())),
            SyncOutcome::NotMine
        );
    }

    #[test]
    fn nothing_dirty_means_no_batch_and_failure_sticks() {
        let mut disk = MemDisk::new();
        disk.create("a").unwrap();
        let mut t = FlushTracker::new(10);
        assert_eq!(t.request(&mut disk, 10).unwrap(), None);
        t.note_write("a");
        t.note_dir_change("");
        t.request(&mut disk, 20).unwrap();
        let tickets = disk.take_requested_syncs();
        assert_eq!(tickets.len(), 2);
        let err = DiskError::Io {
            path: "a".into(),
            detail: "EIO".into(),
        };
        t.on_sync_complete(tickets[0], Err(err));
        t.on_sync_complete(tickets[1], Ok(()));
        assert_eq!(t.durable(), 10);
        assert!(t.failure().is_some());
        t.note_write("a");
        assert_eq!(t.request(&mut disk, 30).unwrap(), None);
    }

    #[test]
    fn in_flight_batches_are_bounded() {
        let mut disk = MemDisk::new();
        disk.create("a").unwrap();
        let mut t = FlushTracker::new(0);
        for i in 0..MAX_FLUSH_BATCHES_IN_FLIGHT as u64 {
            t.note_write("a");
            assert!(t.request(&mut disk, i + 1).unwrap().is_some());
        }
        t.note_write("a");
        assert_eq!(t.request(&mut disk, 1000).unwrap(), None);
    }
}
