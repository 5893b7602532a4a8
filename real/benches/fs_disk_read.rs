//! The broker's read paths on real files: `FsDisk` reading through mappings (`mmap`)
//! against positioned reads into a fresh buffer (`pread`, the path `FsDisk` took before
//! it mapped files, kept here as the baseline).
//!
//! `cargo bench -p rmq-real --bench fs_disk_read`. One store on a scratch directory,
//! with RocketMQ's default file sizes (1 GiB commit-log files, 300,000-entry consume
//! queues), holds `FILL_BYTES` of 1 KiB messages over four queues, all in the page
//! cache (just written), as a broker's recent messages are. Each group reads the same
//! way the broker does:
//! - `pull`: `MessageStore::get_message`, one message of a PULL_MESSAGE: the 20-byte
//!   consume-queue entry, then the record it points at (copied out, as pulls are);
//! - `consume_queue_entry`: the 20-byte entry read alone;
//! - `replication`: `MessageStore::read_for_replication`, one 32 KiB batch (the
//!   default `haTransferBatchSize`) for a slave that lags the master by the given bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rmq_model::message::encode_properties;
use rmq_model::store::{
    recover, DirEntry, Disk, DiskError, Host, MessageStore, NewRecord, StoreConfig, StoreState,
    SyncTarget, SyncTicket,
};
use rmq_real::fs_disk::FsDisk;

/// Commit-log bytes the store holds: well past what the CPU caches hold, well inside
/// one default commit-log file.
const FILL_BYTES: u64 = 128 * 1024 * 1024;
const QUEUES: i32 = 4;
const TOPIC: &str = "BenchTopic";
const BODY_BYTES: usize = 1024;
/// RocketMQ's default haTransferBatchSize.
const HA_BATCH_BYTES: usize = 32 * 1024;
const REPLICATION_LAGS: [(u64, &str); 3] = [
    (64 * 1024, "lag_64KiB"),
    (1024 * 1024, "lag_1MiB"),
    (16 * 1024 * 1024, "lag_16MiB"),
];

/// `FsDisk` with its reads replaced by what it did before mapping files: look up the
/// cached handle under a lock, `fstat` for the length, `pread` into a new buffer.
struct PreadDisk {
    inner: FsDisk,
    handles: Mutex<BTreeMap<String, File>>,
}

impl PreadDisk {
    fn pread(&self, path: &str, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        let mut handles = self.handles.lock().unwrap();
        if !handles.contains_key(path) {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(self.inner.root().join(path))?;
            handles.insert(path.to_string(), file);
        }
        let file = &handles[path];
        let file_len = file.metadata()?.len();
        match offset.checked_add(len as u64) {
            Some(end) if end <= file_len => {}
            _ => return Ok(None),
        }
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(Some(buf))
    }
}

impl Disk for PreadDisk {
    fn create(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.create(path)
    }
    fn exists(&self, path: &str) -> bool {
        self.inner.exists(path)
    }
    fn len(&self, path: &str) -> Result<u64, DiskError> {
        self.inner.len(path)
    }
    fn set_len(&mut self, path: &str, len: u64) -> Result<(), DiskError> {
        self.inner.set_len(path, len)
    }
    fn read(&self, path: &str, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, DiskError> {
        match self.pread(path, offset, len) {
            Ok(Some(bytes)) => Ok(Cow::Owned(bytes)),
            Ok(None) => Err(DiskError::PastEnd {
                path: path.to_string(),
                offset,
                len: len as u64,
                file_len: self.inner.len(path)?,
            }),
            Err(e) => Err(DiskError::io(path, e.to_string())),
        }
    }
    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.inner.write(path, offset, data)
    }
    fn delete(&mut self, path: &str) -> Result<(), DiskError> {
        self.inner.delete(path)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.inner.rename(from, to)
    }
    fn list(&self, dir: &str) -> Result<Vec<DirEntry>, DiskError> {
        self.inner.list(dir)
    }
    fn request_sync(&mut self, target: SyncTarget<'_>) -> Result<SyncTicket, DiskError> {
        self.inner.request_sync(target)
    }
}

fn host(port: i32) -> Host {
    Host {
        ip: "10.0.0.7".parse().unwrap(),
        port,
    }
}

/// A store on real files holding `FILL_BYTES` of records, and the length of one record.
fn filled_store(disk: &mut FsDisk) -> (MessageStore, u64) {
    let (mut store, _) = recover(disk, StoreConfig::default()).unwrap();
    disk.complete_syncs(&mut store);
    assert_eq!(store.state(), StoreState::Ready);
    let props = encode_properties([("KEYS", "order-20240611-000042"), ("TAGS", "TagA")]);
    let body: Vec<u8> = (0..BODY_BYTES).map(|i| (i * 131 % 251) as u8).collect();
    // Every record alike but for its queue, so all have one length.
    let rec = NewRecord {
        topic: TOPIC,
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp_ms: 1_700_000_000_000,
        born_host: host(53_211),
        store_host: host(10_911),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: &body,
        properties: &props,
    };
    let mut now_ms = 0;
    while store.written_offset() < FILL_BYTES {
        let queue_id = (now_ms % i64::from(QUEUES)) as i32;
        store
            .append(disk, &NewRecord { queue_id, ..rec }, now_ms)
            .unwrap();
        now_ms += 1;
    }
    disk.complete_syncs(&mut store);
    (store, rec.encoded_len() as u64)
}

/// A deterministic sequence of indexes below `n` (xorshift), so both paths read the
/// same places.
struct Picks(u64);

impl Picks {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn reads(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let mut mmap = FsDisk::open(tmp.path()).unwrap();
    let (store, record_len) = filled_store(&mut mmap);
    let pread = PreadDisk {
        inner: FsDisk::open(tmp.path()).unwrap(),
        handles: Mutex::new(BTreeMap::new()),
    };
    let per_queue = store.max_queue_offset(TOPIC, 0);
    let written = store.written_offset();
    let disks: [(&str, &dyn Disk); 2] = [("pread", &pread), ("mmap", &mmap)];

    let mut group = c.benchmark_group("pull");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Bytes(record_len));
    for (name, disk) in disks {
        let mut picks = Picks(0x9E37_79B9_7F4A_7C15);
        group.bench_function(BenchmarkId::new("get_message_1KiB", name), |b| {
            b.iter(|| {
                let queue_id = picks.below(QUEUES as u64) as i32;
                let queue_offset = picks.below(per_queue);
                let m = store.get_message(disk, TOPIC, queue_id, queue_offset);
                black_box(m.unwrap().bytes.len())
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("consume_queue_entry");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    for (name, disk) in disks {
        let mut picks = Picks(0x2545_F491_4F6C_DD1D);
        group.bench_function(BenchmarkId::new("20B", name), |b| {
            b.iter(|| {
                let queue_id = picks.below(QUEUES as u64);
                let path = format!("consumequeue/{TOPIC}/{queue_id}/00000000000000000000");
                let entry = disk.read(&path, picks.below(per_queue) * 20, 20).unwrap();
                // The commit-log offset, as the pull path parses it.
                black_box(u64::from_be_bytes(entry[..8].try_into().unwrap()))
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("replication");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Bytes(HA_BATCH_BYTES as u64));
    for (lag, lag_name) in REPLICATION_LAGS {
        // Record boundaries: every record has the same length and the log one file.
        let from = (written - lag) / record_len * record_len;
        for (name, disk) in disks {
            group.bench_function(BenchmarkId::new(lag_name, name), |b| {
                b.iter(|| {
                    let batch = store
                        .read_for_replication(disk, from, written, HA_BATCH_BYTES)
                        .unwrap();
                    black_box(batch.data.len())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, reads);
criterion_main!(benches);
