//! The fuzz targets without nightly.
//!
//! - `recovery`: every input in the checked-in corpus (`fuzz/corpus/recovery/`,
//!   handcrafted seeds and what the fuzzer found) and a few thousand seeded
//!   pseudo-random inputs go through `run_recovery_case`, which decodes them into a
//!   store directory, recovers it and checks the result.
//! - `remoting`: the corpus in `fuzz/corpus/remoting/` (the C++ client's captured frames
//!   and handcrafted seeds) and seeded mutations of it go through `run_remoting_case`,
//!   which decodes frames, re-encodes them and maps them to and from the model.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rmq_real::remoting::run_remoting_case;
use rmq_sim::storage::store_image::run_recovery_case;

/// The corpus must hold at least this many inputs: an emptied directory is a failure,
/// not a pass.
const MIN_CORPUS_FILES: usize = 10;
const RANDOM_CASES: u64 = 2_000;
/// Random inputs up to this length (libFuzzer's default `-max_len` is 4096).
const MAX_RANDOM_LEN: usize = 4096;

/// Mutated remoting inputs: each starts from a corpus file.
const REMOTING_MUTATED_CASES: u64 = 5_000;

/// The inputs of `fuzz/corpus/<target>`, sorted by name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    assert!(
        entries.len() >= MIN_CORPUS_FILES,
        "{target} corpus has {} inputs, fewer than {MIN_CORPUS_FILES}",
        entries.len()
    );
    entries
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).expect("corpus file readable");
            (p, data)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8]) -> Result<(), String>) {
    let failures: Vec<String> = corpus(target)
        .iter()
        .filter_map(|(path, data)| run(data).err().map(|v| format!("{}: {v}", path.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_replays_clean() {
    replay("recovery", run_recovery_case);
}

#[test]
fn remoting_corpus_replays_clean() {
    replay("remoting", run_remoting_case);
}

#[test]
fn seeded_mutations_of_remoting_frames_decode_clean() {
    let seeds = corpus("remoting");
    for seed in 0..REMOTING_MUTATED_CASES {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = seeds[rng.random_range(0..seeds.len())].1.clone();
        // A few byte flips anywhere (lengths, type byte, JSON syntax, values), then
        // sometimes a cut or a second frame behind the first.
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..data.len());
            data[at] = rng.random();
        }
        match rng.random_range(0..4) {
            0 => data.truncate(rng.random_range(0..=data.len())),
            1 => {
                let other = &seeds[rng.random_range(0..seeds.len())].1;
                data.extend_from_slice(other);
            }
            _ => {}
        }
        if let Err(violation) = run_remoting_case(&data) {
            panic!("seed {seed}: {violation}");
        }
    }
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
