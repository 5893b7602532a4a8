//! The `recovery` fuzz target without nightly: every input in the checked-in corpus
//! (`fuzz/corpus/recovery/`, handcrafted seeds and what the fuzzer found) and a few
//! thousand seeded pseudo-random inputs go through `run_recovery_case`, which decodes
//! them into a store directory, recovers it and checks the result.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_sim::storage::store_image::run_recovery_case;

/// The corpus must hold at least this many inputs: an emptied directory is a failure,
/// not a pass.
const MIN_CORPUS_FILES: usize = 10;
const RANDOM_CASES: u64 = 2_000;
/// Random inputs up to this length (libFuzzer's default `-max_len` is 4096).
const MAX_RANDOM_LEN: usize = 4096;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/recovery")
}

#[test]
fn corpus_replays_clean() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus/recovery exists")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= MIN_CORPUS_FILES,
        "corpus has {} inputs, fewer than {MIN_CORPUS_FILES}",
        entries.len()
    );
    let mut failures = Vec::new();
    for path in &entries {
        let data = std::fs::read(path).expect("corpus file readable");
        if let Err(violation) = run_recovery_case(&data) {
            failures.push(format!("{}: {violation}", path.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seeded_random_inputs_recover_clean() {
    for seed in 0..RANDOM_CASES {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let len = rng.random_range(0..=MAX_RANDOM_LEN);
        let mut data = vec![0u8; len];
        rng.fill(&mut data[..]);
        // Bias the chunk kinds toward records half the time, so random inputs build
        // logs deep enough to cut, not only garbage the first byte rejects.
        if seed % 2 == 0 {
            for b in data.iter_mut().skip(2).step_by(7) {
                *b = 1 + (*b % 3);
            }
        }
        if let Err(violation) = run_recovery_case(&data) {
            panic!("seed {seed} (len {len}): {violation}");
        }
    }
}
