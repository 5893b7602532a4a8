//! The store's behaviour on a fault-free disk: appends, rolling, reads, group commit,
//! clean and unclean restarts, and every kind of bad input recovery must survive.

use rmq_model::message::encode_properties;
use rmq_model::store::consume_queue::CqEntry;
use rmq_model::store::record::{self, BLANK_MAGIC_CODE, MESSAGE_MAGIC_CODE_V1};
use rmq_model::store::{
    recover, Disk, Host, MemDisk, MessageStore, NewRecord, ReadError, RecoveryMode, RecoveryReport,
    StoreConfig, StoreError, StoreEvent, StoreState,
};

const FILE_SIZE: u64 = 1024;

fn config() -> StoreConfig {
    StoreConfig {
        commit_log_file_size_bytes: FILE_SIZE,
        consume_queue_entries_per_file: 4,
        max_message_size_bytes: 4096,
        ..StoreConfig::default()
    }
}

fn host() -> Host {
    Host {
        ip: "127.0.0.1".parse().unwrap(),
        port: 10911,
    }
}

fn rec<'a>(topic: &'a str, queue_id: i32, body: &'a [u8], props: &'a str) -> NewRecord<'a> {
    NewRecord {
        topic,
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp_ms: 1,
        born_host: host(),
        store_host: host(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: props,
    }
}

/// Completes every sync the disk was asked for until none are left.
fn settle(store: &mut MessageStore, disk: &mut MemDisk) -> Vec<StoreEvent> {
    disk.complete_syncs(store)
}

fn boot(disk: &mut MemDisk) -> (MessageStore, RecoveryReport) {
    let (mut store, report) = recover(disk, config()).unwrap();
    assert_eq!(store.state(), StoreState::Booting);
    let events = settle(&mut store, disk);
    assert!(events.contains(&StoreEvent::Ready), "{events:?}");
    (store, report)
}

/// Appends `n` records to topic T, queues 0..3, with bodies of varied size.
fn fill(store: &mut MessageStore, disk: &mut MemDisk, n: usize) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = vec![i as u8; (i * 37) % 300];
        let props = encode_properties([("TAGS", "TagA"), ("KEYS", "k")]);
        let r = store
            .append(
                disk,
                &rec("T", (i % 3) as i32, &body, &props),
                1000 + i as i64,
            )
            .unwrap();
        out.push((r.physical_offset, body));
    }
    out
}

#[test]
fn appends_roll_files_and_read_back_exactly() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    let written = fill(&mut store, &mut disk, 60);
    let files = store.commit_log().files().starts().len();
    assert!(files > 5, "tiny files must roll constantly, got {files}");
    for (i, (phys, body)) in written.iter().enumerate() {
        let queue_offset = (i / 3) as u64;
        let m = store
            .get_message(&disk, "T", (i % 3) as i32, queue_offset)
            .unwrap();
        assert_eq!(m.physical_offset, *phys);
        let Ok(record::Slot::Record(v)) = record::parse(&m.bytes, record::CrcCheck::Strict) else {
            panic!("stored bytes do not parse")
        };
        assert_eq!(v.body, &body[..]);
        assert_eq!(
            store.get_by_commit_log_offset(&disk, *phys).unwrap().bytes,
            m.bytes
        );
    }
    assert_eq!(store.max_queue_offset("T", 0), 20);
    assert!(matches!(
        store.get_message(&disk, "T", 0, 20),
        Err(ReadError::OffsetOverflow { .. })
    ));
    assert!(matches!(
        store.get_message(&disk, "U", 0, 0),
        Err(ReadError::NoSuchQueue { .. })
    ));
    // Every file ends with a blank marker before the next one starts.
    for &start in &store.commit_log().files().starts()[..files - 1] {
        let path = format!("commitlog/{start:020}");
        let bytes = &disk.files()[&path];
        let mut pos = 0usize;
        loop {
            let total = i32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            let magic = u32::from_be_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
            if magic == BLANK_MAGIC_CODE {
                assert_eq!(pos + total, FILE_SIZE as usize);
                break;
            }
            assert_eq!(magic, MESSAGE_MAGIC_CODE_V1);
            pos += total;
        }
    }
}

#[test]
fn group_commit_covers_only_what_was_written_before_the_request() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    let base = store.durable_offset();
    fill(&mut store, &mut disk, 3);
    let target = store.request_flush(&mut disk).unwrap().unwrap();
    let first = disk.take_requested_syncs();
    fill(&mut store, &mut disk, 2);
    assert!(store.written_offset() > target);
    assert_eq!(store.durable_offset(), base);
    let mut last = StoreEvent::Nothing;
    for t in first {
        last = store.on_sync_complete(&mut disk, t, Ok(()));
    }
    assert_eq!(last, StoreEvent::CommitLogDurable(target));
    assert_eq!(store.durable_offset(), target);
    assert!(store.unflushed_bytes() > 0);
}

#[test]
fn clean_shutdown_then_normal_recovery_changes_nothing() {
    let mut disk = MemDisk::new();
    let (mut store, first) = boot(&mut disk);
    assert_eq!(first.mode, RecoveryMode::Normal);
    fill(&mut store, &mut disk, 40);
    store.begin_shutdown(&mut disk).unwrap();
    let events = settle(&mut store, &mut disk);
    assert_eq!(events.last(), Some(&StoreEvent::Closed));
    assert!(!disk.exists("abort"));
    let before = disk.files().clone();
    let (store2, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Normal);
    assert_eq!(report.records_recovered, 40);
    assert_eq!(report.cut, None, "a clean log has nothing to cut");
    assert_eq!(report.consume_queue_entries_rewritten, 0);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    assert_eq!(store2.written_offset(), store.written_offset());
    // Only the abort marker and the checkpoint may differ.
    for (path, bytes) in &before {
        if path != "checkpoint" {
            assert_eq!(disk.files().get(path), Some(bytes), "{path} changed");
        }
    }
}

#[test]
fn crash_means_abnormal_recovery_and_lost_consume_queue_is_rebuilt() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    fill(&mut store, &mut disk, 30);
    let expected: Vec<_> = (0..10)
        .map(|q| store.get_message(&disk, "T", 1, q).unwrap())
        .collect();
    drop(store);
    // Lose the consume queues entirely: the log alone must rebuild them.
    let cq: Vec<String> = disk
        .files()
        .keys()
        .filter(|p| p.starts_with("consumequeue/"))
        .cloned()
        .collect();
    for p in cq {
        disk.delete(&p).unwrap();
    }
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    assert_eq!(report.records_recovered, 30);
    for (q, m) in expected.iter().enumerate() {
        assert_eq!(&store.get_message(&disk, "T", 1, q as u64).unwrap(), m);
    }
}

#[test]
fn appends_are_refused_until_boot_syncs_complete() {
    let mut disk = MemDisk::new();
    let (mut store, _) = recover(&mut disk, config()).unwrap();
    let r = store.append(&mut disk, &rec("T", 0, b"x", ""), 1);
    assert!(r.is_err());
    settle(&mut store, &mut disk);
    assert!(store.append(&mut disk, &rec("T", 0, b"x", ""), 1).is_ok());
}

#[test]
fn illegal_messages_are_refused_not_stored() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    assert!(store
        .append(&mut disk, &rec("a/b", 0, b"x", ""), 1)
        .is_err());
    assert!(store.append(&mut disk, &rec("T", -1, b"x", ""), 1).is_err());
    let huge = vec![0u8; 2000];
    assert!(store.append(&mut disk, &rec("T", 0, &huge, ""), 1).is_err());
    assert_eq!(store.written_offset(), 0);
    assert_eq!(store.state(), StoreState::Ready);
}

#[test]
fn bit_rot_is_never_delivered_and_recovery_reports_what_it_cut() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    let written = fill(&mut store, &mut disk, 12);
    // Damage the body of record 4 (queue 1, offset 1) in place.
    let (phys, _) = written[4];
    let path = format!("commitlog/{:020}", phys / FILE_SIZE * FILE_SIZE);
    let at = phys % FILE_SIZE + 100;
    let mut byte = disk.read(&path, at, 1).unwrap().into_owned();
    byte[0] ^= 0x10;
    disk.write(&path, at, &byte).unwrap();
    assert!(matches!(
        store.get_message(&disk, "T", 1, 1),
        Err(ReadError::Corrupt { .. })
    ));
    assert!(store.get_message(&disk, "T", 0, 1).is_ok());
    drop(store);
    let (store, report) = boot(&mut disk);
    let cut = report.cut.clone().unwrap();
    assert_eq!(cut.offset, phys);
    assert!(cut.reason.contains("CRC"), "{}", cut.reason);
    // RocketMQ truncates at the first bad record: the damaged one and all after it go,
    // and the report lists them.
    assert_eq!(report.records_recovered, 4);
    let listed: Vec<u64> = report.discarded.iter().map(|d| d.physical_offset).collect();
    let after: Vec<u64> = written[4..].iter().map(|w| w.0).collect();
    assert_eq!(listed, after);
    assert_eq!(store.max_queue_offset("T", 1), 1);
    assert_eq!(store.max_queue_offset("T", 0), 2);
}

/// Recovers a hand-damaged image and checks the result is consistent: every consume
/// queue entry points at its record and offsets are dense.
fn recover_damaged(disk: &mut MemDisk) -> (MessageStore, RecoveryReport) {
    let (store, report) = boot(disk);
    for q in store.queues() {
        for off in q.min_offset()..q.max_offset() {
            store
                .get_message(disk, q.topic(), q.queue_id(), off)
                .unwrap_or_else(|e| panic!("{}-{}@{off}: {e}", q.topic(), q.queue_id()));
        }
    }
    (store, report)
}

/// A store with `n` records, cleanly shut down (so recovery starts from a quiet disk).
fn image(n: usize) -> (MemDisk, Vec<(u64, Vec<u8>)>) {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    let w = fill(&mut store, &mut disk, n);
    store.begin_shutdown(&mut disk).unwrap();
    settle(&mut store, &mut disk);
    (disk, w)
}

fn overwrite(disk: &mut MemDisk, phys: u64, at: u64, bytes: &[u8]) {
    let path = format!("commitlog/{:020}", phys / FILE_SIZE * FILE_SIZE);
    disk.write(&path, phys % FILE_SIZE + at, bytes).unwrap();
}

#[test]
fn bad_total_sizes_and_magic_cut_the_log_there() {
    let cases: Vec<(&str, u64, Vec<u8>)> = vec![
        ("negative", 0, (-77i32).to_be_bytes().to_vec()),
        ("absurd", 0, i32::MAX.to_be_bytes().to_vec()),
        (
            "crosses the file end",
            0,
            (FILE_SIZE as i32 - 10).to_be_bytes().to_vec(),
        ),
        ("unknown magic", 4, 0x1234_5678u32.to_be_bytes().to_vec()),
    ];
    for (name, at, bytes) in cases {
        let (mut disk, w) = image(9);
        overwrite(&mut disk, w[5].0, at, &bytes);
        let (store, report) = recover_damaged(&mut disk);
        assert_eq!(report.records_recovered, 5, "{name}");
        assert_eq!(report.cut.as_ref().unwrap().offset, w[5].0, "{name}");
        assert!(report.cut.as_ref().unwrap().tail_zeroed, "{name}");
        assert_eq!(
            store.written_offset(),
            w[5].0,
            "{name}: appends resume at the cut"
        );
        let path = format!("commitlog/{:020}", w[5].0 / FILE_SIZE * FILE_SIZE);
        let at = w[5].0 % FILE_SIZE;
        let tail = disk.read(&path, at, (FILE_SIZE - at) as usize).unwrap();
        assert!(
            tail.iter().all(|&b| b == 0),
            "{name}: stale bytes after the cut are zeroed"
        );
    }
}

#[test]
fn truncated_properties_and_non_utf8_topic_are_detected() {
    // Properties length claiming more than the record holds.
    let (mut disk, w) = image(6);
    let (phys, body) = &w[2];
    let props_len_at = 84 + 4 + body.len() as u64 + 1 + 1;
    overwrite(&mut disk, *phys, props_len_at, &i16::MAX.to_be_bytes());
    let (_, report) = recover_damaged(&mut disk);
    assert_eq!(report.records_recovered, 2);
    assert!(report.cut.unwrap().reason.contains("PROPERTIES"));

    // A topic byte that is not UTF-8 (the CRC catches it first; with the CRC patched up
    // the topic check still refuses it).
    let (mut disk, w) = image(6);
    let (phys, body) = &w[3];
    let topic_at = 84 + 4 + body.len() as u64 + 1;
    overwrite(&mut disk, *phys, topic_at, &[0xFF]);
    let (_, report) = recover_damaged(&mut disk);
    assert_eq!(report.records_recovered, 3);
    // The CRC sees it first; record.rs's tests show the topic check on its own.
    let reason = report.cut.unwrap().reason;
    assert!(reason.contains("CRC"), "{reason}");
}

#[test]
fn consume_queue_entry_past_the_log_is_rewritten() {
    let (mut disk, w) = image(6);
    let bogus = CqEntry {
        commit_log_offset: 1 << 40,
        size: 100,
        tags_code: 0,
    };
    disk.write(
        "consumequeue/T/0/00000000000000000000",
        20,
        &bogus.to_bytes(),
    )
    .unwrap();
    // An entry past the queue's end too.
    disk.write(
        "consumequeue/T/0/00000000000000000000",
        60,
        &bogus.to_bytes(),
    )
    .unwrap();
    let (store, report) = recover_damaged(&mut disk);
    assert_eq!(report.records_recovered, 6);
    assert_eq!(report.consume_queue_entries_rewritten, 1);
    assert!(report.notes.iter().any(|n| n.contains("disagreed")));
    assert_eq!(
        store.get_message(&disk, "T", 0, 1).unwrap().physical_offset,
        w[3].0
    );
}

#[test]
fn files_of_the_wrong_length_gaps_and_strays_are_repaired() {
    let (mut disk, _) = image(20);
    let names: Vec<String> = disk
        .files()
        .keys()
        .filter(|p| p.starts_with("commitlog/"))
        .cloned()
        .collect();
    assert!(names.len() >= 4);
    // The last file shortened (as when its length never reached the media).
    let last = names.last().unwrap().clone();
    disk.set_len(&last, 100).unwrap();
    // A stray file and a file after a gap. (A file at an offset that is not a multiple
    // of the file size is refused: `foreign_store.rs`.)
    disk.insert_file("commitlog/notes.txt", b"hello".to_vec());
    disk.insert_file(
        "commitlog/00000000000000999424",
        vec![0; FILE_SIZE as usize],
    );
    let (store, report) = recover_damaged(&mut disk);
    assert!(
        report.notes.iter().any(|n| n.contains("instead of")),
        "{:?}",
        report.notes
    );
    assert!(report.notes.iter().any(|n| n.contains("gap")));
    assert!(report
        .notes
        .iter()
        .any(|n| n.contains("not a commit-log file")));
    assert!(!disk.exists("commitlog/00000000000000999424"));
    assert!(
        disk.exists("commitlog/notes.txt"),
        "foreign files are left alone"
    );
    assert_eq!(disk.len(&last).unwrap(), FILE_SIZE);
    assert!(store.written_offset() <= store.commit_log().files().end_offset().unwrap());
}

#[test]
fn config_survives_a_restart() {
    use rmq_model::store::config_file::{ConfigFile, LoadSource};
    use rmq_model::store::config_tables::{ConsumerOffsetTable, CONSUMER_OFFSET_PATH};
    let mut disk = MemDisk::new();
    let mut f = ConfigFile::new(CONSUMER_OFFSET_PATH);
    let mut table = ConsumerOffsetTable::default();
    table
        .offset_table
        .entry("T@g".into())
        .or_default()
        .insert(0, 42);
    f.persist(&mut disk, serde_json::to_string(&table).unwrap())
        .unwrap();
    disk.complete_syncs(&mut f);
    let (loaded, src) = ConfigFile::new(CONSUMER_OFFSET_PATH).load::<ConsumerOffsetTable>(&disk);
    assert_eq!(src, LoadSource::Primary);
    assert_eq!(loaded, table);
}

/// Found by the `recovery` fuzz target (when cuts were fenced with an 8-byte marker): the
/// whole, CRC-valid records behind a cut stayed readable by commit-log offset (a message
/// id) although recovery had discarded them.
#[test]
fn records_cut_off_are_not_served_by_offset() {
    let (mut disk, w) = image(12);
    // A damaged record with another record behind it in the same file.
    let i = (1..w.len() - 1)
        .find(|&i| w[i].0 / FILE_SIZE == w[i + 1].0 / FILE_SIZE)
        .expect("some file holds two records");
    overwrite(&mut disk, w[i].0, 100, &[0xEE]);
    let (store, report) = recover_damaged(&mut disk);
    assert!(report.cut.as_ref().unwrap().tail_zeroed);
    assert!(report
        .discarded
        .iter()
        .any(|d| d.physical_offset == w[i + 1].0));
    for (phys, _) in &w[..i] {
        assert!(store.get_by_commit_log_offset(&disk, *phys).is_ok());
    }
    for (phys, _) in &w[i..] {
        assert!(
            store.get_by_commit_log_offset(&disk, *phys).is_err(),
            "discarded record at {phys} is served"
        );
    }
}

/// A blank marker ends its file: stale records behind one are zeroed, not served.
#[test]
fn bytes_behind_a_blank_marker_are_zeroed() {
    let (mut disk, w) = image(12);
    let i = (1..w.len() - 1)
        .find(|&i| w[i].0 / FILE_SIZE == w[i + 1].0 / FILE_SIZE)
        .expect("some file holds two records");
    let remaining = FILE_SIZE - w[i].0 % FILE_SIZE;
    overwrite(&mut disk, w[i].0, 0, &record::blank_marker(remaining));
    let (store, report) = recover_damaged(&mut disk);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("behind the end-of-file marker")),
        "{:?}",
        report.notes
    );
    let path = format!("commitlog/{:020}", w[i].0 / FILE_SIZE * FILE_SIZE);
    let behind = (w[i].0 % FILE_SIZE + 8) as usize;
    assert!(disk.files()[&path][behind..].iter().all(|&b| b == 0));
    assert!(store.get_by_commit_log_offset(&disk, w[i + 1].0).is_err());
}

/// Found by the `recovery` fuzz target: a commit-log file named past i64::MAX (or so
/// near u64::MAX that its end overflows) was adopted; it is now ignored.
#[test]
fn commit_log_files_past_the_i64_offset_space_are_ignored() {
    let last_whole = (1u64 << 63) - FILE_SIZE;
    for start in [last_whole + FILE_SIZE, u64::MAX / FILE_SIZE * FILE_SIZE] {
        let mut disk = MemDisk::new();
        disk.insert_file(&format!("commitlog/{start:020}"), vec![7; 100]);
        let (mut store, report) = recover_damaged(&mut disk);
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("63-bit offset space; ignored")),
            "{:?}",
            report.notes
        );
        assert_eq!(store.written_offset(), 0);
        let r = store.append(&mut disk, &rec("T", 0, b"x", ""), 1).unwrap();
        assert_eq!(r.physical_offset, 0);
    }
}

/// Found by the `recovery` fuzz target: the first record of a trimmed log sets its
/// queue's base, and an absurd queue offset made consume-queue byte offsets overflow.
#[test]
fn implausible_queue_offsets_in_a_trimmed_log_are_cut() {
    for (queue_offset, plausible) in [(5i64, true), (i64::MAX / 10, false)] {
        let mut bytes = Vec::new();
        rec("T", 0, b"x", "").encode(queue_offset, 2048, 1, &mut bytes);
        bytes.resize(FILE_SIZE as usize, 0);
        let mut disk = MemDisk::new();
        disk.insert_file("commitlog/00000000000000002048", bytes);
        let (store, report) = recover_damaged(&mut disk);
        if plausible {
            assert_eq!(report.records_recovered, 1);
            assert_eq!(store.queue("T", 0).unwrap().min_offset(), 5);
        } else {
            assert_eq!(report.records_recovered, 0);
            let reason = &report.cut.as_ref().unwrap().reason;
            assert!(reason.contains("more records than"), "{reason}");
            assert!(store.queue("T", 0).is_none());
        }
    }
}

/// Found by the `recovery` fuzz target: a log recovered at the end of the offset space
/// rolled into a file name recovery had ignored (the append failed on "already
/// exists", and its offsets would not have fitted an i64 anyway). Appends there are
/// refused instead.
#[test]
fn a_log_at_the_end_of_the_offset_space_refuses_appends() {
    let last_whole = (1u64 << 63) - FILE_SIZE;
    let mut bytes = Vec::new();
    rec("T", 0, b"x", "").encode(0, last_whole as i64, 1, &mut bytes);
    bytes.resize(FILE_SIZE as usize, 0);
    let mut disk = MemDisk::new();
    disk.insert_file(&format!("commitlog/{last_whole:020}"), bytes);
    disk.insert_file(&format!("commitlog/{:020}", 1u64 << 63), vec![0; 8]);
    let (mut store, report) = recover_damaged(&mut disk);
    assert_eq!(report.commit_log_min_offset, last_whole);
    assert!(matches!(
        store.append(&mut disk, &rec("T", 0, b"y", ""), 2),
        Err(StoreError::LogFull { .. })
    ));
    assert_eq!(store.state(), StoreState::Ready);
}

/// A slave fed batch after batch, each starting where the last one said the next starts,
/// ends up with the master's log: batches that cross a file end skip its blank, so a
/// batch's end is past `start + bytes` (the master once continued at `start + bytes`,
/// inside the blank, re-shipped records the slave already held and stalled replication
/// for good: swarm seeds 232 and 291).
#[test]
fn replication_batches_across_file_ends_continue_past_the_blank() {
    let mut master_disk = MemDisk::new();
    let (mut master, _) = boot(&mut master_disk);
    fill(&mut master, &mut master_disk, 60);
    let written = master.written_offset();
    assert!(written > 4 * FILE_SIZE, "the log spans several files");
    let mut slave_disk = MemDisk::new();
    let (mut slave, _) = boot(&mut slave_disk);
    let mut at = 0;
    let mut crossed = 0;
    while at < written {
        let batch = master
            .read_for_replication(&master_disk, at, written, 700)
            .unwrap();
        assert!(!batch.data.is_empty(), "records left at {at}");
        if batch.end > batch.start + batch.data.len() as u64 {
            crossed += 1;
        }
        let slave_end = slave
            .append_replicated(&mut slave_disk, &batch.data)
            .unwrap();
        // The slave writes a file's blank when its next record rolls: a batch that
        // ends by skipping a blank leaves the slave just before that file end.
        let rolled_later = batch.end % FILE_SIZE == 0
            && slave_end < batch.end
            && slave_end > batch.end - FILE_SIZE;
        assert!(
            slave_end == batch.end || rolled_later,
            "the slave is at {slave_end}, the batch ends at {}",
            batch.end
        );
        at = batch.end;
    }
    assert!(crossed > 0, "some batch crossed a file end");
    assert_eq!(slave.written_offset(), written);
    for q in 0..3 {
        assert_eq!(
            slave.max_queue_offset("T", q),
            master.max_queue_offset("T", q)
        );
    }
}

#[test]
fn a_batch_is_one_contiguous_run_of_consecutive_records_that_recovery_keeps() {
    let mut disk = MemDisk::new();
    let (mut store, _) = boot(&mut disk);
    let filler = vec![7u8; 600];
    let first = store
        .append(&mut disk, &rec("T", 0, &filler, ""), 1)
        .unwrap();
    let bodies: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 100]).collect();
    let props: Vec<String> = (0..3)
        .map(|i| encode_properties([("UNIQ_KEY", &*format!("U{i}"))]))
        .collect();
    let batch: Vec<NewRecord<'_>> = bodies
        .iter()
        .zip(&props)
        .map(|(b, p)| rec("T", 0, b, p))
        .collect();
    let len: u64 = batch.iter().map(|r| r.encoded_len() as u64).sum();
    assert!(
        first.end_offset + len + 8 > FILE_SIZE && len + 8 <= FILE_SIZE,
        "the batch fits a file, not the first one's rest"
    );
    let appended = store.append_batch(&mut disk, &batch, 2).unwrap();
    // The whole run goes to the next file, behind a blank closing the first.
    assert_eq!(appended[0].physical_offset, FILE_SIZE);
    let blank = disk
        .read("commitlog/00000000000000000000", first.end_offset, 8)
        .unwrap();
    assert_eq!(&blank[4..], &BLANK_MAGIC_CODE.to_be_bytes());
    for (i, a) in appended.iter().enumerate() {
        assert_eq!(a.queue_offset, Some(1 + i as u64));
        if i > 0 {
            assert_eq!(a.physical_offset, appended[i - 1].end_offset, "contiguous");
        }
    }
    assert_eq!(store.written_offset(), appended[2].end_offset);

    // A run larger than a file is refused whole; a bad record refuses the whole run.
    let big = vec![0u8; 400];
    let too_long: Vec<NewRecord<'_>> = (0..3).map(|_| rec("T", 0, &big, "")).collect();
    assert!(matches!(
        store.append_batch(&mut disk, &too_long, 3),
        Err(StoreError::RecordTooLarge { .. })
    ));
    let one_bad = [rec("T", 0, b"x", ""), rec("T", 0, &[0u8; 5000], "")];
    assert!(matches!(
        store.append_batch(&mut disk, &one_bad, 3),
        Err(StoreError::Illegal(_))
    ));
    assert_eq!(store.written_offset(), appended[2].end_offset);
    assert_eq!(store.max_queue_offset("T", 0), 4);

    // A crash: recovery finds each record of the run at its offsets, UNIQ_KEY and all.
    drop(store);
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    for (i, a) in appended.iter().enumerate() {
        let m = store.get_message(&disk, "T", 0, 1 + i as u64).unwrap();
        assert_eq!(m.physical_offset, a.physical_offset);
        let record::Slot::Record(v) = record::parse(&m.bytes, record::CrcCheck::Strict).unwrap()
        else {
            panic!("a record")
        };
        assert_eq!(v.body, &bodies[i][..]);
        assert_eq!(
            rmq_model::message::property(v.properties, "UNIQ_KEY"),
            Some(&*format!("U{i}"))
        );
    }
}
