//! The simulator's disk: every file is an inode with a page cache (what reads see) and
//! a durable image (what survives power loss), and every fault is drawn from the
//! caller's seeded rng, so a run replays byte for byte.
//!
//! Durability follows the [`Disk`](rmq_model::store::disk::Disk) contract: a file sync makes durable what the cache
//! held when it was *requested*; a directory sync makes durable the directory
//! operations journaled before it was requested. Only the driver decides when a sync
//! completes ([`SimDisk::complete_sync`]) and when a crash happens, and a crash decides
//! (from the rng) which of the not-yet-durable writes reached the media anyway.
//!
//! Here: inodes, directory journals and the disk's own bookkeeping. `image.rs` holds
//! an inode's bytes (a zero tail costs no memory), `files.rs` is the
//! `Disk` contract the store calls, `sync.rs` what a
//! sync makes durable, `crash.rs` what a crash leaves, `damage.rs` bit rot, latent
//! sector errors and a lost disk.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Range;

use rmq_model::store::disk::{parent_dir, DiskError};

use crate::hasher::FastMap;

mod crash;
mod damage;
mod files;
mod image;
mod names;
mod sync;

pub use crash::CrashKind;
pub use damage::Damage;
use image::Image;
use names::Names;
use sync::{PendingSync, SyncWork};

/// The unit in which the OS writes back dirty data: a crash keeps or loses whole pages.
pub const PAGE_SIZE_BYTES: u64 = 4096;
/// The unit the drive writes atomically: a power cut may tear a page at these seams.
pub const SECTOR_SIZE_BYTES: u64 = 512;
const SECTORS_PER_PAGE: u64 = PAGE_SIZE_BYTES / SECTOR_SIZE_BYTES;
/// Like EFBIG: a wild offset becomes an error instead of an allocation of the whole
/// address space.
pub const MAX_FILE_SIZE_BYTES: u64 = 1 << 31;
/// Directory operations one directory may hold unsynced before the filesystem commits
/// the oldest on its own, as a journaling filesystem does every few seconds.
pub const MAX_PENDING_DIR_OPS: usize = 4096;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct InodeId(u64);

#[derive(Clone, Debug, Default)]
struct Inode {
    cache: Image,
    durable: Image,
    /// A superset of the pages where `cache` differs from `durable`, so that syncs and
    /// crashes cost O(dirty pages) rather than O(file size).
    dirty_pages: BTreeSet<u64>,
    /// Media defects: reads touching these sectors fail until a write covers them.
    latent_error_sectors: BTreeSet<u64>,
    /// Names (cached or durable) and journaled ops that refer to this inode. At zero
    /// nothing can ever reach it again, not even a crash, so it is dropped.
    refs: u32,
    /// Bumped at every change of `cache`: a sync completing with the version it was
    /// requested at knows the media now holds what the cache does on its pages.
    cache_version: u64,
}

/// The byte range of `page` within a file of `len` bytes (empty past the end).
fn page_range(page: u64, len: usize) -> Range<usize> {
    let start = (page * PAGE_SIZE_BYTES).min(len as u64) as usize;
    let end = ((page + 1) * PAGE_SIZE_BYTES).min(len as u64) as usize;
    start..end
}

fn page_of(image: &Image, page: u64) -> Cow<'_, [u8]> {
    image.get(page_range(page, image.len()))
}

impl Inode {
    /// Sectors written to the media are remapped by the drive: readable again.
    fn heal_sectors(&mut self, sectors: std::ops::Range<u64>) {
        if self.latent_error_sectors.is_empty() {
            return; // the common case, at every page a sync writes
        }
        let healed: Vec<u64> = self.latent_error_sectors.range(sectors).copied().collect();
        for sector in healed {
            self.latent_error_sectors.remove(&sector);
        }
    }

    /// Marks every page holding a byte in `start..end` as possibly differing.
    fn mark_dirty(&mut self, start: u64, end: u64) {
        if start < end {
            let pages = start / PAGE_SIZE_BYTES..end.div_ceil(PAGE_SIZE_BYTES);
            self.dirty_pages.extend(pages);
        }
    }

    fn page_is_clean(&self, page: u64) -> bool {
        let cached = page_range(page, self.cache.len());
        let durable = page_range(page, self.durable.len());
        self.cache.same_bytes(cached, &self.durable, durable)
    }
}

/// One journaled directory operation, replayed on the durable names in order.
#[derive(Clone, Debug)]
enum DirOp {
    Create {
        path: String,
        inode: InodeId,
    },
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
        inode: InodeId,
    },
}

impl DirOp {
    fn inode(&self) -> Option<InodeId> {
        match self {
            DirOp::Create { inode, .. } | DirOp::Rename { inode, .. } => Some(*inode),
            DirOp::Delete { .. } => None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimDiskStats {
    pub syncs_requested: u64,
    pub syncs_completed: u64,
    pub syncs_failed: u64,
    pub process_crashes: u64,
    pub os_crashes: u64,
    pub power_cuts: u64,
    /// Dirty pages that reached the media at a crash anyway.
    pub pages_persisted_at_crash: u64,
    pub pages_lost_at_crash: u64,
    /// Pages that reached the media at a power cut with some sectors new, some old.
    pub pages_torn: u64,
    pub dir_ops_persisted_at_crash: u64,
    pub dir_ops_lost_at_crash: u64,
    pub dir_ops_committed_by_fs: u64,
    pub bits_flipped: u64,
    pub latent_errors_added: u64,
    pub disks_lost: u64,
}

#[derive(Clone, Default)]
pub struct SimDisk {
    /// Hashed: every read and write finds its inode here. A crash, whose coins are
    /// drawn inode by inode, walks them in id order.
    inodes: FastMap<InodeId, Inode>,
    /// What list, exists and read see.
    cache_names: Names,
    /// What a crash leaves.
    durable_names: BTreeMap<String, InodeId>,
    /// Per directory, the ops not yet durable, oldest first, with a global sequence
    /// number so a directory sync knows which ops predate it.
    journals: BTreeMap<String, VecDeque<(u64, DirOp)>>,
    next_op_seq: u64,
    next_inode: u64,
    next_ticket: u64,
    pending: VecDeque<PendingSync>,
    lost: bool,
    lie: Lie,
    stats: SimDiskStats,
}

/// A deliberately broken disk, for proving that the checks catch a store whose
/// durability is not real. `Lie::None` is the honest disk.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Lie {
    #[default]
    None,
    /// File syncs report success but persist nothing (a drive that acks writes it only
    /// cached, with write-back cache and no power protection).
    FileSyncPersistsNothing,
    /// Directory syncs report success but commit no directory operation.
    DirSyncPersistsNothing,
}

impl fmt::Debug for SimDisk {
    // The byte images would drown any assertion message; a summary is what helps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimDisk")
            .field("files", &self.cache_names.len())
            .field("durable_files", &self.durable_names.len())
            .field("pending_syncs", &self.pending.len())
            .field("lost", &self.lost)
            .finish_non_exhaustive()
    }
}

impl SimDisk {
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Turns this disk into a liar (see [`Lie`]).
    pub fn set_lie(&mut self, lie: Lie) {
        self.lie = lie;
    }

    pub fn stats(&self) -> &SimDiskStats {
        &self.stats
    }

    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// The durable image of the file the media's directory names `path`.
    pub fn durable_bytes(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        let id = self.durable_names.get(path)?;
        Some(self.inodes[id].durable.bytes())
    }

    /// What reads of `path` see now.
    pub fn cache_bytes(&self, path: &str) -> Option<Cow<'_, [u8]>> {
        let id = self.cache_names.get(path)?;
        Some(self.inodes[id].cache.bytes())
    }

    /// The files that would exist after a crash if no pending op reached the media.
    pub fn durable_paths(&self) -> impl Iterator<Item = &str> {
        self.durable_names.keys().map(String::as_str)
    }

    /// Checks the model's own bookkeeping; O(total file size), so for tests and for
    /// crash time, when recovery reads every file anyway.
    pub fn check_invariants(&self) {
        let mut refs: BTreeMap<InodeId, u32> = BTreeMap::new();
        let journaled = self
            .journals
            .values()
            .flatten()
            .filter_map(|(_, op)| op.inode());
        let named = self.cache_names.values().chain(self.durable_names.values());
        for id in named.copied().chain(journaled) {
            *refs.entry(id).or_default() += 1;
        }
        assert_eq!(
            refs.len(),
            self.inodes.len(),
            "live inodes != referenced inodes"
        );
        for (id, inode) in &self.inodes {
            assert_eq!(refs.get(id), Some(&inode.refs), "refcount of {id:?}");
            let len = inode.cache.len().max(inode.durable.len()) as u64;
            for page in 0..len.div_ceil(PAGE_SIZE_BYTES) {
                if !inode.dirty_pages.contains(&page) {
                    assert!(inode.page_is_clean(page), "{id:?} page {page} differs but is clean (cache {} bytes, durable {} bytes, first difference at {:?})",
                        inode.cache.len(), inode.durable.len(),
                        page_of(&inode.cache, page).iter().zip(page_of(&inode.durable, page).iter()).position(|(a, b)| a != b).map(|i| page * PAGE_SIZE_BYTES + i as u64));
                }
            }
        }
        if self.lost {
            assert!(self.inodes.is_empty());
        }
    }

    fn check_alive(&self, path: &str) -> Result<(), DiskError> {
        if self.lost {
            return Err(DiskError::io(path, "disk lost"));
        }
        Ok(())
    }

    fn inode_of(&self, path: &str) -> Result<InodeId, DiskError> {
        self.check_alive(path)?;
        let id = self.cache_names.get(path).copied();
        id.ok_or_else(|| DiskError::not_found(path))
    }

    fn add_ref(&mut self, id: InodeId) {
        self.inodes
            .get_mut(&id)
            .expect("referenced inode exists")
            .refs += 1;
    }

    fn drop_ref(&mut self, id: InodeId) {
        let inode = self.inodes.get_mut(&id).expect("referenced inode exists");
        inode.refs -= 1;
        if inode.refs == 0 {
            self.inodes.remove(&id);
        }
    }

    fn journal(&mut self, path: &str, op: DirOp) {
        if let Some(id) = op.inode() {
            self.add_ref(id);
        }
        let dir = parent_dir(path).to_string();
        let journal = self.journals.entry(dir.clone()).or_default();
        journal.push_back((self.next_op_seq, op));
        self.next_op_seq += 1;
        if journal.len() > MAX_PENDING_DIR_OPS {
            let (_, oldest) = journal.pop_front().expect("over the bound, so not empty");
            self.stats.dir_ops_committed_by_fs += 1;
            self.commit_op(oldest);
        }
    }

    fn remove_journal_if_empty(&mut self, dir: &str) {
        if self.journals.get(dir).is_some_and(VecDeque::is_empty) {
            self.journals.remove(dir);
        }
    }

    fn commit_op(&mut self, op: DirOp) {
        self.apply_durable(&op);
        self.retire_op(op);
    }

    /// Replays one op on the durable names. References are added before they are
    /// dropped so that an inode moving between names never touches zero.
    fn apply_durable(&mut self, op: &DirOp) {
        match op {
            DirOp::Create { path, inode } => {
                self.add_ref(*inode);
                if let Some(old) = self.durable_names.insert(path.clone(), *inode) {
                    self.drop_ref(old);
                }
            }
            DirOp::Delete { path } => {
                if let Some(old) = self.durable_names.remove(path) {
                    self.drop_ref(old);
                }
            }
            DirOp::Rename { from, to, inode } => {
                self.add_ref(*inode);
                let replaced = self.durable_names.insert(to.clone(), *inode);
                let moved = self.durable_names.remove(from);
                for old in replaced.into_iter().chain(moved) {
                    self.drop_ref(old);
                }
            }
        }
    }

    /// The op leaves the journal (applied or lost) and releases its inode.
    fn retire_op(&mut self, op: DirOp) {
        if let Some(id) = op.inode() {
            self.drop_ref(id);
        }
    }

    fn check_size(path: &str, len_bytes: u64) -> Result<(), DiskError> {
        if len_bytes > MAX_FILE_SIZE_BYTES {
            return Err(DiskError::io(
                path,
                format!("file too large: {len_bytes} bytes"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
