//! A store another RocketMQ implementation wrote (records without the `__CRC32#` tail,
//! consume queues, a RocketMQ 5 checkpoint, an abort file holding a PID) recovers intact
//! under the default configuration; cuts count every record lost; a store recovery
//! cannot make sense of is refused and left untouched (issue 9 §2).

use std::collections::BTreeMap;

use rmq_model::store::checkpoint::CHECKPOINT_PATH;
use rmq_model::store::foreign_store::{
    write_foreign_store, ForeignStore, ForeignStoreSpec, CHECKPOINT_EXTRA_FIELD,
    CHECKPOINT_EXTRA_FIELD_AT,
};
use rmq_model::store::{
    recover, Disk, MemDisk, MessageStore, RecoveryMode, RecoveryReport, StoreConfig, StoreEvent,
    StoreState,
};

const FILE_SIZE: u64 = 4096;

fn config() -> StoreConfig {
    StoreConfig {
        commit_log_file_size_bytes: FILE_SIZE,
        consume_queue_entries_per_file: 8,
        ..StoreConfig::default()
    }
}

fn spec(files_with_crc_tail: u64, crashed: bool) -> ForeignStoreSpec {
    ForeignStoreSpec {
        commit_log_file_size_bytes: FILE_SIZE,
        consume_queue_entries_per_file: 8,
        records: 60,
        files_with_crc_tail,
        crashed,
    }
}

/// Completes every sync the disk was asked for until none are left.
fn settle(store: &mut MessageStore, disk: &mut MemDisk) -> Vec<StoreEvent> {
    disk.complete_syncs(store)
}

fn boot(disk: &mut MemDisk) -> (MessageStore, RecoveryReport) {
    let (mut store, report) = recover(disk, config()).unwrap();
    let events = settle(&mut store, disk);
    assert!(events.contains(&StoreEvent::Ready), "{events:?}");
    (store, report)
}

/// Every record the fixture says survives is served, through its queue and its
/// commit-log offset, with the bytes the fixture wrote.
fn assert_serves(store: &MessageStore, disk: &MemDisk, fixture: &ForeignStore) {
    assert_records_served(store, disk, fixture);
    let mut max: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for r in fixture.whole_records() {
        max.insert((r.topic, r.queue_id), r.queue_offset + 1);
    }
    for ((topic, queue_id), next) in max {
        assert_eq!(store.max_queue_offset(topic, queue_id), next as u64);
    }
}

fn assert_records_served(store: &MessageStore, disk: &MemDisk, fixture: &ForeignStore) {
    let whole = fixture.whole_records();
    for r in whole {
        let by_queue = store
            .get_message(disk, r.topic, r.queue_id, r.queue_offset as u64)
            .unwrap_or_else(|e| panic!("{r:?}: {e}"));
        assert_eq!(by_queue.physical_offset, r.physical_offset);
        let by_offset = store
            .get_by_commit_log_offset(disk, r.physical_offset)
            .unwrap();
        assert_eq!(by_offset.bytes, by_queue.bytes);
        assert_eq!(by_offset.bytes.len(), r.size as usize);
    }
}

#[test]
fn a_tail_less_store_shut_down_cleanly_recovers_intact() {
    let mut disk = MemDisk::new();
    let fixture = write_foreign_store(&mut disk, &spec(0, false)).unwrap();
    assert!(fixture.records.last().unwrap().physical_offset > 2 * FILE_SIZE);
    let before = disk.files().clone();
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Normal);
    assert_eq!(
        report.records_recovered,
        fixture.records.len() as u64,
        "{report:?}"
    );
    assert_eq!(report.cut, None, "{report:?}");
    assert!(report.discarded.is_empty());
    assert_eq!(report.consume_queue_entries_rewritten, 0, "{report:?}");
    assert_serves(&store, &disk, &fixture);
    // Not a byte of the commit log or the consume queues changed.
    for (path, bytes) in &before {
        if path.starts_with("commitlog/") || path.starts_with("consumequeue/") {
            assert_eq!(disk.files().get(path), Some(bytes), "{path} changed");
        }
    }
}

#[test]
fn a_tail_less_store_cut_by_a_crash_loses_only_the_torn_record() {
    let mut disk = MemDisk::new();
    let fixture = write_foreign_store(&mut disk, &spec(0, true)).unwrap();
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    let whole = fixture.whole_records().len() as u64;
    assert_eq!(report.records_recovered, whole, "{report:?}");
    let cut = report.cut.clone().expect("the torn record is cut");
    assert_eq!(Some(cut.offset), fixture.torn_at);
    assert!(cut.tail_zeroed);
    assert_eq!(store.written_offset(), fixture.torn_at.unwrap());
    assert_serves(&store, &disk, &fixture);
}

#[test]
fn the_checkpoint_field_at_0x28_survives_recovery() {
    let mut disk = MemDisk::new();
    write_foreign_store(&mut disk, &spec(0, true)).unwrap();
    let (mut store, _) = boot(&mut disk);
    store.request_flush(&mut disk).unwrap();
    store.request_logic_flush(&mut disk).unwrap();
    settle(&mut store, &mut disk);
    let field = disk
        .read(CHECKPOINT_PATH, CHECKPOINT_EXTRA_FIELD_AT, 8)
        .unwrap();
    assert_eq!(
        i64::from_be_bytes(field[..].try_into().unwrap()),
        CHECKPOINT_EXTRA_FIELD
    );
    assert_eq!(store.state(), StoreState::Ready);
}

#[test]
fn files_alternating_between_the_formats_recover_intact() {
    for files_with_crc_tail in [0b1010_1010, 0b0101_0101, 0b1111_1100, 0b0000_0011] {
        for crashed in [false, true] {
            let mut disk = MemDisk::new();
            let fixture =
                write_foreign_store(&mut disk, &spec(files_with_crc_tail, crashed)).unwrap();
            let (store, report) = boot(&mut disk);
            let whole = fixture.whole_records().len() as u64;
            assert_eq!(report.records_recovered, whole, "{files_with_crc_tail:#b}");
            let without: Vec<u64> = (0..FILE_SIZE * 8)
                .step_by(FILE_SIZE as usize)
                .filter(|s| {
                    fixture
                        .whole_records()
                        .iter()
                        .any(|r| r.physical_offset == *s && !r.with_crc_tail)
                })
                .collect();
            assert_eq!(report.commit_log_files_without_crc_tail, without);
            assert_serves(&store, &disk, &fixture);
        }
    }
}

/// rocketsim appends records with tails to the tail-less file it took over; the file
/// keeps its format and both kinds of record survive the next boots.
#[test]
fn records_appended_after_taking_over_a_tail_less_store_survive() {
    use rmq_model::store::{Host, NewRecord};
    let mut disk = MemDisk::new();
    let fixture = write_foreign_store(&mut disk, &spec(0, false)).unwrap();
    let (mut store, _) = boot(&mut disk);
    let host = Host {
        ip: "127.0.0.1".parse().unwrap(),
        port: 10911,
    };
    let rec = NewRecord {
        topic: "TopicTest",
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp_ms: 1,
        born_host: host,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: b"after the takeover",
        properties: "TAGS\u{1}TagA\u{2}",
    };
    let before = store.max_queue_offset("TopicTest", 0);
    let appended = store.append(&mut disk, &rec, 1_800_000_000_000).unwrap();
    assert_eq!(appended.queue_offset, Some(before));
    assert_eq!(
        appended.physical_offset / FILE_SIZE,
        fixture.records.last().unwrap().physical_offset / FILE_SIZE,
        "the record goes into the tail-less file"
    );
    store.request_flush(&mut disk).unwrap();
    store.request_logic_flush(&mut disk).unwrap();
    settle(&mut store, &mut disk);
    for _ in 0..2 {
        let (store, report) = boot(&mut disk);
        assert_eq!(report.records_recovered, fixture.records.len() as u64 + 1);
        assert_eq!(report.cut, None);
        assert_records_served(&store, &disk, &fixture);
        assert_eq!(store.max_queue_offset("TopicTest", 0), before + 1);
        let got = store.get_message(&disk, "TopicTest", 0, before).unwrap();
        assert_eq!(got.physical_offset, appended.physical_offset);
    }
}

/// Damage in the middle of the log cuts it there (RocketMQ's behaviour), and the report
/// counts every record behind the cut that still parses, in every later file too, not
/// only the first.
#[test]
fn a_cut_counts_every_record_lost() {
    for files_with_crc_tail in [0, u64::MAX] {
        let mut disk = MemDisk::new();
        let fixture = write_foreign_store(&mut disk, &spec(files_with_crc_tail, false)).unwrap();
        // A flipped bit in the body of the record at the middle of the second file.
        let in_second: Vec<_> = fixture
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.physical_offset / FILE_SIZE == 1)
            .collect();
        let (damaged_index, damaged) = in_second[in_second.len() / 2];
        let path = format!("commitlog/{:020}", FILE_SIZE);
        let at = damaged.physical_offset % FILE_SIZE + 90;
        let mut byte = disk.read(&path, at, 1).unwrap().to_vec();
        byte[0] ^= 0x10;
        disk.write(&path, at, &byte).unwrap();

        let (store, report) = boot(&mut disk);
        let cut = report.cut.clone().unwrap();
        assert_eq!(cut.offset, damaged.physical_offset, "{cut:?}");
        assert_eq!(report.records_recovered, damaged_index as u64);
        let lost = (fixture.records.len() - damaged_index) as u64;
        assert_eq!(report.discarded_count(), lost, "{report:?}");
        let listed: Vec<u64> = report.discarded.iter().map(|d| d.physical_offset).collect();
        let expected: Vec<u64> = fixture.records[damaged_index..]
            .iter()
            .map(|r| r.physical_offset)
            .collect();
        assert_eq!(listed, expected);
        assert_eq!(store.written_offset(), damaged.physical_offset);
    }
}

/// Behind an unparseable slot the count goes on: records found again at their own
/// offsets are counted, not only those reachable record by record.
#[test]
fn records_behind_garbage_are_counted() {
    let mut disk = MemDisk::new();
    let fixture = write_foreign_store(&mut disk, &spec(0, false)).unwrap();
    let first = &fixture.records[3];
    let path = "commitlog/00000000000000000000";
    // Garbage over its header: no TOTALSIZE to skip it by.
    disk.write(path, first.physical_offset, &[0xEE; 12])
        .unwrap();
    let (_, report) = boot(&mut disk);
    assert_eq!(report.cut.as_ref().unwrap().offset, first.physical_offset);
    assert_eq!(report.records_recovered, 3);
    // Every record but the one whose header is gone.
    assert_eq!(
        report.discarded_count(),
        fixture.records.len() as u64 - 4,
        "{report:?}"
    );
}

fn snapshot(disk: &MemDisk) -> BTreeMap<String, Vec<u8>> {
    disk.files().clone()
}

fn assert_refused_untouched(disk: &mut MemDisk, config: StoreConfig, what: &str) -> String {
    let before = snapshot(disk);
    let err = match recover(disk, config) {
        Ok((_, report)) => panic!("{what}: recovered: {report:?}"),
        Err(e) => e,
    };
    assert!(
        matches!(err, rmq_model::store::StoreError::Refused { .. }),
        "{what}: {err}"
    );
    assert_eq!(snapshot(disk), before, "{what}: the disk changed");
    assert!(disk.take_requested_syncs().is_empty());
    err.to_string()
}

#[test]
fn a_store_of_another_file_size_is_refused_untouched() {
    // Written with 4 KiB files, recovered with 2 KiB: too long.
    let mut disk = MemDisk::new();
    write_foreign_store(&mut disk, &spec(0, true)).unwrap();
    let smaller = StoreConfig {
        commit_log_file_size_bytes: FILE_SIZE / 2,
        ..config()
    };
    let msg = assert_refused_untouched(&mut disk, smaller, "2 KiB");
    assert!(msg.contains("commitlog/00000000000000000000"), "{msg}");
    assert!(
        msg.contains("set commit_log_file_size_bytes to 4096"),
        "{msg}"
    );
    // Recovered with 8 KiB: the second file's name is not a multiple.
    let larger = StoreConfig {
        commit_log_file_size_bytes: FILE_SIZE * 2,
        ..config()
    };
    let msg = assert_refused_untouched(&mut disk, larger, "8 KiB");
    assert!(msg.contains("not a multiple"), "{msg}");
    // With the right size it recovers.
    let (_, report) = boot(&mut disk);
    assert_eq!(report.records_recovered, 59);
}

#[test]
fn a_commit_log_that_is_not_rocketmq_is_refused_untouched() {
    let mut disk = MemDisk::new();
    write_foreign_store(&mut disk, &spec(0, false)).unwrap();
    let path = "commitlog/00000000000000000000";
    disk.write(path, 0, b"SQLite format 3\0").unwrap();
    let msg = assert_refused_untouched(&mut disk, config(), "sqlite");
    assert!(msg.contains(path), "{msg}");
    assert!(msg.contains("does not start with a RocketMQ"), "{msg}");
}

/// A few flipped bits in the first record's magic code are damage, not a foreign
/// format: the log is cut there as before.
#[test]
fn a_damaged_first_magic_code_is_cut_not_refused() {
    let mut disk = MemDisk::new();
    write_foreign_store(&mut disk, &spec(0, false)).unwrap();
    let path = "commitlog/00000000000000000000";
    disk.write(path, 4, &[0xDA, 0xA3, 0x21, 0xA6]).unwrap();
    let (store, report) = boot(&mut disk);
    assert_eq!(report.cut.unwrap().offset, 0);
    assert_eq!(store.written_offset(), 0);
}

/// A slave copying a master that took over a tail-less store writes the records as
/// they are, reads its files' format the same way, and serves and recovers them.
#[test]
fn a_slave_copies_a_tail_less_store_and_recovers_it() {
    let mut master_disk = MemDisk::new();
    let fixture = write_foreign_store(&mut master_disk, &spec(0b0100, false)).unwrap();
    let (master, _) = boot(&mut master_disk);
    let mut slave_disk = MemDisk::new();
    let (mut slave, _) = boot(&mut slave_disk);
    let mut from = 0;
    while from < master.written_offset() {
        let batch = master
            .read_for_replication(&master_disk, from, master.written_offset(), 1024)
            .unwrap();
        assert!(!batch.data.is_empty());
        slave
            .append_replicated(&mut slave_disk, &batch.data)
            .unwrap();
        from = batch.end;
    }
    assert_eq!(slave.written_offset(), master.written_offset());
    for (store, disk) in [(&slave, &slave_disk), (&master, &master_disk)] {
        assert_serves(store, disk, &fixture);
    }
    slave.request_flush(&mut slave_disk).unwrap();
    slave.request_logic_flush(&mut slave_disk).unwrap();
    settle(&mut slave, &mut slave_disk);
    let (slave, report) = boot(&mut slave_disk);
    assert_eq!(report.records_recovered, fixture.records.len() as u64);
    assert_eq!(report.cut, None);
    assert_serves(&slave, &slave_disk, &fixture);
}
