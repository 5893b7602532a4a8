//! Syncs: what a requested fsync of a file or a directory will make durable, and its
//! completion, which only the driver decides.

use super::{page_range, InodeId, Lie, SimDisk, PAGE_SIZE_BYTES, SECTORS_PER_PAGE};
use rmq_model::store::disk::{DiskError, SyncTicket};

/// What a pending sync will make durable, captured when it was requested.
#[derive(Clone, Debug)]
pub(super) enum SyncWork {
    File {
        inode: InodeId,
        len_bytes: u64,
        /// The dirty pages, ascending, and where each one's written bytes end in
        /// `bytes` (a page past the end has none; the rest of a page up to `len_bytes`
        /// was the cache's zero tail).
        pages: Vec<(u64, usize)>,
        /// The pages' written bytes back to back: one buffer per sync rather than one
        /// per page.
        bytes: Vec<u8>,
        /// The inode's `cache_version` when the pages were taken.
        cache_version: u64,
    },
    Dir {
        dir: String,
        /// Ops of `dir` with a sequence number below this were journaled before the request.
        end_op_seq: u64,
    },
}

impl SyncWork {
    fn same_target(&self, other: &SyncWork) -> bool {
        match (self, other) {
            (SyncWork::File { inode: a, .. }, SyncWork::File { inode: b, .. }) => a == b,
            (SyncWork::Dir { dir: a, .. }, SyncWork::Dir { dir: b, .. }) => a == b,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
pub(super) struct PendingSync {
    pub(super) ticket: SyncTicket,
    pub(super) path: String,
    pub(super) work: SyncWork,
}

impl SimDisk {
    /// Requested syncs not yet completed, oldest first.
    pub fn pending_syncs(&self) -> Vec<SyncTicket> {
        self.pending.iter().map(|p| p.ticket).collect()
    }

    /// The last ticket this disk (or the disk it replaced) handed out, if any: tickets
    /// only grow, so no ticket pending or to come from past requests is newer.
    pub fn newest_ticket(&self) -> Option<SyncTicket> {
        self.next_ticket.checked_sub(1).map(SyncTicket)
    }

    /// Pending tickets newer than `after` (all of them for `None`), oldest first.
    pub fn pending_syncs_after(
        &self,
        after: Option<SyncTicket>,
    ) -> impl Iterator<Item = SyncTicket> + '_ {
        // Tickets grow in request order, so the newer ones are a suffix.
        let newer = self
            .pending
            .partition_point(|p| after.is_some_and(|last| p.ticket <= last));
        self.pending.range(newer..).map(|p| p.ticket)
    }

    pub fn is_pending(&self, ticket: SyncTicket) -> bool {
        self.pending.iter().any(|p| p.ticket == ticket)
    }

    /// Completes `ticket`: what it captured at request time becomes durable. Syncs of
    /// one file (or one directory) must complete in request order, or the durable image
    /// would go back in time; completing them out of order is a driver bug.
    pub fn complete_sync(&mut self, ticket: SyncTicket) -> Result<(), DiskError> {
        let index = self.pending.iter().position(|p| p.ticket == ticket);
        let index = index.unwrap_or_else(|| panic!("{ticket} is not pending"));
        let sync = self
            .pending
            .remove(index)
            .expect("index came from position");
        assert!(
            !self
                .pending
                .range(..index)
                .any(|p| p.work.same_target(&sync.work)),
            "{ticket} completed before an older sync of {}",
            sync.path
        );
        if self.lost {
            self.stats.syncs_failed += 1;
            return Err(DiskError::io(&sync.path, "disk lost"));
        }
        self.stats.syncs_completed += 1;
        match (&sync.work, self.lie) {
            (SyncWork::File { .. }, Lie::FileSyncPersistsNothing)
            | (SyncWork::Dir { .. }, Lie::DirSyncPersistsNothing) => return Ok(()),
            _ => {}
        }
        match sync.work {
            SyncWork::File {
                inode,
                len_bytes,
                pages,
                bytes,
                cache_version,
            } => {
                // Deleted and no longer reachable: nothing left to make durable.
                let Some(inode) = self.inodes.get_mut(&inode) else {
                    return Ok(());
                };
                let len = len_bytes as usize;
                inode.durable.reserve(len);
                let mut start = 0;
                for &(page, end) in &pages {
                    let page_len = page_range(page, len).len();
                    let at = (page * PAGE_SIZE_BYTES) as usize;
                    inode.durable.write_padded(at, &bytes[start..end], page_len);
                    start = end;
                    // The drive remaps a bad sector when it is written.
                    inode.heal_sectors(page * SECTORS_PER_PAGE..(page + 1) * SECTORS_PER_PAGE);
                }
                // Last: a dirty page past the end (its bytes are empty) still moved the
                // end out to its own start.
                inode.durable.set_len(len);
                // The cache unchanged since the request: it still holds the bytes just
                // written to the media, at the same length, so every page written is
                // clean without comparing it.
                let cache_unchanged = inode.cache_version == cache_version;
                for &(page, _) in &pages {
                    // A page can differ again even if it was clean a moment ago: an older
                    // snapshot landing over a page that rot changed on media and in cache
                    // after a newer sync had cleaned it. Whatever differs is dirty.
                    if cache_unchanged || inode.page_is_clean(page) {
                        inode.dirty_pages.remove(&page);
                    } else {
                        inode.dirty_pages.insert(page);
                    }
                }
            }
            SyncWork::Dir { dir, end_op_seq } => {
                while let Some(journal) = self.journals.get_mut(&dir) {
                    match journal.front() {
                        Some((seq, _)) if *seq < end_op_seq => {
                            let (_, op) = journal.pop_front().expect("front exists");
                            self.commit_op(op);
                        }
                        _ => break,
                    }
                }
                self.remove_journal_if_empty(&dir);
            }
        }
        Ok(())
    }

    /// Completes the oldest pending sync, the simple in-order driver.
    pub fn complete_next(&mut self) -> Option<(SyncTicket, Result<(), DiskError>)> {
        let ticket = self.pending.front()?.ticket;
        Some((ticket, self.complete_sync(ticket)))
    }
}
