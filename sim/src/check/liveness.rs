//! **liveness**: a stuck group. Judged only when the run has a quiet period
//! (`heal_at_ms < end_ms`). A group of `Meta.groups` with at least one consumer is
//! stuck when it still owed messages — some required message it never received that
//! no allowance covers (exactly what [`super::lost`] reports per message) — and yet
//! no `Deliver` at all reached it at or after `heal_at_ms`: after the faults healed it
//! made no progress. For a broadcasting group the same is judged per consumer, and
//! the group is reported once, naming its stuck consumers. One violation per group.

use super::deliveries::DeliveryTable;
use super::lost::Owed;
use super::tables::Index;
use super::{Rule, Sink};

pub(crate) fn check(ix: &Index, table: &DeliveryTable, owed: &Owed, sink: &mut Sink) {
    if ix.heal_at_ms >= ix.end_ms {
        return;
    }
    let heal = ix.heal_at_ms;
    let meta_groups = ix.groups_meta.len().min(ix.group_info.len());
    for g in 0..meta_groups {
        if ix.groups_meta[g].consumers.is_empty() {
            continue;
        }
        let info = &ix.group_info[g];
        let slots: Vec<(Option<u32>, u32)> = if info.broadcasting {
            (0..info.meta_clients)
                .map(|p| (Some(info.clients[p]), p as u32))
                .collect()
        } else {
            vec![(None, 0)]
        };
        let g = g as u32;
        let stuck: Vec<(Option<u32>, u32)> = slots
            .into_iter()
            .filter(|&(_, s)| {
                owed[g as usize][s as usize].count > 0
                    && table.last_ms(g, s).is_none_or(|t| t < heal)
            })
            .collect();
        if stuck.is_empty() {
            continue;
        }
        let name = ix.group_name(g);
        sink.report(Rule::Liveness, format!("group {name}"), || {
            let parts: Vec<String> = stuck
                .iter()
                .map(|&(client, s)| {
                    let who = match client {
                        Some(c) => format!("consumer n{c}"),
                        None => "the group".to_string(),
                    };
                    let last = match table.last_ms(g, s) {
                        None => "never received anything".to_string(),
                        Some(t) => format!("last received a message at {t}ms"),
                    };
                    let o = &owed[g as usize][s as usize];
                    let wids: Vec<String> = o
                        .first
                        .iter()
                        .map(|&m| ix.msgs[m as usize].wid.to_string())
                        .collect();
                    format!(
                        "{who} {last} and still owes {} message(s) (wids {}{})",
                        o.count,
                        wids.join(", "),
                        if o.count as usize > wids.len() {
                            ", ..."
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            format!(
                "group {name} is stuck: faults healed at {heal}ms and the run ended at \
                 {}ms, but {}; {}",
                ix.end_ms,
                parts.join("; "),
                ix.faults.before(ix.entries, heal),
            )
        });
    }
}
