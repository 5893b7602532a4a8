//! Crashes, reboots and clean restarts, and the oracle's judgement of every recovery:
//! (a) to (f) and the config files, as the module documentation states them.

use rand::Rng;
use rmq_model::store::config_file::{ConfigFile, LoadSource};
use rmq_model::store::config_tables::{ConsumerOffsetTable, CONSUMER_OFFSET_PATH};
use rmq_model::store::{recover, RecoveryMode, RecoveryReport};

use crate::storage::disk::CrashKind;
use crate::storage::store_check::{check_consistency, logged_records, snapshot};

use super::{Expected, Run, Violation};

/// The (topic, queue id) of a consume-queue file path.
pub(super) fn queue_of(path: &str) -> Option<(String, i32)> {
    let mut parts = path.strip_prefix("consumequeue/")?.split('/');
    let topic = parts.next()?.to_string();
    let queue_id = parts.next()?.parse().ok()?;
    Some((topic, queue_id))
}

pub(super) fn file_start(path: &str) -> Option<u64> {
    rmq_model::store::mapped_file::parse_file_name(path.strip_prefix("commitlog/")?)
}

impl Run<'_> {
    pub(super) fn damaged(&self, lo: u64, hi: u64) -> bool {
        self.rot
            .iter()
            .map(|r| (r.0, r.1))
            .chain(self.unreadable.iter().copied())
            .any(|(a, b)| a < hi && lo < b)
    }

    /// The lowest offset from which damage may legitimately cost records: the largest
    /// record boundary at or below the damage (the damaged record, or the blank marker
    /// after the record before it).
    pub(super) fn loss_allowed_from(&self) -> u64 {
        self.rot
            .iter()
            .map(|r| r.0)
            .chain(self.unreadable.iter().map(|u| u.0))
            .map(|lo| {
                let i = self.log.partition_point(|e| e.physical_offset <= lo);
                match i {
                    0 => 0,
                    _ if self.log[i - 1].end() > lo => self.log[i - 1].physical_offset,
                    _ => self.log[i - 1].end(),
                }
            })
            .min()
            .unwrap_or(u64::MAX)
    }

    pub(super) fn crash(&mut self, kind: CrashKind, recheck: bool) -> Result<(), Violation> {
        self.crash_disk(kind);
        let report = self.reboot()?;
        self.after_recovery(&report)?;
        if recheck {
            self.complete(usize::MAX)?;
            let before = snapshot(&self.store, &self.disk);
            let kind = match self.fault_rng.random_range(0..3) {
                0 => CrashKind::ProcessCrash,
                1 => CrashKind::OsCrash,
                _ => CrashKind::PowerCut,
            };
            self.crash_disk(kind);
            let report = self.reboot()?;
            self.after_recovery(&report)?;
            let after = snapshot(&self.store, &self.disk);
            if before != after {
                return Err(self.violation(
                    "e",
                    format!(
                        "second recovery ({kind:?}) differs: {} records/{} queues, written {} vs {} records/{} queues, written {}",
                        before.records.len(),
                        before.queues.len(),
                        before.written_offset,
                        after.records.len(),
                        after.queues.len(),
                        after.written_offset
                    ),
                ));
            }
            self.stats.idempotence_checks += 1;
        }
        Ok(())
    }

    pub(super) fn crash_disk(&mut self, kind: CrashKind) {
        match kind {
            CrashKind::ProcessCrash => self.stats.process_crashes += 1,
            CrashKind::OsCrash => self.stats.os_crashes += 1,
            CrashKind::PowerCut => self.stats.power_cuts += 1,
        }
        self.disk.crash(kind, &mut self.fault_rng);
        // A crashed process forgets what it was doing.
        self.config = ConfigFile::new(CONSUMER_OFFSET_PATH);
    }

    pub(super) fn reboot(&mut self) -> Result<RecoveryReport, Violation> {
        match recover(&mut self.disk, self.case.config.clone()) {
            Ok((store, report)) => {
                self.store = store;
                self.boot += 1;
                // Recovery checked every consume-queue entry against the log and
                // rewrote the damaged ones.
                self.damaged_queues.clear();
                self.stats.recoveries += 1;
                Ok(report)
            }
            Err(e) => Err(self.violation("boot", format!("recovery failed: {e}"))),
        }
    }

    pub(super) fn clean_restart(&mut self) -> Result<(), Violation> {
        self.stats.clean_restarts += 1;
        let damage_free =
            self.rot.is_empty() && self.unreadable.is_empty() && self.damaged_queues.is_empty();
        let report = self.reboot()?;
        if report.mode != RecoveryMode::Normal {
            return Err(self.violation("boot", "clean shutdown left the abort marker".into()));
        }
        if damage_free {
            if let Some(cut) = &report.cut {
                return Err(self.violation(
                    "a",
                    format!(
                        "clean restart cut the log at {}: {}",
                        cut.offset, cut.reason
                    ),
                ));
            }
            if report.consume_queue_entries_rewritten > 0 {
                return Err(self.violation(
                    "c",
                    "clean shutdown left consume queues disagreeing with the log".into(),
                ));
            }
        }
        self.after_recovery(&report)
    }

    /// Judges a recovery against the oracle, then adopts its result as the new truth.
    pub(super) fn after_recovery(&mut self, report: &RecoveryReport) -> Result<(), Violation> {
        if self.trace.is_some() {
            let line = format!(
                "     recovery {:?}: {} records, end {}, cut {:?}, {} discarded, {} cq rewrites; notes {:?}",
                report.mode,
                report.records_recovered,
                report.commit_log_end_offset,
                report.cut,
                report.discarded.len(),
                report.consume_queue_entries_rewritten,
                report.notes
            );
            self.note(line);
        }
        let (recovered, stopped) = logged_records(&self.store, &self.disk);
        if let Some(reason) = stopped {
            return Err(self.violation("b", format!("recovered log does not verify: {reason}")));
        }
        self.stats.records_recovered += recovered.len() as u64;
        // (b) a prefix of what was appended.
        if recovered.len() > self.log.len() {
            return Err(self.violation(
                "b",
                format!(
                    "recovered {} records but only {} were appended (resurrection at {})",
                    recovered.len(),
                    self.log.len(),
                    recovered[self.log.len()].physical_offset
                ),
            ));
        }
        for (got, want) in recovered.iter().zip(&self.log) {
            if got.physical_offset != want.physical_offset || got.bytes != want.bytes {
                return Err(self.violation(
                    "b",
                    format!(
                        "record at {} differs from the one appended at {}",
                        got.physical_offset, want.physical_offset
                    ),
                ));
            }
        }
        // (a) nothing claimed durable is lost, unless damage explains it — and then (f)
        // recovery reports a cut at or before the first lost record.
        let allowed_from = self.loss_allowed_from();
        let owed = self
            .log
            .iter()
            .take_while(|e| e.end() <= self.claimed_durable)
            .count();
        self.stats.durable_records_verified += owed.min(recovered.len()) as u64;
        if recovered.len() < owed {
            let first_lost = &self.log[recovered.len()];
            if first_lost.physical_offset < allowed_from {
                return Err(self.violation(
                    "a",
                    format!(
                        "record at {} ({} bytes) was durable (claimed up to {}) but recovery kept only {} of {owed} durable records; cut: {:?}",
                        first_lost.physical_offset,
                        first_lost.bytes.len(),
                        self.claimed_durable,
                        recovered.len(),
                        report.cut
                    ),
                ));
            }
            match &report.cut {
                Some(cut) if cut.offset <= first_lost.physical_offset => {}
                other => {
                    return Err(self.violation(
                        "f",
                        format!(
                        "durable record at {} lost to damage but recovery reported cut {other:?}",
                        first_lost.physical_offset
                    ),
                    ))
                }
            }
            self.stats.losses_explained_by_damage += 1;
        }
        // (c), (d)
        if let Err(e) = check_consistency(&self.store, &self.disk) {
            return Err(self.violation("c", e));
        }
        self.check_config()?;
        // The recovered log is the truth from here on.
        self.log.truncate(recovered.len());
        let end = self.log.last().map_or(0, Expected::end);
        self.claimed_durable = self.claimed_durable.min(end);
        // Damage stays on record until the boot sync rewrites the media (see `rot`);
        // unreadable sectors stay until a write of their page reaches the media: kept.
        Ok(())
    }

    pub(super) fn check_config(&mut self) -> Result<(), Violation> {
        let (table, source) = self.config.load::<ConsumerOffsetTable>(&self.disk);
        let version = table
            .offset_table
            .get("TopicA@group_1")
            .and_then(|q| q.get(&0))
            .copied()
            .unwrap_or(0) as u64;
        if self.config_persisted > 0 && matches!(source, LoadSource::Default(_)) {
            return Err(self.violation(
                "config",
                format!(
                    "version {} was persisted but loading fell back to defaults: {source:?}",
                    self.config_persisted
                ),
            ));
        }
        if version < self.config_persisted || version > self.config_requested {
            return Err(self.violation(
                "config",
                format!(
                    "loaded version {version}, persisted {} requested {}",
                    self.config_persisted, self.config_requested
                ),
            ));
        }
        Ok(())
    }
}
