//! What it costs to make one 4 KiB commit-log append durable, by the two ways a broker
//! can write: `pwrite` + `fdatasync` (what `FsDisk` does) and a dirty page of a shared
//! mapping + `msync` of that page (what RocketMQ's `MappedFile` does). For each: the
//! latency of write + sync (median, p90, mean) and the bytes the block device wrote
//! per operation (from `/sys/dev/block/MAJ:MIN/stat`, so other activity on the disk
//! adds noise, shown by an idle run of the same length; run on a quiet machine and
//! repeat).
//!
//! ```text
//! cargo run --release -p rmq-real --example fsync_cost -- [ITERATIONS] [DIR]
//! ```
//!
//! DIR defaults to a temporary directory under /tmp (it must be on the disk measured).
//! One JSON line per mode follows the table, for scripts.
//!
//! On the project's machine (2026-12, ext4 on a virtual disk, 300 appends, two runs):
//!
//! ```text
//! mode                                median µs     p90 µs    device KiB/op
//! pwrite+fdatasync, preallocated         3996       4023-4141     7.2-7.4
//! pwrite+fdatasync, growing file         3996       4020-4038     8.0
//! mmap+msync of the dirty page           3483-3995  4055-4118  1027
//! idle (background writes)                  -          -          0-29
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PAGE_BYTES: usize = 4096;
/// Preallocated like a commit-log file, large enough that appends never wrap.
const FILE_BYTES: u64 = 64 * 1024 * 1024;

struct Stats {
    mode: &'static str,
    latencies: Vec<Duration>,
    device_bytes_written: Option<u64>,
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let iterations: usize = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| invalid("ITERATIONS must be a number"))?,
        None => 200,
    };
    let temp;
    let dir: PathBuf = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let stat = device_stat_path(&dir)?;
    println!(
        "{iterations} appends of {PAGE_BYTES} bytes each, in {}, device counters {}",
        dir.display(),
        stat.as_ref()
            .map_or("unavailable".to_string(), |p| p.display().to_string())
    );
    // Files are created (and preallocated, and synced) before the counters are read.
    let preallocated = create(&dir.join("prealloc"), true)?;
    let growing = create(&dir.join("growing"), false)?;
    let mapped = create(&dir.join("mapped"), true)?;
    let runs = [
        measure("pwrite+fdatasync, preallocated", &stat, || {
            pwrite_fdatasync(&preallocated, iterations)
        })?,
        measure("pwrite+fdatasync, growing file", &stat, || {
            pwrite_fdatasync(&growing, iterations)
        })?,
        measure("mmap+msync of the dirty page", &stat, || {
            mmap_msync(&mapped, iterations)
        })?,
        // Other processes' writes land in the same counters: this is their share over
        // as long as one run takes, to subtract by eye.
        measure("idle (background writes)", &stat, || {
            let op = Duration::from_micros(4_000);
            Ok((0..iterations)
                .map(|_| {
                    std::thread::sleep(op);
                    op
                })
                .collect())
        })?,
    ];
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>16}",
        "mode", "median µs", "p90 µs", "mean µs", "device KiB/op"
    );
    for run in &runs {
        let (median, p90, mean) = summary(&run.latencies);
        let per_op_kib = run
            .device_bytes_written
            .map(|b| format!("{:.1}", b as f64 / 1024.0 / run.latencies.len() as f64));
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>16}",
            run.mode,
            median,
            p90,
            mean,
            per_op_kib.clone().unwrap_or_else(|| "-".into())
        );
    }
    for run in &runs {
        let (median, p90, mean) = summary(&run.latencies);
        println!(
            "{{\"mode\":\"{}\",\"iterations\":{},\"median_us\":{median:.1},\"p90_us\":{p90:.1},\"mean_us\":{mean:.1},\"device_bytes_written\":{}}}",
            run.mode,
            run.latencies.len(),
            run.device_bytes_written
                .map_or("null".to_string(), |b| b.to_string())
        );
    }
    Ok(())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_string())
}

/// Runs `f` between two readings of the device's sectors-written counter.
fn measure(
    mode: &'static str,
    stat: &Option<PathBuf>,
    f: impl FnOnce() -> io::Result<Vec<Duration>>,
) -> io::Result<Stats> {
    let before = stat.as_deref().map(sectors_written).transpose()?;
    let latencies = f()?;
    let after = stat.as_deref().map(sectors_written).transpose()?;
    let device_bytes_written = before.zip(after).map(|(b, a)| (a - b) * 512);
    Ok(Stats {
        mode,
        latencies,
        device_bytes_written,
    })
}

fn create(path: &Path, preallocate: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    if preallocate {
        // Real blocks, not a hole, as a commit-log file that has been written once.
        let zeros = vec![0u8; 1024 * 1024];
        for i in 0..FILE_BYTES / zeros.len() as u64 {
            file.write_all_at(&zeros, i * zeros.len() as u64)?;
        }
    }
    file.sync_all()?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    Ok(file)
}

fn pwrite_fdatasync(file: &File, iterations: usize) -> io::Result<Vec<Duration>> {
    let page = [0x5au8; PAGE_BYTES];
    let mut latencies = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let offset = (i * PAGE_BYTES) as u64 % FILE_BYTES;
        let start = Instant::now();
        file.write_all_at(&page, offset)?;
        file.sync_data()?;
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

fn mmap_msync(file: &File, iterations: usize) -> io::Result<Vec<Duration>> {
    // SAFETY: the file is private to this run (a fresh name in our own directory) and
    // no other process or handle truncates it while the mapping lives.
    let mut map = unsafe { memmap2::MmapMut::map_mut(file)? };
    let mut latencies = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let offset = (i * PAGE_BYTES) % FILE_BYTES as usize;
        let start = Instant::now();
        map[offset..offset + PAGE_BYTES].fill(0x5a);
        map.flush_range(offset, PAGE_BYTES)?;
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// (median, p90, mean) in microseconds.
fn summary(latencies: &[Duration]) -> (f64, f64, f64) {
    let mut us: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    if us.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), us.iter().sum::<f64>() / us.len() as f64)
}

/// `/sys/dev/block/MAJ:MIN/stat` of the device holding `dir`, when it exists.
fn device_stat_path(dir: &Path) -> io::Result<Option<PathBuf>> {
    let dev = std::fs::metadata(dir)?.dev();
    // glibc's encoding of dev_t (gnu_dev_major / gnu_dev_minor).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let path = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
    Ok(path.exists().then_some(path))
}

/// The seventh field of a block device's stat file: 512-byte sectors written.
fn sectors_written(stat: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(stat)?;
    text.split_whitespace()
        .nth(6)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("unexpected block stat format"))
}
