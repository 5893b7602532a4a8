//! Crashes: what a dead process, a dead OS or a power cut leaves on the disk.
//!
//! A process crash keeps the page cache; an OS crash loses it, each dirty page having
//! reached the media whole or not at all and each directory journal a prefix of its
//! ops; a power cut also tears pages that reached the media at sector seams.

use std::collections::BTreeSet;

use rand::Rng;

use super::{
    page_range, Inode, InodeId, SimDisk, PAGE_SIZE_BYTES, SECTORS_PER_PAGE, SECTOR_SIZE_BYTES,
};

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

impl SimDisk {
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
        self.cache_names = super::names::Names::from(self.durable_names.clone());
        let named: BTreeSet<InodeId> = self.durable_names.values().copied().collect();
        self.inodes.retain(|id, _| named.contains(id));
        // In id order: the coins below are drawn inode by inode.
        let mut ids: Vec<InodeId> = self.inodes.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let inode = self.inodes.get_mut(&id).expect("an id just listed");
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
                    let range = page_range(page, cache.len());
                    durable.copy_from((page * PAGE_SIZE_BYTES) as usize, cache, range);
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
                            durable.copy_from(start as usize, cache, start as usize..end as usize);
                        }
                        // That sector was rewritten, so the drive remapped it.
                        latent_error_sectors.remove(&(page * SECTORS_PER_PAGE + sector));
                    }
                }
                if new_sectors != 0 && new_sectors != SECTORS_PER_PAGE {
                    self.stats.pages_torn += 1;
                }
            }
            inode.durable.set_len(durable_len);
            // The cache re-reads the media; only dirty pages can differ, so copy those.
            inode.cache.set_len(durable_len);
            inode.cache_version += 1;
            for &page in &dirty_pages {
                let range = page_range(page, durable_len);
                inode.cache.copy_from(range.start, &inode.durable, range);
            }
        }
        #[cfg(debug_assertions)]
        self.check_invariants();
    }
}
