//! The checker on a synthetic healthy history of about a million entries. It runs on
//! every seed of every sweep, so it must stay linear and fast: the target is at least
//! 10 million history entries per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rmq_sim::check::{check, synthetic_history};

/// ~5.4 entries per message (a send, its result, 1.67 deliveries each answered, some
/// commits): about 1M entries.
const MESSAGES: usize = 185_000;

fn bench_check(c: &mut Criterion) {
    let history = synthetic_history(MESSAGES, 1);
    assert!(
        check(&history).passed(),
        "the synthetic history must be healthy"
    );
    let mut group = c.benchmark_group("check");
    group.throughput(Throughput::Elements(history.entries.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("{}_entries", history.entries.len()), |b| {
        b.iter(|| check(std::hint::black_box(&history)))
    });
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
