//! The storage crash sweep: a sequence of appends, flushes, sync completions, crashes of
//! every kind, damage, reads and clean restarts runs against a store on a [`SimDisk`];
//! an oracle that knows what was appended and what the store claimed durable judges
//! every recovery:
//!
//! - (a) every record covered by a completed flush is recovered byte for byte — unless
//!   damage (bit rot, an unreadable sector) hit it or a record before it;
//! - (b) the recovered log is a prefix of what was appended: no hole, no reordering, no
//!   garbage, no resurrected record;
//! - (c), (d) every consume-queue entry points at its record; queue offsets are dense
//!   ([`check_consistency`]);
//! - (e) recovery is idempotent: recover, crash again without writing, recover again →
//!   the same store;
//! - (f) damaged records are never handed out (reads compare bytes with the oracle), and
//!   a loss caused by damage is reported by recovery as a cut at or before it;
//! - config files always load as a complete version at least as new as the last one
//!   whose persist completed.
//!
//! Used by the property tests (`tests/store_recovery.rs`) and by `sim store-crash`.

use std::collections::BTreeSet;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_model::message::encode_properties;
use rmq_model::store::config_file::{ConfigEvent, ConfigFile, LoadSource};
use rmq_model::store::config_tables::{ConsumerOffsetTable, CONSUMER_OFFSET_PATH};
use rmq_model::store::record::{MIN_RECORD_LEN, SYSFLAG_TRANSACTION_PREPARED};
use rmq_model::store::{
    recover, Host, MessageStore, NewRecord, ReadError, RecoveryMode, RecoveryReport, StoreConfig,
    StoreEvent, StoreState,
};

use crate::storage::disk::{CrashKind, Lie, SimDisk, SECTOR_SIZE_BYTES};
use crate::storage::store_check::{check_consistency, logged_records, snapshot};

pub const TOPICS: [&str; 3] = ["TopicA", "TopicB", "%RETRY%group_1"];
pub const QUEUES_PER_TOPIC: u8 = 3;
const START_TIME_MS: i64 = 1_700_000_000_000;
/// Room a record needs besides its body (header, topic, properties, CRC tail, marker).
const RECORD_OVERHEAD_BYTES: u64 = MIN_RECORD_LEN as u64 + 160;

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

/// One run: a store configuration and the operations to apply.
#[derive(Clone, Debug)]
pub struct Case {
    pub seed: u64,
    pub config: StoreConfig,
    pub ops: Vec<Op>,
    /// `Lie::None` for a real check; a lie to prove the checks catch broken durability.
    pub disk_lie: Lie,
}

/// The store shape for a seed: tiny files so that rolling is constant.
pub fn config_for(seed: u64) -> StoreConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    StoreConfig {
        commit_log_file_size_bytes: [512, 1024, 4096, 16384][rng.random_range(0..4)],
        consume_queue_entries_per_file: [2, 4, 8, 64][rng.random_range(0..4)],
        max_message_size_bytes: 64 * 1024,
        accept_records_without_crc_tail: false,
    }
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

fn random_op(rng: &mut ChaCha8Rng) -> Op {
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

/// Counts of what a run exercised.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub appends: u64,
    pub appends_refused: u64,
    pub flushes: u64,
    pub syncs_completed: u64,
    pub process_crashes: u64,
    pub os_crashes: u64,
    pub power_cuts: u64,
    pub recoveries: u64,
    pub clean_restarts: u64,
    pub idempotence_checks: u64,
    /// Durable records the oracle demanded back, summed over recoveries.
    pub durable_records_verified: u64,
    pub records_recovered: u64,
    pub reads: u64,
    /// Reads the store refused because what they would have returned was damaged.
    pub damaged_reads_refused: u64,
    pub damages: u64,
    pub losses_explained_by_damage: u64,
    pub config_persists: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.appends += o.appends;
        self.appends_refused += o.appends_refused;
        self.flushes += o.flushes;
        self.syncs_completed += o.syncs_completed;
        self.process_crashes += o.process_crashes;
        self.os_crashes += o.os_crashes;
        self.power_cuts += o.power_cuts;
        self.recoveries += o.recoveries;
        self.clean_restarts += o.clean_restarts;
        self.idempotence_checks += o.idempotence_checks;
        self.durable_records_verified += o.durable_records_verified;
        self.records_recovered += o.records_recovered;
        self.reads += o.reads;
        self.damaged_reads_refused += o.damaged_reads_refused;
        self.damages += o.damages;
        self.losses_explained_by_damage += o.losses_explained_by_damage;
        self.config_persists += o.config_persists;
    }
}

/// A broken promise, with where in the run it showed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub seed: u64,
    pub step: usize,
    pub op: String,
    /// "a".."f", "config", "read", "boot".
    pub property: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} step {} ({}): property ({}) violated: {}",
            self.seed, self.step, self.op, self.property, self.detail
        )
    }
}

/// A record the oracle knows was appended, in log order.
#[derive(Clone, Debug)]
struct Expected {
    physical_offset: u64,
    bytes: Vec<u8>,
    topic: &'static str,
    queue_id: i32,
    queue_offset: Option<u64>,
}

impl Expected {
    fn end(&self) -> u64 {
        self.physical_offset + self.bytes.len() as u64
    }
}

struct Run<'c> {
    case: &'c Case,
    disk: SimDisk,
    store: MessageStore,
    fault_rng: ChaCha8Rng,
    log: Vec<Expected>,
    /// The highest offset the store ever reported durable (still owed after crashes).
    claimed_durable: u64,
    /// Bit rot in commit-log media: [lo, hi) as physical offsets, with the boot it
    /// happened in. It stays a possible cause of loss until a boot's sync has rewritten
    /// the media from a verified page cache (a process crash keeps the cache, which can
    /// hide rot in a dirty page from recovery while it still sits on the media).
    rot: Vec<(u64, u64, u64)>,
    boot: u64,
    unreadable: Vec<(u64, u64)>,
    /// Queues whose consume-queue files took rot since the last recovery (which
    /// rebuilds them from the log): reads there may fail, never return wrong bytes.
    damaged_queues: BTreeSet<(String, i32)>,
    config: ConfigFile,
    config_requested: u64,
    config_persisted: u64,
    appended: u64,
    stats: Stats,
    step: usize,
    /// A readable account of the run, when asked for.
    trace: Option<Vec<String>>,
}

/// Runs a case; Ok with what it exercised, or the first violation.
pub fn run(case: &Case) -> Result<Stats, Violation> {
    run_inner(case, None).0
}

/// Runs a case and also returns a line per operation and per recovery.
pub fn run_traced(case: &Case) -> (Result<Stats, Violation>, Vec<String>) {
    run_inner(case, Some(Vec::new()))
}

fn run_inner(case: &Case, trace: Option<Vec<String>>) -> (Result<Stats, Violation>, Vec<String>) {
    let mut trace = trace;
    let result = run_case(case, &mut trace);
    (result, trace.unwrap_or_default())
}

fn run_case(case: &Case, trace: &mut Option<Vec<String>>) -> Result<Stats, Violation> {
    let mut disk = SimDisk::new();
    disk.set_lie(case.disk_lie);
    let (store, report) = recover(&mut disk, case.config.clone()).map_err(|e| Violation {
        seed: case.seed,
        step: 0,
        op: "boot".into(),
        property: "boot",
        detail: e.to_string(),
    })?;
    let mut fault_rng = ChaCha8Rng::seed_from_u64(case.seed);
    fault_rng.set_stream(2);
    let mut run = Run {
        case,
        disk,
        store,
        fault_rng,
        log: Vec::new(),
        claimed_durable: 0,
        rot: Vec::new(),
        boot: 0,
        unreadable: Vec::new(),
        damaged_queues: BTreeSet::new(),
        config: ConfigFile::new(CONSUMER_OFFSET_PATH),
        config_requested: 0,
        config_persisted: 0,
        appended: 0,
        stats: Stats::default(),
        step: 0,
        trace: trace.take(),
    };
    let result = run.drive(&report);
    *trace = run.trace.take();
    result.map(|()| run.stats)
}

impl Run<'_> {
    fn drive(&mut self, report: &RecoveryReport) -> Result<(), Violation> {
        let run = self;
        run.after_recovery(report)?;
        for (step, op) in run.case.ops.iter().enumerate() {
            run.step = step + 1;
            if run.trace.is_some() {
                let line = format!(
                    "step {:>4} {:?} [state {:?}, written {}, durable {}, pending syncs {}]",
                    run.step,
                    op,
                    run.store.state(),
                    run.store.written_offset(),
                    run.store.durable_offset(),
                    run.disk.pending_syncs().len()
                );
                run.note(line);
            }
            run.apply(op)?;
        }
        // Finally everything must settle: flush, complete, and a power cut must lose nothing.
        run.step = run.case.ops.len() + 1;
        if run.store.is_ready() {
            run.flush()?;
        }
        run.complete(usize::MAX)?;
        run.crash(CrashKind::PowerCut, true)
    }

    fn note(&mut self, line: String) {
        if let Some(t) = &mut self.trace {
            t.push(line);
        }
    }

    fn violation(&self, property: &'static str, detail: String) -> Violation {
        let op = match self.step {
            0 => "boot".to_string(),
            s if s <= self.case.ops.len() => format!("{:?}", self.case.ops[s - 1]),
            _ => "final flush and power cut".to_string(),
        };
        Violation {
            seed: self.case.seed,
            step: self.step,
            op,
            property,
            detail,
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), Violation> {
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

    fn append(
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

    fn flush(&mut self) -> Result<(), Violation> {
        match self.store.request_flush(&mut self.disk) {
            Ok(_) => {
                self.stats.flushes += 1;
                Ok(())
            }
            Err(e) => Err(self.violation("boot", format!("flush failed: {e}"))),
        }
    }

    /// Completes up to `count` of the disk's oldest pending syncs.
    fn complete(&mut self, count: usize) -> Result<(), Violation> {
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
    fn config_requested_at_persist(&self) -> u64 {
        if self.config.is_idle() {
            self.config_requested
        } else {
            self.config_persisted
        }
    }

    fn read(&mut self, pick: u32) -> Result<(), Violation> {
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

    fn damaged(&self, lo: u64, hi: u64) -> bool {
        self.rot
            .iter()
            .map(|r| (r.0, r.1))
            .chain(self.unreadable.iter().copied())
            .any(|(a, b)| a < hi && lo < b)
    }

    /// The lowest offset from which damage may legitimately cost records: the largest
    /// record boundary at or below the damage (the damaged record, or the blank marker
    /// after the record before it).
    fn loss_allowed_from(&self) -> u64 {
        self.rot
            .iter()
            .map(|r| r.0)
            .chain(self.unreadable.iter().map(|u| u.0))
            .map(|lo| {
                let i = self.log.partition_point(|e| e.physical_offset <= lo);
                match i {
                    0 => 0,
                    _ if self.log[i - 1].end() > lo => self.log[i - 1].physical_offset,
                    _ => self.log[i - 1].end(),
                }
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    fn crash(&mut self, kind: CrashKind, recheck: bool) -> Result<(), Violation> {
        self.crash_disk(kind);
        let report = self.reboot()?;
        self.after_recovery(&report)?;
        if recheck {
            self.complete(usize::MAX)?;
            let before = snapshot(&self.store, &self.disk);
            let kind = match self.fault_rng.random_range(0..3) {
                0 => CrashKind::ProcessCrash,
                1 => CrashKind::OsCrash,
                _ => CrashKind::PowerCut,
            };
            self.crash_disk(kind);
            let report = self.reboot()?;
            self.after_recovery(&report)?;
            let after = snapshot(&self.store, &self.disk);
            if before != after {
                return Err(self.violation(
                    "e",
                    format!(
                        "second recovery ({kind:?}) differs: {} records/{} queues, written {} vs {} records/{} queues, written {}",
                        before.records.len(),
                        before.queues.len(),
                        before.written_offset,
                        after.records.len(),
                        after.queues.len(),
                        after.written_offset
                    ),
                ));
            }
            self.stats.idempotence_checks += 1;
        }
        Ok(())
    }

    fn crash_disk(&mut self, kind: CrashKind) {
        match kind {
            CrashKind::ProcessCrash => self.stats.process_crashes += 1,
            CrashKind::OsCrash => self.stats.os_crashes += 1,
            CrashKind::PowerCut => self.stats.power_cuts += 1,
        }
        self.disk.crash(kind, &mut self.fault_rng);
        // A crashed process forgets what it was doing.
        self.config = ConfigFile::new(CONSUMER_OFFSET_PATH);
    }

    fn reboot(&mut self) -> Result<RecoveryReport, Violation> {
        match recover(&mut self.disk, self.case.config.clone()) {
            Ok((store, report)) => {
                self.store = store;
                self.boot += 1;
                // Recovery checked every consume-queue entry against the log and
                // rewrote the damaged ones.
                self.damaged_queues.clear();
                self.stats.recoveries += 1;
                Ok(report)
            }
            Err(e) => Err(self.violation("boot", format!("recovery failed: {e}"))),
        }
    }

    fn clean_restart(&mut self) -> Result<(), Violation> {
        self.stats.clean_restarts += 1;
        let damage_free =
            self.rot.is_empty() && self.unreadable.is_empty() && self.damaged_queues.is_empty();
        let report = self.reboot()?;
        if report.mode != RecoveryMode::Normal {
            return Err(self.violation("boot", "clean shutdown left the abort marker".into()));
        }
        if damage_free {
            if let Some(cut) = &report.cut {
                return Err(self.violation(
                    "a",
                    format!(
                        "clean restart cut the log at {}: {}",
                        cut.offset, cut.reason
                    ),
                ));
            }
            if report.consume_queue_entries_rewritten > 0 {
                return Err(self.violation(
                    "c",
                    "clean shutdown left consume queues disagreeing with the log".into(),
                ));
            }
        }
        self.after_recovery(&report)
    }

    /// Judges a recovery against the oracle, then adopts its result as the new truth.
    fn after_recovery(&mut self, report: &RecoveryReport) -> Result<(), Violation> {
        if self.trace.is_some() {
            let line = format!(
                "     recovery {:?}: {} records, end {}, cut {:?}, {} discarded, {} cq rewrites; notes {:?}",
                report.mode,
                report.records_recovered,
                report.commit_log_end_offset,
                report.cut,
                report.discarded.len(),
                report.consume_queue_entries_rewritten,
                report.notes
            );
            self.note(line);
        }
        let (recovered, stopped) = logged_records(&self.store, &self.disk);
        if let Some(reason) = stopped {
            return Err(self.violation("b", format!("recovered log does not verify: {reason}")));
        }
        self.stats.records_recovered += recovered.len() as u64;
        // (b) a prefix of what was appended.
        if recovered.len() > self.log.len() {
            return Err(self.violation(
                "b",
                format!(
                    "recovered {} records but only {} were appended (resurrection at {})",
                    recovered.len(),
                    self.log.len(),
                    recovered[self.log.len()].physical_offset
                ),
            ));
        }
        for (got, want) in recovered.iter().zip(&self.log) {
            if got.physical_offset != want.physical_offset || got.bytes != want.bytes {
                return Err(self.violation(
                    "b",
                    format!(
                        "record at {} differs from the one appended at {}",
                        got.physical_offset, want.physical_offset
                    ),
                ));
            }
        }
        // (a) nothing claimed durable is lost, unless damage explains it — and then (f)
        // recovery reports a cut at or before the first lost record.
        let allowed_from = self.loss_allowed_from();
        let owed = self
            .log
            .iter()
            .take_while(|e| e.end() <= self.claimed_durable)
            .count();
        self.stats.durable_records_verified += owed.min(recovered.len()) as u64;
        if recovered.len() < owed {
            let first_lost = &self.log[recovered.len()];
            if first_lost.physical_offset < allowed_from {
                return Err(self.violation(
                    "a",
                    format!(
                        "record at {} ({} bytes) was durable (claimed up to {}) but recovery kept only {} of {owed} durable records; cut: {:?}",
                        first_lost.physical_offset,
                        first_lost.bytes.len(),
                        self.claimed_durable,
                        recovered.len(),
                        report.cut
                    ),
                ));
            }
            match &report.cut {
                Some(cut) if cut.offset <= first_lost.physical_offset => {}
                other => {
                    return Err(self.violation(
                        "f",
                        format!(
                        "durable record at {} lost to damage but recovery reported cut {other:?}",
                        first_lost.physical_offset
                    ),
                    ))
                }
            }
            self.stats.losses_explained_by_damage += 1;
        }
        // (c), (d)
        if let Err(e) = check_consistency(&self.store, &self.disk) {
            return Err(self.violation("c", e));
        }
        self.check_config()?;
        // The recovered log is the truth from here on.
        self.log.truncate(recovered.len());
        let end = self.log.last().map_or(0, Expected::end);
        self.claimed_durable = self.claimed_durable.min(end);
        // Damage stays on record until the boot sync rewrites the media (see `rot`);
        // unreadable sectors stay until a write of their page reaches the media: kept.
        Ok(())
    }

    fn check_config(&mut self) -> Result<(), Violation> {
        let (table, source) = self.config.load::<ConsumerOffsetTable>(&self.disk);
        let version = table
            .offset_table
            .get("TopicA@group_1")
            .and_then(|q| q.get(&0))
            .copied()
            .unwrap_or(0) as u64;
        if self.config_persisted > 0 && matches!(source, LoadSource::Default(_)) {
            return Err(self.violation(
                "config",
                format!(
                    "version {} was persisted but loading fell back to defaults: {source:?}",
                    self.config_persisted
                ),
            ));
        }
        if version < self.config_persisted || version > self.config_requested {
            return Err(self.violation(
                "config",
                format!(
                    "loaded version {version}, persisted {} requested {}",
                    self.config_persisted, self.config_requested
                ),
            ));
        }
        Ok(())
    }
}

/// The (topic, queue id) of a consume-queue file path.
fn queue_of(path: &str) -> Option<(String, i32)> {
    let mut parts = path.strip_prefix("consumequeue/")?.split('/');
    let topic = parts.next()?.to_string();
    let queue_id = parts.next()?.parse().ok()?;
    Some((topic, queue_id))
}

fn file_start(path: &str) -> Option<u64> {
    rmq_model::store::mapped_file::parse_file_name(path.strip_prefix("commitlog/")?)
}
