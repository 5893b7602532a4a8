//! FsDisk against the model: the same Disk operations give the same results on a real
//! directory as on MemDisk, a store survives clean and unclean restarts on real files,
//! and no path can leave the root.

use std::collections::BTreeMap;

use rmq_model::message::encode_properties;
use rmq_model::store::disk::join;
use rmq_model::store::{
    recover, Disk, DiskError, Host, MemDisk, MessageStore, NewRecord, RecoveryMode, RecoveryReport,
    StoreConfig, StoreEvent, StoreState, StoredMessage, SyncTarget, ABORT_PATH,
};
use rmq_real::fs_disk::{FsDisk, MAX_OPEN_FILES, MAX_SYNCS_IN_FLIGHT};

// ---------------------------------------------------------------------------------------
// Conformance: FsDisk and MemDisk side by side.

/// An operation's result with what differs by nature (I/O error texts) left out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Unit,
    Bool(bool),
    Len(u64),
    Bytes(Vec<u8>),
    Entries(Vec<(String, bool)>),
    Ticket(u64),
    NotFound(String),
    AlreadyExists(String),
    PastEnd {
        path: String,
        offset: u64,
        len: u64,
        file_len: u64,
    },
    Io(String),
}

fn outcome<T>(r: Result<T, DiskError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(DiskError::NotFound { path }) => Outcome::NotFound(path),
        Err(DiskError::AlreadyExists { path }) => Outcome::AlreadyExists(path),
        Err(DiskError::PastEnd {
            path,
            offset,
            len,
            file_len,
        }) => Outcome::PastEnd {
            path,
            offset,
            len,
            file_len,
        },
        Err(DiskError::Io { path, .. }) => Outcome::Io(path),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create(&'static str),
    Exists(&'static str),
    Len(&'static str),
    SetLen(&'static str, u64),
    Read(&'static str, u64, usize),
    Write(&'static str, u64, Vec<u8>),
    Delete(&'static str),
    Rename(&'static str, &'static str),
    List(&'static str),
    SyncFile(&'static str),
    SyncDir(&'static str),
}

fn apply(disk: &mut dyn Disk, op: &Op) -> Outcome {
    match op {
        Op::Create(p) => outcome(disk.create(p), |_| Outcome::Unit),
        Op::Exists(p) => Outcome::Bool(disk.exists(p)),
        Op::Len(p) => outcome(disk.len(p), Outcome::Len),
        Op::SetLen(p, n) => outcome(disk.set_len(p, *n), |_| Outcome::Unit),
        Op::Read(p, off, n) => outcome(disk.read(p, *off, *n), |b| Outcome::Bytes(b.to_vec())),
        Op::Write(p, off, data) => outcome(disk.write(p, *off, data), |_| Outcome::Unit),
        Op::Delete(p) => outcome(disk.delete(p), |_| Outcome::Unit),
        Op::Rename(a, b) => outcome(disk.rename(a, b), |_| Outcome::Unit),
        Op::List(d) => outcome(disk.list(d), |es| {
            Outcome::Entries(es.into_iter().map(|e| (e.name, e.is_dir)).collect())
        }),
        Op::SyncFile(p) => outcome(disk.request_sync(SyncTarget::File(p)), |t| {
            Outcome::Ticket(t.0)
        }),
        Op::SyncDir(d) => outcome(disk.request_sync(SyncTarget::Dir(d)), |t| {
            Outcome::Ticket(t.0)
        }),
    }
}

/// Everything visible through the trait: each file (found by listing from the root)
/// with its bytes.
fn tree(disk: &dyn Disk) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        for e in disk.list(&dir).unwrap() {
            let path = join(&dir, &e.name);
            if e.is_dir {
                dirs.push(path);
            } else {
                let len = disk.len(&path).unwrap();
                let bytes = disk.read(&path, 0, len as usize).unwrap().to_vec();
                out.insert(path, bytes);
            }
        }
    }
    out
}

/// Runs `ops` on both disks, asserting after every step that the results and the
/// whole visible tree agree.
fn run_both(ops: &[Op]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = FsDisk::open(tmp.path().join("store")).unwrap();
    let mut mem = MemDisk::new();
    for (i, op) in ops.iter().enumerate() {
        let want = apply(&mut mem, op);
        let got = apply(&mut fs, op);
        assert_eq!(got, want, "step {i}: {op:?}");
        assert_eq!(tree(&fs), tree(&mem), "tree after step {i}: {op:?}");
    }
    // Every sync a MemDisk was asked for, the FsDisk did, successfully.
    let requested = mem.take_requested_syncs();
    let completed = fs.take_completed();
    assert_eq!(completed.len(), requested.len());
    for ((t, r), want) in completed.into_iter().zip(requested) {
        assert_eq!(t, want);
        assert_eq!(r, Ok(()), "{t}");
    }
}

#[test]
fn disk_operations_mean_the_same_on_real_files_as_in_the_model() {
    use Op::*;
    let ops = vec![
        List(""),
        Create("a/b/c"),
        Create("a/b/c"),
        Create("top"),
        Exists("a/b/c"),
        Exists("a/b"),
        Exists("a"),
        Exists("nope"),
        // A write past the end grows the file; the gap reads as zeros.
        Write("a/b/c", 10, b"hello".to_vec()),
        Len("a/b/c"),
        Read("a/b/c", 0, 15),
        Write("a/b/c", 3, b"XY".to_vec()),
        Read("a/b/c", 2, 4),
        // Reads past the end are errors, never short reads.
        Read("a/b/c", 14, 2),
        Read("a/b/c", 15, 0),
        Read("a/b/c", 16, 0),
        Read("a/b/c", u64::MAX, 2),
        Read("a/b/c", 0, 1 << 20),
        // set_len grows with zeros and cuts.
        SetLen("a/b/c", 100),
        Read("a/b/c", 90, 10),
        SetLen("a/b/c", 4),
        Read("a/b/c", 0, 4),
        Read("a/b/c", 0, 5),
        SetLen("a/b/c", 0),
        Len("a/b/c"),
        Write("a/b/c", 0, b"first".to_vec()),
        // Missing files.
        Write("missing", 0, b"x".to_vec()),
        Read("missing", 0, 0),
        Len("missing"),
        SetLen("missing", 1),
        Delete("missing"),
        Rename("missing", "other"),
        SyncFile("missing"),
        Write("top/under", 0, b"x".to_vec()),
        Read("a/b/c/deeper", 0, 1),
        // Directories are not files.
        Len("a"),
        Read("a/b", 0, 0),
        Write("a/b", 0, b"x".to_vec()),
        SetLen("a", 1),
        Delete("a/b"),
        // Listing: files and implicit directories, each once, sorted.
        Create("a/b/d"),
        Write("a/b/d", 0, b"second".to_vec()),
        Create("a/x/e"),
        Create("a/0"),
        List(""),
        List("a"),
        List("a/b"),
        List("a/b/c"),
        List("a/nope"),
        List("nope/deeper"),
        // Rename replaces the target atomically; the source name is gone.
        Rename("a/b/c", "a/b/d"),
        Exists("a/b/c"),
        Read("a/b/d", 0, 5),
        Len("a/b/d"),
        Rename("a/b/d", "a/b/d"),
        Rename("a/b/d", "a/b/fresh"),
        List("a/b"),
        // A write after rename goes to the renamed file.
        Write("a/b/fresh", 5, b"!".to_vec()),
        Read("a/b/fresh", 0, 6),
        // Syncs.
        SyncFile("a/b/fresh"),
        SyncDir("a/b"),
        SyncDir(""),
        // Deleting a directory's last file makes the directory disappear.
        Delete("a/b/fresh"),
        Exists("a/b/fresh"),
        List("a"),
        List("a/b"),
        SyncDir("a/b"),
        Delete("a/x/e"),
        Delete("a/0"),
        List(""),
        Create("a/b/again"),
        List(""),
        Delete("top"),
        Delete("a/b/again"),
        List(""),
        SyncDir(""),
    ];
    run_both(&ops);
}

/// A tiny deterministic generator (xorshift64*), so the test needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_operation_sequences_agree_with_the_model() {
    // No name is both a file and a directory: that case differs by nature (see the
    // module docs of fs_disk and `names_that_are_both_file_and_dir_are_refused`).
    const FILES: [&str; 7] = ["f", "g", "d/g", "d/h", "d/e/i", "d/e/j", "x/y/z"];
    const DIRS: [&str; 6] = ["", "d", "d/e", "x", "x/y", "nope"];
    let same_dir = |a: &str, b: &str| {
        rmq_model::store::disk::parent_dir(a) == rmq_model::store::disk::parent_dir(b)
    };
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut ops = Vec::new();
        for _ in 0..300 {
            let f = FILES[rng.below(FILES.len() as u64) as usize];
            let op = match rng.below(12) {
                0 | 1 => Op::Create(f),
                2 | 3 => {
                    let data = vec![rng.below(256) as u8; rng.below(40) as usize];
                    Op::Write(f, rng.below(64), data)
                }
                4 => Op::SetLen(f, rng.below(80)),
                5 | 6 => Op::Read(f, rng.below(64), rng.below(32) as usize),
                7 => Op::Delete(f),
                8 => {
                    let to = FILES[rng.below(FILES.len() as u64) as usize];
                    if same_dir(f, to) {
                        Op::Rename(f, to)
                    } else {
                        Op::Len(f)
                    }
                }
                9 => Op::List(DIRS[rng.below(DIRS.len() as u64) as usize]),
                10 => Op::Exists(f),
                _ if rng.below(8) == 0 => Op::SyncDir(DIRS[rng.below(DIRS.len() as u64) as usize]),
                _ => Op::Len(f),
            };
            ops.push(op);
        }
        run_both(&ops);
    }
}

/// Where real files cannot follow the model, FsDisk refuses instead of diverging
/// silently: the model lets one name be a file and a directory at once.
#[test]
fn names_that_are_both_file_and_dir_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = FsDisk::open(tmp.path()).unwrap();
    fs.create("a").unwrap();
    assert!(matches!(fs.create("a/b"), Err(DiskError::Io { .. })));
    fs.create("d/e").unwrap();
    assert!(matches!(
        fs.create("d"),
        Err(DiskError::AlreadyExists { .. })
    ));
}

#[test]
fn open_handles_stay_bounded_and_evicted_files_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let mut fs = FsDisk::open(tmp.path()).unwrap();
    let n = MAX_OPEN_FILES + 44;
    for i in 0..n {
        let path = format!("many/{i:05}");
        fs.create(&path).unwrap();
        fs.write(&path, 0, &(i as u64).to_be_bytes()).unwrap();
        assert!(fs.open_files() <= MAX_OPEN_FILES);
    }
    for i in 0..n {
        let path = format!("many/{i:05}");
        fs.write(&path, 8, b"+").unwrap();
        let bytes = fs.read(&path, 0, 9).unwrap();
        assert_eq!(&bytes[..8], &(i as u64).to_be_bytes());
        assert_eq!(bytes[8], b'+');
        assert!(fs.open_files() <= MAX_OPEN_FILES);
    }
}

// ---------------------------------------------------------------------------------------
// Path escapes.

#[test]
fn paths_cannot_leave_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let mut fs = FsDisk::open(&root).unwrap();
    fs.create("inside").unwrap();
    std::fs::write(tmp.path().join("outside"), b"secret").unwrap();
    let bad = [
        "/etc/passwd",
        "../outside",
        "../escaped",
        "a/../../outside",
        "..",
        ".",
        "./inside",
        "a/./b",
        "a//b",
        "/",
        "a/",
        "with\0nul",
    ];
    let is_io = |r: Result<(), DiskError>| matches!(r, Err(DiskError::Io { .. }));
    for p in bad {
        assert!(is_io(fs.create(p)), "create {p:?}");
        assert!(!fs.exists(p), "exists {p:?}");
        assert!(is_io(fs.len(p).map(drop)), "len {p:?}");
        assert!(is_io(fs.set_len(p, 0)), "set_len {p:?}");
        assert!(is_io(fs.read(p, 0, 1).map(drop)), "read {p:?}");
        assert!(is_io(fs.write(p, 0, b"x")), "write {p:?}");
        assert!(is_io(fs.delete(p)), "delete {p:?}");
        assert!(is_io(fs.rename("inside", p)), "rename to {p:?}");
        assert!(is_io(fs.rename(p, "inside")), "rename from {p:?}");
        assert!(is_io(fs.list(p).map(drop)), "list {p:?}");
        let file_sync = fs.request_sync(SyncTarget::File(p)).map(drop);
        assert!(is_io(file_sync), "sync file {p:?}");
        let dir_sync = fs.request_sync(SyncTarget::Dir(p)).map(drop);
        assert!(is_io(dir_sync), "sync dir {p:?}");
    }
    assert!(is_io(fs.create("")), "the root is not a file");
    assert!(is_io(fs.read("", 0, 0).map(drop)));
    // Nothing outside the root was touched, and nothing was synced.
    assert_eq!(
        std::fs::read(tmp.path().join("outside")).unwrap(),
        b"secret"
    );
    assert!(!tmp.path().join("escaped").exists());
    assert!(fs.exists("inside"));
    assert!(fs.take_completed().is_empty());
    // Renames across directories are refused as well (the trait's precondition).
    fs.create("d/f").unwrap();
    assert!(is_io(fs.rename("d/f", "e/f")));
    assert!(fs.exists("d/f"));
}

// ---------------------------------------------------------------------------------------
// A message store on real files.

fn config() -> StoreConfig {
    StoreConfig {
        commit_log_file_size_bytes: 4096,
        consume_queue_entries_per_file: 8,
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

fn settle(store: &mut MessageStore, disk: &mut FsDisk) -> Vec<StoreEvent> {
    disk.complete_syncs(store)
}

fn boot(disk: &mut FsDisk) -> (MessageStore, RecoveryReport) {
    let (mut store, report) = recover(disk, config()).unwrap();
    assert_eq!(store.state(), StoreState::Booting);
    let events = settle(&mut store, disk);
    assert!(events.contains(&StoreEvent::Ready), "{events:?}");
    assert!(store.outstanding_syncs().is_empty());
    (store, report)
}

const QUEUES: [(&str, i32); 4] = [("T", 0), ("T", 1), ("T", 2), ("Other", 0)];

/// Appends `n` records spread over `QUEUES`, bodies of varied size.
fn fill(store: &mut MessageStore, disk: &mut dyn Disk, n: usize, salt: usize) {
    for i in 0..n {
        let (topic, queue_id) = QUEUES[i % QUEUES.len()];
        let body = vec![(i + salt) as u8; (i * 37 + salt) % 300];
        let props = encode_properties([("TAGS", "TagA"), ("KEYS", "k")]);
        let rec = NewRecord {
            topic,
            queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp_ms: 1,
            born_host: host(),
            store_host: host(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            properties: &props,
        };
        store.append(disk, &rec, 1_000 + (salt + i) as i64).unwrap();
    }
}

/// Every message of every queue, read through the store (verified on the way).
fn read_all(store: &MessageStore, disk: &dyn Disk) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    for (topic, queue_id) in QUEUES {
        for q in 0..store.max_queue_offset(topic, queue_id) {
            let m = store.get_message(disk, topic, queue_id, q).unwrap();
            let by_offset = store
                .get_by_commit_log_offset(disk, m.physical_offset)
                .unwrap();
            assert_eq!(by_offset.bytes, m.bytes);
            out.push(m);
        }
    }
    out
}

#[test]
fn a_store_survives_clean_shutdown_and_crash_on_real_files() {
    survive_clean_shutdown_and_crash(|root| FsDisk::open(root).unwrap());
}

#[test]
fn a_store_survives_clean_shutdown_and_crash_with_threaded_syncs() {
    survive_clean_shutdown_and_crash(|root| FsDisk::open_threaded(root).unwrap());
}

fn survive_clean_shutdown_and_crash(open: fn(&std::path::Path) -> FsDisk) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");

    // First run: boot an empty store, fill it, flush, shut down cleanly.
    let (before_shutdown, written) = {
        let mut disk = open(&root);
        let (mut store, report) = boot(&mut disk);
        assert_eq!(report.mode, RecoveryMode::Normal);
        assert_eq!(report.records_recovered, 0);
        fill(&mut store, &mut disk, 200, 0);
        let files = store.commit_log().files().starts().len();
        assert!(files >= 5, "4 KiB files must roll, got {files}");
        let target = store.request_flush(&mut disk).unwrap().unwrap();
        let events = settle(&mut store, &mut disk);
        assert!(
            events.contains(&StoreEvent::CommitLogDurable(target)),
            "{events:?}"
        );
        assert_eq!(store.durable_offset(), store.written_offset());
        let messages = read_all(&store, &disk);
        assert_eq!(messages.len(), 200);
        assert_eq!(
            store.begin_shutdown(&mut disk).unwrap(),
            StoreEvent::Nothing
        );
        let events = settle(&mut store, &mut disk);
        assert_eq!(events.last(), Some(&StoreEvent::Closed), "{events:?}");
        assert_eq!(store.state(), StoreState::Closed);
        assert!(!root.join(ABORT_PATH).exists());
        (messages, store.written_offset())
    };
    // Every commit-log file is on the real disk at its full size.
    let commit_log_files = std::fs::read_dir(root.join("commitlog")).unwrap().count();
    assert!(commit_log_files >= 5);

    // Second run: a new FsDisk on the same directory recovers normally.
    let messages = {
        let mut disk = open(&root);
        let (mut store, report) = boot(&mut disk);
        assert_eq!(report.mode, RecoveryMode::Normal);
        assert_eq!(report.records_recovered, 200);
        assert_eq!(report.cut, None);
        assert_eq!(report.consume_queue_entries_rewritten, 0);
        assert!(report.notes.is_empty(), "{:?}", report.notes);
        assert_eq!(store.written_offset(), written);
        assert_eq!(read_all(&store, &disk), before_shutdown);

        // Then a crash: more records, some flushed and some not, and no shutdown.
        fill(&mut store, &mut disk, 60, 7);
        store.request_flush(&mut disk).unwrap();
        settle(&mut store, &mut disk);
        fill(&mut store, &mut disk, 40, 11);
        let messages = read_all(&store, &disk);
        assert_eq!(messages.len(), 300);
        assert!(root.join(ABORT_PATH).exists());
        drop(store);
        messages
    };

    // Third run: the abort marker means abnormal recovery; nothing was lost, since the
    // process died but the kernel kept its page cache.
    let mut disk = open(&root);
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    assert_eq!(report.records_recovered, 300);
    assert!(report.discarded.is_empty(), "{:?}", report.discarded);
    assert_eq!(read_all(&store, &disk), messages);
}

/// A store another RocketMQ implementation wrote with `enabledAppendPropCRC` off, on
/// real files: shut down cleanly it recovers whole; cut by a crash it loses only the torn
/// record. The files the recovery leaves are RocketMQ's: the commit log of the clean one
/// is not changed by a byte.
#[test]
fn a_tail_less_store_recovers_on_real_files() {
    use rmq_model::store::foreign_store::{write_foreign_store, ForeignStoreSpec};
    for crashed in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        let spec = ForeignStoreSpec {
            commit_log_file_size_bytes: config().commit_log_file_size_bytes,
            consume_queue_entries_per_file: config().consume_queue_entries_per_file,
            records: 60,
            files_with_crc_tail: 0,
            crashed,
        };
        let fixture = {
            let mut disk = FsDisk::open(&root).unwrap();
            write_foreign_store(&mut disk, &spec).unwrap()
        };
        let first_file = root.join("commitlog/00000000000000000000");
        let log_before = std::fs::read(&first_file).unwrap();
        let mut disk = FsDisk::open(&root).unwrap();
        let (store, report) = boot(&mut disk);
        let whole = fixture.whole_records();
        assert_eq!(report.records_recovered, whole.len() as u64, "{report:?}");
        assert_eq!(report.cut.map(|c| c.offset), fixture.torn_at);
        for r in whole {
            let m = store
                .get_message(&disk, r.topic, r.queue_id, r.queue_offset as u64)
                .unwrap();
            assert_eq!(m.physical_offset, r.physical_offset);
        }
        if !crashed {
            assert_eq!(std::fs::read(&first_file).unwrap(), log_before);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Threaded syncs: the store keeps working while the worker fsyncs.

#[test]
fn threaded_syncs_complete_later_through_take_completed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let wakes = Arc::new(AtomicUsize::new(0));
    let written = {
        let mut disk = FsDisk::open_threaded(&root).unwrap();
        let counter = Arc::clone(&wakes);
        disk.set_waker(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
        let (mut store, _) = boot(&mut disk);
        let wakes_after_boot = wakes.load(Ordering::SeqCst);
        assert!(wakes_after_boot > 0, "boot's syncs woke the driver");

        fill(&mut store, &mut disk, 50, 3);
        let target = store.request_flush(&mut disk).unwrap().unwrap();
        assert_eq!(target, store.written_offset());
        // The store is not blocked: it appends while the fsync may still run.
        fill(&mut store, &mut disk, 10, 5);
        // And it learns of durability only from a completion it was handed.
        assert!(store.durable_offset() < target);

        // Completions arrive only through take_completed, after the worker ran.
        let mut events = Vec::new();
        let mut rounds = 0;
        while !events.contains(&StoreEvent::CommitLogDurable(target)) {
            rounds += 1;
            assert!(rounds < 10_000, "the flush never completed: {events:?}");
            for (ticket, result) in disk.wait_completed(Duration::from_secs(10)) {
                assert_eq!(result, Ok(()));
                events.push(store.on_sync_complete(&mut disk, ticket, result));
            }
        }
        assert_eq!(store.durable_offset(), target);
        assert!(wakes.load(Ordering::SeqCst) > wakes_after_boot);
        assert_eq!(read_all(&store, &disk).len(), 60);
        // Flush the rest and crash (no shutdown): the records were made durable.
        store.request_flush(&mut disk).unwrap();
        settle(&mut store, &mut disk);
        assert_eq!(disk.syncs_in_flight(), 0);
        assert_eq!(store.durable_offset(), store.written_offset());
        store.written_offset()
    };

    let mut disk = FsDisk::open_threaded(&root).unwrap();
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    assert_eq!(report.records_recovered, 60);
    assert_eq!(store.written_offset(), written);
    assert_eq!(read_all(&store, &disk).len(), 60);
}

#[test]
fn threaded_syncs_complete_in_request_order_and_report_missing_files_at_once() {
    use std::time::Duration;

    let tmp = tempfile::tempdir().unwrap();
    let mut disk = FsDisk::open_threaded(tmp.path()).unwrap();
    disk.create("a/f").unwrap();
    disk.write("a/f", 0, &[1; 4096]).unwrap();
    let mut tickets = Vec::new();
    for i in 0..20 {
        disk.write("a/f", 4096 * (i + 1), &[2; 4096]).unwrap();
        tickets.push(disk.request_sync(SyncTarget::File("a/f")).unwrap());
        tickets.push(disk.request_sync(SyncTarget::Dir("a")).unwrap());
    }
    assert!(matches!(
        disk.request_sync(SyncTarget::File("a/missing")),
        Err(DiskError::NotFound { .. })
    ));
    assert!(matches!(
        disk.request_sync(SyncTarget::Dir("../x")),
        Err(DiskError::Io { .. })
    ));
    let mut completed = Vec::new();
    while completed.len() < tickets.len() {
        let done = disk.wait_completed(Duration::from_secs(10));
        assert!(!done.is_empty(), "no completion within 10 s");
        completed.extend(done.into_iter().map(|(ticket, result)| {
            assert_eq!(result, Ok(()));
            ticket
        }));
    }
    assert_eq!(completed, tickets);
    assert_eq!(disk.syncs_in_flight(), 0);
    assert!(disk.wait_completed(Duration::from_secs(10)).is_empty());
}

#[test]
fn threaded_requests_past_the_in_flight_bound_wait_for_the_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let mut disk = FsDisk::open_threaded(tmp.path()).unwrap();
    disk.create("f").unwrap();
    let requests = MAX_SYNCS_IN_FLIGHT + 50;
    for _ in 0..requests {
        disk.request_sync(SyncTarget::File("f")).unwrap();
        assert!(disk.syncs_in_flight() <= MAX_SYNCS_IN_FLIGHT);
    }
    let mut completed = 0;
    while completed < requests {
        let done = disk.wait_completed(std::time::Duration::from_secs(10));
        assert!(!done.is_empty(), "no completion within 10 s");
        completed += done.len();
    }
    assert_eq!(completed, requests);
}

// ---------------------------------------------------------------------------------------
// One store format on both drivers: what the real broker's disk holds recovers on the
// simulator's disk, and the other way round.

/// `files` made durable on a new simulated disk.
fn sim_disk_holding(files: &BTreeMap<String, Vec<u8>>) -> rmq_sim::storage::disk::SimDisk {
    let mut sim = rmq_sim::storage::disk::SimDisk::new();
    for (path, bytes) in files {
        sim.create(path).unwrap();
        sim.write(path, 0, bytes).unwrap();
        sim.request_sync(SyncTarget::File(path)).unwrap();
    }
    while sim.complete_next().is_some() {}
    sim
}

/// Recovers the store a simulated disk holds and reads every message.
fn recover_on_sim(sim: &mut rmq_sim::storage::disk::SimDisk) -> Vec<StoredMessage> {
    let (mut store, _) = recover(sim, config()).unwrap();
    while let Some((ticket, result)) = sim.complete_next() {
        store.on_sync_complete(sim, ticket, result);
    }
    assert_eq!(store.state(), StoreState::Ready);
    read_all(&store, sim)
}

#[test]
fn a_store_written_on_real_files_recovers_on_the_simulated_disk_and_back() {
    // Real files: fill and flush, then stop without a clean shutdown (a crash).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let written = {
        let mut disk = FsDisk::open(&root).unwrap();
        let (mut store, _) = boot(&mut disk);
        fill(&mut store, &mut disk, 70, 3);
        store.request_flush(&mut disk).unwrap();
        settle(&mut store, &mut disk);
        read_all(&store, &disk)
    };
    assert_eq!(written.len(), 70);
    assert!(
        root.join(ABORT_PATH).exists(),
        "a crash leaves the abort marker"
    );

    // The real files, recovered by the simulator's disk: every message, byte for byte.
    let mut sim = sim_disk_holding(&tree(&FsDisk::open(&root).unwrap()));
    let on_sim = recover_on_sim(&mut sim);
    assert_eq!(on_sim, written);

    // The simulator appends more, flushes and crashes; what its disk kept durably goes
    // back to real files and recovers there.
    let (mut store, _) = recover(&mut sim, config()).unwrap();
    while let Some((ticket, result)) = sim.complete_next() {
        store.on_sync_complete(&mut sim, ticket, result);
    }
    fill(&mut store, &mut sim, 30, 9);
    store.request_flush(&mut sim).unwrap();
    while let Some((ticket, result)) = sim.complete_next() {
        store.on_sync_complete(&mut sim, ticket, result);
    }
    let on_sim = read_all(&store, &sim);
    assert_eq!(on_sim.len(), 100);
    sim.crash_process();
    let back = tmp.path().join("back");
    {
        let mut disk = FsDisk::open(&back).unwrap();
        let paths: Vec<String> = sim.durable_paths().map(str::to_string).collect();
        for path in paths {
            let bytes = sim.durable_bytes(&path).unwrap().to_vec();
            disk.create(&path).unwrap();
            disk.write(&path, 0, &bytes).unwrap();
        }
    }
    let mut disk = FsDisk::open(&back).unwrap();
    let (store, report) = boot(&mut disk);
    assert_eq!(report.mode, RecoveryMode::Abnormal);
    assert_eq!(read_all(&store, &disk), on_sim);
}
