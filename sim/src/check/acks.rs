//! **acks**: an acknowledgement is as strong as the configuration promises, unless a
//! fault recorded at that time explains why not.
//!
//! For every `SendOk` whose status is weaker than SEND_OK, on broker group B:
//! - SLAVE_NOT_AVAILABLE / FLUSH_SLAVE_TIMEOUT: B replicates synchronously
//!   (`Replication::Sync`), and its slave was down at the send or its result, or a
//!   fault touched the slave (any kind on its node; a link fault with it at either
//!   end) or hit the master's process (a restart makes the slave reconnect and catch
//!   up) between one declared `haHousekeepingInterval` (`Meta.promise`
//!   `ha_housekeeping_interval_ms`, RocketMQ: 20 s: a master notices a silent slave
//!   connection only that long after its last report, and a reconnected slave needs
//!   time to catch up) before the send and its result: the slave was down, cut off,
//!   or behind. The run's start counts as a boot of every slave (it connects to its
//!   master only once both are up).
//!   Or the master's clock jumped forward (a clock skew set above the one before) in
//!   that window by more than `ha_housekeeping_interval_ms` minus
//!   `ha_send_heartbeat_interval_ms`: a master measures a slave's silence on its wall
//!   clock (`HAConnection`'s `lastReadTimestamp`, as RocketMQ does), and a slave
//!   reports at least every heartbeat interval, so a jump that large expires the
//!   connection of a slave that was reporting; the master has no slave until its next
//!   report.
//! - FLUSH_DISK_TIMEOUT: B flushes synchronously (`FlushMode::SyncFlush`) and its
//!   master's process was being stopped (a crash/stop fault on it between the send
//!   and its result). The history has no disk stalls, so nothing else explains it.
//!
//! After the heal: a send invoked the declared ack grace or more after `heal_at_ms`
//! (when the run has a quiet period) gets SEND_OK — a weaker status or a failure is a
//! violation, unless its broker group's slave (for the slave statuses) is down then.
//!
//! One linear scan over the messages.

use super::faults::{bit, FaultRec, NETWORK, RESTARTS};
use super::tables::Index;
use super::{Rule, Sink};
use crate::history::{Entry, FaultKind, FlushMode, Replication, SendStatus};

/// The skew a clock-skew fault set ("clock skew n7 -19894ms"), in ms.
fn skew_set_ms(ix: &Index, f: &FaultRec) -> Option<i64> {
    match &ix.entries[f.entry as usize] {
        Entry::Fault { detail, .. } => detail
            .split_whitespace()
            .last()?
            .strip_suffix("ms")?
            .parse()
            .ok(),
        _ => None,
    }
}

/// The first jump of `node`'s clock forward by more than `min_jump_ms` (a clock skew
/// set that much above the one before; clocks start true) with `from <= at_ms <= to`,
/// and its size.
fn clock_jump_forward<'a>(
    ix: &'a Index<'_>,
    node: u32,
    min_jump_ms: u64,
    from: u64,
    to: u64,
) -> Option<(&'a FaultRec, i64)> {
    let mut skew_ms = 0i64;
    for f in ix.faults.on_from(node, 0) {
        if f.at_ms > to {
            break;
        }
        if f.kind != FaultKind::ClockSkew {
            continue;
        }
        let Some(set_ms) = skew_set_ms(ix, f) else {
            continue;
        };
        let jump_ms = set_ms.saturating_sub(skew_ms);
        skew_ms = set_ms;
        if f.at_ms >= from && jump_ms > 0 && jump_ms as u64 > min_jump_ms {
            return Some((f, jump_ms));
        }
    }
    None
}

fn status_name(s: SendStatus) -> &'static str {
    match s {
        SendStatus::SendOk => "SEND_OK",
        SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
        SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
        SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
    }
}

pub(crate) fn check(ix: &Index, sink: &mut Sink) {
    let quiet = ix.heal_at_ms < ix.end_ms;
    // `Meta.promise`: the declared `ack_grace_ms`, by default one
    // `pollNameServerInterval` (the longest a producer keeps a stale route).
    let settled_ms = ix
        .heal_at_ms
        .saturating_add(ix.promise.ack_grace_window_ms());
    let ha_cause_window_ms = ix.promise.ha_housekeeping_interval_ms;
    // A forward jump of the master's clock larger than this expires a reporting slave.
    let expiring_jump_ms =
        ha_cause_window_ms.saturating_sub(ix.promise.ha_send_heartbeat_interval_ms);
    for (i, m) in ix.msgs.iter().enumerate() {
        if !m.invoked() {
            continue;
        }
        let after_heal = quiet && m.invoke_ms >= settled_ms;
        if !m.acked() {
            if after_heal && (m.failed_definite || m.failed_unknown) {
                sink.report(Rule::Acks, format!("wid {}", m.wid), || {
                    // Only for the few detailed violations: a scan is fine.
                    let reason = ix
                        .entries
                        .iter()
                        .find_map(|e| match e {
                            Entry::SendFail { wid, reason, .. } if *wid == m.wid => {
                                Some(reason.clone())
                            }
                            _ => None,
                        })
                        .unwrap_or_default();
                    format!(
                        "{} failed ({reason}) though it was sent {}ms after the heal at {}ms",
                        ix.describe_msg(i as u32),
                        m.invoke_ms - ix.heal_at_ms,
                        ix.heal_at_ms
                    )
                });
            }
            continue;
        }
        let Some(status) = m.status else { continue };
        if status == SendStatus::SendOk {
            continue;
        }
        let broker = ix.queues[m.queue as usize].broker;
        let bg = ix.broker_group(broker);
        let cause: Result<String, &str> = match (status, bg) {
            (_, None) => Err("its broker group is not in Meta"),
            (SendStatus::FlushDiskTimeout, Some(bg)) => {
                if bg.flush != FlushMode::SyncFlush {
                    Err("the broker group flushes asynchronously and never waits for a flush")
                } else if after_heal {
                    Err("sent after the heal and its grace")
                } else {
                    ix.faults
                        .first_on(bg.master_node, RESTARTS, m.invoke_ms, m.ok_ms)
                        .map(|f| format!("master stopping: {}", f.label()))
                        .ok_or("its master was not being stopped and no disk stall is recorded")
                }
            }
            (_, Some(bg)) => match (bg.replication, bg.slave_node) {
                (Replication::Sync, Some(slave)) => {
                    if ix.faults.down_at(slave, m.invoke_ms) || ix.faults.down_at(slave, m.ok_ms) {
                        Ok(format!("slave n{slave} down"))
                    } else if after_heal {
                        Err("sent after the heal and its grace, with the slave up")
                    } else if m.invoke_ms < ha_cause_window_ms {
                        // Every node boots at time 0: the slave connects and catches up.
                        Ok("slave booting".to_string())
                    } else {
                        let from = m.invoke_ms.saturating_sub(ha_cause_window_ms);
                        let master = bg.master_node;
                        ix.faults
                            .last_matching(from, m.ok_ms, |f| holds_ha_up(f, slave, master))
                            .or_else(|| ix.faults.first_on(master, RESTARTS, from, m.ok_ms))
                            .map(|f| format!("slave cut off or behind: {}", f.label()))
                            .or_else(|| {
                                clock_jump_forward(
                                    ix,
                                    bg.master_node,
                                    expiring_jump_ms,
                                    from,
                                    m.ok_ms,
                                )
                                .map(|(f, jump_ms)| {
                                    format!(
                                        "slave connection expired: {} jumped the master's \
                                         clock {jump_ms}ms forward",
                                        f.label()
                                    )
                                })
                            })
                            .ok_or(
                                "no fault touched its slave, restarted its master or jumped \
                                 its master's clock forward then",
                            )
                    }
                }
                _ => Err("the broker group has no synchronous slave to wait for"),
            },
        };
        if let Ok(cause) = &cause {
            let kind = if cause.starts_with("master") {
                "master_stopping"
            } else if cause.ends_with("booting") {
                "slave_booting"
            } else if cause.ends_with("down") {
                "slave_down"
            } else {
                "slave_fault"
            };
            sink.excuses
                .record(Rule::Acks, kind, || format!("wid {}: {cause}", m.wid));
        }
        if let Err(why) = cause {
            sink.report(Rule::Acks, format!("wid {}", m.wid), || {
                format!(
                    "{} answered {}: {why}; {}",
                    ix.describe_msg(i as u32),
                    status_name(status),
                    ix.faults.before(ix.entries, m.ok_ms)
                )
            });
        }
    }
}

/// Whether fault `f` can hold the HA stream between `slave` and `master` up: any fault
/// of the slave's process, machine or disk; a link fault (or its heal) on the slave
/// that isolates it or cuts it from its master. Not a clock skew (HA runs on timers),
/// and not a link between the slave and another node.
fn holds_ha_up(f: &FaultRec, slave: u32, master: u32) -> bool {
    let on = |n: u32| f.node == Some(n) || f.peer == Some(n);
    if !on(slave) || f.kind == FaultKind::ClockSkew {
        return false;
    }
    if bit(f.kind) & (NETWORK | bit(FaultKind::Heal)) != 0 {
        return f.peer.is_none() || on(master);
    }
    true
}
