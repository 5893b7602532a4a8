//! Arbitrary bytes become a store directory and recovery runs on it
//! (`rmq_sim::storage::store_image`). A panic, an unbounded loop, an allocation the input's
//! length fields drive, or a recovered store that breaks invariants (c) or (d) is a
//! finding. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run recovery` from `fuzz/`; the corpus
//! in `corpus/recovery/` is replayed by `cargo test` (`tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = rmq_sim::storage::store_image::run_recovery_case(data) {
        panic!("{violation}");
    }
});
