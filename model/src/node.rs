//! The sans-I/O node interface: every role (broker, name server, client) is a value that
//! reacts to [`Input`]s and asks for effects through [`Ctx`].
//!
//! Why sans-I/O: a node that never opens a socket, reads a clock or spawns a task can be
//! driven by the deterministic simulator (virtual time, seeded faults, byte-identical
//! replays) and by the real runtime (tokio, TCP, mmap) without knowing which. `Ctx` is
//! the only door to time, randomness, the network and the disk.
//!
//! Why a factory: boot is recovery. A node is *constructed from its disk* (what survived
//! the last crash), so drivers build nodes through a [`NodeFactory`]; plugging in another
//! implementation (a fork, a new design, a deliberately broken mutant) is a matter of
//! passing another factory, with every scenario and the checker unchanged.

use std::fmt;

use crate::store::disk::{Disk, DiskError, SyncTicket};

/// A node of the cluster, as the driver addresses it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A timer set through [`Ctx::set_timer`]; unique for the whole run, never reused, so a
/// stale id can never cancel or receive someone else's timer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer#{}", self.0)
    }
}

/// Everything that can happen to a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<M> {
    /// A message from a peer, delivered in send order while the connection lives.
    Packet { from: NodeId, msg: M },
    /// A timer set by this incarnation of the node fired; `kind` is the caller's tag.
    Timer { id: TimerId, kind: u64 },
    /// A sync requested through [`Ctx::disk`] finished (or failed: the disk is gone).
    SyncComplete {
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    },
    /// The connection to `peer` broke (partition, peer crash, refused connect): packets
    /// in flight on it are lost. The next send opens a new connection.
    ConnectionBroken { peer: NodeId },
}

/// What a node may ask of its driver. Effects are requests: a sent packet may be lost, a
/// requested sync completes later as [`Input::SyncComplete`].
pub trait Ctx<M> {
    fn me(&self) -> NodeId;
    /// This node's `ip:port`, as it registers with name servers and as peers dial it.
    fn my_addr(&self) -> String;
    /// The node listening at `ip:port`, if any: how a node turns an address learned from
    /// a route or a config into a peer it can send to.
    fn resolve(&mut self, addr: &str) -> Option<NodeId>;
    /// Virtual (simulated) or wall-clock milliseconds; the node cannot tell which.
    fn now_ms(&self) -> u64;
    /// Milliseconds of a clock that moves only forward, at the true rate, whatever is
    /// done to the wall clock (Java's `System.nanoTime`): for ages that must not stretch
    /// or shrink when an administrator or NTP steps the clock. Comparable only within
    /// one node's run.
    fn monotonic_ms(&self) -> u64;
    /// The node's only source of randomness: seeded by the driver so runs replay.
    fn random_u64(&mut self) -> u64;
    fn send(&mut self, to: NodeId, msg: M);
    /// Fires once, `after_ms` from now, as [`Input::Timer`] with this `kind`.
    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId;
    /// A cancelled timer never fires; cancelling a fired or unknown timer is a no-op.
    fn cancel_timer(&mut self, id: TimerId);
    /// The node's own disk. Reads and writes hit the page cache at once; syncs requested
    /// here complete later as [`Input::SyncComplete`].
    fn disk(&mut self) -> &mut dyn Disk;
}

/// A role's state machine.
pub trait Node<M> {
    /// Called once per incarnation, after construction (recovery) and before any input:
    /// the place to arm the first timers and greet peers.
    fn on_start(&mut self, _ctx: &mut dyn Ctx<M>) {}

    fn handle(&mut self, ctx: &mut dyn Ctx<M>, input: Input<M>);

    /// Asked to stop cleanly (SIGTERM): finish what must be finished (flushes, the
    /// abort marker) through the usual inputs, then report [`Node::is_stopped`].
    fn shutdown(&mut self, _ctx: &mut dyn Ctx<M>) {}

    /// True once a clean shutdown has finished and the process may exit.
    fn is_stopped(&self) -> bool {
        true
    }
}

/// Builds (boots, recovers) a node from what its disk holds. Called at first boot and at
/// every restart after a crash.
pub trait NodeFactory<M> {
    fn build(&self, id: NodeId, disk: &mut dyn Disk) -> Box<dyn Node<M>>;
}

/// Any closure is a factory, so a test can plug in a toy node or a mutant in one line.
impl<M, F> NodeFactory<M> for F
where
    F: Fn(NodeId, &mut dyn Disk) -> Box<dyn Node<M>>,
{
    fn build(&self, id: NodeId, disk: &mut dyn Disk) -> Box<dyn Node<M>> {
        self(id, disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_short() {
        assert_eq!(NodeId(3).to_string(), "n3");
        assert_eq!(TimerId(7).to_string(), "timer#7");
        assert!(NodeId(1) < NodeId(2));
    }
}
