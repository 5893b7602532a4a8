//! A synthetic, healthy history for benchmarks (`cargo bench --bench check`, a `sim
//! bench` command): two broker groups of four queues each, two producers, two
//! clustering groups (one takes every tag, one filters), offset commits, a rebalance
//! halfway through, and a few duplicate deliveries. Every rule passes on it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{
    BrokerGroupMeta, Entry, FaultKind, FlushMode, GroupMeta, History, Promise, Replication,
    SendStatus,
};

const TOPIC: &str = "T";
const QUEUES_PER_BROKER: usize = 4;
const BROKERS: [&str; 2] = ["broker-a", "broker-b"];
/// (group, tag expression, first consumer, second consumer)
const GROUPS: [(&str, &str, u32, u32); 2] = [("g-all", "*", 10, 11), ("g-ab", "a || b", 12, 13)];
const TAGS: [&str; 3] = ["a", "b", "c"];
const COMMIT_EVERY: u64 = 64;
const START_MS: u64 = 1_000;

/// About `3.7 * messages` entries; the same `(messages, seed)` gives the same history.
#[doc(hidden)]
pub fn synthetic_history(messages: usize, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let queues = BROKERS.len() * QUEUES_PER_BROKER;
    let queue_of = |q: usize| {
        (
            BROKERS[q / QUEUES_PER_BROKER],
            (q % QUEUES_PER_BROKER) as i32,
        )
    };
    let end_sends = START_MS + messages as u64;
    let rebalance_at = START_MS + messages as u64 / 2;
    let mut ev: Vec<(u64, Entry)> = Vec::with_capacity(messages * 4 + 64);
    let meta = Entry::Meta {
        scenario: "synthetic".into(),
        seed,
        brokers: BROKERS
            .iter()
            .enumerate()
            .map(|(i, b)| BrokerGroupMeta {
                broker_name: (*b).into(),
                master_node: 1 + 2 * i as u32,
                slave_node: Some(2 + 2 * i as u32),
                flush: FlushMode::SyncFlush,
                replication: Replication::Sync,
            })
            .collect(),
        groups: GROUPS
            .iter()
            .map(|&(g, expr, c1, c2)| GroupMeta {
                group: g.into(),
                topic: TOPIC.into(),
                tag_expression: expr.into(),
                broadcasting: false,
                consumers: vec![c1, c2],
            })
            .collect(),
        // Deliveries go on after the heal: the groups are live.
        heal_at_ms: START_MS + messages as u64 * 9 / 10,
        end_ms: end_sends + 10_000,
        promise: Promise::default(),
    };
    ev.push((0, meta));
    // Owner of (group, queue): first half of the queues to the first consumer. At the
    // rebalance queue 0 moves to the second consumer.
    let mut owner: Vec<Vec<u32>> = GROUPS
        .iter()
        .map(|&(_, _, c1, c2)| {
            (0..queues)
                .map(|q| if q < queues / 2 { c1 } else { c2 })
                .collect()
        })
        .collect();
    for (&(group, ..), owners) in GROUPS.iter().zip(&owner) {
        for (q, &client) in owners.iter().enumerate() {
            let (broker, queue_id) = queue_of(q);
            ev.push((
                0,
                Entry::Own {
                    at_ms: 0,
                    group: group.into(),
                    client,
                    broker: broker.into(),
                    topic: TOPIC.into(),
                    queue_id,
                    start_offset: 0,
                    offset_from_broker_id: Some(0),
                },
            ));
        }
    }
    let partition_at = START_MS + messages as u64 / 10;
    for (at, kind) in [
        (partition_at, FaultKind::Partition),
        (partition_at + 500, FaultKind::Heal),
    ] {
        ev.push((
            at,
            Entry::Fault {
                at_ms: at,
                kind,
                node: None,
                detail: "n20 <-> n4".into(),
            },
        ));
    }
    let mut next_offset = vec![0u64; queues];
    // Per (group, queue): offset after the last delivered one; deliveries since commit.
    let mut consumed = vec![vec![0u64; queues]; GROUPS.len()];
    let mut since_commit = vec![vec![0u64; queues]; GROUPS.len()];
    let mut rebalanced = [false; GROUPS.len()];
    for i in 0..messages {
        let t = START_MS + i as u64;
        let wid = i as u64 + 1;
        let q = rng.random_range(0..queues);
        let (broker, queue_id) = queue_of(q);
        let tag = TAGS[rng.random_range(0..TAGS.len())];
        let crc = rng.random::<u32>();
        let producer = 20 + (i % 2) as u32;
        let offset = next_offset[q];
        next_offset[q] += 1;
        ev.push((
            t,
            Entry::SendInvoke {
                at_ms: t,
                client: producer,
                wid,
                topic: TOPIC.into(),
                tags: Some(tag.into()),
                body_crc: crc,
            },
        ));
        let ack = t + rng.random_range(1..=3);
        ev.push((
            ack,
            Entry::SendOk {
                at_ms: ack,
                client: producer,
                wid,
                status: SendStatus::SendOk,
                broker: broker.into(),
                queue_id,
                queue_offset: offset,
                msg_id: format!("{wid:032X}"),
            },
        ));
        for (g, &(group, expr, _, c2)) in GROUPS.iter().enumerate() {
            if expr != "*" && tag == "c" {
                continue;
            }
            let at = t + 5 + g as u64;
            if at >= rebalance_at && !rebalanced[g] {
                rebalanced[g] = true;
                let (b0, q0) = queue_of(0);
                let old = owner[g][0];
                let start = consumed[g][0];
                let entries = [
                    Entry::Commit {
                        at_ms: rebalance_at,
                        group: group.into(),
                        client: old,
                        broker: b0.into(),
                        topic: TOPIC.into(),
                        queue_id: q0,
                        offset: start,
                    },
                    Entry::Disown {
                        at_ms: rebalance_at,
                        group: group.into(),
                        client: old,
                        broker: b0.into(),
                        topic: TOPIC.into(),
                        queue_id: q0,
                    },
                    Entry::Own {
                        at_ms: rebalance_at,
                        group: group.into(),
                        client: c2,
                        broker: b0.into(),
                        topic: TOPIC.into(),
                        queue_id: q0,
                        start_offset: start,
                        offset_from_broker_id: Some(0),
                    },
                ];
                ev.extend(entries.into_iter().map(|e| (rebalance_at, e)));
                owner[g][0] = c2;
                since_commit[g][0] = 0;
            }
            let client = owner[g][q];
            let times = if rng.random_range(0..1000) == 0 { 2 } else { 1 };
            for _ in 0..times {
                ev.push((
                    at,
                    Entry::Deliver {
                        at_ms: at,
                        group: group.into(),
                        client,
                        topic: TOPIC.into(),
                        broker: broker.into(),
                        queue_id,
                        queue_offset: offset,
                        wid: Some(wid),
                        reconsume_times: 0,
                        body_crc: crc,
                        tags: Some(tag.into()),
                    },
                ));
            }
            consumed[g][q] = offset + 1;
            since_commit[g][q] += 1;
            if since_commit[g][q] == COMMIT_EVERY {
                since_commit[g][q] = 0;
                ev.push((
                    at,
                    Entry::Commit {
                        at_ms: at,
                        group: group.into(),
                        client,
                        broker: broker.into(),
                        topic: TOPIC.into(),
                        queue_id,
                        offset: offset + 1,
                    },
                ));
            }
        }
    }
    // Stable: events at the same millisecond keep the order they were made in.
    ev.sort_by_key(|(t, _)| *t);
    History {
        entries: ev.into_iter().map(|(_, e)| e).collect(),
    }
}
