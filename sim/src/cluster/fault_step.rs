//! An explicit fault schedule in a scenario: `[[faults.steps]]`, each fault at a fixed
//! time on a named node, instead of faults drawn from the seed. `mqchaos` writes the
//! schedule it ran against real processes this way, so the simulator can run the same
//! faults (a best-effort replay: the real run's timings are its machine's).
//!
//! ```toml
//! [[faults.steps]]
//! at_ms = 9200
//! kind = "kill"
//! node = "master 0"
//! until_ms = 10400          # the restart
//!
//! [[faults.steps]]
//! at_ms = 14000
//! kind = "partition"        # both ways, between the node and each peer
//! node = "master 0"
//! peers = ["name_server 0", "slave 0", "producer 0", "consumer 1"]
//! until_ms = 16500          # the heal
//! ```
//!
//! A `disk_damaged` step flips one bit in the node's commit log, then cuts its power
//! (drawn faults flip one to three), and its `until_ms` is the restart.
//!
//! Nodes are named by role and index: `name_server I`, `master G`, `slave G` (broker
//! group `G`), `producer I`, `consumer I` (the consumers of every group, in the
//! scenario's group order).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::fault_kind::FaultSpecKind;

/// A node by role and index (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NodeRef {
    NameServer(u32),
    Master(u32),
    Slave(u32),
    Producer(u32),
    Consumer(u32),
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (role, i) = match self {
            NodeRef::NameServer(i) => ("name_server", i),
            NodeRef::Master(i) => ("master", i),
            NodeRef::Slave(i) => ("slave", i),
            NodeRef::Producer(i) => ("producer", i),
            NodeRef::Consumer(i) => ("consumer", i),
        };
        write!(f, "{role} {i}")
    }
}

impl TryFrom<String> for NodeRef {
    type Error = String;

    fn try_from(text: String) -> Result<NodeRef, String> {
        let expected = || {
            format!(
                "{text:?}: a node as `ROLE INDEX`, ROLE one of name_server, master, slave, \
                 producer, consumer"
            )
        };
        let (role, index) = text.split_once(' ').ok_or_else(expected)?;
        let i: u32 = index.trim().parse().map_err(|_| expected())?;
        Ok(match role {
            "name_server" => NodeRef::NameServer(i),
            "master" => NodeRef::Master(i),
            "slave" => NodeRef::Slave(i),
            "producer" => NodeRef::Producer(i),
            "consumer" => NodeRef::Consumer(i),
            _ => return Err(expected()),
        })
    }
}

impl From<NodeRef> for String {
    fn from(node: NodeRef) -> String {
        node.to_string()
    }
}

/// One fault of an explicit schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultStep {
    /// When it strikes, ms after the simulated boot (the producers start at
    /// `WARMUP_MS`).
    pub at_ms: u64,
    pub kind: FaultSpecKind,
    pub node: NodeRef,
    /// The restart (crashes, clean restarts, damaged disks) or the heal (partitions,
    /// clogs, skews); none: the scenario's heal ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Link faults (partitions, clogs, resets): the other end of each link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<NodeRef>,
    /// A clog's added latency, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ms: Option<u64>,
    /// A clock skew's offset, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew_ms: Option<i64>,
}

impl FaultStep {
    fn is_link_fault(&self) -> bool {
        matches!(
            self.kind,
            FaultSpecKind::Partition
                | FaultSpecKind::OneWayPartition
                | FaultSpecKind::Clog
                | FaultSpecKind::ConnectionReset
        )
    }
}

/// How many nodes of each role a scenario variant has, to check steps against.
#[derive(Clone, Copy, Debug)]
pub struct Census {
    pub name_servers: u32,
    pub broker_groups: u32,
    /// Whether every variant has slaves.
    pub slaves: bool,
    pub producers: u32,
    pub consumers: u32,
}

impl Census {
    fn has(&self, node: NodeRef) -> bool {
        match node {
            NodeRef::NameServer(i) => i < self.name_servers,
            NodeRef::Master(g) => g < self.broker_groups,
            NodeRef::Slave(g) => self.slaves && g < self.broker_groups,
            NodeRef::Producer(i) => i < self.producers,
            NodeRef::Consumer(i) => i < self.consumers,
        }
    }
}

/// Checks every step against the cluster and the fault phase (`faults_ms`): the first
/// problem, naming the step.
pub fn validate(steps: &[FaultStep], census: Census, faults_ms: u64) -> Result<(), String> {
    for (n, s) in steps.iter().enumerate() {
        let fail = |why: String| {
            Err(format!(
                "step {} ({:?} of {}): {why}",
                n + 1,
                s.kind,
                s.node
            ))
        };
        if let Some(node) = std::iter::once(&s.node)
            .chain(&s.peers)
            .find(|&&node| !census.has(node))
        {
            return fail(format!("the cluster has no {node}"));
        }
        if s.at_ms >= faults_ms {
            return fail(format!(
                "at_ms {} is not before faults_ms {faults_ms}",
                s.at_ms
            ));
        }
        if s.until_ms.is_some_and(|u| u < s.at_ms) {
            return fail("until_ms is before at_ms".into());
        }
        if s.is_link_fault() {
            if s.peers.is_empty() {
                return fail("a link fault needs peers".into());
            }
            if s.peers.contains(&s.node) {
                return fail("a node is not its own peer".into());
            }
        } else if !s.peers.is_empty() {
            return fail("peers apply to link faults only".into());
        }
        if (s.kind == FaultSpecKind::Clog) != s.extra_ms.is_some() {
            return fail("extra_ms is a clog's, and a clog needs it".into());
        }
        if (s.kind == FaultSpecKind::ClockSkew) != s.skew_ms.is_some() {
            return fail("skew_ms is a clock skew's, and a clock skew needs it".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{validate, Census, FaultStep, NodeRef};
    use crate::cluster::fault_kind::FaultSpecKind;

    const CENSUS: Census = Census {
        name_servers: 1,
        broker_groups: 2,
        slaves: false,
        producers: 2,
        consumers: 3,
    };

    fn step(kind: FaultSpecKind, node: &str) -> FaultStep {
        FaultStep {
            at_ms: 7_000,
            kind,
            node: NodeRef::try_from(node.to_string()).unwrap(),
            until_ms: Some(8_000),
            peers: Vec::new(),
            extra_ms: None,
            skew_ms: None,
        }
    }

    #[test]
    fn node_names_read_back_as_written() {
        for text in [
            "name_server 0",
            "master 3",
            "slave 1",
            "producer 2",
            "consumer 9",
        ] {
            let node = NodeRef::try_from(text.to_string()).unwrap();
            assert_eq!(node.to_string(), text);
        }
        for bad in ["master", "master x", "broker 0", "", "slave -1"] {
            assert!(NodeRef::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn steps_are_checked_against_the_cluster_and_their_kind() {
        let ok = step(FaultSpecKind::Kill, "master 1");
        assert_eq!(validate(std::slice::from_ref(&ok), CENSUS, 30_000), Ok(()));
        let why = |s: FaultStep| validate(&[s], CENSUS, 30_000).unwrap_err();
        assert!(why(step(FaultSpecKind::Kill, "master 2")).contains("no master 2"));
        // No slaves in this cluster.
        assert!(why(step(FaultSpecKind::Kill, "slave 0")).contains("no slave 0"));
        assert!(why(FaultStep {
            at_ms: 30_000,
            ..ok.clone()
        })
        .contains("faults_ms"));
        assert!(why(FaultStep {
            until_ms: Some(6_000),
            ..ok.clone()
        })
        .contains("before at_ms"));
        assert!(why(step(FaultSpecKind::Partition, "master 0")).contains("needs peers"));
        let mut cut = step(FaultSpecKind::Partition, "master 0");
        cut.peers = vec![NodeRef::Master(0)];
        assert!(why(cut.clone()).contains("own peer"));
        cut.peers = vec![NodeRef::Consumer(2), NodeRef::NameServer(0)];
        assert_eq!(validate(std::slice::from_ref(&cut), CENSUS, 30_000), Ok(()));
        cut.kind = FaultSpecKind::Clog;
        assert!(why(cut.clone()).contains("extra_ms"));
        cut.extra_ms = Some(100);
        assert_eq!(validate(&[cut], CENSUS, 30_000), Ok(()));
        let mut kill = ok;
        kill.peers = vec![NodeRef::Producer(0)];
        assert!(why(kill).contains("link faults only"));
    }
}
