//! Scenario files (TOML): the cluster, the workload, the fault plan and the durations of
//! one run — never its expected outcome (the checker derives that from the
//! configuration and the faults that happened).
//!
//! An optional `[promise]` section declares the timing promises the checker holds the
//! run to ([`Promise`]: flush, replication and offset windows); left out, they are
//! RocketMQ's documented defaults. They are recorded in the history's `Meta` and are
//! all the checker knows of timing: it never reads the broker's own configuration.
//!
//! `flush` and `replication` may each be a list: the scenario is then a *matrix* and
//! seed `s` runs variant `s % variants`, so any sweep covers every variant and a seed
//! alone names its variant.
//!
//! A `[swarm]` section turns the file into a swarm scenario (see [`crate::cluster::swarm`]): the
//! file's sections are then the envelope, and each seed draws its own cluster, workload
//! and fault mix from it — including flush and replication, so the file has one variant.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use super::fault_kind::FaultSpecKind;
use super::fault_step::{self, Census, FaultStep};
use crate::history::{FlushMode, Promise, Replication};

/// A value or a list of values (a matrix axis).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn values(&self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name_servers: u32,
    pub broker_groups: u32,
    pub flush: OneOrMany<FlushMode>,
    pub replication: OneOrMany<Replication>,
    #[serde(default = "default_queues")]
    pub queues: u32,
    #[serde(default = "default_commit_log_file_bytes")]
    pub commit_log_file_bytes: u64,
}

fn default_queues() -> u32 {
    4
}

fn default_commit_log_file_bytes() -> u64 {
    256 * 1024
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelSpec {
    Clustering,
    Broadcasting,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    /// RocketMQ tag expression: `*` or `a || b`.
    pub tags: String,
    pub consumers: u32,
    pub model: ModelSpec,
    /// The group's consumers start at this time (ms from the run's start; default 0:
    /// at boot). A group that joins late finds a backlog on the brokers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_ms: u64,
    /// The group consumes orderly (`MessageListenerOrderly`): clustering members lock
    /// each queue at its master and consume it one message at a time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orderly: bool,
    /// The group's listener answers RECONSUME_LATER for this many deliveries in a
    /// thousand (each drawn from its consumer's seeded stream); the message comes back
    /// through the group's retry topic.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub fail_permille: u32,
    /// This many messages in a thousand (chosen by workload id with the run's seed)
    /// fail every delivery to the group: they exhaust their retries and are
    /// dead-lettered. A clustering group that fails anything gets a reader of its
    /// dead-letter queue (`%DLQ%{group}`), outside the group, whose reads the history
    /// records as `dead_letter`.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub always_fail_permille: u32,
    /// The group's listener hangs on this many deliveries in a thousand: it answers
    /// (CONSUME_SUCCESS) only three consume timeouts later (`[promise]`'s
    /// `consume_timeout_ms`), long after its consumer gave up on it and handed the
    /// message back.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub hang_permille: u32,
    /// The consumers' `maxReconsumeTimes`. Absent: RocketMQ's -1 (16 for a concurrent
    /// group; an orderly group retries a failing message without end). An orderly group
    /// with a maximum dead-letters a message that always fails after max + 1 failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconsume_times: Option<u32>,
}

impl GroupSpec {
    /// Whether the group's listener fails anything (hangs included).
    pub fn fails(&self) -> bool {
        self.fail_permille > 0 || self.always_fail_permille > 0 || self.hang_permille > 0
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub topic: String,
    pub producers: u32,
    /// Each producer sends one message per interval (uniform in the range).
    pub send_interval_ms: [u64; 2],
    pub body_bytes: [u32; 2],
    /// Each message takes one of these tags (uniformly).
    pub tags: Vec<String>,
    pub groups: Vec<GroupSpec>,
    /// Messages each producer sends per interval, back to back (uniform in the range;
    /// default one).
    #[serde(default = "default_burst")]
    pub burst: [u32; 2],
    /// Producers keep sending this long after the heal (default 0: they stop at the
    /// heal). Messages sent once the cluster settled are what the latency rule's
    /// tight bound judges (a broker that wakes held pulls late fails it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub send_after_heal_ms: u64,
    /// Delay levels a message draws one of, uniformly (0 = at once); empty (the
    /// default): every message at once. The brokers' `messageDelayLevel` is the
    /// `[promise]`'s `delay_levels_ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delay_levels: Vec<u32>,
    /// Orderly sends: each producer sends every message with one of this many sharding
    /// keys of its own through `SelectMessageQueueByHash`, a key's next message only
    /// after the previous one's outcome. 0 (the default): round-robin sends.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub sharding_keys: u32,
    /// With `sharding_keys`: only the first this many producers send orderly, the
    /// others round-robin. Absent: every producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderly_producers: Option<u32>,
}

fn default_burst() -> [u32; 2] {
    [1, 1]
}

/// What faults may hit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Masters,
    Slaves,
    NameServers,
    Producers,
    Consumers,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kinds: Vec<FaultSpecKind>,
    pub targets: Vec<Target>,
    /// Time between two faults (uniform in the range).
    pub every_ms: [u64; 2],
    /// How long a crashed node stays down, a partition or clog lasts.
    pub down_ms: [u64; 2],
    /// At most this many machines are lost in one run.
    #[serde(default = "default_max_machines_lost")]
    pub max_machines_lost: u32,
    /// An explicit schedule (`[[faults.steps]]`, see `fault_step`): when present, these
    /// faults strike and none is drawn from `kinds`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<FaultStep>,
}

fn default_max_machines_lost() -> u32 {
    1
}

/// Producers start sending, and faults may start, after the cluster had this long to
/// boot, register and replicate: a slave whose first report reached its master while
/// the master was still recovering reports again one HA heartbeat (5 s) later, as
/// RocketMQ's `HAClient` retries, and until then a SYNC_MASTER answers
/// SLAVE_NOT_AVAILABLE. A deployment starts its load once the cluster is up.
pub const WARMUP_MS: u64 = 6_000;

/// Consumers start this long after boot (or at their group's later `start_ms`): once
/// the brokers have registered the scenario's topic with the name servers, as a
/// deployment starts its clients after the cluster is up. Started earlier, a consumer
/// finds no route and waits for its next route poll (30 s): through the whole fault
/// phase of most scenarios.
pub const CONSUMERS_START_MS: u64 = 1_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Durations {
    /// Producers send and faults strike during `[0, faults_ms)`.
    pub faults_ms: u64,
    /// After the heal: faults stop, crashed nodes come back; then this long of quiet
    /// before liveness is judged.
    pub quiet_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub description: String,
    pub cluster: ClusterSpec,
    pub workload: WorkloadSpec,
    pub faults: FaultSpec,
    pub durations: Durations,
    /// The timing promises the checker holds the run to (RocketMQ's by default).
    #[serde(default)]
    pub promise: Promise,
    /// Present: every seed draws its own configuration inside the envelope above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmSpec>,
}

/// One variant of a scenario: every matrix axis fixed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// The file stem, plus `[flush=…,replication=…]` for a matrix variant.
    pub name: String,
    pub file: ScenarioFile,
    pub flush: FlushMode,
    pub replication: Replication,
}

/// A scenario file that could not be used: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ScenarioError {}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

impl ScenarioFile {
    /// Parses and validates; errors name the file, the line and the field.
    pub fn parse(file: &str, text: &str) -> Result<ScenarioFile, ScenarioError> {
        let parsed: ScenarioFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().to_string();
            // Name the field: a type error's message only says what was expected.
            let key = line
                .and_then(|l| text.lines().nth(l - 1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !message.contains(k));
            ScenarioError {
                file: file.to_string(),
                line,
                message: match key {
                    Some(k) => format!("{k}: {message}"),
                    None => message,
                },
            }
        })?;
        parsed
            .validate()
            .map_err(|(field, message)| ScenarioError {
                file: file.to_string(),
                line: find_key_line(text, field),
                message: format!("{field}: {message}"),
            })?;
        Ok(parsed)
    }

    /// Checks every field's range; `(field, why)` on the first that is out of it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let c = &self.cluster;
        let w = &self.workload;
        let range = |r: [u64; 2]| r[0] <= r[1];
        if c.name_servers == 0 {
            return Err(("name_servers", "at least one name server".into()));
        }
        if c.broker_groups == 0 {
            return Err(("broker_groups", "at least one broker group".into()));
        }
        if c.flush.values().is_empty() {
            return Err(("flush", "an empty list".into()));
        }
        if c.replication.values().is_empty() {
            return Err(("replication", "an empty list".into()));
        }
        if c.queues == 0 || c.queues > 64 {
            return Err(("queues", format!("{} is not in 1..=64", c.queues)));
        }
        if !(4096..=(1 << 30)).contains(&c.commit_log_file_bytes) {
            return Err(("commit_log_file_bytes", "must be in 4096..=2^30".into()));
        }
        if !rmq_model::message::is_valid_topic(&w.topic) {
            return Err(("topic", format!("{:?} is not a valid topic name", w.topic)));
        }
        if w.send_interval_ms[0] == 0 || !range(w.send_interval_ms) {
            return Err(("send_interval_ms", "[lo, hi] with 0 < lo <= hi".into()));
        }
        if w.body_bytes[0] > w.body_bytes[1] || w.body_bytes[1] > 64 * 1024 {
            return Err(("body_bytes", "[lo, hi] with lo <= hi <= 65536".into()));
        }
        if w.tags.is_empty() {
            return Err(("tags", "at least one tag".into()));
        }
        if w.burst[0] == 0 || w.burst[0] > w.burst[1] || w.burst[1] > 1000 {
            return Err(("burst", "[lo, hi] with 0 < lo <= hi <= 1000".into()));
        }
        if w.groups.is_empty() {
            return Err(("groups", "at least one consumer group".into()));
        }
        if w.delay_levels.iter().any(|&l| l > 1_000) {
            return Err(("delay_levels", "levels from 0 to 1000".into()));
        }
        let levels = &self.promise.delay_levels_ms;
        if levels.is_empty() || levels.len() > 1_000 {
            return Err(("delay_levels_ms", "1 to 1000 delays".into()));
        }
        if w.sharding_keys > 10_000 {
            return Err(("sharding_keys", "at most 10000 keys per producer".into()));
        }
        if w.orderly_producers
            .is_some_and(|n| n > w.producers || w.sharding_keys == 0)
        {
            return Err((
                "orderly_producers",
                "at most `producers`, and only with sharding_keys".into(),
            ));
        }
        if let Some(g) = w.groups.iter().find(|g| g.consumers == 0) {
            return Err(("consumers", format!("group {} has no consumer", g.name)));
        }
        if let Some(g) = w.groups.iter().find(|g| {
            g.fail_permille > 1_000 || g.always_fail_permille > 1_000 || g.hang_permille > 1_000
        }) {
            return Err((
                "fail_permille",
                format!("group {}: shares are 0 to 1000 per mille", g.name),
            ));
        }
        if let Some(g) = w.groups.iter().find(|g| g.orderly && g.fail_permille > 0) {
            return Err((
                "fail_permille",
                format!(
                    "group {}: an orderly listener suspends a fixed share of its calls; only \
                     always_fail_permille applies",
                    g.name
                ),
            ));
        }
        if let Some(g) = w
            .groups
            .iter()
            .find(|g| g.max_reconsume_times.is_some_and(|m| m > 1_000))
        {
            return Err((
                "max_reconsume_times",
                format!("group {}: at most 1000", g.name),
            ));
        }
        let f = &self.faults;
        if !range(f.every_ms) || f.every_ms[0] == 0 {
            return Err(("every_ms", "[lo, hi] with 0 < lo <= hi".into()));
        }
        if !range(f.down_ms) {
            return Err(("down_ms", "[lo, hi] with lo <= hi".into()));
        }
        if !f.kinds.is_empty() && f.targets.is_empty() {
            return Err(("targets", "faults need at least one target".into()));
        }
        if self.durations.faults_ms == 0 || self.durations.quiet_ms == 0 {
            return Err((
                "durations",
                "faults_ms and quiet_ms must be positive".into(),
            ));
        }
        if !f.steps.is_empty() {
            if self.swarm.is_some() {
                return Err(("steps", "a swarm draws its faults: no steps".into()));
            }
            let census = Census {
                name_servers: c.name_servers,
                broker_groups: c.broker_groups,
                slaves: c
                    .replication
                    .values()
                    .iter()
                    .all(|r| *r != Replication::None),
                producers: w.producers,
                consumers: w.groups.iter().map(|g| g.consumers).sum(),
            };
            fault_step::validate(&f.steps, census, self.durations.faults_ms)
                .map_err(|why| ("steps", why))?;
        }
        if let Some(swarm) = &self.swarm {
            swarm.validate()?;
        }
        Ok(())
    }

    /// Every variant of the matrix, in a fixed order (flush major).
    pub fn variants(&self, stem: &str) -> Vec<Scenario> {
        let mut flushes = self.cluster.flush.values();
        let mut replications = self.cluster.replication.values();
        if self.swarm.is_some() {
            // The seed draws flush and replication (`swarm::draw`); the one variant
            // carries the envelope's first values until then.
            flushes.truncate(1);
            replications.truncate(1);
        }
        let matrix = flushes.len() * replications.len() > 1;
        let mut out = Vec::new();
        for &flush in &flushes {
            for &replication in &replications {
                let name = if matrix {
                    format!(
                        "{stem}[flush={},replication={}]",
                        flush_name(flush),
                        replication_name(replication)
                    )
                } else {
                    stem.to_string()
                };
                out.push(Scenario {
                    name,
                    file: self.clone(),
                    flush,
                    replication,
                });
            }
        }
        out
    }
}

pub fn flush_name(f: FlushMode) -> &'static str {
    match f {
        FlushMode::SyncFlush => "sync_flush",
        FlushMode::AsyncFlush => "async_flush",
    }
}

pub fn replication_name(r: Replication) -> &'static str {
    match r {
        Replication::None => "none",
        Replication::Sync => "sync",
        Replication::Async => "async",
    }
}

/// The first line that assigns `key` (for errors found after parsing).
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// A loaded scenario file and its variants.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    pub path: String,
    pub stem: String,
    pub file: ScenarioFile,
    pub variants: Vec<Scenario>,
}

impl LoadedScenario {
    pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: shown.clone(),
            line: None,
            message: e.to_string(),
        })?;
        let file = ScenarioFile::parse(&shown, &text)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| shown.clone());
        let variants = file.variants(&stem);
        Ok(LoadedScenario {
            path: shown,
            stem,
            file,
            variants,
        })
    }

    /// The variant seed `seed` runs.
    pub fn variant_for(&self, seed: u64) -> &Scenario {
        &self.variants[(seed % self.variants.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
description = "test"
[cluster]
name_servers = 1
broker_groups = 1
flush = ["sync_flush", "async_flush"]
replication = "none"
[workload]
topic = "TopicTest"
producers = 1
send_interval_ms = [100, 200]
body_bytes = [10, 20]
tags = ["a"]
groups = [{ name = "g", tags = "*", consumers = 1, model = "clustering" }]
[faults]
kinds = ["power_cut"]
targets = ["masters"]
every_ms = [1000, 2000]
down_ms = [100, 200]
[durations]
faults_ms = 10000
quiet_ms = 10000
"#;

    #[test]
    fn parses_and_expands_a_matrix() {
        let f = ScenarioFile::parse("t.toml", GOOD).unwrap();
        let v = f.variants("t");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].name, "t[flush=sync_flush,replication=none]");
        assert_eq!(v[1].flush, FlushMode::AsyncFlush);
    }

    #[test]
    fn promise_defaults_to_rocketmq_and_may_be_overridden() {
        let f = ScenarioFile::parse("t.toml", GOOD).unwrap();
        assert_eq!(f.promise, Promise::default());
        assert_eq!(f.promise.flush_interval_commit_log_ms, 500);
        assert_eq!(f.promise.flush_commit_log_thorough_interval_ms, 10_000);
        let text = format!("{GOOD}[promise]\nflush_interval_commit_log_ms = 200\n");
        let f = ScenarioFile::parse("t.toml", &text).unwrap();
        assert_eq!(f.promise.flush_interval_commit_log_ms, 200);
        assert_eq!(f.promise.slave_synchronize_interval_ms, 10_000);
        // The scenario's own bounds: left out, derived from the intervals.
        assert_eq!(f.promise.settle_after_heal_ms, None);
        let text = format!("{GOOD}[promise]\nsettle_after_heal_ms = 40000\nack_grace_ms = 1000\n");
        let f = ScenarioFile::parse("t.toml", &text).unwrap();
        assert_eq!(f.promise.settle_window_ms(), 40_000);
        assert_eq!(f.promise.ack_grace_window_ms(), 1_000);
        let text = format!("{GOOD}[promise]\nflush_intervl_ms = 200\n");
        let e = ScenarioFile::parse("t.toml", &text).unwrap_err();
        assert!(e.to_string().contains("flush_intervl_ms"), "{e}");
        assert_eq!(e.line, Some(24), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let bad = GOOD.replace("producers = 1", "producerz = 1");
        let e = ScenarioFile::parse("t.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(10), "{e}");
        assert!(e.to_string().contains("producerz"), "{e}");
        assert!(e.to_string().starts_with("t.toml:10:"), "{e}");

        let bad = GOOD.replace("name_servers = 1", "name_servers = \"one\"");
        let e = ScenarioFile::parse("t.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.starts_with("name_servers: "), "{e}");

        let bad = GOOD.replace("every_ms = [1000, 2000]", "every_ms = [3000, 2000]");
        let e = ScenarioFile::parse("t.toml", &bad).unwrap_err();
        assert_eq!(e.line, Some(18), "{e}");
        assert!(e.to_string().contains("every_ms"), "{e}");

        let bad = GOOD.replace("\"power_cut\"", "\"meteor\"");
        let e = ScenarioFile::parse("t.toml", &bad).unwrap_err();
        assert!(e.to_string().contains("meteor"), "{e}");
    }
}

/// The `[swarm]` section: the ranges a seed draws from (all inclusive). Every field has
/// a default, so `[swarm]` alone turns swarm testing on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmSpec {
    pub name_servers: [u32; 2],
    pub broker_groups: [u32; 2],
    pub queues: [u32; 2],
    /// Commit-log file size, drawn log-uniformly and rounded down to 4 KiB pages.
    pub commit_log_file_bytes: [u64; 2],
    pub producers: [u32; 2],
    /// A run's send interval `[lo, hi]`: both ends drawn log-uniformly in this range,
    /// so runs go from a message every millisecond to one every few seconds.
    pub send_interval_ms: [u64; 2],
    /// A run sends bursts (of up to a count drawn here) in one run out of two.
    pub burst: [u32; 2],
    /// A run's body sizes `[lo, hi]`: both ends drawn log-uniformly in this range.
    pub body_bytes: [u32; 2],
    /// Consumer groups per run.
    pub groups: [u32; 2],
    /// Consumers per group.
    pub consumers: [u32; 2],
    /// The chance (percent) that a group consumes in broadcasting mode.
    pub broadcasting_percent: u32,
    /// The chance (percent) that a group joins late — at a time drawn in the fault
    /// phase — and finds a backlog: what a crash takes from the page cache is then
    /// still unconsumed, so a loss shows as a loss.
    pub late_group_percent: u32,
    /// The chance (percent) that each of `[faults].targets` is on in a run (at least
    /// one is). Fault kinds are drawn by count first: a run has 0 (fault-free) to all of
    /// `[faults].kinds` on, each count as likely.
    pub target_percent: u32,
    /// A run's time between two planned faults `[lo, hi]`, drawn log-uniformly here.
    pub every_ms: [u64; 2],
    /// A run's fault duration `[lo, hi]`, drawn log-uniformly here.
    pub down_ms: [u64; 2],
    /// Faults aimed at a moment, per run.
    pub aimed_faults: [u32; 2],
    /// How long after its moment an aimed fault strikes (a group-commit strike always
    /// lands before the fsync can complete).
    pub aimed_delay_ms: [u64; 2],
    /// The fault phase's length.
    pub faults_ms: [u64; 2],
}

impl Default for SwarmSpec {
    fn default() -> Self {
        SwarmSpec {
            name_servers: [1, 2],
            broker_groups: [1, 3],
            queues: [1, 8],
            commit_log_file_bytes: [8 * 1024, 256 * 1024],
            producers: [1, 3],
            send_interval_ms: [1, 3_000],
            burst: [1, 32],
            body_bytes: [0, 8_192],
            groups: [1, 3],
            consumers: [1, 3],
            broadcasting_percent: 25,
            late_group_percent: 30,
            target_percent: 60,
            every_ms: [200, 10_000],
            down_ms: [5, 15_000],
            aimed_faults: [0, 6],
            aimed_delay_ms: [0, 30],
            faults_ms: [8_000, 40_000],
        }
    }
}

impl SwarmSpec {
    /// Each range is `[lo, hi]` with `lo <= hi`, and inside what a scenario accepts.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        fn range<T: PartialOrd + Copy + std::fmt::Display>(
            field: &'static str,
            r: [T; 2],
            min: T,
            max: T,
        ) -> Result<(), (&'static str, String)> {
            if r[0] <= r[1] && min <= r[0] && r[1] <= max {
                Ok(())
            } else {
                Err((
                    field,
                    format!("[swarm] wants [lo, hi] with {min} <= lo <= hi <= {max}"),
                ))
            }
        }
        range("name_servers", self.name_servers, 1, 8)?;
        range("broker_groups", self.broker_groups, 1, 16)?;
        range("queues", self.queues, 1, 64)?;
        range(
            "commit_log_file_bytes",
            self.commit_log_file_bytes,
            4096,
            1 << 30,
        )?;
        range("producers", self.producers, 1, 32)?;
        range("send_interval_ms", self.send_interval_ms, 1, 600_000)?;
        range("burst", self.burst, 1, 1000)?;
        range("body_bytes", self.body_bytes, 0, 64 * 1024)?;
        range("groups", self.groups, 1, 16)?;
        range("consumers", self.consumers, 1, 32)?;
        range(
            "broadcasting_percent",
            [self.broadcasting_percent; 2],
            0,
            100,
        )?;
        range("late_group_percent", [self.late_group_percent; 2], 0, 100)?;
        range("target_percent", [self.target_percent; 2], 0, 100)?;
        range("every_ms", self.every_ms, 1, u64::MAX / 4)?;
        range("down_ms", self.down_ms, 0, u64::MAX / 4)?;
        range("aimed_faults", self.aimed_faults, 0, 1000)?;
        range("aimed_delay_ms", self.aimed_delay_ms, 0, 600_000)?;
        range("faults_ms", self.faults_ms, 1, u64::MAX / 4)?;
        Ok(())
    }
}
