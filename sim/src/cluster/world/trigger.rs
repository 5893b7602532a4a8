//! Triggers: faults aimed at a moment the world observes (a packet of some kind
//! delivered, a node asking for an fsync), struck a given delay after it.

use std::fmt::{self, Debug};

use rmq_model::node::NodeId;

use super::{Fault, World};

/// A moment a [`Trigger`] waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    /// A packet from `from` (to `to`, if given) that the world's moment classifier
    /// (see [`World::set_moment_classifier`]) puts in class `moment`, delivered.
    Packet {
        from: NodeId,
        to: Option<NodeId>,
        moment: u32,
    },
    /// `node` asked its disk for an fsync (the completion is still to come).
    SyncRequested { node: NodeId },
}

/// What the world observed, matched against the armed triggers.
#[derive(Copy, Clone, Debug)]
pub(super) enum Observed {
    Packet {
        from: NodeId,
        to: NodeId,
        moment: u32,
    },
    SyncRequested {
        node: NodeId,
    },
}

impl Watch {
    pub(super) fn matches(&self, seen: Observed) -> bool {
        match (*self, seen) {
            (
                Watch::Packet { from, to, moment },
                Observed::Packet {
                    from: f,
                    to: t,
                    moment: m,
                },
            ) => from == f && moment == m && to.is_none_or(|to| to == t),
            (Watch::SyncRequested { node }, Observed::SyncRequested { node: n }) => node == n,
            _ => false,
        }
    }
}

impl fmt::Display for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Watch::Packet {
                from,
                to: Some(to),
                moment,
            } => write!(f, "packet of moment {moment} {from} -> {to}"),
            Watch::Packet {
                from,
                to: None,
                moment,
            } => write!(f, "packet of moment {moment} from {from}"),
            Watch::SyncRequested { node } => write!(f, "fsync requested by {node}"),
        }
    }
}

/// A fault aimed at a moment: from `armed_at_ms` on, the first moment matching `watch`
/// schedules each of `then` at that moment plus its offset. Nothing is struck at or
/// after `expires_at_ms` (the heal): a first fault due then is dropped with the rest,
/// and later ones (a restart, a heal) are pulled back to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub watch: Watch,
    pub armed_at_ms: u64,
    pub expires_at_ms: u64,
    /// Offsets in ms from the observed moment, ascending.
    pub then: Vec<(u64, Fault)>,
}

impl<M: Debug + 'static> World<M> {
    /// Arms a trigger; its faults are scheduled when its moment comes.
    pub fn arm(&mut self, trigger: Trigger) {
        assert!(!trigger.then.is_empty(), "a trigger strikes something");
        assert!(
            trigger.then.windows(2).all(|w| w[0].0 <= w[1].0),
            "a trigger's offsets ascend"
        );
        self.triggers.push(trigger);
    }

    /// Fires every armed trigger whose moment this is (and drops expired ones).
    pub(super) fn observe(&mut self, seen: Observed) {
        let now_ms = self.now_ms;
        let mut fired = Vec::new();
        self.triggers.retain(|t| {
            if now_ms >= t.expires_at_ms {
                return false;
            }
            if now_ms < t.armed_at_ms || !t.watch.matches(seen) {
                return true;
            }
            fired.push(t.clone());
            false
        });
        for t in fired {
            let first_at_ms = now_ms + t.then[0].0;
            if first_at_ms >= t.expires_at_ms {
                self.record(format!("trigger on {} expired at the heal", t.watch));
                continue;
            }
            let faults: Vec<String> = t.then.iter().map(|(_, f)| f.to_string()).collect();
            self.record(format!(
                "trigger on {} fired: {}",
                t.watch,
                faults.join(", ")
            ));
            for (offset_ms, fault) in t.then {
                self.schedule((now_ms + offset_ms).min(t.expires_at_ms), fault);
            }
        }
    }
}
