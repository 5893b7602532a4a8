//! The history: what clients observed and what the world did to the cluster, in true
//! simulator time. Workload drivers append to it; the checker reads it; it serializes to
//! JSON lines (one [`Entry`] per line) so a history from the real chaos harness can be
//! judged by the same checker.
//!
//! Every message a workload sends carries a unique workload id ([`WID_PROPERTY`]) in
//! its properties, so every delivery maps to exactly one send.

use std::io::{self, BufRead, Write};

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
    /// The longest an acknowledged record can stay only in the master's page cache
    /// under ASYNC_FLUSH (thorough-flush interval + flush interval + sync latency).
    pub async_flush_window_ms: u64,
    /// The longest an acknowledged record can stay only on the master under ASYNC
    /// replication.
    pub async_replication_window_ms: u64,
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

    /// Reads JSON lines; an error names the line.
    pub fn read_jsonl(input: &mut dyn BufRead) -> Result<History, String> {
        let mut entries = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let e = serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))?;
            entries.push(e);
        }
        Ok(History { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_json_lines() {
        let mut h = History::default();
        h.push(Entry::SendInvoke {
            at_ms: 5,
            client: 3,
            wid: 1,
            topic: "T".into(),
            tags: Some("a".into()),
            body_crc: 7,
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
        assert!(
            text.starts_with(r#"{"op":"send_invoke","at_ms":5"#),
            "{text}"
        );
        let back = History::read_jsonl(&mut buf.as_slice()).unwrap();
        assert_eq!(back, h);
        let err = History::read_jsonl(&mut "{\"op\":\"nope\"}\n".as_bytes()).unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
