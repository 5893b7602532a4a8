//! The history: what clients observed and what the world did to the cluster, in true
//! simulator time. Workload drivers append to it; the checker reads it; it serializes to
//! JSON lines (one [`Entry`] per line) so a history from the real chaos harness can be
//! judged by the same checker.
//!
//! Every message a workload sends carries a unique workload id ([`WID_PROPERTY`]) in
//! its properties, so every delivery maps to exactly one send.

use std::io::{self, BufRead, Write};

use rmq_model::message::{is_system_property, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
use serde::{Deserialize, Serialize};

/// The message property carrying the workload id.
pub const WID_PROPERTY: &str = "WID";

/// How a broker group flushes its commit log (`flushDiskType`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushMode {
    SyncFlush,
    AsyncFlush,
}

/// How a broker group replicates (`brokerRole` of its master; `None`: no slave).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    None,
    Sync,
    Async,
}

/// One broker group as the checker needs to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerGroupMeta {
    pub broker_name: String,
    pub master_node: u32,
    pub slave_node: Option<u32>,
    pub flush: FlushMode,
    pub replication: Replication,
}

/// The timing promises the run was judged against: declared by the scenario's
/// `[promise]` section, recorded in `Meta`, and the only windows the checker reads —
/// never the configuration of the broker under test, so a broker that flushes or
/// replicates less often than declared fails instead of widening its own allowance.
///
/// Defaults are RocketMQ's documented values (`docs/history.md` lists each field with
/// its RocketMQ name). Every field has a default, so a history or a scenario names
/// only what it changes; a new promise is one more field here with its default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Promise {
    /// `flushIntervalCommitLog`: an ASYNC_FLUSH master looks at its page cache at
    /// least this often (and a master with a slave ships new records at least this
    /// often).
    pub flush_interval_commit_log_ms: u64,
    /// `flushCommitLogThoroughInterval`: an ASYNC_FLUSH master flushes everything at
    /// least this often, however few pages are dirty.
    pub flush_commit_log_thorough_interval_ms: u64,
    /// Not a RocketMQ setting: the longest one fsync of the commit log takes once
    /// issued (the simulator's disks take at most 10 ms; a real-disk harness declares
    /// its own).
    pub fsync_max_ms: u64,
    /// `haSendHeartbeatInterval`: a slave reports to its master this often; a slave
    /// cut off reconnects within two of these.
    pub ha_send_heartbeat_interval_ms: u64,
    /// SlaveSynchronize's period (fixed in `BrokerController`): how often a slave
    /// copies its master's consumer offsets.
    pub slave_synchronize_interval_ms: u64,
    /// `flushConsumerOffsetInterval`: a broker persists consumer offsets this often.
    pub flush_consumer_offset_interval_ms: u64,
    /// `persistConsumerOffsetInterval`: a consumer commits its offsets this often.
    pub persist_consumer_offset_interval_ms: u64,
    /// `rocketmq.client.rebalance.waitInterval`: a consumer rebalances this often.
    pub rebalance_interval_ms: u64,
    /// `BROKER_SUSPEND_MAX_TIME_MILLIS`: the longest a broker holds a long-polling pull
    /// before answering it.
    pub broker_suspend_max_time_ms: u64,
    /// `haHousekeepingInterval`: a master drops a slave connection silent this long,
    /// and a reconnected slave catches up within it, so a fault on the slave this long
    /// before a send may still explain a slave status.
    pub ha_housekeeping_interval_ms: u64,
    /// `pollNameServerInterval` (client): producers and consumers refresh their topic
    /// routes this often.
    pub poll_name_server_interval_ms: u64,
    /// `registerNameServerPeriod` (broker): a broker registers with every name server
    /// this often, so a restarted name server knows it again within one period.
    pub register_name_server_period_ms: u64,
    /// `heartbeatBrokerInterval` (client): a client heartbeats every broker of its
    /// routes this often, so a restarted broker knows a group's consumers again within
    /// one interval.
    pub heartbeat_broker_interval_ms: u64,
    /// Not a RocketMQ setting — the scenario's own bound: how long after the heal every
    /// delivery still owed is made and the cluster has settled. `None` (the default):
    /// [`Promise::settle_window_ms`]'s derivation from RocketMQ's intervals.
    pub settle_after_heal_ms: Option<u64>,
    /// Not a RocketMQ setting — the scenario's own bound: send to first delivery for a
    /// message sent once the cluster settled (a held pull is woken by its arrival).
    pub settled_delivery_ms: u64,
    /// Not a RocketMQ setting — the scenario's own bound: how long after the heal a
    /// send may still fail or answer weaker than SEND_OK. `None` (the default):
    /// [`Promise::ack_grace_window_ms`]'s derivation.
    pub ack_grace_ms: Option<u64>,
}

impl Default for Promise {
    fn default() -> Self {
        Promise {
            flush_interval_commit_log_ms: 500,
            flush_commit_log_thorough_interval_ms: 10_000,
            fsync_max_ms: 10,
            ha_send_heartbeat_interval_ms: 5_000,
            slave_synchronize_interval_ms: 10_000,
            flush_consumer_offset_interval_ms: 5_000,
            persist_consumer_offset_interval_ms: 5_000,
            rebalance_interval_ms: 20_000,
            broker_suspend_max_time_ms: 15_000,
            ha_housekeeping_interval_ms: 20_000,
            poll_name_server_interval_ms: 30_000,
            register_name_server_period_ms: 30_000,
            heartbeat_broker_interval_ms: 30_000,
            settle_after_heal_ms: None,
            settled_delivery_ms: 5_000,
            ack_grace_ms: None,
        }
    }
}

impl Promise {
    /// The longest an acknowledged record may live only in an ASYNC_FLUSH master's
    /// page cache: the thorough flush is due within its interval, looked for every
    /// flush interval, and then takes one fsync.
    pub fn async_flush_window_ms(&self) -> u64 {
        self.flush_commit_log_thorough_interval_ms
            .saturating_add(self.flush_interval_commit_log_ms)
            .saturating_add(self.fsync_max_ms)
    }

    /// The longest a strongly acknowledged record may live only on an ASYNC_MASTER
    /// while both ends are up: shipped within one flush interval and an fsync, and a
    /// dropped slave reconnects within two heartbeats.
    pub fn async_replication_window_ms(&self) -> u64 {
        self.flush_interval_commit_log_ms
            .saturating_add(self.fsync_max_ms)
            .saturating_add(self.ha_send_heartbeat_interval_ms.saturating_mul(2))
    }

    /// The longest two consumers of a clustering group both hold a queue without a
    /// fault: the old owner gives it up at its next rebalance (one rebalance interval)
    /// and its pull in flight may be held one long poll.
    pub fn handover_window_ms(&self) -> u64 {
        self.rebalance_interval_ms
            .saturating_add(self.broker_suspend_max_time_ms)
    }

    /// How long after a fault on a broker, a name server or a consumer the consumers
    /// of a group may still see different routes or consumer lists: a restarted name
    /// server learns a broker at its next registration and a client the route at its
    /// next poll; a restarted broker learns the consumers at their next heartbeat.
    pub fn view_convergence_ms(&self) -> u64 {
        self.register_name_server_period_ms
            .saturating_add(self.poll_name_server_interval_ms)
            .max(self.heartbeat_broker_interval_ms)
    }

    /// How long after the heal the cluster has settled and every delivery still owed is
    /// made: the declared `settle_after_heal_ms`, or by default one route poll (a broker
    /// restarted at the heal, or a name server lost, is learnt only then), one
    /// rebalance interval and one long-poll wake-up.
    pub fn settle_window_ms(&self) -> u64 {
        self.settle_after_heal_ms.unwrap_or_else(|| {
            self.poll_name_server_interval_ms
                .saturating_add(self.rebalance_interval_ms)
                .saturating_add(self.broker_suspend_max_time_ms)
        })
    }

    /// How long after the heal sends may still fail or answer weaker than SEND_OK: the
    /// declared `ack_grace_ms`, or by default one route poll (a producer keeps a stale
    /// route at most that long).
    pub fn ack_grace_window_ms(&self) -> u64 {
        self.ack_grace_ms
            .unwrap_or(self.poll_name_server_interval_ms)
    }
}

/// A consumer group's subscription, as the checker needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    pub group: String,
    pub topic: String,
    /// `*` or `a || b` (RocketMQ's tag expression).
    pub tag_expression: String,
    pub broadcasting: bool,
    /// Client nodes consuming for the group.
    pub consumers: Vec<u32>,
}

/// What happened to a node or a link: the faults the allowance is derived from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Process killed: memory lost, page cache kept.
    ProcessCrash,
    /// Memory and page cache lost.
    OsCrash,
    /// Memory and page cache lost; pages may be torn.
    PowerCut,
    /// The node rebooted from its disk.
    Restart,
    /// Power cut and the machine never comes back.
    MachineLost,
    /// Sectors of the disk were damaged (bit rot, unreadable sectors).
    DiskDamaged,
    Partition,
    Heal,
    Clog,
    ClockSkew,
}

/// What a RocketMQ user reads off a message besides its body, topic and tags, as the
/// producer set it (in `SendInvoke`) or the consumer saw it (in `Deliver`). Strings are
/// recorded as their CRC32 (IEEE, over the UTF-8 bytes, like `body_crc`), so an entry
/// stays small and the fields are compared without keeping them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageFields {
    /// CRC32 of KEYS (space-separated, as set); absent when the message has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_crc: Option<u32>,
    /// [`user_properties_crc`] of the user properties.
    pub props_crc: u32,
    /// bornTimestamp: the producer's own clock (it may be skewed) when the send
    /// began, ms.
    pub born_ms: i64,
    /// CRC32 of bornHost, the producer's address as `ip:port`.
    pub born_host_crc: u32,
    /// In a `Deliver`: CRC32 of the message id the consumer saw
    /// (`MessageExt.getMsgId`: the `UNIQ_KEY`, else the offset message id), to be
    /// compared with the `SendOk`'s `msg_id`. Absent in a `SendInvoke`: the producer
    /// learns the id with its `SendOk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id_crc: Option<u32>,
}

/// The digest of a message's user properties that histories record: the pairs whose
/// name is not one of RocketMQ's own ([`is_system_property`]), sorted by name then
/// value, each written as `name U+0001 value U+0002` (RocketMQ's property encoding),
/// then CRC32 (IEEE) of those bytes. No user property: CRC32 of nothing, 0.
pub fn user_properties_crc<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u32 {
    // Computed for every send and delivery: a message has a few user properties, so
    // they are sorted on the stack unless there are many.
    const ON_STACK: usize = 8;
    let mut few = [("", ""); ON_STACK];
    let mut many = Vec::new();
    let mut n = 0;
    for pair in pairs
        .into_iter()
        .filter(|(name, _)| !is_system_property(name))
    {
        if n < ON_STACK {
            few[n] = pair;
        } else {
            if many.is_empty() {
                many.extend_from_slice(&few);
            }
            many.push(pair);
        }
        n += 1;
    }
    let user = if n <= ON_STACK {
        &mut few[..n]
    } else {
        &mut many[..]
    };
    user.sort_unstable();
    let mut h = crc32fast::Hasher::new();
    for &(name, value) in user.iter() {
        h.update(name.as_bytes());
        h.update(&[NAME_VALUE_SEPARATOR as u8]);
        h.update(value.as_bytes());
        h.update(&[PROPERTY_SEPARATOR as u8]);
    }
    h.finalize()
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// First line: the run and the cluster.
    Meta {
        scenario: String,
        seed: u64,
        brokers: Vec<BrokerGroupMeta>,
        groups: Vec<GroupMeta>,
        /// When faults stop (heal) and when the quiet period ends (liveness is judged).
        heal_at_ms: u64,
        end_ms: u64,
        /// The declared timing promises; absent (older histories): the defaults.
        #[serde(default)]
        promise: Promise,
    },
    Fault {
        at_ms: u64,
        kind: FaultKind,
        node: Option<u32>,
        /// Free text: which link, how long, which sectors.
        detail: String,
    },
    SendInvoke {
        at_ms: u64,
        client: u32,
        wid: u64,
        topic: String,
        tags: Option<String>,
        body_crc: u32,
        /// Keys, user properties, born timestamp and host as sent; absent in
        /// histories written before they were recorded (then not compared).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fields: Option<MessageFields>,
    },
    /// SEND_OK or one of the stored-on-master statuses.
    SendOk {
        at_ms: u64,
        client: u32,
        wid: u64,
        status: SendStatus,
        broker: String,
        queue_id: i32,
        queue_offset: u64,
        /// The message id the producer was given (`SendResult.msgId`, the client's
        /// `UNIQ_KEY`).
        msg_id: String,
        /// The producer made this attempt after one whose outcome is unknown (a
        /// timeout or a broken connection after sending): a second copy of the message
        /// may be stored at another offset. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retried_after_unknown: bool,
    },
    /// The send failed: `definite` when no attempt may have stored it (every attempt
    /// was refused), otherwise unknown (a timeout: it may or may not be stored).
    SendFail {
        at_ms: u64,
        client: u32,
        wid: u64,
        definite: bool,
        reason: String,
        /// As in `SendOk`: an attempt followed one whose outcome is unknown, so two
        /// copies may be stored. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retried_after_unknown: bool,
    },
    /// A message handed to the application.
    Deliver {
        at_ms: u64,
        group: String,
        client: u32,
        topic: String,
        broker: String,
        queue_id: i32,
        queue_offset: u64,
        /// None if the message carries no workload id (never sent by the workload).
        wid: Option<u64>,
        reconsume_times: i32,
        body_crc: u32,
        tags: Option<String>,
        /// Keys, user properties, born timestamp and host, and the message id, as
        /// delivered; absent in older histories (then not compared).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fields: Option<MessageFields>,
    },
    /// The consumer now owns (or no longer owns) a queue. `start_offset` is where it
    /// begins pulling (the committed offset it resumed from).
    Own {
        at_ms: u64,
        group: String,
        client: u32,
        broker: String,
        topic: String,
        queue_id: i32,
        start_offset: u64,
        /// The broker id (0 = master) that answered the offset request the start came
        /// from; absent for a local offset file. A consumer asks a slave only when
        /// its route lists no master for the group.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset_from_broker_id: Option<u64>,
        /// The start is an offset the broker corrected (PULL_OFFSET_MOVED: the queue
        /// was truncated, or the consumer was past its end), not a committed offset
        /// read at a rebalance. Written only when true.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        offset_moved: bool,
    },
    Disown {
        at_ms: u64,
        group: String,
        client: u32,
        broker: String,
        topic: String,
        queue_id: i32,
    },
    /// The consumer sent (oneway) or a broker acknowledged a committed offset.
    Commit {
        at_ms: u64,
        group: String,
        client: u32,
        broker: String,
        topic: String,
        queue_id: i32,
        offset: u64,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

impl Entry {
    pub fn at_ms(&self) -> u64 {
        match self {
            Entry::Meta { .. } => 0,
            Entry::Fault { at_ms, .. }
            | Entry::SendInvoke { at_ms, .. }
            | Entry::SendOk { at_ms, .. }
            | Entry::SendFail { at_ms, .. }
            | Entry::Deliver { at_ms, .. }
            | Entry::Own { at_ms, .. }
            | Entry::Disown { at_ms, .. }
            | Entry::Commit { at_ms, .. } => *at_ms,
        }
    }
}

/// A history in memory, in the order things happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub entries: Vec<Entry>,
}

impl History {
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    pub fn write_jsonl(&self, out: &mut dyn Write) -> io::Result<()> {
        for e in &self.entries {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads a history written as JSON lines by anything (see `docs/history.md`),
    /// checking what the checker relies on: every line is one JSON object with a
    /// known `op` and fields of the right types; the first is the `meta` entry and
    /// no other is; entries are in time order, each at most
    /// [`TIME_DISORDER_TOLERANCE_MS`] earlier than the latest before it. An error
    /// names the line, and the field when one is wrong. Blank lines are skipped.
    pub fn read_jsonl(input: &mut dyn BufRead) -> Result<History, HistoryError> {
        let mut entries = Vec::new();
        // The latest time so far, and the line that had it.
        let mut latest: Option<(u64, usize)> = None;
        for (i, line) in input.lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| HistoryError::at(n, format!("unreadable: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let e = parse_line(&line).map_err(|m| HistoryError::at(n, m))?;
            if let Some((field, v)) = e.out_of_range() {
                return Err(HistoryError::at(
                    n,
                    format!(
                        "op \"{}\": field `{field}`: {v} is beyond {MAX_TIME_OR_OFFSET}, \
                         the largest time or offset a history may hold",
                        e.op_name()
                    ),
                ));
            }
            let is_meta = matches!(e, Entry::Meta { .. });
            match (entries.is_empty(), is_meta) {
                (true, false) => {
                    return Err(HistoryError::at(
                        n,
                        format!(
                        "the first entry must be the run's `meta` (op \"meta\"), found op \"{}\"",
                        e.op_name()
                    ),
                    ))
                }
                (false, true) => {
                    return Err(HistoryError::at(
                        n,
                        "a second `meta` entry: a history describes one run".to_string(),
                    ))
                }
                _ => {}
            }
            if !is_meta {
                let at = e.at_ms();
                match latest {
                    Some((max, max_line))
                        if at.saturating_add(TIME_DISORDER_TOLERANCE_MS) < max =>
                    {
                        return Err(HistoryError::at(
                            n,
                            format!(
                                "at_ms {at} is {} ms before at_ms {max} of line {max_line}: \
                                 entries must be in time order (at most \
                                 {TIME_DISORDER_TOLERANCE_MS} ms out of order)",
                                max - at
                            ),
                        ));
                    }
                    Some((max, _)) if at <= max => {}
                    _ => latest = Some((at, n)),
                }
            }
            entries.push(e);
        }
        if entries.is_empty() {
            return Err(HistoryError::at(
                1,
                "empty history: the first line must be the run's `meta` entry".to_string(),
            ));
        }
        Ok(History { entries })
    }
}

/// How far (in true time) an entry of a history file may come before one written
/// ahead of it: writers that merge the logs of several clients may interleave them
/// slightly out of order, and the checker puts them back in order. More than this
/// is taken for a broken writer (a clock in seconds, a history appended twice).
pub const TIME_DISORDER_TOLERANCE_MS: u64 = 1_000;

/// The largest time (ms) or queue offset a history file may hold: 2^53 - 1, the
/// largest integer every JSON reader keeps exact (285,000 years of milliseconds), so
/// the checker's arithmetic on times and offsets never overflows.
pub const MAX_TIME_OR_OFFSET: u64 = (1 << 53) - 1;

/// A history file the checker cannot read: which line and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line number in the file.
    pub line: usize,
    pub message: String,
}

impl HistoryError {
    fn at(line: usize, message: String) -> HistoryError {
        HistoryError { line, message }
    }
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HistoryError {}

/// Every `op` a history line may carry.
pub const OPS: [&str; 9] = [
    "meta",
    "fault",
    "send_invoke",
    "send_ok",
    "send_fail",
    "deliver",
    "own",
    "disown",
    "commit",
];

impl Entry {
    /// The first time or offset field past [`MAX_TIME_OR_OFFSET`], and its value.
    fn out_of_range(&self) -> Option<(&'static str, u64)> {
        let fields: [(&'static str, u64); 3] = match self {
            Entry::Meta {
                heal_at_ms, end_ms, ..
            } => [("heal_at_ms", *heal_at_ms), ("end_ms", *end_ms), ("", 0)],
            Entry::SendOk {
                at_ms,
                queue_offset,
                ..
            }
            | Entry::Deliver {
                at_ms,
                queue_offset,
                ..
            } => [("at_ms", *at_ms), ("queue_offset", *queue_offset), ("", 0)],
            Entry::Own {
                at_ms,
                start_offset,
                ..
            } => [("at_ms", *at_ms), ("start_offset", *start_offset), ("", 0)],
            Entry::Commit { at_ms, offset, .. } => {
                [("at_ms", *at_ms), ("offset", *offset), ("", 0)]
            }
            e => [("at_ms", e.at_ms()), ("", 0), ("", 0)],
        };
        fields.into_iter().find(|(_, v)| *v > MAX_TIME_OR_OFFSET)
    }

    /// The entry's `op` in the JSON form.
    pub fn op_name(&self) -> &'static str {
        match self {
            Entry::Meta { .. } => "meta",
            Entry::Fault { .. } => "fault",
            Entry::SendInvoke { .. } => "send_invoke",
            Entry::SendOk { .. } => "send_ok",
            Entry::SendFail { .. } => "send_fail",
            Entry::Deliver { .. } => "deliver",
            Entry::Own { .. } => "own",
            Entry::Disown { .. } => "disown",
            Entry::Commit { .. } => "commit",
        }
    }
}

/// serde_json's error, with its position made relative to the one line it read.
fn in_line(e: serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line 1 column ") {
        Some(i) => format!("{} at column {}", &text[..i], &text[i + 18..]),
        None => text,
    }
}

/// One line into an entry, or what is wrong with it (without the line number).
fn parse_line(line: &str) -> Result<Entry, String> {
    // The common case, fast: a well-formed entry.
    let first_err = match serde_json::from_str::<Entry>(line) {
        Ok(e) => return Ok(e),
        Err(e) => e,
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {}", in_line(e)))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("not a JSON object: each line is one entry, {\"op\": ...}".to_string());
    };
    let op = match obj.get("op") {
        Some(serde_json::Value::String(op)) => op.clone(),
        Some(other) => return Err(format!("\"op\" must be a string, found {other}")),
        None => return Err("no \"op\" field: each line is one entry, {\"op\": ...}".into()),
    };
    if !OPS.contains(&op.as_str()) {
        return Err(format!("unknown op \"{op}\" (known: {})", OPS.join(", ")));
    }
    let message = in_line(first_err);
    if message.starts_with("missing field") {
        return Err(format!("op \"{op}\": {message}"));
    }
    // Name the field: the one whose removal changes the error (serde stops at the
    // first bad field, and reports a missing one only once every field parsed).
    let field = obj.keys().filter(|k| *k != "op").find(|k| {
        let mut without = obj.clone();
        without.remove(*k);
        match serde_json::from_value::<Entry>(serde_json::Value::Object(without)) {
            Ok(_) => true,
            Err(e) => e.to_string() != message,
        }
    });
    match field {
        Some(f) if !message.contains(&format!("`{f}`")) => {
            Err(format!("op \"{op}\": field `{f}`: {message}"))
        }
        _ => Err(format!("op \"{op}\": {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Entry {
        Entry::Meta {
            scenario: "s".into(),
            seed: 1,
            brokers: Vec::new(),
            groups: Vec::new(),
            heal_at_ms: 10,
            end_ms: 20,
            promise: Promise::default(),
        }
    }

    #[test]
    fn round_trips_as_json_lines() {
        let mut h = History::default();
        h.push(meta());
        h.push(Entry::SendInvoke {
            at_ms: 5,
            client: 3,
            wid: 1,
            topic: "T".into(),
            tags: Some("a".into()),
            body_crc: 7,
            fields: None,
        });
        h.push(Entry::Fault {
            at_ms: 9,
            kind: FaultKind::PowerCut,
            node: Some(1),
            detail: String::new(),
        });
        let mut buf = Vec::new();
        h.write_jsonl(&mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with(r#"{"op":"meta","#), "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with(r#"{"op":"send_invoke","at_ms":5"#),
            "{text}"
        );
        let back = History::read_jsonl(&mut buf.as_slice()).unwrap();
        assert_eq!(back, h);
        let err = History::read_jsonl(&mut "{\"op\":\"nope\"}\n".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }

    /// A history written before `Meta.promise` existed (with the windows its brokers
    /// used to carry) still loads, judged by RocketMQ's default promises.
    #[test]
    fn old_meta_without_a_promise_loads_with_the_defaults() {
        let line = r#"{"op":"meta","scenario":"s","seed":1,"brokers":[{"broker_name":"b","master_node":1,"slave_node":null,"flush":"async_flush","replication":"none","async_flush_window_ms":10510,"async_replication_window_ms":10510}],"groups":[],"heal_at_ms":5,"end_ms":9}"#;
        let h = History::read_jsonl(&mut line.as_bytes()).unwrap();
        let Entry::Meta { promise, .. } = &h.entries[0] else {
            panic!("not a Meta: {:?}", h.entries[0]);
        };
        assert_eq!(*promise, Promise::default());
        assert_eq!(promise.async_flush_window_ms(), 10_510);
        let partial = line.replace(
            r#""end_ms":9}"#,
            r#""end_ms":9,"promise":{"fsync_max_ms":50}}"#,
        );
        let h = History::read_jsonl(&mut partial.as_bytes()).unwrap();
        let Entry::Meta { promise, .. } = &h.entries[0] else {
            panic!("not a Meta");
        };
        assert_eq!(promise.fsync_max_ms, 50);
        assert_eq!(promise.flush_interval_commit_log_ms, 500);
    }

    /// The checker's windows with RocketMQ's defaults are the values the rules used
    /// before they were promises; a declared interval moves every window built on it,
    /// and a declared bound replaces its derivation.
    #[test]
    fn derived_windows_follow_the_declared_intervals() {
        let p = Promise::default();
        assert_eq!(p.handover_window_ms(), 35_000);
        assert_eq!(p.view_convergence_ms(), 60_000);
        assert_eq!(p.settle_window_ms(), 65_000);
        assert_eq!(p.ack_grace_window_ms(), 30_000);
        let slow = Promise {
            rebalance_interval_ms: 60_000,
            poll_name_server_interval_ms: 45_000,
            heartbeat_broker_interval_ms: 120_000,
            ..Promise::default()
        };
        assert_eq!(slow.handover_window_ms(), 75_000);
        assert_eq!(slow.view_convergence_ms(), 120_000);
        assert_eq!(slow.settle_window_ms(), 120_000);
        assert_eq!(slow.ack_grace_window_ms(), 45_000);
        let declared = Promise {
            settle_after_heal_ms: Some(10_000),
            ack_grace_ms: Some(1_000),
            ..slow
        };
        assert_eq!(declared.settle_window_ms(), 10_000);
        assert_eq!(declared.ack_grace_window_ms(), 1_000);
    }

    const META: &str = r#"{"op":"meta","scenario":"s","seed":1,"brokers":[],"groups":[],"heal_at_ms":10,"end_ms":20}"#;
    const INVOKE: &str = r#"{"op":"send_invoke","at_ms":5000,"client":3,"wid":1,"topic":"T","tags":null,"body_crc":7}"#;

    fn read(lines: &[&str]) -> Result<History, HistoryError> {
        History::read_jsonl(&mut lines.join("\n").as_bytes())
    }

    fn error(lines: &[&str]) -> String {
        read(lines).expect_err("bad input").to_string()
    }

    #[test]
    fn bad_input_is_an_error_naming_the_line() {
        assert!(read(&[META, INVOKE]).is_ok());
        let e = error(&[META, "{\"op\":\"send_invoke\",", INVOKE]);
        assert!(e.starts_with("line 2: not JSON: "), "{e}");
        assert!(e.ends_with("EOF while parsing a value at column 20"), "{e}");
        let e = error(&[META, "", "[1, 2]"]);
        assert!(e.starts_with("line 3: not a JSON object"), "{e}");
        let e = error(&[META, r#"{"op":"send_ack","at_ms":1}"#]);
        assert!(
            e.starts_with("line 2: unknown op \"send_ack\" (known: meta, "),
            "{e}"
        );
        let e = error(&[META, r#"{"at_ms":1}"#]);
        assert!(e.starts_with("line 2: no \"op\" field"), "{e}");
        let e = error(&[META, r#"{"op":7}"#]);
        assert!(e.starts_with("line 2: \"op\" must be a string"), "{e}");
    }

    #[test]
    fn meta_must_come_first_and_once() {
        let e = error(&[INVOKE, META]);
        assert!(
            e.starts_with("line 1: the first entry must be the run's `meta`"),
            "{e}"
        );
        assert!(e.contains("found op \"send_invoke\""), "{e}");
        let e = error(&["", META, INVOKE, META]);
        assert!(e.starts_with("line 4: a second `meta` entry"), "{e}");
        let e = error(&[]);
        assert!(e.starts_with("line 1: empty history"), "{e}");
    }

    #[test]
    fn wrong_field_types_name_the_field() {
        let e = error(&[META, &INVOKE.replace("\"at_ms\":5000", "\"at_ms\":\"5s\"")]);
        assert_eq!(
            e,
            "line 2: op \"send_invoke\": field `at_ms`: invalid type: string \"5s\", expected u64"
        );
        let e = error(&[META, &INVOKE.replace("\"wid\":1", "\"wid\":-1")]);
        assert!(
            e.starts_with("line 2: op \"send_invoke\": field `wid`: "),
            "{e}"
        );
        let e = error(&[META, &INVOKE.replace(",\"body_crc\":7", "")]);
        assert_eq!(e, "line 2: op \"send_invoke\": missing field `body_crc`");
        let bad_promise = META.replace(
            "\"end_ms\":20",
            "\"end_ms\":20,\"promise\":{\"fsync_max_ms\":\"x\"}",
        );
        let e = error(&[&bad_promise]);
        assert!(
            e.starts_with("line 1: op \"meta\": field `promise`: "),
            "{e}"
        );
        let unknown_promise = META.replace(
            "\"end_ms\":20",
            "\"end_ms\":20,\"promise\":{\"flush_ms\":1}",
        );
        let e = error(&[&unknown_promise]);
        assert!(e.contains("flush_ms"), "{e}");
    }

    #[test]
    fn time_order_within_the_tolerance_only() {
        let at = |ms: u64| INVOKE.replace("5000", &ms.to_string());
        let within = at(5_000 - TIME_DISORDER_TOLERANCE_MS);
        assert!(read(&[META, INVOKE, &within]).is_ok());
        let beyond = at(5_000 - TIME_DISORDER_TOLERANCE_MS - 1);
        let huge = at(MAX_TIME_OR_OFFSET);
        assert!(read(&[META, INVOKE, &huge]).is_ok());
        let e = error(&[META, INVOKE, &at(u64::MAX)]);
        assert!(
            e.starts_with(
                "line 3: op \"send_invoke\": field `at_ms`: 18446744073709551615 is beyond"
            ),
            "{e}"
        );
        let e = error(&[&META.replace("\"end_ms\":20", "\"end_ms\":9007199254740992")]);
        assert!(
            e.starts_with("line 1: op \"meta\": field `end_ms`: "),
            "{e}"
        );
        let e = error(&[META, INVOKE, &at(4_500), &beyond]);
        assert_eq!(
            e,
            format!(
                "line 4: at_ms 3999 is 1001 ms before at_ms 5000 of line 2: entries must be \
                 in time order (at most {TIME_DISORDER_TOLERANCE_MS} ms out of order)"
            )
        );
    }

    proptest::proptest! {
        /// Whatever is written, reading returns a history or an error; never a panic.
        #[test]
        fn any_text_reads_or_errs(cut in 0usize..200, junk in "[ -~]{0,12}") {
            let text = format!("{META}\n{INVOKE}\n");
            let cut = cut.min(text.len());
            let mangled = format!("{}{junk}{}", &text[..cut], &text[cut..]);
            let _ = History::read_jsonl(&mut mangled.as_bytes());
        }
    }

    #[test]
    fn message_fields_round_trip_and_old_lines_still_load() {
        let fields = MessageFields {
            keys_crc: Some(crc32fast::hash(b"wid-1")),
            props_crc: user_properties_crc([("WID", "1"), ("TAGS", "ignored")]),
            born_ms: 42,
            born_host_crc: crc32fast::hash(b"10.0.0.5:10911"),
            msg_id_crc: None,
        };
        // System properties are not user properties.
        assert_eq!(fields.props_crc, user_properties_crc([("WID", "1")]));
        assert_eq!(user_properties_crc([]), 0);
        // Order does not matter, however many there are.
        let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let reversed: Vec<(&str, &str)> = pairs.iter().rev().copied().collect();
        assert_eq!(
            user_properties_crc(pairs.clone()),
            user_properties_crc(reversed)
        );
        assert_ne!(
            user_properties_crc(pairs.clone()),
            user_properties_crc(pairs[1..].to_vec())
        );
        let invoke = Entry::SendInvoke {
            at_ms: 5,
            client: 3,
            wid: 1,
            topic: "T".into(),
            tags: None,
            body_crc: 7,
            fields: Some(fields),
        };
        let line = serde_json::to_string(&invoke).unwrap();
        assert!(line.contains(r#""fields":{"keys_crc":"#), "{line}");
        assert!(!line.contains("msg_id_crc"), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), invoke);
        let old = r#"{"op":"deliver","at_ms":1,"group":"g","client":1,"topic":"T","broker":"b","queue_id":0,"queue_offset":0,"wid":1,"reconsume_times":0,"body_crc":7,"tags":null}"#;
        let back: Entry = serde_json::from_str(old).unwrap();
        assert!(matches!(back, Entry::Deliver { fields: None, .. }));
        let ok = r#"{"op":"send_ok","at_ms":1,"client":1,"wid":1,"status":"SEND_OK","broker":"b","queue_id":0,"queue_offset":0,"msg_id":"M"}"#;
        let back: Entry = serde_json::from_str(ok).unwrap();
        assert!(matches!(
            back,
            Entry::SendOk {
                retried_after_unknown: false,
                ..
            }
        ));
    }
}
