//! The [`Disk`] contract: files and directories as the store sees them (reads and
//! writes of the page cache, journaled directory operations, sync requests).

use std::borrow::Cow;

use rmq_model::store::disk::{parent_dir, DirEntry, Disk, DiskError, SyncTarget, SyncTicket};
use rmq_model::store::mem_disk::{list_children, range_within};

use super::{
    page_range, DirOp, Inode, InodeId, PendingSync, SimDisk, SyncWork, PAGE_SIZE_BYTES,
    SECTORS_PER_PAGE, SECTOR_SIZE_BYTES,
};

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
        // A preallocated file's zeros are only a length (`image.rs`).
        inode.cache.set_len(len as usize);
        inode.cache_version += 1;
        inode.mark_dirty(old_len.min(len), old_len.max(len));
        Ok(())
    }

    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        let id = self.inode_of(path)?;
        let inode = &self.inodes[&id];
        let range = range_within(path, inode.cache.len() as u64, offset, len)?;
        // Most files have no bad sector: no search for one then.
        if len > 0 && !inode.latent_error_sectors.is_empty() {
            let end = offset + len as u64; // range_within checked it does not overflow
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
        Ok(inode.cache.get(range))
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let id = self.inode_of(path)?;
        let end = offset.saturating_add(data.len() as u64);
        SimDisk::check_size(path, end)?;
        let inode = self.inodes.get_mut(&id).expect("named inodes exist");
        let old_len = inode.cache.len() as u64;
        inode.cache.write(offset as usize, data);
        inode.cache_version += 1;
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
                let mut pages = Vec::with_capacity(inode.dirty_pages.len());
                let most_bytes = inode.dirty_pages.len() as u64 * PAGE_SIZE_BYTES;
                let written = inode.cache.written();
                let mut bytes = Vec::with_capacity(most_bytes.min(written.len() as u64) as usize);
                for &page in &inode.dirty_pages {
                    // Only the written part: the rest of the page is the cache's zero
                    // tail, which the completion writes as zeros.
                    bytes.extend_from_slice(&written[page_range(page, written.len())]);
                    pages.push((page, bytes.len()));
                }
                let work = SyncWork::File {
                    inode: id,
                    len_bytes: inode.cache.len() as u64,
                    pages,
                    bytes,
                    cache_version: inode.cache_version,
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
