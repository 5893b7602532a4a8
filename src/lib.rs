//! rocketsim: the root package exists to hold the scenario suite in `tests/`.
//! The code lives in the workspace crates: `rmq-model` (the system under test),
//! `rmq-sim` (the simulator and checker) and `rmq-real` (the real runtime).
