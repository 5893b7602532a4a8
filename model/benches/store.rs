//! Store throughput on the fault-free `MemDisk`: appends, the boot-time recovery scan,
//! and raw CRC32 as the physical limit of a scan that verifies every byte.
//!
//! `cargo bench -p rmq-model --bench store`. Every group reports bytes per second:
//! record bytes appended, commit-log bytes recovered, bytes hashed. Recovery verifies
//! the CRC of every record, so `crc32_raw` over the same byte count is the rate it
//! cannot beat; `recovery_scan/*` divided by `crc32_raw/64MiB_one_buffer` says how
//! close it comes (the `*_chunks` variants hash one body-sized chunk per call, for
//! reference: the scan makes one call per record).

use std::cell::RefCell;
use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rmq_model::message::encode_properties;
use rmq_model::store::record::END_FILE_MIN_BLANK_LENGTH;
use rmq_model::store::{
    recover, Host, MemDisk, MessageStore, NewRecord, StoreConfig, StoreEvent, StoreState,
};

/// A production-like commit-log file size: appends roll now and then, not constantly.
const COMMIT_LOG_FILE_SIZE_BYTES: u64 = 64 * 1024 * 1024;
/// The append bench starts a fresh store (untimed) before it would write past this, so
/// its memory stays bounded however many iterations criterion asks for.
const APPEND_STORE_LIMIT_BYTES: u64 = 4 * COMMIT_LOG_FILE_SIZE_BYTES;
/// RocketMQ's default write queues per topic.
const QUEUES: i32 = 4;
const BODY_SIZES: [(usize, &str); 2] = [(1024, "1KiB"), (4096, "4KiB")];

fn config() -> StoreConfig {
    StoreConfig {
        commit_log_file_size_bytes: COMMIT_LOG_FILE_SIZE_BYTES,
        ..StoreConfig::default()
    }
}

fn host(port: i32) -> Host {
    Host {
        ip: "10.0.0.7".parse().unwrap(),
        port,
    }
}

/// What a RocketMQ producer typically sends: keys, a unique id, WAIT and a tag.
fn properties() -> String {
    encode_properties([
        ("KEYS", "order-20240611-000042"),
        ("UNIQ_KEY", "0A000007A1B218B4AAC27F3C5E2D0000"),
        ("WAIT", "true"),
        ("TAGS", "TagA"),
    ])
}

/// Deterministic, incompressible-looking body bytes.
fn body(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9E37_79B9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn new_record<'a>(queue_id: i32, body: &'a [u8], properties: &'a str) -> NewRecord<'a> {
    NewRecord {
        topic: "BenchTopic",
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: host(53_211),
        store_host: host(10_911),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties,
    }
}

fn settle(store: &mut MessageStore, disk: &mut MemDisk) -> Vec<StoreEvent> {
    disk.complete_syncs(store)
}

/// A store booted on `disk` and ready for appends.
fn boot(disk: &mut MemDisk) -> MessageStore {
    let (mut store, _) = recover(disk, config()).unwrap();
    settle(&mut store, disk);
    assert_eq!(store.state(), StoreState::Ready);
    store
}

/// A store being appended to across iterations, and the `now_ms` of its next append.
struct Appending {
    disk: MemDisk,
    store: MessageStore,
    next: i64,
}

impl Appending {
    fn fresh() -> Appending {
        let mut disk = MemDisk::new();
        let store = boot(&mut disk);
        Appending {
            disk,
            store,
            next: 0,
        }
    }
}

/// Each iteration appends one commit-log file's worth of records to a long-lived store,
/// so it rolls into a new file exactly once, as a store does in steady state: the cost
/// of creating (on `MemDisk`, zero-filling) the next file is spread over the records
/// that fill it. Rolling is a large, rare cost, which is why an iteration is a whole
/// file and sampling is flat; with iterations of one append, whether a sample happened
/// to include a roll decided its time.
///
/// The store lives in `parked` between iterations: setup (untimed) takes it out, or
/// boots a fresh one once the old one holds `APPEND_STORE_LIMIT_BYTES`, and the routine
/// parks it again, so dropping a full store is never timed. (Not `iter_custom`: that
/// needs `Instant`, which clippy.toml keeps out of `model/`.)
fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let props = properties();
    for (size, name) in BODY_SIZES {
        let body = body(size);
        let record_len = new_record(0, &body, &props).encoded_len() as u64;
        let records_per_file =
            (COMMIT_LOG_FILE_SIZE_BYTES - END_FILE_MIN_BLANK_LENGTH) / record_len;
        group.throughput(Throughput::Bytes(records_per_file * record_len));
        let parked: RefCell<Option<Appending>> = RefCell::new(None);
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || match parked.take() {
                    Some(a)
                        if a.store.written_offset() + COMMIT_LOG_FILE_SIZE_BYTES
                            <= APPEND_STORE_LIMIT_BYTES =>
                    {
                        a
                    }
                    _ => Appending::fresh(),
                },
                |mut a| {
                    for _ in 0..records_per_file {
                        let queue_id = (a.next % i64::from(QUEUES)) as i32;
                        let rec = new_record(queue_id, &body, &props);
                        black_box(a.store.append(&mut a.disk, &rec, a.next).unwrap());
                        a.next += 1;
                    }
                    parked.replace(Some(a));
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// A cleanly shut-down store whose one commit-log file is full of records (the next one
/// would roll), and the commit-log bytes it holds.
fn clean_image(body_len: usize) -> (MemDisk, u64) {
    let props = properties();
    let body = body(body_len);
    let mut disk = MemDisk::new();
    let mut store = boot(&mut disk);
    let record_len = new_record(0, &body, &props).encoded_len() as u64;
    let mut i: i64 = 0;
    while store.written_offset() + record_len + END_FILE_MIN_BLANK_LENGTH
        <= COMMIT_LOG_FILE_SIZE_BYTES
    {
        let rec = new_record((i % i64::from(QUEUES)) as i32, &body, &props);
        store.append(&mut disk, &rec, i).unwrap();
        i += 1;
    }
    store.begin_shutdown(&mut disk).unwrap();
    let events = settle(&mut store, &mut disk);
    assert_eq!(events.last(), Some(&StoreEvent::Closed));
    let written = store.written_offset();

    // The image must be one normal recovery has nothing to repair in, or the bench
    // would measure repairs instead of the scan.
    let mut check = disk.clone();
    let (_, report) = recover(&mut check, config()).unwrap();
    assert_eq!(report.records_recovered, i as u64);
    assert_eq!(report.commit_log_end_offset, written);
    assert_eq!(report.cut, None);
    assert_eq!(report.consume_queue_entries_rewritten, 0);
    assert!(report.notes.is_empty(), "{:?}", report.notes);
    (disk, written)
}

/// `recover` of a whole clean image: the commit-log scan (structure, CRC, queue
/// offsets, tag codes of every record), then the consume-queue check, which compares
/// every entry and also reads the unused tail of each queue's last file for stale
/// entries. With RocketMQ's 300,000-entry (6 MB) consume-queue files that tail is about
/// 24 MB for the four queues here, whatever the record size: a fixed cost inside the
/// measured time, against which only commit-log bytes are counted.
fn recovery_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("recovery_scan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (size, name) in BODY_SIZES {
        let (image, commit_log_bytes) = clean_image(size);
        group.throughput(Throughput::Bytes(commit_log_bytes));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            // `recover` writes the abort marker, so every run gets its own copy of the
            // image (untimed); the recovered store is dropped untimed too.
            b.iter_batched(
                || image.clone(),
                |mut disk| {
                    let recovered = recover(&mut disk, config()).unwrap();
                    (recovered, disk)
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn crc32_raw(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32_raw");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    // The same byte count as a recovery image: one commit-log file.
    let buffer = body(COMMIT_LOG_FILE_SIZE_BYTES as usize);
    group.throughput(Throughput::Bytes(buffer.len() as u64));
    group.bench_function("64MiB_one_buffer", |b| {
        b.iter(|| crc32fast::hash(black_box(&buffer)))
    });
    // One hash per record-sized chunk, as the scan does.
    for (size, name) in BODY_SIZES {
        group.bench_function(format!("{name}_chunks"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for chunk in black_box(&buffer).chunks(size) {
                    acc ^= crc32fast::hash(chunk);
                }
                acc
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append, recovery_scan, crc32_raw);
criterion_main!(benches);
