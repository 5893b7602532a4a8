//! Faults: what the world does to the cluster — crashes and restarts, lost machines,
//! damaged disks, partitions, clogs, connection resets, clock skew — named as the
//! scenario and the history name them.

use std::fmt::{self, Debug};

use rmq_model::node::NodeId;

use crate::storage::disk::CrashKind;

use super::{Event, World};

/// Something the world does to the cluster, now or at a scheduled time.
///
/// A fault has one name from scenario to history: a scenario's `process_crash`
/// (or `kill`), `os_crash` and `power_cut` are [`Fault::Crash`] of that
/// [`CrashKind`], `machine_lost` is [`Fault::MachineLost`], `disk_damaged`
/// [`Fault::DiskDamaged`], `connection_reset` [`Fault::ConnectionReset`], and so on;
/// the history records each under the same name (see `fault_entry` in `runner.rs`:
/// a clean shutdown as `process_crash`, a connection reset as `partition`, the
/// classes the checker judges by).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The node's process, OS or power goes (`process_crash`, `os_crash`, `power_cut`).
    Crash {
        node: NodeId,
        kind: CrashKind,
    },
    /// Boots a crashed node from its disk. Ignored if it is up or its machine is lost.
    Restart {
        node: NodeId,
    },
    /// Power cut, then the disk is gone and the node never boots again.
    MachineLost {
        node: NodeId,
    },
    /// A clean stop (SIGTERM): the node finishes its shutdown, then its process exits.
    CleanShutdown {
        node: NodeId,
    },
    /// Bit rot: `bits` single-bit flips in random sectors of files under `path_prefix`.
    DiskDamaged {
        node: NodeId,
        path_prefix: String,
        bits: u32,
    },
    /// The connection between `a` and `b` is reset (RST): in-flight packets are lost
    /// and both ends see the break; the next send reconnects.
    ConnectionReset {
        a: NodeId,
        b: NodeId,
    },
    /// The node's clock reads `skew_ms` off the true time from now on.
    ClockSkew {
        node: NodeId,
        skew_ms: i64,
    },
    /// Cuts `a -> b`, and `b -> a` unless `one_way`.
    Partition {
        a: NodeId,
        b: NodeId,
        one_way: bool,
    },
    Heal {
        a: NodeId,
        b: NodeId,
    },
    HealAll,
    Clog {
        from: NodeId,
        to: NodeId,
        extra_ms: u64,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Crash { node, kind } => {
                // The trace keeps the words it had before faults had one name from
                // scenario to history: trace lines feed the run's fingerprint.
                let kind = match kind {
                    CrashKind::ProcessCrash => "Process",
                    CrashKind::OsCrash => "Os",
                    CrashKind::PowerCut => "PowerCut",
                };
                write!(f, "crash {node} {kind}")
            }
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::MachineLost { node } => write!(f, "lose machine {node}"),
            Fault::CleanShutdown { node } => write!(f, "shutdown {node}"),
            Fault::DiskDamaged {
                node,
                path_prefix,
                bits,
            } => write!(f, "damage {node} disk {path_prefix}* ({bits} bits)"),
            Fault::ClockSkew { node, skew_ms } => write!(f, "clock skew {node} {skew_ms:+}ms"),
            Fault::ConnectionReset { a, b } => write!(f, "reset connection {a} <-> {b}"),
            Fault::Partition { a, b, one_way } => {
                let arrow = if *one_way { "->" } else { "<->" };
                write!(f, "partition {a} {arrow} {b}")
            }
            Fault::Heal { a, b } => write!(f, "heal {a} <-> {b}"),
            Fault::HealAll => write!(f, "heal all"),
            Fault::Clog { from, to, extra_ms } => write!(f, "clog {from} -> {to} +{extra_ms}ms"),
        }
    }
}

/// A fault as it happened, for the checker's allowance and for failure reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    pub at_ms: u64,
    pub fault: Fault,
}

impl<M: Debug + 'static> World<M> {
    /// Schedules `fault` at `at_ms` (not in the past).
    pub fn schedule(&mut self, at_ms: u64, fault: Fault) {
        self.push(at_ms, Event::Fault(Box::new(fault)));
    }

    /// Injects `fault` now.
    pub fn inject(&mut self, fault: Fault) {
        let line = self.apply_fault(fault);
        self.record(line);
    }

    pub fn crash(&mut self, node: NodeId, kind: CrashKind) {
        self.inject(Fault::Crash { node, kind });
    }

    pub fn restart(&mut self, node: NodeId) {
        self.inject(Fault::Restart { node });
    }

    pub fn lose_machine(&mut self, node: NodeId) {
        self.inject(Fault::MachineLost { node });
    }

    pub fn partition(&mut self, a: NodeId, b: NodeId, one_way: bool) {
        self.inject(Fault::Partition { a, b, one_way });
    }

    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        self.inject(Fault::Heal { a, b });
    }

    pub fn heal_all(&mut self) {
        self.inject(Fault::HealAll);
    }

    pub fn clog(&mut self, from: NodeId, to: NodeId, extra_ms: u64) {
        self.inject(Fault::Clog { from, to, extra_ms });
    }

    pub(super) fn apply_fault(&mut self, fault: Fault) -> String {
        let line = self.apply_fault_inner(fault.clone());
        // Only faults that took effect count for the checker's allowance; a deferred
        // restart counts when it boots the node.
        if !line.contains("(ignored") && !line.contains("(deferred") {
            self.faults.push(FaultRecord {
                at_ms: self.now_ms,
                fault,
            });
        }
        line
    }

    pub(super) fn apply_fault_inner(&mut self, fault: Fault) -> String {
        match fault {
            Fault::Crash { node, kind } => {
                if !self.is_up(node) {
                    return format!("fault {fault} (ignored: already down)");
                }
                let restart = self.slot(node).restart_when_stopped;
                self.crash_now(node, kind);
                if restart {
                    // The crash cut a clean shutdown short; the restart it was waiting
                    // for happens now.
                    self.boot_deferred(node);
                }
            }
            Fault::Restart { node } => {
                let slot = self.slot(node);
                if slot.lost {
                    return format!("fault {fault} (ignored: machine lost)");
                }
                if slot.node.is_some() && slot.stopping {
                    // A clean shutdown takes a few milliseconds (flushes, unregistering);
                    // a restart asked for meanwhile (the heal restarts every node) must
                    // not be lost, or the node would stay down for the rest of the run.
                    self.slot_mut(node).restart_when_stopped = true;
                    return format!("fault {fault} (deferred: stopping)");
                }
                if slot.node.is_some() {
                    return format!("fault {fault} (ignored: already up)");
                }
                self.boot(node);
            }
            Fault::MachineLost { node } => {
                if self.is_up(node) {
                    self.crash_now(node, CrashKind::PowerCut);
                }
                let slot = self.slot_mut(node);
                slot.lost = true;
                slot.disk.lose_disk();
            }
            Fault::CleanShutdown { node } => {
                if !self.is_up(node) {
                    return format!("fault {fault} (ignored: already down)");
                }
                self.slot_mut(node).stopping = true;
                self.run_node(node, |n, ctx| n.shutdown(ctx));
            }
            Fault::DiskDamaged {
                node,
                ref path_prefix,
                bits,
            } => {
                let slot = self.slot_mut(node);
                let mut hits = Vec::new();
                for _ in 0..bits {
                    if let Some(d) = slot.disk.rot(&mut slot.disk_fault_rng, path_prefix) {
                        hits.push(format!("{}@{}", d.path, d.byte_offset));
                    }
                }
                return format!("fault {fault}: {}", hits.join(" "));
            }
            Fault::ClockSkew { node, skew_ms } => self.slot_mut(node).clock_skew_ms = skew_ms,
            Fault::ConnectionReset { a, b } => {
                if !self.net.break_conn(a, b) {
                    return format!("fault {fault} (ignored: no open connection)");
                }
                self.notify_broken(a, b);
                self.notify_broken(b, a);
            }
            Fault::Partition { a, b, one_way } => {
                if self.net.partition(a, b, one_way) {
                    self.notify_broken(a, b);
                    self.notify_broken(b, a);
                }
            }
            Fault::Heal { a, b } => self.net.heal(a, b),
            Fault::HealAll => self.net.heal_all(),
            Fault::Clog { from, to, extra_ms } => self.net.clog(from, to, extra_ms),
        }
        format!("fault {fault}")
    }

    pub(super) fn crash_now(&mut self, node: NodeId, kind: CrashKind) {
        let slot = self.slot_mut(node);
        slot.node = None;
        slot.stopping = false;
        slot.restart_when_stopped = false;
        slot.timers.clear();
        slot.boot_epoch += 1;
        slot.last_sync_due_ms = 0;
        slot.disk.crash(kind, &mut slot.disk_fault_rng);
        for peer in self.net.break_all_of(node) {
            self.notify_broken(peer, node);
        }
    }
}
