//! One seed, many independent random streams.
//!
//! Every random choice of a run comes from the run's seed, but each component draws from
//! its own ChaCha8 stream: `ChaCha8Rng::seed_from_u64(seed)` with
//! `set_stream((purpose << 32) | index)`. ChaCha streams with the same key and different
//! stream numbers are independent, so adding a node, a link or a fault kind adds streams
//! without shifting what the others draw: node 2's latencies and disk faults stay the
//! same when node 5 joins.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a stream is for; the high 32 bits of the stream number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// Latency jitter of one directed link; index = [`link_index`].
    NetLink = 1,
    /// Fsync latency of one node's disk; index = node id.
    SyncLatency = 2,
    /// Crash outcomes (which dirty pages survive, torn sectors) of one node's disk.
    DiskFaults = 3,
    /// What the node itself draws through `Ctx::random_u64`.
    NodeRandom = 4,
    /// The fault plan: which faults happen when.
    FaultPlan = 5,
    /// Swarm testing: a `[swarm]` scenario's per-seed cluster, workload and fault mix.
    Swarm = 6,
}

/// The stream for `purpose` and component `index` of the run seeded with `seed`.
pub fn stream(seed: u64, purpose: Purpose, index: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((purpose as u64) << 32) | u64::from(index));
    rng
}

/// Link streams are indexed by both ends, 16 bits each: the world caps its node count
/// at [`MAX_NODES`] so that indexes never collide.
pub const MAX_NODES: u32 = 1 << 16;

pub fn link_index(from: u32, to: u32) -> u32 {
    assert!(from < MAX_NODES);
    assert!(to < MAX_NODES);
    (from << 16) | to
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_stable_and_distinct() {
        let draw = |p, i| stream(7, p, i).random::<u64>();
        assert_eq!(draw(Purpose::NodeRandom, 1), draw(Purpose::NodeRandom, 1));
        assert_ne!(draw(Purpose::NodeRandom, 1), draw(Purpose::NodeRandom, 2));
        assert_ne!(draw(Purpose::NodeRandom, 1), draw(Purpose::DiskFaults, 1));
        assert_ne!(
            draw(Purpose::NodeRandom, 1),
            stream(8, Purpose::NodeRandom, 1).random::<u64>()
        );
        assert_ne!(link_index(1, 2), link_index(2, 1));
    }
}
