//! Hosting a node: its [`Ctx`] (the only door to time, randomness, network and disk),
//! booting it through the factory, running its handlers and applying the effects they
//! ask for.

use std::fmt::Debug;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rmq_model::node::{Ctx, Node, NodeId, TimerId};
use rmq_model::store::disk::Disk;

use crate::storage::disk::{CrashKind, SimDisk};

use super::{
    node_of_addr, sim_addr, Event, Fault, FaultRecord, Observed, World, MAX_SYNC_LATENCY_MS,
    MIN_SYNC_LATENCY_MS,
};

pub(super) enum Effect<M> {
    Send { to: NodeId, msg: M },
    SetTimer { id: TimerId, at_ms: u64, kind: u64 },
    CancelTimer(TimerId),
}

/// The `Ctx` a node sees during one handler call. Effects are collected and applied in
/// order after the handler returns, so the node never observes the world mid-change.
pub(super) struct SimCtx<'a, M> {
    me: NodeId,
    node_count: u32,
    /// The node's clock (skewed).
    now_ms: u64,
    /// The world's clock, which timers are scheduled on.
    true_now_ms: u64,
    rng: &'a mut ChaCha8Rng,
    disk: &'a mut SimDisk,
    next_timer_id: &'a mut u64,
    effects: Vec<Effect<M>>,
}

impl<M> Ctx<M> for SimCtx<'_, M> {
    fn me(&self) -> NodeId {
        self.me
    }

    fn my_addr(&self) -> String {
        sim_addr(self.me)
    }

    fn resolve(&mut self, addr: &str) -> Option<NodeId> {
        node_of_addr(addr).filter(|n| n.0 < self.node_count)
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }

    fn monotonic_ms(&self) -> u64 {
        // A skew steps the node's wall clock, never the rate its time passes at.
        self.true_now_ms
    }

    fn random_u64(&mut self) -> u64 {
        self.rng.random()
    }

    fn send(&mut self, to: NodeId, msg: M) {
        self.effects.push(Effect::Send { to, msg });
    }

    fn set_timer(&mut self, after_ms: u64, kind: u64) -> TimerId {
        let id = TimerId(*self.next_timer_id);
        *self.next_timer_id += 1;
        let at_ms = self.true_now_ms + after_ms;
        self.effects.push(Effect::SetTimer { id, at_ms, kind });
        id
    }

    fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer(id));
    }

    fn disk(&mut self) -> &mut dyn Disk {
        &mut *self.disk
    }
}

impl<M: Debug + 'static> World<M> {
    /// Builds the node from its disk and starts it.
    pub(super) fn boot(&mut self, id: NodeId) {
        let slot = self.slot_mut(id);
        assert!(slot.node.is_none(), "{id} is already up");
        assert!(!slot.lost, "{id}'s machine is lost");
        let node = self.factory.build(id, &mut self.slots[id.0 as usize].disk);
        self.slots[id.0 as usize].node = Some(node);
        // Recovery may have asked for syncs before on_start.
        self.schedule_new_syncs(id);
        self.run_node(id, |node, ctx| node.on_start(ctx));
    }

    /// Runs one handler of `id` (which must be up) and applies what it asked for.
    pub(super) fn run_node(
        &mut self,
        id: NodeId,
        f: impl FnOnce(&mut dyn Node<M>, &mut dyn Ctx<M>),
    ) {
        let node_count = self.slots.len() as u32;
        let slot = &mut self.slots[id.0 as usize];
        let mut node = slot.node.take().expect("handlers run only on live nodes");
        let mut ctx = SimCtx {
            me: id,
            node_count,
            now_ms: self.now_ms.saturating_add_signed(slot.clock_skew_ms),
            true_now_ms: self.now_ms,
            rng: &mut slot.node_rng,
            disk: &mut slot.disk,
            next_timer_id: &mut self.next_timer_id,
            effects: std::mem::take(&mut self.effects),
        };
        f(node.as_mut(), &mut ctx);
        let mut effects = ctx.effects;
        let exits = slot.stopping && node.is_stopped();
        slot.node = Some(node);
        for effect in effects.drain(..) {
            self.apply_effect(id, effect);
        }
        // Hand the (empty) buffer back; a handler that ran meanwhile (none does: effects
        // are applied, not run) would have left its own, which is as good.
        self.effects = effects;
        self.schedule_new_syncs(id);
        if exits {
            // The process exits after a clean shutdown: memory gone, page cache kept.
            let restart = std::mem::take(&mut self.slot_mut(id).restart_when_stopped);
            self.crash_now(id, CrashKind::ProcessCrash);
            self.record(format!("{id} stopped cleanly"));
            if restart {
                self.boot_deferred(id);
            }
        }
    }

    /// Performs a restart that was deferred while `id` was stopping, and records it
    /// as the fault it is.
    pub(super) fn boot_deferred(&mut self, id: NodeId) {
        let fault = Fault::Restart { node: id };
        self.record(format!("fault {fault} (deferred until stopped)"));
        self.faults.push(FaultRecord {
            at_ms: self.now_ms,
            fault,
        });
        self.boot(id);
    }

    pub(super) fn apply_effect(&mut self, me: NodeId, effect: Effect<M>) {
        match effect {
            Effect::Send { to, msg } => {
                assert!(to.0 < self.node_count(), "{me} sends to unknown {to}");
                // A cut link drops the packet; a down peer refuses the connection.
                // Either way only the sender hears of it.
                if self.net.is_blocked(me, to) || !self.is_up(to) {
                    self.notify_broken(me, to);
                    return;
                }
                let delivery = self
                    .net
                    .send(self.now_ms, me, to)
                    .expect("not blocked: checked above");
                self.push(
                    delivery.at_ms,
                    Event::Packet {
                        from: me,
                        to,
                        conn_epoch: delivery.conn_epoch,
                        msg: Box::new(msg),
                    },
                );
            }
            Effect::SetTimer { id, at_ms, kind } => {
                let slot = self.slot_mut(me);
                slot.timers.insert(id);
                let boot_epoch = slot.boot_epoch;
                self.push(
                    at_ms,
                    Event::Timer {
                        node: me,
                        boot_epoch,
                        id,
                        kind,
                    },
                );
            }
            Effect::CancelTimer(id) => {
                self.slot_mut(me).timers.remove(&id);
            }
        }
    }

    /// Schedules completions of the syncs `node` requested since the last call.
    pub(super) fn schedule_new_syncs(&mut self, node: NodeId) {
        let slot = self.slot(node);
        // Most handlers request no sync: nothing newer than what was scheduled.
        if slot.disk.newest_ticket() <= slot.last_sync_scheduled {
            return;
        }
        let now_ms = self.now_ms;
        // The world's buffer, reused.
        let mut due = std::mem::take(&mut self.syncs_due);
        let slot = self.slot_mut(node);
        for ticket in slot.disk.pending_syncs_after(slot.last_sync_scheduled) {
            let latency_ms = slot
                .sync_latency_rng
                .random_range(MIN_SYNC_LATENCY_MS..=MAX_SYNC_LATENCY_MS);
            let at_ms = (now_ms + latency_ms).max(slot.last_sync_due_ms);
            slot.last_sync_due_ms = at_ms;
            slot.last_sync_scheduled = Some(ticket);
            due.push((at_ms, ticket));
        }
        let boot_epoch = slot.boot_epoch;
        let requested = !due.is_empty();
        for (at_ms, ticket) in due.drain(..) {
            self.push(
                at_ms,
                Event::SyncDue {
                    node,
                    boot_epoch,
                    ticket,
                },
            );
        }
        self.syncs_due = due;
        if requested && !self.triggers.is_empty() {
            self.observe(Observed::SyncRequested { node });
        }
    }

    /// Tells `node` (if up) that its connection to `peer` broke, after the notice delay.
    pub(super) fn notify_broken(&mut self, node: NodeId, peer: NodeId) {
        let at_ms = self.now_ms + self.net.config().break_notice_ms;
        let slot = self.slot(node);
        if slot.node.is_none() {
            return;
        }
        let boot_epoch = slot.boot_epoch;
        self.push(
            at_ms,
            Event::Broken {
                node,
                boot_epoch,
                peer,
            },
        );
    }
}
