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
//!
//! Here: a case, its run and the oracle's state. `ops.rs` draws and applies the
//! operations; `recovery.rs` crashes, reboots and judges each recovery.

use std::collections::BTreeSet;
use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_model::store::config_file::ConfigFile;
use rmq_model::store::config_tables::CONSUMER_OFFSET_PATH;
use rmq_model::store::record::MIN_RECORD_LEN;
use rmq_model::store::{recover, MessageStore, RecoveryReport, StoreConfig};

use crate::storage::disk::{CrashKind, Lie, SimDisk};

mod ops;
mod recovery;

pub use ops::{generate, Op};

pub const TOPICS: [&str; 3] = ["TopicA", "TopicB", "%RETRY%group_1"];
pub const QUEUES_PER_TOPIC: u8 = 3;
const START_TIME_MS: i64 = 1_700_000_000_000;
/// Room a record needs besides its body (header, topic, properties, CRC tail, marker).
const RECORD_OVERHEAD_BYTES: u64 = MIN_RECORD_LEN as u64 + 160;

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
        ..StoreConfig::default()
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
}
