//! Property tests that attack store recovery: random schedules of appends (empty bodies
//! to file-filling ones, three topics, transactional records), group commits, sync
//! completions, process crashes, OS crashes, power cuts with torn pages, bit rot,
//! unreadable sectors, clean restarts and config persists — judged after every recovery
//! by the oracle in `rmq_sim::storage::store_crash` (properties (a)–(f)).
//!
//! Knobs for long runs: `PROPTEST_CASES` (default 2000) and `STORE_CRASH_SEEDS`
//! (default 2000) scale the two sweeps; `STORE_CRASH_OPS` the length of each schedule;
//! `PROPTEST_RNG_SEED` picks other generated schedules (the default is fixed). Failing
//! schedules proptest finds are kept in `store_recovery.proptest-regressions` and
//! replayed first on every run.

use proptest::prelude::*;
use rmq_sim::storage::disk::CrashKind;
use rmq_sim::storage::disk::Lie;
use rmq_sim::storage::store_crash::{self, Case, Op, Stats, QUEUES_PER_TOPIC, TOPICS};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ops_per_case() -> usize {
    env_or("STORE_CRASH_OPS", 200) as usize
}

fn crash_kind() -> impl Strategy<Value = CrashKind> {
    prop_oneof![
        Just(CrashKind::ProcessCrash),
        Just(CrashKind::OsCrash),
        Just(CrashKind::PowerCut)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (
            0..TOPICS.len() as u8,
            0..QUEUES_PER_TOPIC,
            prop_oneof![Just(0u16), 1..400u16, Just(u16::MAX)],
            any::<bool>(),
            prop::bool::weighted(0.05),
        )
            .prop_map(|(topic, queue, body_len, tagged, prepared)| Op::Append {
                topic,
                queue,
                body_len,
                tagged,
                prepared,
            }),
        10 => Just(Op::Flush),
        3 => Just(Op::LogicFlush),
        22 => (1..16u8).prop_map(|syncs| Op::Complete { syncs }),
        6 => (crash_kind(), any::<bool>()).prop_map(|(kind, recheck)| Op::Crash { kind, recheck }),
        1 => Just(Op::Rot),
        1 => Just(Op::LatentError),
        8 => any::<u32>().prop_map(|pick| Op::Read { pick }),
        1 => Just(Op::Shutdown),
        2 => Just(Op::PersistConfig),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (any::<u64>(), prop::collection::vec(op(), 1..ops_per_case())).prop_map(|(seed, ops)| Case {
        seed,
        config: store_crash::config_for(seed),
        ops,
        disk_lie: Lie::None,
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: env_or("PROPTEST_CASES", 2000) as u32,
        // A failure shrinks to the shortest schedule that still breaks a property.
        max_shrink_iters: 4000,
        // Fixed, like every other seed here: the default run is reproducible, so CI is
        // never red by chance. PROPTEST_RNG_SEED=<n> explores other cases.
        rng_seed: proptest::test_runner::RngSeed::Fixed(env_or("PROPTEST_RNG_SEED", 0x5EED_2026)),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_recovery_keeps_the_promises(case in case()) {
        if let Err(v) = store_crash::run(&case) {
            let (_, trace) = store_crash::run_traced(&case);
            prop_assert!(false, "{v}\ntrace:\n{}", trace.join("\n"));
        }
    }
}

/// The seeded sweep `sim store-crash` runs, inside the default test run.
#[test]
fn seeded_sweep_keeps_the_promises() {
    let seeds = env_or("STORE_CRASH_SEEDS", 2000);
    let mut total = Stats::default();
    for seed in 0..seeds {
        let case = store_crash::generate(seed, ops_per_case());
        match store_crash::run(&case) {
            Ok(stats) => total.add(&stats),
            Err(v) => panic!(
                "{v}\nreplay: cargo run --release -p rmq-sim --bin sim -- store-crash --seed {seed} --ops {} --trace",
                ops_per_case()
            ),
        }
    }
    // The sweep must really have exercised what it claims to check.
    assert!(total.power_cuts > seeds, "{total:?}");
    assert!(total.os_crashes > seeds, "{total:?}");
    assert!(total.process_crashes > seeds, "{total:?}");
    assert!(total.idempotence_checks > seeds / 2, "{total:?}");
    assert!(total.clean_restarts > seeds / 4, "{total:?}");
    assert!(total.losses_explained_by_damage > 0, "{total:?}");
    assert!(total.damaged_reads_refused > 0, "{total:?}");
    assert!(total.durable_records_verified > 100 * seeds, "{total:?}");
}

/// Seeds (300 operations) that found real bugs during development; each would fail
/// again if its bug came back:
/// - 65, 189, 253, 285, 292, 334, 374: a cut fenced with an end-of-file marker whose
///   write reached the disk while the deletion of later files did not — the next boot
///   walked on past the marker and resurrected cut-off records (now: zero the tail);
/// - 65 also: a rewritten bad sector counted as healed before the rewrite reached the
///   media (a SimDisk modelling bug that hid the above).
#[test]
fn regression_seeds() {
    for seed in [65, 189, 253, 285, 292, 334, 374, 514] {
        let case = store_crash::generate(seed, 300);
        if let Err(v) = store_crash::run(&case) {
            panic!("{v}");
        }
    }
}

/// Proves the checks have teeth: a disk whose file syncs persist nothing must be caught
/// losing acknowledged records (property (a)).
#[test]
fn a_disk_that_lies_about_fsync_is_caught() {
    let caught = (0..200).find_map(|seed| {
        let mut case = store_crash::generate(seed, 300);
        case.disk_lie = Lie::FileSyncPersistsNothing;
        store_crash::run(&case).err()
    });
    let v = caught.expect("200 seeds on a disk that never persists went unnoticed");
    assert_eq!(v.property, "a", "{v}");
}

/// A disk whose directory syncs commit nothing loses every file created since the last
/// honest moment: the checks must notice acknowledged records vanish.
#[test]
fn a_disk_that_lies_about_directory_sync_is_caught() {
    let caught = (0..200).find_map(|seed| {
        let mut case = store_crash::generate(seed, 300);
        case.disk_lie = Lie::DirSyncPersistsNothing;
        store_crash::run(&case).err()
    });
    let v = caught.expect("200 seeds on a disk whose dir syncs do nothing went unnoticed");
    assert!(matches!(v.property, "a" | "config"), "{v}");
}

/// Same seed, same run: the whole trace and the outcome are identical.
#[test]
fn runs_are_deterministic() {
    for seed in [1, 2, 3, 514] {
        let case = store_crash::generate(seed, 300);
        let (first, trace_a) = store_crash::run_traced(&case);
        let (second, trace_b) = store_crash::run_traced(&case);
        assert_eq!(first, second);
        assert_eq!(trace_a, trace_b);
        assert!(trace_a.len() > 300);
    }
}
