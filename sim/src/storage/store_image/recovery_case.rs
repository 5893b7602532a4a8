//! One fuzz case: recover the decoded image, check what came back against the store's
//! invariants and against a second recovery, then append and read again.

use std::net::{IpAddr, Ipv4Addr};

use rmq_model::store::config_file::ConfigFile;
use rmq_model::store::config_tables::{
    ConsumerOffsetTable, DelayOffsetTable, TopicConfigTable, CONSUMER_OFFSET_PATH,
    DELAY_OFFSET_PATH, TOPICS_PATH,
};
use rmq_model::store::{
    recover, Host, MemDisk, MessageStore, NewRecord, RecoveryReport, StoreConfig, StoreError,
    StoreEvent, StoreState,
};

use crate::storage::store_check::{self, StoreSnapshot};

use super::{StoreImage, MAX_PROBES, PROPERTIES, TOPICS};

/// Completes every sync the disk was asked for, until none are left. Bounded: each
/// round completes what the store asked for in the previous one, and the store stops
/// asking once nothing is dirty.
fn settle(store: &mut MessageStore, disk: &mut MemDisk) -> Result<Vec<StoreEvent>, String> {
    const MAX_ROUNDS: usize = 64;
    let mut events = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let tickets = disk.take_requested_syncs();
        if tickets.is_empty() {
            return Ok(events);
        }
        for t in tickets {
            events.push(store.on_sync_complete(disk, t, Ok(())));
        }
    }
    Err(format!("syncs still requested after {MAX_ROUNDS} rounds"))
}

/// Recovers and completes the boot syncs; the store must come up `Ready`.
fn boot(
    disk: &mut MemDisk,
    config: &StoreConfig,
    which: &str,
) -> Result<(MessageStore, RecoveryReport), String> {
    let recovered =
        recover(disk, config.clone()).map_err(|e| format!("{which} recovery failed: {e}"))?;
    finish_boot(disk, recovered, which)
}

/// Completes the boot syncs of a recovered store; it must come up `Ready`.
fn finish_boot(
    disk: &mut MemDisk,
    (mut store, report): (MessageStore, RecoveryReport),
    which: &str,
) -> Result<(MessageStore, RecoveryReport), String> {
    let events = settle(&mut store, disk)?;
    if store.state() != StoreState::Ready {
        return Err(format!(
            "{which} recovery left the store {:?} (events {events:?})",
            store.state()
        ));
    }
    store_check::check_consistency(&store, disk)
        .map_err(|e| format!("after the {which} recovery: {e}"))?;
    Ok((store, report))
}

/// Loads the three config files (primary, then backup, then default): whatever they
/// hold, loading answers instead of panicking.
fn load_config_files(disk: &MemDisk) {
    let _ = ConfigFile::new(TOPICS_PATH).load::<TopicConfigTable>(disk);
    let _ = ConfigFile::new(CONSUMER_OFFSET_PATH).load::<ConsumerOffsetTable>(disk);
    let _ = ConfigFile::new(DELAY_OFFSET_PATH).load::<DelayOffsetTable>(disk);
}

/// Reads by commit-log offset: every recovered record is served, and nothing else is
/// (a record recovery cut off must not come back through its message id).
fn check_reads(
    store: &MessageStore,
    disk: &MemDisk,
    snap: &StoreSnapshot,
    probes: impl Iterator<Item = u64>,
) -> Result<(), String> {
    for r in &snap.records {
        let got = store
            .get_by_commit_log_offset(disk, r.physical_offset)
            .map_err(|e| format!("recovered record at {} unreadable: {e}", r.physical_offset))?;
        if got.bytes != r.bytes {
            return Err(format!(
                "record at {} reads back different bytes",
                r.physical_offset
            ));
        }
    }
    for offset in probes {
        if let Ok(got) = store.get_by_commit_log_offset(disk, offset) {
            let kept = snap
                .records
                .iter()
                .any(|r| r.physical_offset == offset && r.bytes == got.bytes);
            if !kept {
                return Err(format!(
                    "commit-log offset {offset} serves a record that is not in the recovered log"
                ));
            }
        }
    }
    Ok(())
}

/// The first difference between two snapshots, for an error message.
fn describe_difference(a: &StoreSnapshot, b: &StoreSnapshot) -> String {
    if a.written_offset != b.written_offset {
        return format!(
            "written offset {} then {}",
            a.written_offset, b.written_offset
        );
    }
    if a.records.len() != b.records.len() {
        return format!("{} records then {}", a.records.len(), b.records.len());
    }
    if let Some((x, y)) = a.records.iter().zip(&b.records).find(|(x, y)| x != y) {
        return format!(
            "record at {} then a different one at {}",
            x.physical_offset, y.physical_offset
        );
    }
    format!("queues {:?} then {:?}", a.queues, b.queues)
}

/// One fuzz case: decode, recover, check (c) and (d), read, recover again (nothing may
/// change), append, recover once more (the appends survive). Err names the violation;
/// a panic anywhere is a finding too.
pub fn run_recovery_case(data: &[u8]) -> Result<(), String> {
    let StoreImage {
        mut disk,
        config,
        probes,
        appends,
    } = StoreImage::decode(data);
    load_config_files(&disk);

    // A store recovery cannot make sense of is refused, and nothing on the disk changes.
    let before = disk.files().clone();
    let recovered = match recover(&mut disk, config.clone()) {
        Ok(recovered) => recovered,
        Err(StoreError::Refused { path, reason }) => {
            let refused = format!("recovery refused the store ({path}: {reason})");
            if disk.files() != &before {
                return Err(format!("{refused} but changed the disk"));
            }
            if !disk.take_requested_syncs().is_empty() {
                return Err(format!("{refused} but asked for syncs"));
            }
            return Ok(());
        }
        Err(e) => return Err(format!("first recovery failed: {e}")),
    };
    let (store, report) = finish_boot(&mut disk, recovered, "first")?;
    let first = store_check::snapshot(&store, &disk);
    let discarded = report.discarded.iter().map(|d| d.physical_offset);
    check_reads(
        &store,
        &disk,
        &first,
        probes.iter().copied().chain(discarded.take(MAX_PROBES)),
    )?;

    // Recovering a recovered store changes nothing.
    let (mut store, _) = boot(&mut disk, &config, "second")?;
    let second = store_check::snapshot(&store, &disk);
    if first != second {
        return Err(format!(
            "recovery is not idempotent: {}",
            describe_difference(&first, &second)
        ));
    }

    // The recovered store takes new records where the log ended, and they survive.
    let mut appended = Vec::new();
    for i in 0..appends {
        let body = [i as u8; 16];
        let rec = NewRecord {
            topic: TOPICS[i % TOPICS.len()],
            queue_id: (i % 2) as i32,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: Host {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 5555,
            },
            store_host: Host {
                ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                port: 10911,
            },
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: PROPERTIES[1],
        };
        let expected_queue_offset = store.max_queue_offset(rec.topic, rec.queue_id);
        let result = match store.append(&mut disk, &rec, 1_800_000_000_000 + i as i64) {
            Ok(result) => result,
            // A log recovered at the very end of the offset space is full: a refusal,
            // not a failure.
            Err(StoreError::LogFull { .. }) => break,
            Err(e) => return Err(format!("append {i} after recovery failed: {e}")),
        };
        if result.queue_offset != Some(expected_queue_offset) {
            return Err(format!(
                "append {i} took queue offset {:?}, expected {expected_queue_offset}",
                result.queue_offset
            ));
        }
        appended.push(result.physical_offset);
    }
    store
        .request_flush(&mut disk)
        .map_err(|e| format!("flush after appends failed: {e}"))?;
    store
        .request_logic_flush(&mut disk)
        .map_err(|e| format!("logic flush after appends failed: {e}"))?;
    settle(&mut store, &mut disk)?;
    store_check::check_consistency(&store, &disk)
        .map_err(|e| format!("after appending to the recovered store: {e}"))?;
    let before = store_check::snapshot(&store, &disk);
    for offset in &appended {
        if !before.records.iter().any(|r| r.physical_offset == *offset) {
            return Err(format!("appended record at {offset} is not in the log"));
        }
    }
    let (store, _) = boot(&mut disk, &config, "third")?;
    let after = store_check::snapshot(&store, &disk);
    if before != after {
        return Err(format!(
            "recovery after appends changed the store: {}",
            describe_difference(&before, &after)
        ));
    }
    Ok(())
}
