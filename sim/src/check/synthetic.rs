//! A synthetic, healthy history for benchmarks (`cargo bench --bench check`, a `sim
//! bench` command): two broker groups of four queues each, two producers, two
//! clustering groups (one takes every tag, one filters), offset commits, a rebalance
//! halfway through whose new owner starts from the last periodic commit (so it
//! redelivers what was consumed since: duplicates caused by the rebalance), and a
//! final commit of every queue. Every listener answers CONSUME_SUCCESS at once, as the
//! simulator's workload records (a `consumed` right after each `deliver`). Every rule
//! passes on it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{
    user_properties_crc, BrokerGroupMeta, ConsumeOutcome, Entry, FaultKind, FlushMode, GroupMeta,
    History, MessageFields, Replication, SendStatus, WID_PROPERTY,
};

const TOPIC: &str = "T";
const QUEUES_PER_BROKER: usize = 4;
const BROKERS: [&str; 2] = ["broker-a", "broker-b"];
/// (group, tag expression, first consumer, second consumer)
const GROUPS: [(&str, &str, u32, u32); 2] = [("g-all", "*", 10, 11), ("g-ab", "a || b", 12, 13)];
const TAGS: [&str; 3] = ["a", "b", "c"];
const COMMIT_EVERY: u64 = 64;
const START_MS: u64 = 1_000;

/// About `5.4 * messages` entries; the same `(messages, seed)` gives the same history.
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
                orderly: false,
                max_reconsume_times: None,
                consumers: vec![c1, c2],
            })
            .collect(),
        // Deliveries go on after the heal: the groups are live.
        heal_at_ms: START_MS + messages as u64 * 9 / 10,
        end_ms: end_sends + 10_000,
        promise: Box::default(),
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
                    offset_moved: false,
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
    let mut committed = vec![vec![0u64; queues]; GROUPS.len()];
    // What queue 0 holds: (offset, wid, tag, crc), for the redeliveries at the rebalance.
    let mut queue0: Vec<(u64, u64, &str, u32, MessageFields)> = Vec::new();
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
        let msg_id = format!("{wid:032X}");
        let wid_value = wid.to_string();
        let fields = MessageFields {
            keys_crc: Some(crc32fast::hash(format!("wid-{wid}").as_bytes())),
            props_crc: user_properties_crc([(WID_PROPERTY, wid_value.as_str())]),
            born_ms: t as i64,
            born_host_crc: crc32fast::hash(format!("10.0.0.{producer}:10911").as_bytes()),
            msg_id_crc: None,
        };
        if q == 0 {
            let delivered = MessageFields {
                msg_id_crc: Some(crc32fast::hash(msg_id.as_bytes())),
                ..fields
            };
            queue0.push((offset, wid, tag, crc, delivered));
        }
        ev.push((
            t,
            Entry::SendInvoke {
                at_ms: t,
                client: producer,
                wid,
                topic: TOPIC.into(),
                tags: Some(tag.into()),
                body_crc: crc,
                fields: Some(fields),
                delay_level: 0,
                sharding_key: None,
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
                msg_id: msg_id.clone(),
                retried_after_unknown: false,
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
                let start = committed[g][0];
                let entries = [
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
                        offset_moved: false,
                    },
                ];
                ev.extend(entries.into_iter().map(|e| (rebalance_at, e)));
                // The new owner redelivers what the group consumed since the commit.
                for (o, w, t, c, f) in &queue0 {
                    let (o, w, t, c) = (*o, *w, *t, *c);
                    if o < start || o >= consumed[g][0] || (expr != "*" && t == "c") {
                        continue;
                    }
                    ev.push((
                        rebalance_at,
                        Entry::Deliver {
                            at_ms: rebalance_at,
                            group: group.into(),
                            client: c2,
                            topic: TOPIC.into(),
                            broker: b0.into(),
                            queue_id: q0,
                            queue_offset: o,
                            wid: Some(w),
                            reconsume_times: 0,
                            body_crc: c,
                            tags: Some(t.into()),
                            fields: Some(*f),
                        },
                    ));
                }
                owner[g][0] = c2;
                since_commit[g][0] = 0;
            }
            let client = owner[g][q];
            {
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
                        fields: Some(MessageFields {
                            msg_id_crc: Some(crc32fast::hash(msg_id.as_bytes())),
                            ..fields
                        }),
                    },
                ));
            }
            consumed[g][q] = offset + 1;
            since_commit[g][q] += 1;
            if since_commit[g][q] == COMMIT_EVERY {
                since_commit[g][q] = 0;
                committed[g][q] = offset + 1;
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
    // Every queue's final commit, before the run ends.
    for (g, &(group, ..)) in GROUPS.iter().enumerate() {
        for q in 0..queues {
            if consumed[g][q] > committed[g][q] {
                let (broker, queue_id) = queue_of(q);
                ev.push((
                    end_sends + 100,
                    Entry::Commit {
                        at_ms: end_sends + 100,
                        group: group.into(),
                        client: owner[g][q],
                        broker: broker.into(),
                        topic: TOPIC.into(),
                        queue_id,
                        offset: consumed[g][q],
                    },
                ));
            }
        }
    }
    // Stable: events at the same millisecond keep the order they were made in.
    ev.sort_by_key(|(t, _)| *t);
    let mut entries = Vec::with_capacity(ev.len() * 3 / 2);
    for (_, e) in ev {
        let answer = answered(&e);
        entries.push(e);
        entries.extend(answer);
    }
    History { entries }
}

/// The listener's answer to a delivery: CONSUME_SUCCESS at the same millisecond.
fn answered(e: &Entry) -> Option<Entry> {
    let Entry::Deliver {
        at_ms,
        group,
        client,
        topic,
        broker,
        queue_id,
        queue_offset,
        wid,
        ..
    } = e
    else {
        return None;
    };
    Some(Entry::Consumed {
        at_ms: *at_ms,
        group: group.clone(),
        client: *client,
        broker: broker.clone(),
        topic: topic.clone(),
        queue_id: *queue_id,
        queue_offset: *queue_offset,
        wid: *wid,
        status: ConsumeOutcome::ConsumeSuccess,
    })
}
