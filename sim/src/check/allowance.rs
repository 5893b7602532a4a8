//! The loss allowance: may this message have been lost without the broker breaking
//! a promise? Derived only from `Meta.brokers` and the faults that actually happened
//! (never from expectations written by hand), following the reliability table of
//! DESIGN.md.
//!
//! Every window is a declared promise (`Meta.promise`, see [`crate::history::Promise`]):
//! `async_flush_window_ms` and `async_replication_window_ms` below are its
//! [`Promise::async_flush_window_ms`](crate::history::Promise::async_flush_window_ms)
//! and [`Promise::async_replication_window_ms`](crate::history::Promise::async_replication_window_ms).
//!
//! Terms: M and S are the master and slave node of the broker group that stored the
//! message (the one that acked it, or for a message only proven by a delivery, the
//! one it was delivered from). A *strong* ack is `SendOk` with status SEND_OK; every
//! other status, and a message with no ack at all, is *weak*: we do not know that it
//! was flushed or replicated. `since` is the send's invoke time; `ack` the ack time.
//! MEDIA faults: `machine_lost`, `disk_damaged`. CACHE faults: `os_crash`,
//! `power_cut`, `machine_lost`. A message is allowed to be missing when one holds:
//!
//! 1. **single copy** — only M may have held it: replication `none`; or replication
//!    `async`/`sync` with a weak ack. Then any MEDIA fault of M at `t >= since`.
//!    Replication `async` with a strong ack: a MEDIA fault of M within
//!    `[ack, ack + async_replication_window_ms]` (the slave may not have received it),
//!    the window counted from the last restart of M or S inside it (or ending a down
//!    time of either that covers the ack), and open while either is still down: no
//!    record ships while one end is down, and a restarted slave first reconnects
//!    (RocketMQ's HAClient retries its master every 5 s).
//! 2. **master and slave lost** — a MEDIA fault of M at `t >= since` and a MEDIA fault
//!    of S (any time; at `t >= since` for a strong ack under sync replication, because
//!    then S did hold it) or a CACHE fault of S at `t >= since` (a slave acknowledges
//!    what it has written, before its own flush).
//! 3. **unflushed** — the record may have lived only in M's page cache: flush mode
//!    ASYNC_FLUSH, or a weak ack whose status does not say the disk flush completed
//!    (no ack, or FLUSH_DISK_TIMEOUT). Then a CACHE fault of M within
//!    `[ack, ack + async_flush_window_ms]` for a strong ack, at `t >= since` for a
//!    weak one. Exception: a strong ack under sync replication means S had it too,
//!    so M's fault alone is not enough; it takes a CACHE fault of S as well (between
//!    `since` and the end of the window), since S flushes the same way.
//!
//! A delayed message (sent with a delay level) is written again when due, as the copy
//! consumers read, and again after a broker restart that lost the schedule's progress:
//! for it, the windows above that start at `ack` never close (any later fault may
//! take a copy). A bound on the copy's own window needs the copy's store time, which
//! the history does not record.
//!
//! Rules are tried in this order; the first that holds names the reason, e.g.
//! `"async_flush+power_cut of n3 at 12345ms"`. Callers pass `before`: only faults at
//! or before it count (the offsets rule asks "could this message have vanished
//! *before* another one took its place?").

use crate::history::{FaultKind, FlushMode, Replication, SendStatus};

use super::faults::{bit, FaultLog, FaultRec, Kinds, CACHE_LOSS, MEDIA_LOSS, RESTARTS};
use super::tables::Index;

/// Why a message may be missing: the allowance's name and the fault(s) it rests on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allowed {
    /// `single_copy`, `unreplicated`, `async_replication`, `master_and_slave_lost`,
    /// `async_flush`, `unflushed` or `unacknowledged_copy`.
    pub kind: &'static str,
    pub fault: FaultRec,
    /// The second fault, when it took two (master and slave).
    pub also: Option<FaultRec>,
}

impl Allowed {
    /// The faults it rests on: "power_cut of n3 at 12345ms".
    pub(crate) fn evidence(&self) -> String {
        match &self.also {
            Some(b) => format!("{} and {}", self.fault.label(), b.label()),
            None => self.fault.label(),
        }
    }

    /// The name and the evidence: "async_flush+power_cut of n3 at 12345ms".
    pub(crate) fn reason(&self) -> String {
        format!("{}+{}", self.kind, self.evidence())
    }
}

fn one(kind: &'static str, f: &FaultRec) -> Allowed {
    Allowed {
        kind,
        fault: *f,
        also: None,
    }
}

fn two(kind: &'static str, a: &FaultRec, b: &FaultRec) -> Allowed {
    Allowed {
        kind,
        fault: *a,
        also: Some(*b),
    }
}

/// The allowance for message `m`'s copy on broker `broker` (the one a queue position
/// belongs to). A copy on another broker than the one that acked the message is an
/// unacknowledged copy (a first attempt whose answer never came, before a retry
/// elsewhere): it may vanish with that broker's page cache or media at any time after
/// the send.
pub(crate) fn allowance_at(ix: &Index, m: u32, broker: u32, before: u64) -> Option<Allowed> {
    allowance_at_by(ix, m, broker, before, CACHE_LOSS | MEDIA_LOSS)
}

/// [`allowance_at`], where an unacknowledged copy counts only faults of `copy_kinds`:
/// a caller that knows the copy was durable (served under SYNC_FLUSH) asks for
/// `MEDIA_LOSS`, so that an earlier page-cache loss, which could not take it, does not
/// hide a later media loss that could.
pub(crate) fn allowance_at_by(
    ix: &Index,
    m: u32,
    broker: u32,
    before: u64,
    copy_kinds: Kinds,
) -> Option<Allowed> {
    let msg = &ix.msgs[m as usize];
    if ix.stored_broker(msg) == Some(broker) {
        return allowance(ix, m, before);
    }
    let bg = ix.broker_group(broker)?;
    let nodes = [Some(bg.master_node), bg.slave_node];
    nodes.iter().flatten().find_map(|&n| {
        ix.faults
            .first_on(n, copy_kinds, msg.since_ms(), before)
            .map(|f| one("unacknowledged_copy", f))
    })
}

/// The end of the time a strongly acked record may have lived on master `master` only
/// under ASYNC replication: `window` after the ack while both nodes are up. Shipping
/// stops while the master or the slave is down, and a restart of either starts the
/// HA connection over, so a restart of either node inside the window (or ending a
/// down time that covers the ack) moves the end to `window` after that restart; a
/// node still down at the end of the history never lets the window close.
fn replication_window_end(
    faults: &FaultLog,
    master: u32,
    slave: Option<u32>,
    ack: u64,
    window: u64,
) -> u64 {
    let mut end = ack.saturating_add(window);
    let Some(slave) = slave else {
        return end;
    };
    let mut down = [faults.down_at(master, ack), faults.down_at(slave, ack)];
    let (mut ms, mut ss) = (
        faults.on_from(master, ack + 1).peekable(),
        faults.on_from(slave, ack + 1).peekable(),
    );
    loop {
        // Merge the two nodes' faults in time order.
        let (i, f) = match (ms.peek(), ss.peek()) {
            (Some(a), Some(b)) if (b.at_ms, b.entry) < (a.at_ms, a.entry) => (1, ss.next()),
            (Some(_), _) => (0, ms.next()),
            (None, Some(_)) => (1, ss.next()),
            (None, None) => break,
        };
        let Some(f) = f else { break };
        if f.at_ms > end && !down[0] && !down[1] {
            break;
        }
        if f.kind == FaultKind::Restart {
            down[i] = false;
            end = end.max(f.at_ms.saturating_add(window));
        } else if bit(f.kind) & RESTARTS != 0 {
            down[i] = true;
        }
    }
    if down[0] || down[1] {
        u64::MAX
    } else {
        end
    }
}

pub(crate) fn allowance(ix: &Index, m: u32, before: u64) -> Option<Allowed> {
    let msg = &ix.msgs[m as usize];
    let bg = ix.broker_group(ix.stored_broker(msg)?)?;
    let faults = &ix.faults;
    let master = bg.master_node;
    let since = msg.since_ms();
    let strong = msg.acked() && msg.strong_ack();
    let ack = msg.ok_ms;
    // A delayed message is stored again when due, as the copy consumers read, which
    // the broker flushes and ships like any record — and again after every restart
    // that lost its progress (`delayOffset.json`). So the windows that start at the
    // ack stay open for it: any later fault may take a copy.
    let copy_ms = if msg.delay_level > 0 { u64::MAX } else { ack };

    // 1. single copy
    let single_copy = match bg.replication {
        Replication::None => Some((since, before, "single_copy")),
        _ if !strong => Some((since, before, "unreplicated")),
        Replication::Async => Some((
            ack,
            match copy_ms {
                u64::MAX => before,
                copy_ms => replication_window_end(
                    faults,
                    master,
                    bg.slave_node,
                    copy_ms,
                    ix.promise.async_replication_window_ms(),
                )
                .min(before),
            },
            "async_replication",
        )),
        Replication::Sync => None,
    };
    if let Some((from, to, prefix)) = single_copy {
        if let Some(f) = faults.first_on(master, MEDIA_LOSS, from, to) {
            return Some(one(prefix, f));
        }
    }

    // 2. master and slave lost
    if let Some(slave) = bg.slave_node {
        let slave_from = if strong && bg.replication == Replication::Sync {
            since
        } else {
            0
        };
        // The slave's copy is gone with its media, or with its page cache: a slave
        // reports (and a SYNC_MASTER acks) what it has written, not what it flushed.
        let slave_lost = faults
            .first_on(slave, MEDIA_LOSS, slave_from, before)
            .or_else(|| faults.first_on(slave, CACHE_LOSS, since, before));
        if let (Some(a), Some(b)) = (
            faults.first_on(master, MEDIA_LOSS, since, before),
            slave_lost,
        ) {
            return Some(two("master_and_slave_lost", a, b));
        }
    }

    // 3. unflushed
    let flush_unconfirmed = matches!(msg.status, None | Some(SendStatus::FlushDiskTimeout));
    let async_flush = bg.flush == FlushMode::AsyncFlush;
    if async_flush || (!strong && flush_unconfirmed) {
        let prefix = if async_flush {
            "async_flush"
        } else {
            "unflushed"
        };
        let (from, to) = if strong {
            (
                ack,
                copy_ms
                    .saturating_add(ix.promise.async_flush_window_ms())
                    .min(before),
            )
        } else {
            (since, before)
        };
        if let Some(a) = faults.first_on(master, CACHE_LOSS, from, to) {
            if !(strong && bg.replication == Replication::Sync) {
                return Some(one(prefix, a));
            }
            if let Some(b) = bg
                .slave_node
                .and_then(|slave| faults.first_on(slave, CACHE_LOSS, since, to))
            {
                return Some(two(prefix, a, b));
            }
        }
    }
    None
}
