//! The faults the world injected, in time order, with the queries the rules need:
//! "a fault of these kinds on this node between two times" (allowances, excuses) and
//! "what happened in the 30 s before" (every violation's context).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::history::{Entry, FaultKind};

/// How far back a violation's context looks.
pub(crate) const CONTEXT_MS: u64 = 30_000;
/// At most this many faults are spelled out in one context.
const CONTEXT_MAX: usize = 10;

/// A set of fault kinds.
pub(crate) type Kinds = u16;

pub(crate) const fn bit(kind: FaultKind) -> Kinds {
    1 << (kind as u16)
}

/// The page cache is gone: what was not flushed is lost.
pub(crate) const CACHE_LOSS: Kinds =
    bit(FaultKind::OsCrash) | bit(FaultKind::PowerCut) | bit(FaultKind::MachineLost);
/// The durable copy is gone (or parts of it).
pub(crate) const MEDIA_LOSS: Kinds = bit(FaultKind::MachineLost) | bit(FaultKind::DiskDamaged);
/// The node's processes lost their memory (or were restarted).
pub(crate) const RESTARTS: Kinds = bit(FaultKind::ProcessCrash)
    | bit(FaultKind::OsCrash)
    | bit(FaultKind::PowerCut)
    | bit(FaultKind::MachineLost)
    | bit(FaultKind::Restart);
/// Messages on the wire may be dropped (a oneway offset commit among them).
pub(crate) const NETWORK: Kinds = bit(FaultKind::Partition) | bit(FaultKind::Clog);

pub(crate) fn kind_name(kind: FaultKind) -> &'static str {
    match kind {
        FaultKind::ProcessCrash => "process_crash",
        FaultKind::OsCrash => "os_crash",
        FaultKind::PowerCut => "power_cut",
        FaultKind::Restart => "restart",
        FaultKind::MachineLost => "machine_lost",
        FaultKind::DiskDamaged => "disk_damaged",
        FaultKind::Partition => "partition",
        FaultKind::Heal => "heal",
        FaultKind::Clog => "clog",
        FaultKind::ClockSkew => "clock_skew",
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FaultRec {
    pub at_ms: u64,
    /// Index of the `Entry::Fault` in the history.
    pub entry: u32,
    pub kind: FaultKind,
    pub node: Option<u32>,
    /// The other end of a link fault (partition, clog, reset) or of a link's heal, read
    /// from the detail ("partition n3 <-> n5"): the second node named there.
    pub peer: Option<u32>,
}

/// The `n`-th (0-based) node id ("n17") named in a fault's detail.
pub(crate) fn nth_node_in(detail: &str, n: usize) -> Option<u32> {
    detail
        .split(|c: char| c.is_whitespace())
        .filter_map(|t| t.strip_prefix('n')?.parse::<u32>().ok())
        .nth(n)
}

impl FaultRec {
    /// "power_cut of n3 at 12345ms": also the key of an allowance reason.
    pub(crate) fn label(&self) -> String {
        match self.node {
            Some(n) => format!("{} of n{n} at {}ms", kind_name(self.kind), self.at_ms),
            None => format!("{} at {}ms", kind_name(self.kind), self.at_ms),
        }
    }
}

#[derive(Default)]
pub(crate) struct FaultLog {
    pub recs: Vec<FaultRec>,
    /// Node -> indexes into `recs`, in time order.
    by_node: BTreeMap<u32, Vec<u32>>,
    /// Times of heals of every link at once (no node), in order.
    heal_all_ms: Vec<u64>,
}

impl FaultLog {
    pub(crate) fn push(&mut self, rec: FaultRec) {
        self.recs.push(rec);
    }

    /// Call once after the last push.
    pub(crate) fn finish(&mut self) {
        // Stable: faults at the same millisecond keep history order.
        self.recs.sort_by_key(|r| r.at_ms);
        for (i, r) in self.recs.iter().enumerate() {
            if let Some(n) = r.node {
                self.by_node.entry(n).or_default().push(i as u32);
            } else if r.kind == FaultKind::Heal {
                self.heal_all_ms.push(r.at_ms);
            }
        }
    }

    /// The first fault of `kinds` on `node` with `from <= at_ms <= to`.
    pub(crate) fn first_on(
        &self,
        node: u32,
        kinds: Kinds,
        from: u64,
        to: u64,
    ) -> Option<&FaultRec> {
        if from > to {
            return None;
        }
        let list = self.by_node.get(&node)?;
        let start = list.partition_point(|&i| self.recs[i as usize].at_ms < from);
        list[start..]
            .iter()
            .map(|&i| &self.recs[i as usize])
            .take_while(|r| r.at_ms <= to)
            .find(|r| bit(r.kind) & kinds != 0)
    }

    /// The faults on `node` with `at_ms >= from`, in time order.
    pub(crate) fn on_from(&self, node: u32, from: u64) -> impl Iterator<Item = &FaultRec> + '_ {
        let list = self.by_node.get(&node).map_or(&[][..], Vec::as_slice);
        let start = list.partition_point(|&i| self.recs[i as usize].at_ms < from);
        list[start..].iter().map(|&i| &self.recs[i as usize])
    }

    /// Whether `node` is down at `at_ms`: its last crash-kind fault at or before it
    /// (process crash, OS crash, power cut, machine lost) came after its last restart.
    pub(crate) fn down_at(&self, node: u32, at_ms: u64) -> bool {
        let Some(list) = self.by_node.get(&node) else {
            return false;
        };
        let end = list.partition_point(|&i| self.recs[i as usize].at_ms <= at_ms);
        list[..end]
            .iter()
            .rev()
            .map(|&i| self.recs[i as usize].kind)
            .find(|&k| bit(k) & RESTARTS != 0)
            .is_some_and(|k| k != FaultKind::Restart)
    }

    /// Whether a partition or clog recorded on `node` is still in place at `at_ms`:
    /// the last partition, clog or heal on it at or before then is not a heal, and no
    /// heal of every link came since. (A connection reset is recorded as a partition
    /// with no heal, so it counts until the node's next heal: lenient.)
    pub(crate) fn cut_at(&self, node: u32, at_ms: u64) -> bool {
        let Some(list) = self.by_node.get(&node) else {
            return false;
        };
        let end = list.partition_point(|&i| self.recs[i as usize].at_ms <= at_ms);
        let last = list[..end]
            .iter()
            .rev()
            .map(|&i| &self.recs[i as usize])
            .find(|r| bit(r.kind) & (NETWORK | bit(FaultKind::Heal)) != 0);
        match last {
            Some(r) if r.kind != FaultKind::Heal => {
                let k = self.heal_all_ms.partition_point(|&t| t < r.at_ms);
                self.heal_all_ms.get(k).is_none_or(|&t| t > at_ms)
            }
            _ => false,
        }
    }

    /// The first fault of `kinds` on any of `nodes` with `from <= at_ms <= to`.
    pub(crate) fn first_on_any(
        &self,
        nodes: &[u32],
        kinds: Kinds,
        from: u64,
        to: u64,
    ) -> Option<&FaultRec> {
        nodes
            .iter()
            .filter_map(|&n| self.first_on(n, kinds, from, to))
            .min_by_key(|r| (r.at_ms, r.entry))
    }

    /// Whether link fault `r` is on the link between `node` and one of `others`, or
    /// isolates `node` (names no peer).
    fn on_link(r: &FaultRec, node: u32, others: &[u32]) -> bool {
        match (r.node, r.peer) {
            (Some(a), Some(b)) => {
                (a == node && others.contains(&b)) || (b == node && others.contains(&a))
            }
            (Some(a), None) => a == node,
            _ => false,
        }
    }

    /// The first partition or clog on a link between `node` and one of `others` (or
    /// isolating `node`) with `from <= at_ms <= to`.
    pub(crate) fn first_link(
        &self,
        node: u32,
        others: &[u32],
        from: u64,
        to: u64,
    ) -> Option<&FaultRec> {
        if from > to {
            return None;
        }
        let start = self.recs.partition_point(|r| r.at_ms < from);
        self.recs[start..]
            .iter()
            .take_while(|r| r.at_ms <= to)
            .find(|r| bit(r.kind) & NETWORK != 0 && Self::on_link(r, node, others))
    }

    /// Whether a link between `node` and one of `others` is cut at `at_ms`: the last
    /// partition, clog or heal on such a link (or isolating `node`) at or before then
    /// is not a heal, and no heal of every link came since. Looks only at the faults
    /// recorded on `node` and on `others` (a link fault is recorded on one end).
    pub(crate) fn cut_between(&self, node: u32, others: &[u32], at_ms: u64) -> bool {
        let last_on = |owner: u32| {
            let list = self.by_node.get(&owner).map_or(&[][..], Vec::as_slice);
            let end = list.partition_point(|&i| self.recs[i as usize].at_ms <= at_ms);
            list[..end].iter().rev().copied().find(|&i| {
                let r = &self.recs[i as usize];
                bit(r.kind) & (NETWORK | bit(FaultKind::Heal)) != 0
                    && Self::on_link(r, node, others)
            })
        };
        let last = std::iter::once(node)
            .chain(others.iter().copied())
            .filter_map(last_on)
            .max()
            .map(|i| &self.recs[i as usize]);
        match last {
            Some(r) if r.kind != FaultKind::Heal => {
                let k = self.heal_all_ms.partition_point(|&t| t < r.at_ms);
                self.heal_all_ms.get(k).is_none_or(|&t| t > at_ms)
            }
            _ => false,
        }
    }

    /// The last fault with `from <= at_ms <= to` that `pred` accepts.
    pub(crate) fn last_matching(
        &self,
        from: u64,
        to: u64,
        pred: impl Fn(&FaultRec) -> bool,
    ) -> Option<&FaultRec> {
        if from > to {
            return None;
        }
        let start = self.recs.partition_point(|r| r.at_ms < from);
        let end = self.recs.partition_point(|r| r.at_ms <= to);
        self.recs[start..end].iter().rev().find(|r| pred(r))
    }

    /// The faults with `from <= at_ms <= to`, spelled out (at most [`CONTEXT_MAX`]).
    pub(crate) fn describe(&self, entries: &[Entry], from: u64, to: u64) -> String {
        let start = self.recs.partition_point(|r| r.at_ms < from);
        let within: Vec<&FaultRec> = self.recs[start..]
            .iter()
            .take_while(|r| r.at_ms <= to)
            .collect();
        if within.is_empty() {
            return format!("no faults between {from}ms and {to}ms");
        }
        let mut s = format!("faults between {from}ms and {to}ms:");
        for r in within.iter().take(CONTEXT_MAX) {
            let _ = write!(s, " [{}", r.label());
            if let Some(Entry::Fault { detail, .. }) = entries.get(r.entry as usize) {
                if !detail.is_empty() {
                    let _ = write!(s, ": {detail}");
                }
            }
            s.push(']');
        }
        if within.len() > CONTEXT_MAX {
            let _ = write!(s, " and {} more", within.len() - CONTEXT_MAX);
        }
        s
    }

    /// The faults in the [`CONTEXT_MS`] before `at_ms`.
    pub(crate) fn before(&self, entries: &[Entry], at_ms: u64) -> String {
        self.describe(entries, at_ms.saturating_sub(CONTEXT_MS), at_ms)
    }
}
