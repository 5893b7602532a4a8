//! The `checkpoint` file (`StoreCheckpoint`, reference A.5): one 4 KiB page holding
//! the store timestamps of the last flushed commit-log record and consume-queue entry.
//!
//! rocketsim recovery does not *trust* the checkpoint to skip verification (it verifies
//! the whole commit log, see `recovery/`); it keeps the file in RocketMQ's format so
//! the store stays readable by RocketMQ's tools, and reports it after a crash.

use super::disk::{Disk, DiskError};

pub const CHECKPOINT_PATH: &str = "checkpoint";
pub const CHECKPOINT_FILE_SIZE: u64 = 4096;

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Store time of the newest commit-log record known durable.
    pub physic_msg_timestamp_ms: i64,
    /// Store time of the newest consume-queue entry known durable.
    pub logics_msg_timestamp_ms: i64,
    pub index_msg_timestamp_ms: i64,
    /// 5.x fields, kept for layout compatibility.
    pub master_flushed_offset: i64,
    pub confirm_phy_offset: i64,
}

impl Checkpoint {
    pub fn to_bytes(self) -> [u8; 40] {
        let mut out = [0u8; 40];
        let fields = [
            self.physic_msg_timestamp_ms,
            self.logics_msg_timestamp_ms,
            self.index_msg_timestamp_ms,
            self.master_flushed_offset,
            self.confirm_phy_offset,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    fn from_bytes(b: &[u8]) -> Checkpoint {
        let f = |i: usize| i64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        Checkpoint {
            physic_msg_timestamp_ms: f(0),
            logics_msg_timestamp_ms: f(1),
            index_msg_timestamp_ms: f(2),
            master_flushed_offset: f(3),
            confirm_phy_offset: f(4),
        }
    }

    /// RocketMQ's `getMinTimestamp`: the older of the two, less 3 s, floored at 0.
    pub fn min_timestamp_ms(&self) -> i64 {
        (self
            .physic_msg_timestamp_ms
            .min(self.logics_msg_timestamp_ms)
            - 3000)
            .max(0)
    }

    /// Reads the checkpoint; Err(reason) when it is missing or malformed.
    pub fn load(disk: &dyn Disk) -> Result<Checkpoint, String> {
        let len = disk
            .len(CHECKPOINT_PATH)
            .map_err(|e| format!("checkpoint unreadable: {e}"))?;
        if len < 40 {
            return Err(format!(
                "checkpoint is {len} bytes, shorter than its 40-byte header"
            ));
        }
        let bytes = disk
            .read(CHECKPOINT_PATH, 0, 40)
            .map_err(|e| format!("checkpoint unreadable: {e}"))?;
        Ok(Checkpoint::from_bytes(&bytes))
    }

    /// Writes it in place (creating the 4 KiB file first if needed). Returns whether the
    /// file was created, so the caller syncs the directory too.
    pub fn store(&self, disk: &mut dyn Disk) -> Result<bool, DiskError> {
        let created = !disk.exists(CHECKPOINT_PATH);
        if created {
            disk.create(CHECKPOINT_PATH)?;
        }
        if disk.len(CHECKPOINT_PATH)? != CHECKPOINT_FILE_SIZE {
            disk.set_len(CHECKPOINT_PATH, CHECKPOINT_FILE_SIZE)?;
        }
        disk.write(CHECKPOINT_PATH, 0, &self.to_bytes())?;
        Ok(created)
    }
}
