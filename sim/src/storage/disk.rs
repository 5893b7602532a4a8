//! The simulator's disk: every file is an inode with a page cache (what reads see) and
//! a durable image (what survives power loss), and every fault is drawn from the
//! caller's seeded rng, so a run replays byte for byte.
//!
//! Durability follows the [`Disk`] contract: a file sync makes durable what the cache
//! held when it was *requested*; a directory sync makes durable the directory
//! operations journaled before it was requested. Only the driver decides when a sync
//! completes ([`SimDisk::complete_sync`]) and when a crash happens, and a crash decides
//! (from the rng) which of the not-yet-durable writes reached the media anyway.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Range;

use rand::Rng;
use rmq_model::store::disk::{parent_dir, DirEntry, Disk, DiskError, SyncTarget, SyncTicket};
use rmq_model::store::mem_disk::{list_children, slice_of, write_into};

/// What a crash takes from the disk, named as the fault is named everywhere (scenario
/// kind, world fault, history `fault` kind): `process_crash`, `os_crash`, `power_cut`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// Process memory lost; the page cache survives.
    ProcessCrash,
    /// Page cache lost: each dirty page reached the media or not.
    OsCrash,
    /// As an OS crash, and pages that reached the media may be torn at sectors.
    PowerCut,
}

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

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InodeId(u64);

#[derive(Clone, Debug, Default)]
struct Inode {
    cache: Vec<u8>,
    durable: Vec<u8>,
    /// A superset of the pages where `cache` differs from `durable`, so that syncs and
    /// crashes cost O(dirty pages) rather than O(file size).
    dirty_pages: BTreeSet<u64>,
    /// Media defects: reads touching these sectors fail until a write covers them.
    latent_error_sectors: BTreeSet<u64>,
    /// Names (cached or durable) and journaled ops that refer to this inode. At zero
    /// nothing can ever reach it again, not even a crash, so it is dropped.
    refs: u32,
}

/// The byte range of `page` within a file of `len` bytes (empty past the end).
fn page_range(page: u64, len: usize) -> Range<usize> {
    let start = (page * PAGE_SIZE_BYTES).min(len as u64) as usize;
    let end = ((page + 1) * PAGE_SIZE_BYTES).min(len as u64) as usize;
    start..end
}

fn page_of(bytes: &[u8], page: u64) -> &[u8] {
    &bytes[page_range(page, bytes.len())]
}

impl Inode {
    /// Sectors written to the media are remapped by the drive: readable again.
    fn heal_sectors(&mut self, sectors: std::ops::Range<u64>) {
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
        page_of(&self.cache, page) == page_of(&self.durable, page)
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

/// What a pending sync will make durable, captured when it was requested.
#[derive(Clone, Debug)]
enum SyncWork {
    File {
        inode: InodeId,
        len_bytes: u64,
        pages: Vec<(u64, Vec<u8>)>,
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
struct PendingSync {
    ticket: SyncTicket,
    path: String,
    work: SyncWork,
}

/// What a bit flip damaged, for the fault log and the checker's allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub path: String,
    pub byte_offset: u64,
    pub bit: u8,
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
    inodes: BTreeMap<InodeId, Inode>,
    /// What list, exists and read see.
    cache_names: BTreeMap<String, InodeId>,
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
    pub fn durable_bytes(&self, path: &str) -> Option<&[u8]> {
        let id = self.durable_names.get(path)?;
        Some(&self.inodes[id].durable)
    }

    /// What reads of `path` see now.
    pub fn cache_bytes(&self, path: &str) -> Option<&[u8]> {
        let id = self.cache_names.get(path)?;
        Some(&self.inodes[id].cache)
    }

    /// The files that would exist after a crash if no pending op reached the media.
    pub fn durable_paths(&self) -> impl Iterator<Item = &str> {
        self.durable_names.keys().map(String::as_str)
    }

    /// Requested syncs not yet completed, oldest first.
    pub fn pending_syncs(&self) -> Vec<SyncTicket> {
        self.pending.iter().map(|p| p.ticket).collect()
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
            } => {
                // Deleted and no longer reachable: nothing left to make durable.
                let Some(inode) = self.inodes.get_mut(&inode) else {
                    return Ok(());
                };
                // Room for the whole media image first: growing it page by page would
                // copy the file at every reallocation.
                let len = len_bytes as usize;
                inode
                    .durable
                    .reserve(len.saturating_sub(inode.durable.len()));
                for (page, bytes) in &pages {
                    write_into(&mut inode.durable, page * PAGE_SIZE_BYTES, bytes);
                    // The drive remaps a bad sector when it is written.
                    inode.heal_sectors(page * SECTORS_PER_PAGE..(page + 1) * SECTORS_PER_PAGE);
                }
                // Last: a dirty page past the end (its bytes are empty) still moved the
                // end out to its own start in `write_into`.
                inode.durable.resize(len, 0);
                for (page, _) in &pages {
                    // A page can differ again even if it was clean a moment ago: an older
                    // snapshot landing over a page that rot changed on media and in cache
                    // after a newer sync had cleaned it. Whatever differs is dirty.
                    if inode.page_is_clean(*page) {
                        inode.dirty_pages.remove(page);
                    } else {
                        inode.dirty_pages.insert(*page);
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

    /// A crash of `kind`: [`SimDisk::crash_process`], [`SimDisk::crash_os`] or
    /// [`SimDisk::power_cut`].
    pub fn crash(&mut self, kind: CrashKind, rng: &mut impl Rng) {
        match kind {
            CrashKind::ProcessCrash => self.crash_process(),
            CrashKind::OsCrash => self.crash_os(rng),
            CrashKind::PowerCut => self.power_cut(rng),
        }
    }

    /// The process died; the OS and its page cache did not, so nothing on disk changes.
    /// Pending syncs are forgotten: their completions can no longer be delivered.
    pub fn crash_process(&mut self) {
        self.stats.process_crashes += 1;
        self.pending.clear();
    }

    /// The OS died: the page cache is lost, each dirty page reached the media whole or
    /// not at all, and each directory journal persisted a prefix of its ops.
    pub fn crash_os(&mut self, rng: &mut impl Rng) {
        self.stats.os_crashes += 1;
        self.lose_page_cache(rng, false);
    }

    /// As [`SimDisk::crash_os`], but a page that reached the media may be torn: each
    /// of its sectors independently holds the new or the old content.
    pub fn power_cut(&mut self, rng: &mut impl Rng) {
        self.stats.power_cuts += 1;
        self.lose_page_cache(rng, true);
    }

    fn lose_page_cache(&mut self, rng: &mut impl Rng, tear_sectors: bool) {
        self.pending.clear();
        // Names first: only inodes that keep a durable name are worth a coin per page.
        // Journaling filesystems commit in order, so each directory keeps a prefix.
        for (_dir, ops) in std::mem::take(&mut self.journals) {
            let persisted = rng.random_range(0..=ops.len());
            self.stats.dir_ops_persisted_at_crash += persisted as u64;
            self.stats.dir_ops_lost_at_crash += (ops.len() - persisted) as u64;
            for (i, (_, op)) in ops.into_iter().enumerate() {
                if i < persisted {
                    self.apply_durable(&op);
                }
                self.retire_op(op);
            }
        }
        self.cache_names = self.durable_names.clone();
        let named: BTreeSet<InodeId> = self.durable_names.values().copied().collect();
        self.inodes.retain(|id, _| named.contains(id));
        for inode in self.inodes.values_mut() {
            inode.refs = 2; // its cache name and its durable name
            let cache_len = inode.cache.len();
            let durable_len = if cache_len != inode.durable.len() && rng.random_bool(0.5) {
                cache_len
            } else {
                inode.durable.len()
            };
            let dirty_pages = std::mem::take(&mut inode.dirty_pages);
            for &page in &dirty_pages {
                if !rng.random_bool(0.5) {
                    self.stats.pages_lost_at_crash += 1;
                    continue;
                }
                self.stats.pages_persisted_at_crash += 1;
                if !tear_sectors {
                    let Inode { cache, durable, .. } = &mut *inode;
                    write_into(durable, page * PAGE_SIZE_BYTES, page_of(cache, page));
                    inode.heal_sectors(page * SECTORS_PER_PAGE..(page + 1) * SECTORS_PER_PAGE);
                    continue;
                }
                let Inode {
                    cache,
                    durable,
                    latent_error_sectors,
                    ..
                } = &mut *inode;
                let mut new_sectors = 0;
                for sector in 0..SECTORS_PER_PAGE {
                    if rng.random_bool(0.5) {
                        new_sectors += 1;
                        let start = page * PAGE_SIZE_BYTES + sector * SECTOR_SIZE_BYTES;
                        let end = (start + SECTOR_SIZE_BYTES).min(cache.len() as u64);
                        if start < end {
                            write_into(durable, start, &cache[start as usize..end as usize]);
                        }
                        // That sector was rewritten, so the drive remapped it.
                        latent_error_sectors.remove(&(page * SECTORS_PER_PAGE + sector));
                    }
                }
                if new_sectors != 0 && new_sectors != SECTORS_PER_PAGE {
                    self.stats.pages_torn += 1;
                }
            }
            inode.durable.resize(durable_len, 0);
            // The cache re-reads the media; only dirty pages can differ, so copy those.
            inode.cache.resize(durable_len, 0);
            for &page in &dirty_pages {
                let range = page_range(page, durable_len);
                inode.cache[range.clone()].copy_from_slice(&inode.durable[range]);
            }
        }
        #[cfg(debug_assertions)]
        self.check_invariants();
    }

    /// Flips one bit of the media under `path` (the visible file, else the durable
    /// name). A clean page is mirrored into the cache, which would re-read the media.
    pub fn flip_bit(&mut self, path: &str, byte_offset: u64, bit: u8) -> Result<Damage, DiskError> {
        assert!(bit < 8, "bit {bit} is not in a byte");
        self.check_alive(path)?;
        let id = self
            .cache_names
            .get(path)
            .or_else(|| self.durable_names.get(path));
        let id = *id.ok_or_else(|| DiskError::not_found(path))?;
        let durable_len = self.inodes[&id].durable.len() as u64;
        if byte_offset >= durable_len {
            return Err(DiskError::PastEnd {
                path: path.to_string(),
                offset: byte_offset,
                len: 1,
                file_len: durable_len,
            });
        }
        self.flip_inode_bit(id, byte_offset, bit);
        Ok(Damage {
            path: path.to_string(),
            byte_offset,
            bit,
        })
    }

    /// Bit rot: one bit in a random sector of a random durably named, non-empty file
    /// whose path starts with `path_prefix`. Picks files uniformly rather than by size,
    /// so small critical files (checkpoints, configs) get hit as often as big logs.
    pub fn rot(&mut self, rng: &mut impl Rng, path_prefix: &str) -> Option<Damage> {
        if self.lost {
            return None;
        }
        let candidates: Vec<(&String, &InodeId)> = self
            .durable_names
            .iter()
            .filter(|(path, id)| {
                path.starts_with(path_prefix) && !self.inodes[id].durable.is_empty()
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let (path, &id) = candidates[rng.random_range(0..candidates.len())];
        let path = path.clone();
        let len_bytes = self.inodes[&id].durable.len() as u64;
        let sector = rng.random_range(0..len_bytes.div_ceil(SECTOR_SIZE_BYTES));
        let sector_start = sector * SECTOR_SIZE_BYTES;
        let sector_end = (sector_start + SECTOR_SIZE_BYTES).min(len_bytes);
        let byte_offset = rng.random_range(sector_start..sector_end);
        let bit = rng.random_range(0..8u8);
        self.flip_inode_bit(id, byte_offset, bit);
        Some(Damage {
            path,
            byte_offset,
            bit,
        })
    }

    fn flip_inode_bit(&mut self, id: InodeId, byte_offset: u64, bit: u8) {
        self.stats.bits_flipped += 1;
        let inode = self.inodes.get_mut(&id).expect("caller resolved the inode");
        inode.durable[byte_offset as usize] ^= 1 << bit;
        if !inode.dirty_pages.contains(&(byte_offset / PAGE_SIZE_BYTES)) {
            // A clean page's cache equals the media, so it holds this byte too.
            inode.cache[byte_offset as usize] ^= 1 << bit;
        }
    }

    /// Makes reads touching `sector_index` of `path` fail until a write covers it.
    pub fn add_latent_error(&mut self, path: &str, sector_index: u64) -> Result<(), DiskError> {
        let id = self.inode_of(path)?;
        self.stats.latent_errors_added += 1;
        let inode = self.inodes.get_mut(&id).expect("named inodes exist");
        inode.latent_error_sectors.insert(sector_index);
        Ok(())
    }

    /// The disk is gone for good: every file, and every later operation fails.
    pub fn lose_disk(&mut self) {
        self.stats.disks_lost += 1;
        self.lost = true;
        self.inodes.clear();
        self.cache_names.clear();
        self.durable_names.clear();
        self.journals.clear();
        // Pending syncs stay so that their completions can report the failure.
    }

    /// A new, empty disk in the same slot. Tickets keep counting so that none repeats.
    pub fn replace_disk(&mut self) {
        *self = SimDisk {
            next_op_seq: self.next_op_seq,
            next_inode: self.next_inode,
            next_ticket: self.next_ticket,
            stats: std::mem::take(&mut self.stats),
            ..SimDisk::default()
        };
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
                        page_of(&inode.cache, page).iter().zip(page_of(&inode.durable, page)).position(|(a, b)| a != b).map(|i| page * PAGE_SIZE_BYTES + i as u64));
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

impl Disk for SimDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.check_alive(path)?;
        if self.cache_names.contains_key(path) {
            return Err(DiskError::AlreadyExists {
                path: path.to_string(),
            });
        }
        let id = InodeId(self.next_inode);
        self.next_inode += 1;
        self.inodes.insert(id, Inode::default());
        self.cache_names.insert(path.to_string(), id);
        self.add_ref(id);
        let op = DirOp::Create {
            path: path.to_string(),
            inode: id,
        };
        self.journal(path, op);
        Ok(())
    }

    fn exists(&self, path: &str) -> bool {
        self.cache_names.contains_key(path)
    }

    fn len(&self, path: &str) -> Result<u64, DiskError> {
        let id = self.inode_of(path)?;
        Ok(self.inodes[&id].cache.len() as u64)
    }

    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        let id = self.inode_of(path)?;
        SimDisk::check_size(path, len)?;
        let inode = self.inodes.get_mut(&id).expect("named inodes exist");
        let old_len = inode.cache.len() as u64;
        inode.cache.resize(len as usize, 0);
        inode.mark_dirty(old_len.min(len), old_len.max(len));
        Ok(())
    }

    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        let id = self.inode_of(path)?;
        let inode = &self.inodes[&id];
        let bytes = slice_of(path, &inode.cache, offset, len)?;
        if len > 0 {
            let end = offset + len as u64; // slice_of checked it does not overflow
            let sectors = offset / SECTOR_SIZE_BYTES..end.div_ceil(SECTOR_SIZE_BYTES);
            // A page written since it was last on the media is served from the page
            // cache; only a clean page is read from the media and can hit a bad sector.
            let bad = inode
                .latent_error_sectors
                .range(sectors)
                .find(|&&sector| !inode.dirty_pages.contains(&(sector / SECTORS_PER_PAGE)));
            if let Some(sector) = bad {
                return Err(DiskError::io(
                    path,
                    format!("latent error in sector {sector}"),
                ));
            }
        }
        Ok(Cow::Borrowed(bytes))
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let id = self.inode_of(path)?;
        let end = offset.saturating_add(data.len() as u64);
        SimDisk::check_size(path, end)?;
        let inode = self.inodes.get_mut(&id).expect("named inodes exist");
        let old_len = inode.cache.len() as u64;
        write_into(&mut inode.cache, offset, data);
        // A write past the end also turns the gap into zeros.
        inode.mark_dirty(offset.min(old_len), end);
        Ok(())
    }

    fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        let id = self.inode_of(path)?;
        self.cache_names.remove(path);
        self.journal(
            path,
            DirOp::Delete {
                path: path.to_string(),
            },
        );
        self.drop_ref(id);
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.check_alive(from)?;
        if parent_dir(from) != parent_dir(to) {
            return Err(DiskError::io(
                from,
                format!("rename to {to}: not the same directory"),
            ));
        }
        let id = self.inode_of(from)?;
        if from == to {
            return Ok(());
        }
        self.cache_names.remove(from);
        let replaced = self.cache_names.insert(to.to_string(), id);
        let op = DirOp::Rename {
            from: from.to_string(),
            to: to.to_string(),
            inode: id,
        };
        self.journal(from, op);
        if let Some(old) = replaced {
            self.drop_ref(old);
        }
        Ok(())
    }

    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError> {
        self.check_alive(dir)?;
        Ok(list_children(dir, self.cache_names.keys()))
    }

    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError> {
        let (path, work) = match target {
            SyncTarget::File(path) => {
                let id = self.inode_of(path)?;
                let inode = &self.inodes[&id];
                let pages = inode
                    .dirty_pages
                    .iter()
                    .map(|&page| (page, page_of(&inode.cache, page).to_vec()))
                    .collect();
                let work = SyncWork::File {
                    inode: id,
                    len_bytes: inode.cache.len() as u64,
                    pages,
                };
                (path, work)
            }
            SyncTarget::Dir(dir) => {
                self.check_alive(dir)?;
                let work = SyncWork::Dir {
                    dir: dir.to_string(),
                    end_op_seq: self.next_op_seq,
                };
                (dir, work)
            }
        };
        let ticket = SyncTicket(self.next_ticket);
        self.next_ticket += 1;
        self.stats.syncs_requested += 1;
        self.pending.push_back(PendingSync {
            ticket,
            path: path.to_string(),
            work,
        });
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const SEEDS: u64 = 64;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn complete_all(d: &mut SimDisk) {
        while let Some((ticket, result)) = d.complete_next() {
            result.unwrap_or_else(|e| panic!("{ticket}: {e}"));
        }
    }

    /// A file whose name and bytes are both durable.
    fn durable_file(d: &mut SimDisk, path: &str, bytes: &[u8]) {
        d.create(path).unwrap();
        d.write(path, 0, bytes).unwrap();
        d.request_sync(SyncTarget::File(path)).unwrap();
        d.request_sync(SyncTarget::Dir(parent_dir(path))).unwrap();
        complete_all(d);
    }

    fn pattern(len: usize, salt: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ salt)
            .collect()
    }

    fn durable_state(d: &SimDisk) -> BTreeMap<String, Vec<u8>> {
        d.durable_paths()
            .map(|p| (p.to_string(), d.durable_bytes(p).unwrap().to_vec()))
            .collect()
    }

    #[test]
    fn synced_data_survives_power_cut_byte_for_byte() {
        let synced = pattern(3 * PAGE_SIZE_BYTES as usize + 100, 7);
        for seed in 0..SEEDS {
            let mut d = SimDisk::new();
            durable_file(&mut d, "log/0", &synced);
            // Unsynced appends may or may not land, but never touch what was synced.
            d.write("log/0", synced.len() as u64, &pattern(5000, 9))
                .unwrap();
            d.power_cut(&mut rng(seed));
            let after = d.read("log/0", 0, synced.len()).unwrap();
            assert_eq!(&*after, &synced[..], "seed {seed}");
            d.check_invariants();
        }
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &synced);
        d.power_cut(&mut rng(1));
        assert_eq!(d.cache_bytes("f").unwrap(), &synced[..]);
        assert_eq!(d.durable_bytes("f").unwrap(), &synced[..]);
    }

    #[test]
    fn write_after_the_sync_request_is_not_covered_by_it() {
        let old = vec![0xAA; PAGE_SIZE_BYTES as usize];
        let new = vec![0xBB; PAGE_SIZE_BYTES as usize];
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &[]);
        d.write("f", 0, &old).unwrap();
        let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
        d.write("f", 0, &new).unwrap();
        d.complete_sync(ticket).unwrap();
        assert_eq!(d.durable_bytes("f").unwrap(), &old[..]);
        assert_eq!(d.cache_bytes("f").unwrap(), &new[..]);
        d.check_invariants();
        // The page stays dirty: an OS crash leaves either whole version, nothing else.
        let mut seen = BTreeSet::new();
        for seed in 0..SEEDS {
            let mut crashed = d.clone();
            crashed.crash_os(&mut rng(seed));
            let bytes = crashed.read("f", 0, old.len()).unwrap().to_vec();
            assert!(bytes == old || bytes == new, "seed {seed}");
            seen.insert(bytes[0]);
        }
        assert_eq!(
            seen.len(),
            2,
            "both outcomes should occur over {SEEDS} seeds"
        );
        let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
        d.complete_sync(ticket).unwrap();
        assert_eq!(d.durable_bytes("f").unwrap(), &new[..]);
    }

    #[test]
    fn create_is_durable_only_after_a_dir_sync() {
        let mut lost_for_some_seed = false;
        for seed in 0..SEEDS {
            let mut d = SimDisk::new();
            d.create("q/a").unwrap();
            d.write("q/a", 0, b"data").unwrap();
            let ticket = d.request_sync(SyncTarget::File("q/a")).unwrap();
            d.complete_sync(ticket).unwrap();
            assert_eq!(d.durable_bytes("q/a"), None, "no durable name yet");
            let mut without = d.clone();
            without.crash_os(&mut rng(seed));
            lost_for_some_seed |= !without.exists("q/a");

            let ticket = d.request_sync(SyncTarget::Dir("q")).unwrap();
            d.complete_sync(ticket).unwrap();
            d.crash_os(&mut rng(seed));
            assert_eq!(&*d.read("q/a", 0, 4).unwrap(), b"data", "seed {seed}");
        }
        assert!(lost_for_some_seed);
    }

    #[test]
    fn dir_sync_covers_only_ops_journaled_before_the_request() {
        let mut d = SimDisk::new();
        d.create("q/a").unwrap();
        let ticket = d.request_sync(SyncTarget::Dir("q")).unwrap();
        d.create("q/b").unwrap();
        d.complete_sync(ticket).unwrap();
        assert!(d.durable_bytes("q/a").is_some());
        assert!(d.durable_bytes("q/b").is_none());
        assert!(d.exists("q/b"));
    }

    #[test]
    fn rename_over_a_durable_file_is_atomic_across_crashes() {
        let (old, new) = (pattern(6000, 1), pattern(7000, 2));
        let mut outcomes = BTreeSet::new();
        for seed in 0..SEEDS {
            let mut d = SimDisk::new();
            durable_file(&mut d, "cfg/offsets.json", &old);
            d.create("cfg/offsets.json.tmp").unwrap();
            d.write("cfg/offsets.json.tmp", 0, &new).unwrap();
            let ticket = d
                .request_sync(SyncTarget::File("cfg/offsets.json.tmp"))
                .unwrap();
            d.complete_sync(ticket).unwrap();
            d.rename("cfg/offsets.json.tmp", "cfg/offsets.json")
                .unwrap();
            assert_eq!(d.cache_bytes("cfg/offsets.json").unwrap(), &new[..]);
            d.power_cut(&mut rng(seed));
            let bytes = d
                .cache_bytes("cfg/offsets.json")
                .expect("target never missing");
            assert!(bytes == old || bytes == new, "seed {seed}: mixed content");
            outcomes.insert(bytes == new);
            d.check_invariants();
        }
        assert_eq!(outcomes.len(), 2, "both old and new should occur");
    }

    #[test]
    fn a_crash_keeps_a_prefix_of_each_dir_journal() {
        // Creation order differs from name order, so a set that is a prefix in name
        // order but not in journal order would be caught.
        let order = ["d/3", "d/1", "d/4", "d/2"];
        let mut prefix_lens = BTreeSet::new();
        for seed in 0..SEEDS {
            let mut d = SimDisk::new();
            for path in order {
                d.create(path).unwrap();
            }
            d.crash_os(&mut rng(seed));
            let kept = order.iter().take_while(|p| d.exists(p)).count();
            for path in &order[kept..] {
                assert!(!d.exists(path), "seed {seed}: {path} kept after a gap");
            }
            prefix_lens.insert(kept);
        }
        assert_eq!(
            prefix_lens.len(),
            order.len() + 1,
            "every prefix length occurs"
        );
    }

    #[test]
    fn power_cut_tears_pages_only_at_sector_seams() {
        let old = vec![0xAA; 2 * PAGE_SIZE_BYTES as usize];
        let new = vec![0xBB; old.len()];
        let mut torn = 0;
        for seed in 0..SEEDS {
            let mut d = SimDisk::new();
            durable_file(&mut d, "f", &old);
            d.write("f", 0, &new).unwrap();
            let mut os = d.clone();
            d.power_cut(&mut rng(seed));
            os.crash_os(&mut rng(seed));
            let bytes = d.cache_bytes("f").unwrap();
            for sector in bytes.chunks(SECTOR_SIZE_BYTES as usize) {
                assert!(
                    sector.iter().all(|&b| b == sector[0]),
                    "seed {seed}: torn sector"
                );
            }
            for page in os
                .cache_bytes("f")
                .unwrap()
                .chunks(PAGE_SIZE_BYTES as usize)
            {
                assert!(
                    page.iter().all(|&b| b == page[0]),
                    "seed {seed}: OS crash tore"
                );
            }
            torn += d.stats().pages_torn;
        }
        assert!(torn > 0, "power cuts should tear some page");
    }

    #[test]
    fn same_seed_same_durable_state() {
        let build = || {
            let mut d = SimDisk::new();
            durable_file(&mut d, "a/x", &pattern(9000, 3));
            d.write("a/x", 100, &pattern(10_000, 4)).unwrap();
            d.create("a/y").unwrap();
            d.write("a/y", 0, &pattern(5000, 5)).unwrap();
            d.rename("a/y", "a/z").unwrap();
            d.set_len("a/x", 3000).unwrap();
            d
        };
        let run = |seed| {
            let mut d = build();
            d.power_cut(&mut rng(seed));
            durable_state(&d)
        };
        assert_eq!(run(42), run(42));
        assert!(
            (0..8).any(|seed| run(seed) != run(42)),
            "seeds should matter"
        );
    }

    #[test]
    fn latent_error_fails_reads_until_its_page_reaches_the_media() {
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &pattern(1024, 0));
        d.add_latent_error("f", 1).unwrap();
        assert!(d.read("f", 0, 512).is_ok());
        assert!(matches!(d.read("f", 500, 20), Err(DiskError::Io { .. })));
        // Survives a crash: it is a defect of the media, not of the cache.
        d.crash_os(&mut rng(0));
        assert!(matches!(d.read("f", 1000, 1), Err(DiskError::Io { .. })));
        // A written page is served from the page cache, but the sector is only healed
        // once the page reaches the media: a crash before that brings the error back.
        d.write("f", 600, b"partial").unwrap();
        assert_eq!(&*d.read("f", 600, 7).unwrap(), b"partial");
        assert!(d.read("f", 0, 1024).is_ok());
        d.crash_process();
        assert!(
            d.read("f", 1000, 1).is_ok(),
            "the page cache survives a process crash"
        );
        let mut seen_error_after_os_crash = false;
        for seed in 0..16 {
            let mut e = d.clone();
            e.crash_os(&mut rng(seed));
            seen_error_after_os_crash |= e.read("f", 1000, 1).is_err();
        }
        assert!(
            seen_error_after_os_crash,
            "an unsynced rewrite must not heal the media"
        );
        d.request_sync(SyncTarget::File("f")).unwrap();
        complete_all(&mut d);
        d.crash_os(&mut rng(0));
        assert!(
            d.read("f", 0, 1024).is_ok(),
            "a synced rewrite remaps the sector"
        );
    }

    #[test]
    fn a_lost_disk_fails_everything_until_replaced() {
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", b"abc");
        let ticket = d.request_sync(SyncTarget::File("f")).unwrap();
        d.lose_disk();
        assert!(!d.exists("f"));
        assert!(matches!(d.read("f", 0, 1), Err(DiskError::Io { .. })));
        assert!(matches!(d.create("g"), Err(DiskError::Io { .. })));
        assert!(matches!(d.list(""), Err(DiskError::Io { .. })));
        assert!(matches!(
            d.request_sync(SyncTarget::Dir("")),
            Err(DiskError::Io { .. })
        ));
        assert!(matches!(d.complete_sync(ticket), Err(DiskError::Io { .. })));
        assert_eq!(d.rot(&mut rng(0), ""), None);
        d.replace_disk();
        assert!(d.list("").unwrap().is_empty());
        durable_file(&mut d, "g", b"new");
        assert_eq!(d.durable_bytes("g").unwrap(), b"new");
        assert!(d.pending_syncs().is_empty());
    }

    #[test]
    fn process_crash_keeps_the_unsynced_cache() {
        let mut d = SimDisk::new();
        d.create("f").unwrap();
        d.write("f", 0, b"unsynced").unwrap();
        d.request_sync(SyncTarget::File("f")).unwrap();
        d.crash_process();
        assert!(d.pending_syncs().is_empty());
        assert_eq!(&*d.read("f", 0, 8).unwrap(), b"unsynced");
        assert_eq!(d.durable_bytes("f"), None);
        d.request_sync(SyncTarget::File("f")).unwrap();
        d.request_sync(SyncTarget::Dir("")).unwrap();
        complete_all(&mut d);
        assert_eq!(d.durable_bytes("f").unwrap(), b"unsynced");
    }

    #[test]
    fn rot_flips_one_durable_bit_and_a_clean_page_in_the_cache() {
        let bytes = pattern(2 * PAGE_SIZE_BYTES as usize, 0);
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &bytes);
        d.write("f", 0, &bytes[..10]).unwrap(); // page 0 dirty, same bytes
        for seed in 0..SEEDS {
            let mut rotted = d.clone();
            let damage = rotted.rot(&mut rng(seed), "").unwrap();
            assert_eq!(damage.path, "f");
            let durable = rotted.durable_bytes("f").unwrap();
            let diff: Vec<usize> = (0..bytes.len())
                .filter(|&i| durable[i] != bytes[i])
                .collect();
            assert_eq!(diff, vec![damage.byte_offset as usize]);
            assert_eq!((durable[diff[0]] ^ bytes[diff[0]]).count_ones(), 1);
            let cache_changed = rotted.cache_bytes("f").unwrap() != &bytes[..];
            assert_eq!(
                cache_changed,
                damage.byte_offset >= PAGE_SIZE_BYTES,
                "seed {seed}"
            );
            rotted.check_invariants();
        }
        assert_eq!(d.rot(&mut rng(0), "other/"), None);
        assert!(matches!(
            d.flip_bit("f", 1 << 20, 0),
            Err(DiskError::PastEnd { .. })
        ));
    }

    /// Found by the store property tests: an older sync landing after a newer one had
    /// cleaned a page, with rot in between, left cache and media different on a page
    /// not marked dirty.
    #[test]
    fn an_older_snapshot_over_a_rotted_clean_page_marks_it_dirty() {
        let mut d = SimDisk::new();
        durable_file(&mut d, "f", &pattern(4096, 1));
        d.write("f", 10, b"new").unwrap();
        let first = d.request_sync(SyncTarget::File("f")).unwrap();
        let second = d.request_sync(SyncTarget::File("f")).unwrap();
        d.complete_sync(first).unwrap();
        d.flip_bit("f", 100, 3).unwrap();
        d.complete_sync(second).unwrap();
        d.check_invariants();
        // The media has the snapshot; a crash re-reads it.
        d.crash_os(&mut rng(0));
        assert_eq!(&d.read("f", 10, 3).unwrap()[..], b"new");
        assert_eq!(d.read("f", 100, 1).unwrap()[0], pattern(4096, 1)[100]);
    }

    #[test]
    fn a_sync_of_a_deleted_file_is_a_no_op() {
        let mut d = SimDisk::new();
        d.create("f").unwrap();
        d.write("f", 0, b"x").unwrap();
        let file_sync = d.request_sync(SyncTarget::File("f")).unwrap();
        d.delete("f").unwrap();
        let dir_sync = d.request_sync(SyncTarget::Dir("")).unwrap();
        d.complete_sync(dir_sync).unwrap(); // the inode is now unreachable
        d.complete_sync(file_sync).unwrap();
        assert!(d.durable_paths().next().is_none());
        d.check_invariants();
    }

    #[test]
    fn reads_and_renames_fail_cleanly() {
        let mut d = SimDisk::new();
        d.create("a/f").unwrap();
        d.write("a/f", 2, b"ab").unwrap();
        assert_eq!(&*d.read("a/f", 0, 4).unwrap(), b"\0\0ab");
        assert!(matches!(
            d.read("a/f", 3, 2),
            Err(DiskError::PastEnd { .. })
        ));
        assert!(matches!(
            d.read("a/f", u64::MAX, 2),
            Err(DiskError::PastEnd { .. })
        ));
        assert!(matches!(
            d.write("a/f", u64::MAX, b"x"),
            Err(DiskError::Io { .. })
        ));
        assert!(matches!(d.rename("a/f", "b/f"), Err(DiskError::Io { .. })));
        assert!(matches!(
            d.rename("a/g", "a/h"),
            Err(DiskError::NotFound { .. })
        ));
        assert!(matches!(
            d.create("a/f"),
            Err(DiskError::AlreadyExists { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "before an older sync")]
    fn syncs_of_one_file_complete_in_order() {
        let mut d = SimDisk::new();
        d.create("f").unwrap();
        d.request_sync(SyncTarget::File("f")).unwrap();
        let second = d.request_sync(SyncTarget::File("f")).unwrap();
        let _ = d.complete_sync(second);
    }

    /// Random operations and faults; the model's own bookkeeping (dirty pages, inode
    /// references) must hold after every step, and a completed sync followed by a
    /// crash must leave exactly the synced bytes.
    #[test]
    fn random_schedules_keep_the_invariants() {
        let paths = ["d/a", "d/b", "e/a", "top"];
        for seed in 0..SEEDS {
            let mut r = rng(seed);
            let mut d = SimDisk::new();
            for _ in 0..300 {
                let path = paths[r.random_range(0..paths.len())];
                let other = paths[r.random_range(0..paths.len())];
                let max_bytes = 3 * PAGE_SIZE_BYTES;
                let _ = match r.random_range(0..100) {
                    0..10 => d.create(path),
                    10..35 => {
                        let len = r.random_range(0..PAGE_SIZE_BYTES as usize + 700);
                        let data = pattern(len, r.random());
                        d.write(path, r.random_range(0..max_bytes), &data)
                    }
                    35..42 => d.set_len(path, r.random_range(0..max_bytes)),
                    42..47 => d.delete(path),
                    47..52 => d.rename(path, other),
                    52..62 => d.request_sync(SyncTarget::File(path)).map(drop),
                    62..70 => d.request_sync(SyncTarget::Dir(parent_dir(path))).map(drop),
                    70..88 => d.complete_next().map_or(Ok(()), |(_, result)| result),
                    88..91 => {
                        d.crash_process();
                        Ok(())
                    }
                    91..94 => {
                        d.crash_os(&mut r);
                        Ok(())
                    }
                    94..96 => {
                        d.power_cut(&mut r);
                        Ok(())
                    }
                    96..98 => d.add_latent_error(path, r.random_range(0..24)),
                    98 => d.read(path, r.random_range(0..max_bytes), 2000).map(drop),
                    _ => {
                        d.rot(&mut r, "");
                        Ok(())
                    }
                };
                d.check_invariants();
            }
            // Sync everything, then crash: the durable state is exactly the cache.
            let visible: BTreeMap<String, Vec<u8>> = paths
                .iter()
                .filter_map(|p| Some((p.to_string(), d.cache_bytes(p)?.to_vec())))
                .collect();
            for p in visible.keys() {
                d.request_sync(SyncTarget::File(p)).unwrap();
            }
            for dir in ["", "d", "e"] {
                d.request_sync(SyncTarget::Dir(dir)).unwrap();
            }
            complete_all(&mut d);
            d.power_cut(&mut r);
            assert_eq!(durable_state(&d), visible, "seed {seed}");
        }
    }
}
