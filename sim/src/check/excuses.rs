//! Excuses: every time a rule lets something pass that would otherwise be a violation,
//! because of evidence in the history (a fault on the same broker group, queue or
//! client, in a bounded window), it says so here, through the one call
//! [`Excuses::record`]: which rule, which excuse, and the evidence it rested on (the
//! fault's label, e.g. "power_cut of n3 at 12345ms").
//!
//! The verdict lists every excuse that fired, with its count and the distinct
//! evidence it used (the first [`EVIDENCE_SHOWN`] of them), and `sim run` totals them
//! by kind over a sweep ([`super::CheckStats::excuses`]), so a reviewer sees when an
//! excuse starts carrying weight. Recording is a map lookup and a short scan per
//! excuse, so this stays linear, and costs nothing on a run where nothing is excused.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::Rule;

/// Distinct pieces of evidence named per excuse kind; more are only counted.
pub const EVIDENCE_SHOWN: usize = 5;

/// One excuse kind of one rule, as the verdict shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExcuseTally {
    pub rule: Rule,
    /// The excuse's name (e.g. `async_flush`, `broker_restart`), documented where the
    /// rule applies it.
    pub excuse: &'static str,
    /// How many times it fired.
    pub count: u64,
    /// The first distinct evidence it used, each with how many times.
    pub evidence: Vec<(String, u64)>,
    /// Firings whose evidence is not in `evidence` (past [`EVIDENCE_SHOWN`]).
    pub more: u64,
}

impl ExcuseTally {
    /// `rule/excuse`: the key the sweep totals by.
    pub fn key(&self) -> String {
        format!("{}/{}", self.rule.name(), self.excuse)
    }
}

impl fmt::Display for ExcuseTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x{}:", self.key(), self.count)?;
        for (i, (ev, n)) in self.evidence.iter().enumerate() {
            let sep = if i == 0 { " " } else { "; " };
            if *n > 1 {
                write!(f, "{sep}{ev} (x{n})")?;
            } else {
                write!(f, "{sep}{ev}")?;
            }
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

/// The excuses that fired in one check, by rule and kind.
#[derive(Default)]
pub(crate) struct Excuses {
    tallies: BTreeMap<(Rule, &'static str), ExcuseTally>,
}

impl Excuses {
    /// Rule `rule` excused something by `excuse`, resting on `evidence`.
    pub(crate) fn record(
        &mut self,
        rule: Rule,
        excuse: &'static str,
        evidence: impl FnOnce() -> String,
    ) {
        let t = self
            .tallies
            .entry((rule, excuse))
            .or_insert_with(|| ExcuseTally {
                rule,
                excuse,
                count: 0,
                evidence: Vec::new(),
                more: 0,
            });
        t.count += 1;
        let ev = evidence();
        if let Some(e) = t.evidence.iter_mut().find(|(e, _)| *e == ev) {
            e.1 += 1;
        } else if t.evidence.len() < EVIDENCE_SHOWN {
            t.evidence.push((ev, 1));
        } else {
            t.more += 1;
        }
    }

    /// Every excuse that fired, by rule then name.
    pub(crate) fn finish(self) -> Vec<ExcuseTally> {
        self.tallies.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_names_distinct_evidence() {
        let mut e = Excuses::default();
        e.record(Rule::Lost, "async_flush", || {
            "power_cut of n1 at 5ms".into()
        });
        e.record(Rule::Lost, "async_flush", || {
            "power_cut of n1 at 5ms".into()
        });
        for i in 0..(EVIDENCE_SHOWN + 2) {
            e.record(Rule::Offsets, "broker_restart", || format!("restart {i}"));
        }
        let t = e.finish();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].key(), "lost/async_flush");
        assert_eq!(t[0].count, 2);
        assert_eq!(
            t[0].evidence,
            vec![("power_cut of n1 at 5ms".to_string(), 2)]
        );
        assert_eq!(
            t[0].to_string(),
            "lost/async_flush x2: power_cut of n1 at 5ms (x2)"
        );
        assert_eq!(t[1].count, EVIDENCE_SHOWN as u64 + 2);
        assert_eq!(t[1].evidence.len(), EVIDENCE_SHOWN);
        assert_eq!(t[1].more, 2);
        assert!(t[1].to_string().ends_with("; and 2 more"), "{}", t[1]);
    }
}
