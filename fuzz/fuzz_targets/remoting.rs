//! Arbitrary bytes arrive on a remoting connection (`rmq_real::remoting`): they are
//! decoded as a stream of frames, each decoded command re-encoded and re-decoded, and
//! each request or response mapped to the model and back. A panic, an allocation the
//! input's length fields drive, or a command that does not come back equal is a
//! finding. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run remoting` from `fuzz/`; the corpus
//! in `corpus/remoting/` is replayed by `cargo test` (`tests/fuzz_corpus.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = rmq_real::remoting::run_remoting_case(data) {
        panic!("{violation}");
    }
});
