//! The operations a case is made of, drawn from its seed, and what each does to the
//! store and to the oracle's expectations: appends, flushes, sync completions, reads.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_model::message::encode_properties;
use rmq_model::store::config_file::ConfigEvent;
use rmq_model::store::config_tables::ConsumerOffsetTable;
use rmq_model::store::record::SYSFLAG_TRANSACTION_PREPARED;
use rmq_model::store::{Host, NewRecord, ReadError, StoreEvent, StoreState};

use crate::storage::disk::{CrashKind, Lie, SECTOR_SIZE_BYTES};

use super::recovery::{file_start, queue_of};
use super::{
    config_for, Case, Expected, Run, Violation, QUEUES_PER_TOPIC, RECORD_OVERHEAD_BYTES,
    START_TIME_MS, TOPICS,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Append {
        topic: u8,
        queue: u8,
        body_len: u16,
        tagged: bool,
        /// A PREPARED transaction record: stored, but in no consume queue.
        prepared: bool,
    },
    /// Group commit of the commit log.
    Flush,
    /// Flush of consume queues and checkpoint.
    LogicFlush,
    /// The disk completes its oldest pending syncs.
    Complete { syncs: u8 },
    /// Crash, then boot (recovery). With `recheck`, also finish booting, crash again
    /// without writing and check the second recovery yields the same store.
    Crash { kind: CrashKind, recheck: bool },
    /// A bit flips in the durable image of a commit-log file (or, one time in four, of
    /// a consume-queue file).
    Rot,
    /// A sector of a commit-log file becomes unreadable.
    LatentError,
    /// Read a message the oracle knows by queue offset and compare bytes.
    Read { pick: u32 },
    /// Start a clean shutdown; once it completes, the store restarts.
    Shutdown,
    /// Persist a new version of a config file.
    PersistConfig,
}

/// Derives a whole case from a seed (the CLI's sweep).
pub fn generate(seed: u64, op_count: usize) -> Case {
    let config = config_for(seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ops = (0..op_count).map(|_| random_op(&mut rng)).collect();
    Case {
        seed,
        config,
        ops,
        disk_lie: Lie::None,
    }
}

pub(super) fn random_op(rng: &mut ChaCha8Rng) -> Op {
    let kind = |rng: &mut ChaCha8Rng| match rng.random_range(0..3) {
        0 => CrashKind::ProcessCrash,
        1 => CrashKind::OsCrash,
        _ => CrashKind::PowerCut,
    };
    match rng.random_range(0..1000) {
        0..=479 => Op::Append {
            topic: rng.random_range(0..TOPICS.len() as u8),
            queue: rng.random_range(0..QUEUES_PER_TOPIC),
            // Mostly small, sometimes empty, sometimes as large as a file allows.
            body_len: match rng.random_range(0..10) {
                0 => 0,
                1 => u16::MAX,
                _ => rng.random_range(1..400),
            },
            tagged: rng.random_bool(0.5),
            prepared: rng.random_bool(0.03),
        },
        480..=579 => Op::Flush,
        580..=609 => Op::LogicFlush,
        610..=819 => Op::Complete {
            syncs: rng.random_range(1..16),
        },
        820..=869 => Op::Crash {
            kind: kind(rng),
            recheck: rng.random_bool(0.3),
        },
        870..=879 => Op::Rot,
        880..=884 => Op::LatentError,
        885..=969 => Op::Read {
            pick: rng.random::<u32>(),
        },
        970..=979 => Op::Shutdown,
        _ => Op::PersistConfig,
    }
}

impl Run<'_> {
    pub(super) fn apply(&mut self, op: &Op) -> Result<(), Violation> {
        match *op {
            Op::Append {
                topic,
                queue,
                body_len,
                tagged,
                prepared,
            } => self.append(topic, queue, body_len, tagged, prepared),
            Op::Flush => self.flush(),
            Op::LogicFlush => {
                let _ = self.store.request_logic_flush(&mut self.disk);
                Ok(())
            }
            Op::Complete { syncs } => self.complete(syncs as usize),
            Op::Crash { kind, recheck } => self.crash(kind, recheck),
            Op::Rot => {
                let prefix = if self.fault_rng.random_ratio(1, 4) {
                    "consumequeue/"
                } else {
                    "commitlog/"
                };
                if let Some(d) = self.disk.rot(&mut self.fault_rng, prefix) {
                    self.stats.damages += 1;
                    if let Some(start) = file_start(&d.path) {
                        let at = start + d.byte_offset;
                        self.rot.push((at, at + 1, self.boot));
                    } else if let Some(queue) = queue_of(&d.path) {
                        self.damaged_queues.insert(queue);
                    }
                }
                Ok(())
            }
            Op::LatentError => {
                let starts = self.store.commit_log().files().starts().to_vec();
                if starts.is_empty() {
                    return Ok(());
                }
                let start = starts[self.fault_rng.random_range(0..starts.len())];
                let sectors = self.case.config.commit_log_file_size_bytes / SECTOR_SIZE_BYTES;
                let sector = self.fault_rng.random_range(0..sectors);
                let path = self.store.commit_log().files().path_of(start);
                if self.disk.add_latent_error(&path, sector).is_ok() {
                    self.stats.damages += 1;
                    let lo = start + sector * SECTOR_SIZE_BYTES;
                    self.unreadable.push((lo, lo + SECTOR_SIZE_BYTES));
                }
                Ok(())
            }
            Op::Read { pick } => self.read(pick),
            Op::Shutdown => {
                if self.store.is_ready() {
                    let event = self.store.begin_shutdown(&mut self.disk);
                    if let Err(e) = event {
                        return Err(self.violation("boot", format!("shutdown refused: {e}")));
                    }
                }
                Ok(())
            }
            Op::PersistConfig => {
                self.config_requested += 1;
                let mut table = ConsumerOffsetTable::default();
                table
                    .offset_table
                    .entry("TopicA@group_1".into())
                    .or_default()
                    .insert(0, self.config_requested as i64);
                let text = serde_json::to_string(&table).expect("serializes");
                if self.config.persist(&mut self.disk, text).is_ok() {
                    self.stats.config_persists += 1;
                }
                Ok(())
            }
        }
    }

    pub(super) fn append(
        &mut self,
        topic: u8,
        queue: u8,
        body_len: u16,
        tagged: bool,
        prepared: bool,
    ) -> Result<(), Violation> {
        let topic = TOPICS[topic as usize % TOPICS.len()];
        let max_body = self.case.config.commit_log_file_size_bytes - RECORD_OVERHEAD_BYTES;
        let len = (u64::from(body_len)).min(max_body) as usize;
        let n = self.appended;
        self.appended += 1;
        // Distinct content per message, so a misplaced record can never compare equal.
        let body: Vec<u8> = (0..len)
            .map(|i| (i as u64).wrapping_mul(31).wrapping_add(n.wrapping_mul(7)) as u8)
            .collect();
        let key = format!("m{n}");
        let props = if tagged {
            encode_properties([("UNIQ_KEY", key.as_str()), ("TAGS", "TagA")])
        } else {
            encode_properties([("UNIQ_KEY", key.as_str())])
        };
        let host = Host {
            ip: std::net::IpAddr::from([10, 0, 0, 1]),
            port: 10911,
        };
        let rec = NewRecord {
            topic,
            queue_id: i32::from(queue),
            flag: 0,
            sys_flag: if prepared {
                SYSFLAG_TRANSACTION_PREPARED
            } else {
                0
            },
            born_timestamp_ms: START_TIME_MS,
            born_host: host,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: &props,
        };
        let now = START_TIME_MS + self.step as i64;
        match self.store.append(&mut self.disk, &rec, now) {
            Ok(r) => {
                self.stats.appends += 1;
                let bytes = self
                    .store
                    .get_by_commit_log_offset(&self.disk, r.physical_offset)
                    .map(|m| m.bytes)
                    .map_err(|e| self.violation("read", format!("fresh append unreadable: {e}")))?;
                if let Some(last) = self.log.last() {
                    if r.physical_offset < last.end() {
                        return Err(self.violation("b", "append went backwards".into()));
                    }
                }
                self.log.push(Expected {
                    physical_offset: r.physical_offset,
                    bytes,
                    topic,
                    queue_id: i32::from(queue),
                    queue_offset: r.queue_offset,
                });
                Ok(())
            }
            Err(_) if self.store.state() != StoreState::Ready => {
                self.stats.appends_refused += 1;
                Ok(())
            }
            Err(e) => Err(self.violation("boot", format!("append refused by a ready store: {e}"))),
        }
    }

    pub(super) fn flush(&mut self) -> Result<(), Violation> {
        match self.store.request_flush(&mut self.disk) {
            Ok(_) => {
                self.stats.flushes += 1;
                Ok(())
            }
            Err(e) => Err(self.violation("boot", format!("flush failed: {e}"))),
        }
    }

    /// Completes up to `count` of the disk's oldest pending syncs.
    pub(super) fn complete(&mut self, count: usize) -> Result<(), Violation> {
        let mut done = 0;
        while done < count {
            let Some((ticket, result)) = self.disk.complete_next() else {
                break;
            };
            done += 1;
            self.stats.syncs_completed += 1;
            let event = self
                .store
                .on_sync_complete(&mut self.disk, ticket, result.clone());
            if event == StoreEvent::NotMine {
                match self.config.on_sync_complete(&mut self.disk, ticket, result) {
                    ConfigEvent::Persisted => {
                        self.config_persisted = self.config_requested_at_persist()
                    }
                    ConfigEvent::Failed(e) => {
                        return Err(self.violation("config", format!("persist failed: {e}")))
                    }
                    _ => {}
                }
            }
            self.claimed_durable = self.claimed_durable.max(self.store.durable_offset());
            if event == StoreEvent::Ready {
                // Boot synced the whole verified log: rot from before this boot is gone
                // from the media (rot after it may not be).
                let boot = self.boot;
                self.rot.retain(|r| r.2 == boot);
            }
            if event == StoreEvent::Closed {
                self.clean_restart()?;
            }
        }
        Ok(())
    }

    /// The version a completed persist made durable: the content written last before
    /// its tmp sync was requested. Persists complete in order and the newest queued one
    /// wins, so when nothing is queued it is the newest requested; when one is queued,
    /// at least the previous persisted version (a conservative lower bound).
    pub(super) fn config_requested_at_persist(&self) -> u64 {
        if self.config.is_idle() {
            self.config_requested
        } else {
            self.config_persisted
        }
    }

    pub(super) fn read(&mut self, pick: u32) -> Result<(), Violation> {
        let readable: Vec<usize> = (0..self.log.len())
            .filter(|&i| self.log[i].queue_offset.is_some())
            .collect();
        if readable.is_empty() {
            return Ok(());
        }
        self.stats.reads += 1;
        let exp = &self.log[readable[pick as usize % readable.len()]];
        let queue_offset = exp.queue_offset.expect("filtered");
        match self
            .store
            .get_message(&self.disk, exp.topic, exp.queue_id, queue_offset)
        {
            Ok(m) if m.bytes == exp.bytes && m.physical_offset == exp.physical_offset => Ok(()),
            Ok(m) => Err(self.violation(
                "f",
                format!(
                    "{}-{}@{queue_offset} returned {} bytes at {} that differ from what was stored at {}",
                    exp.topic,
                    exp.queue_id,
                    m.bytes.len(),
                    m.physical_offset,
                    exp.physical_offset
                ),
            )),
            Err(ReadError::Corrupt { .. } | ReadError::Disk(_))
                if self.damaged(exp.physical_offset, exp.end())
                    || self
                        .damaged_queues
                        .contains(&(exp.topic.to_string(), exp.queue_id)) =>
            {
                self.stats.damaged_reads_refused += 1;
                Ok(())
            }
            Err(e) => Err(self.violation(
                "read",
                format!("{}-{}@{queue_offset}: {e}", exp.topic, exp.queue_id),
            )),
        }
    }
}
