//! **duplicates**: at-least-once allows them, so they are counted, never judged. A
//! duplicate is a delivery of a (message, slot) that slot already received — slot
//! being the group for clustering and the consumer for broadcasting. Deliveries
//! without a workload id are not counted. Every group of `Meta` is listed, with 0 if
//! it saw none.

use super::deliveries::DeliveryTable;
use super::index::Index;
use super::CheckStats;

pub(crate) fn count(ix: &Index, table: &DeliveryTable, stats: &mut CheckStats) {
    for g in 0..ix.group_info.len() {
        let n = table.duplicates.get(g).copied().unwrap_or(0);
        if n > 0 || ix.group_info[g].meta.is_some() {
            *stats
                .duplicates_by_group
                .entry(ix.group_name(g as u32).to_string())
                .or_insert(0) += n;
        }
    }
}
