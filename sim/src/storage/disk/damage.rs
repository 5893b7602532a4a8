//! Damage: bit rot, latent sector errors and a lost disk.

use rand::Rng;
use rmq_model::store::disk::DiskError;

use super::{InodeId, SimDisk, PAGE_SIZE_BYTES, SECTOR_SIZE_BYTES};

/// What a bit flip damaged, for the fault log and the checker's allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    pub path: String,
    pub byte_offset: u64,
    pub bit: u8,
}

impl SimDisk {
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
        inode.durable.flip_bit(byte_offset as usize, bit);
        if !inode.dirty_pages.contains(&(byte_offset / PAGE_SIZE_BYTES)) {
            // A clean page's cache equals the media, so it holds this byte too.
            inode.cache.flip_bit(byte_offset as usize, bit);
            inode.cache_version += 1;
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
}
