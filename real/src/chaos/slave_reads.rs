//! The slave-reads prologue (`--slave-reads`): RocketMQ's promise that a replicated
//! group's messages stay readable while its master is down, shown on real processes.
//!
//! Before the seeded steps, the producers load the cluster with no consumer running,
//! so every group holds a backlog. Then broker-a's master is killed (`kill -9`), and
//! the consumers start while it is down: the name server forgot the master when its
//! registration connection closed, so the route they read names only broker-a's slave,
//! and every message broker-a acknowledged must come to them from there. Once all of
//! them are delivered (or the quiet timeout passes) the master restarts, and the
//! seeded steps follow. A SYNC slave holds every acknowledged message, so none may be
//! missing; an ASYNC one may lack the last ones until its master returns, so the
//! prologue wants SYNC replication.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rmq_sim::history::{Entry, FaultKind};

use super::cluster::Cluster;
use super::scenario_out::Struck;
use super::schedule::{broker_name, Action};
use super::{clients, master_node, now_ms, undelivered, HarnessError, Options};

/// Load before the kill, with no consumer: the backlog the slave must serve.
const BACKLOG_LOAD_MS: u64 = 3_000;
/// After the kill, before the consumers start: the name server drops the master as
/// soon as its connection closes; this leaves room for that close to cross the proxy.
const ROUTE_DROPS_MS: u64 = 500;

/// What the prologue saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlaveReads {
    /// The broker group whose master was killed.
    pub group: String,
    /// Messages it had acknowledged when its master was killed (none consumed yet).
    pub backlog: usize,
    /// Deliveries of its messages while its master was down: its slave's.
    pub served: usize,
    /// Messages it acknowledged that were not delivered before the quiet timeout.
    pub missing: usize,
}

/// What the run records of the prologue.
pub(super) struct Prologue {
    pub reads: SlaveReads,
    pub faults: Vec<Entry>,
    pub struck: Struck,
    /// When the master was down (from, to).
    pub down_ms: (u64, u64),
}

/// Runs the prologue; `start_consumers` starts the consumers (while the master is
/// down).
pub(super) fn prologue(
    o: &Options,
    cluster: &mut Cluster,
    sink: &clients::Sink,
    start_consumers: impl FnOnce() -> Result<(), HarnessError>,
    progress: &mut dyn FnMut(&str),
) -> Result<Prologue, HarnessError> {
    let group = broker_name(0);
    let id = master_node(0);
    std::thread::sleep(Duration::from_millis(BACKLOG_LOAD_MS));
    progress(&format!(
        "slave reads: kill -9 the master of {group}; the consumers start and read its backlog from its slave"
    ));
    let master = &mut cluster.groups[0].master;
    let down_from_ms = now_ms();
    let mut faults = vec![Entry::Fault {
        at_ms: down_from_ms,
        kind: FaultKind::ProcessCrash,
        node: Some(id),
        detail: format!("kill -9 {} (slave reads)", master.name),
    }];
    master.kill9()?;
    let backlog = acked_by(sink, &group, down_from_ms).len();
    std::thread::sleep(Duration::from_millis(ROUTE_DROPS_MS));
    start_consumers()?;
    let waited = Instant::now();
    let missing = loop {
        let missing = undelivered(
            &sink.lock().unwrap_or_else(|e| e.into_inner()),
            Some(&group),
        );
        if missing == 0 || waited.elapsed() > Duration::from_millis(o.quiet_timeout_ms) {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let served_until_ms = now_ms();
    let served = sink
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| {
            matches!(e, Entry::Deliver { at_ms, broker, .. }
                if *broker == group && (down_from_ms..=served_until_ms).contains(at_ms))
        })
        .count();
    let master = &mut cluster.groups[0].master;
    master.spawn(o.start_timeout_ms)?;
    let up_ms = now_ms();
    faults.push(Entry::Fault {
        at_ms: up_ms,
        kind: FaultKind::Restart,
        node: Some(id),
        detail: format!("restart {}", master.name),
    });
    progress(&format!(
        "slave reads: {backlog} messages acknowledged by {group} before the kill; its slave served {served} deliveries; {missing} missing"
    ));
    Ok(Prologue {
        reads: SlaveReads {
            group,
            backlog,
            served,
            missing,
        },
        faults,
        struck: Struck {
            action: Action::Kill {
                down_ms: up_ms - down_from_ms,
            },
            node: id,
            from_ms: down_from_ms,
            until_ms: up_ms,
            peers: Vec::new(),
        },
        down_ms: (down_from_ms, up_ms),
    })
}

/// The wids `group` acknowledged up to `until_ms`.
fn acked_by(sink: &clients::Sink, group: &str, until_ms: u64) -> BTreeSet<u64> {
    sink.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(|e| match e {
            Entry::SendOk {
                at_ms, wid, broker, ..
            } if broker == group && *at_ms <= until_ms => Some(*wid),
            _ => None,
        })
        .collect()
}
