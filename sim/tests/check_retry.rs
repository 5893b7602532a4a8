//! The retry rule on hand-built histories: a message a group's listener failed comes
//! back raised, caused, to its own group, not early, dead-lettered at the maximum and
//! never past it, and is never left behind; each planted break fails with `retry`, and
//! each excuse needs its evidence.

use rmq_sim::check::{check, Report, Rule};
use rmq_sim::history::{
    BrokerGroupMeta, ConsumeOutcome, Entry, FaultKind, FlushMode, GroupMeta, History, Promise,
    Replication,
};

/// Level n waits n × 100 ms: a first retry (level 3) 300 ms.
fn promise() -> Promise {
    Promise {
        delay_levels_ms: (1..=18).map(|n| n * 100).collect(),
        ..Promise::default()
    }
}

fn group(name: &str, consumers: &[u32]) -> GroupMeta {
    GroupMeta {
        group: name.into(),
        topic: "T".into(),
        tag_expression: "*".into(),
        broadcasting: false,
        orderly: false,
        consumers: consumers.to_vec(),
    }
}

/// Topic "T" on broker "b" (n1, SYNC_FLUSH); group "g" (n10, n11) declared, "h" (n12)
/// only delivered to.
/// Without [`H::quiet`] the run has no quiet period, so nothing is owed at the end.
struct H {
    h: History,
}

impl H {
    fn new() -> H {
        let mut h = History::default();
        h.push(Entry::Meta {
            scenario: "test".into(),
            seed: 1,
            brokers: vec![
                BrokerGroupMeta {
                    broker_name: "b".into(),
                    master_node: 1,
                    slave_node: None,
                    flush: FlushMode::SyncFlush,
                    replication: Replication::None,
                },
                // Another group, which holds none of the messages.
                BrokerGroupMeta {
                    broker_name: "c".into(),
                    master_node: 2,
                    slave_node: None,
                    flush: FlushMode::SyncFlush,
                    replication: Replication::None,
                },
            ],
            groups: vec![group("g", &[10, 11])],
            heal_at_ms: 200_000,
            end_ms: 200_000,
            promise: promise(),
        });
        H { h }
    }

    fn quiet(mut self, heal: u64, end: u64) -> H {
        if let Entry::Meta {
            heal_at_ms, end_ms, ..
        } = &mut self.h.entries[0]
        {
            (*heal_at_ms, *end_ms) = (heal, end);
        }
        self
    }

    /// Message `wid` sent at `at` and stored at T/q0 offset `wid`.
    fn send(mut self, at: u64, wid: u64) -> H {
        self.h.push(Entry::SendInvoke {
            at_ms: at,
            client: 20,
            wid,
            topic: "T".into(),
            tags: None,
            body_crc: 7,
            fields: None,
            delay_level: 0,
            sharding_key: None,
        });
        self.h.push(Entry::SendOk {
            at_ms: at + 1,
            client: 20,
            wid,
            status: rmq_sim::history::SendStatus::SendOk,
            broker: "b".into(),
            queue_id: 0,
            queue_offset: wid,
            msg_id: format!("M{wid}"),
            retried_after_unknown: false,
        });
        self
    }

    /// A delivery of `wid` to `grp`'s `client` from `topic` queue 0 at `offset`,
    /// answered at once with `status`.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        mut self,
        at: u64,
        grp: &str,
        client: u32,
        topic: &str,
        offset: u64,
        wid: u64,
        reconsume: i32,
        status: ConsumeOutcome,
    ) -> H {
        self.h.push(Entry::Deliver {
            at_ms: at,
            group: grp.into(),
            client,
            topic: topic.into(),
            broker: "b".into(),
            queue_id: 0,
            queue_offset: offset,
            wid: Some(wid),
            reconsume_times: reconsume,
            body_crc: 7,
            tags: None,
            fields: None,
        });
        self.h.push(Entry::Consumed {
            at_ms: at,
            group: grp.into(),
            client,
            broker: "b".into(),
            topic: topic.into(),
            queue_id: 0,
            queue_offset: offset,
            wid: Some(wid),
            status,
        });
        self
    }

    /// `wid` failed by g's n10 first from T (at `at`), then from %RETRY%g once per
    /// count 1..`rounds`, each exactly when its retry delay is up.
    fn fail_rounds(mut self, at: u64, wid: u64, rounds: i32) -> (H, u64) {
        self = self.deliver(at, "g", 10, "T", wid, wid, 0, LATER);
        let mut t = at;
        for n in 1..rounds {
            t += (3 + n as u64 - 1) * 100;
            self = self.deliver(t, "g", 10, "%RETRY%g", 100 + n as u64, wid, n, LATER);
        }
        (self, t)
    }

    fn dead_letter(mut self, at: u64, wid: u64, reconsume: i32) -> H {
        self.h.push(Entry::DeadLetter {
            at_ms: at,
            group: "g".into(),
            client: 30,
            broker: "b".into(),
            queue_id: 0,
            queue_offset: 0,
            wid: Some(wid),
            reconsume_times: reconsume,
        });
        self
    }

    /// Declares `Promise::max_reconsume_times`.
    fn max_reconsume_times(mut self, times: u32) -> H {
        if let Entry::Meta { promise, .. } = &mut self.h.entries[0] {
            promise.max_reconsume_times = times;
        }
        self
    }

    /// g's n10 commits T/q0 up to `offset`.
    fn commit(mut self, at: u64, offset: u64) -> H {
        self.h.push(Entry::Commit {
            at_ms: at,
            group: "g".into(),
            client: 10,
            broker: "b".into(),
            topic: "T".into(),
            queue_id: 0,
            offset,
        });
        self
    }

    fn fault(mut self, at: u64, kind: FaultKind, node: u32) -> H {
        self.h.push(Entry::Fault {
            at_ms: at,
            kind,
            node: Some(node),
            detail: format!("planted on n{node}"),
        });
        self
    }
}

const LATER: ConsumeOutcome = ConsumeOutcome::ReconsumeLater;
const OK: ConsumeOutcome = ConsumeOutcome::ConsumeSuccess;

fn violations(r: &Report) -> String {
    r.violations
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn passes(h: &H) -> Report {
    let r = check(&h.h);
    assert!(r.passed(), "{}", violations(&r));
    r
}

fn fails_with_retry(h: &H, needle: &str) {
    let r = check(&h.h);
    let mut rules: Vec<Rule> = r.violations.iter().map(|v| v.rule).collect();
    rules.dedup();
    assert_eq!(rules, vec![Rule::Retry], "{}", violations(&r));
    assert!(
        r.violations[0].detail.contains(needle),
        "{}",
        violations(&r)
    );
}

fn excused(r: &Report, key: &str) -> bool {
    r.stats.excuses.contains_key(key)
}

#[test]
fn a_failed_message_comes_back_raised_after_its_delay_and_then_succeeds() {
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
        .deliver(1_310, "g", 11, "%RETRY%g", 0, 1, 1, OK)
        .deliver(1_020, "h", 12, "T", 1, 1, 0, OK);
    passes(&h);
}

#[test]
fn a_retry_with_its_count_not_raised_fires() {
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
        .deliver(1_310, "g", 10, "%RETRY%g", 0, 1, 0, OK);
    fails_with_retry(&h, "not raised");
}

#[test]
fn a_success_handed_back_fires() {
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, OK)
        .deliver(1_310, "g", 10, "%RETRY%g", 0, 1, 1, OK);
    fails_with_retry(&h, "after only 0 failure(s)");
}

#[test]
fn a_retry_delivered_to_another_group_fires() {
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
        .deliver(1_015, "h", 12, "T", 1, 1, 0, LATER)
        .deliver(1_400, "h", 12, "%RETRY%g", 0, 1, 1, OK)
        .deliver(1_320, "g", 10, "%RETRY%g", 1, 1, 1, OK);
    fails_with_retry(&h, "another group's retry");
}

#[test]
fn an_early_retry_fires_unless_its_broker_clock_was_skewed() {
    let early = || {
        H::new()
            .send(1_000, 1)
            .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
            .deliver(1_309, "g", 10, "%RETRY%g", 0, 1, 1, OK)
    };
    fails_with_retry(&early(), "1 ms before its retry delay");
    // A skew elsewhere (another node) is no evidence.
    fails_with_retry(
        &early().fault(500, FaultKind::ClockSkew, 7),
        "before its retry delay",
    );
    let skewed = H::new()
        .fault(500, FaultKind::ClockSkew, 1)
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
        .deliver(1_309, "g", 10, "%RETRY%g", 0, 1, 1, OK);
    assert!(excused(&passes(&skewed), "retry/clock_skew"));
}

#[test]
fn the_seventeenth_failure_dead_letters_with_count_seventeen() {
    let (h, t) = H::new().send(1_000, 1).fail_rounds(1_010, 1, 17);
    passes(&h.dead_letter(t + 50, 1, 17));
}

#[test]
fn a_dead_letter_one_failure_early_fires() {
    let (h, t) = H::new().send(1_000, 1).fail_rounds(1_010, 1, 16);
    fails_with_retry(
        &h.dead_letter(t + 50, 1, 16),
        "reconsume count 16 after 16 failure(s)",
    );
}

#[test]
fn a_delivery_past_the_maximum_fires_unless_the_consumer_re_hands_it() {
    let (h, t) = H::new().send(1_000, 1).fail_rounds(1_010, 1, 17);
    let again =
        h.dead_letter(t + 50, 1, 17)
            .deliver(t + 2_000, "g", 11, "%RETRY%g", 500, 1, 17, OK);
    fails_with_retry(&again, "past the maximum 16");
    // The hand-back of count 16 failed: the same client re-hands the same position.
    let (h, t) = H::new().send(1_000, 1).fail_rounds(1_010, 1, 17);
    let rehand = h
        .deliver(t + 5_000, "g", 10, "%RETRY%g", 116, 1, 17, LATER)
        .dead_letter(t + 5_100, 1, 17);
    passes(&rehand);
}

#[test]
fn a_consumers_own_re_hand_is_neither_corrupt_nor_an_unexplained_duplicate() {
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
        .deliver(6_010, "g", 10, "T", 1, 1, 1, OK);
    let r = passes(&h);
    assert_eq!(r.stats.duplicates_by_cause.get("retry"), Some(&1));
    // Without the failure the raised count is a corrupt field, and the count uncaused.
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 10, "T", 1, 1, 0, OK)
        .deliver(6_010, "g", 10, "T", 1, 1, 1, OK);
    let r = check(&h.h);
    let mut rules: Vec<Rule> = r.violations.iter().map(|v| v.rule).collect();
    rules.sort();
    rules.dedup();
    assert!(rules.contains(&Rule::Corrupt), "{}", violations(&r));
    assert!(rules.contains(&Rule::Retry), "{}", violations(&r));
}

#[test]
fn a_failure_never_followed_up_fires_unless_a_broker_lost_its_cache() {
    let lost = || {
        H::new()
            .send(1_000, 1)
            .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER)
            .commit(1_500, 2)
            .quiet(2_000, 200_000)
    };
    fails_with_retry(&lost(), "never came back");
    // Dead-lettered (a group allowed no retry at all): not lost.
    passes(&lost().max_reconsume_times(0).dead_letter(1_500, 1, 1));
    let cut = lost()
        .fault(1_100, FaultKind::PowerCut, 1)
        .fault(1_200, FaultKind::Restart, 1);
    assert!(excused(&check(&cut.h), "retry/retry_copy_lost"));
    // A power cut on another broker group, which never held the message, is none.
    fails_with_retry(
        &lost()
            .fault(1_100, FaultKind::PowerCut, 2)
            .fault(1_200, FaultKind::Restart, 2),
        "never came back",
    );
    // A power cut on a client is no evidence.
    fails_with_retry(
        &lost()
            .fault(1_100, FaultKind::PowerCut, 20)
            .fault(1_200, FaultKind::Restart, 20),
        "never came back",
    );
    // Too close to the end to judge.
    passes(&lost().quiet(2_000, 60_000));
}

#[test]
fn a_re_handed_copy_lost_with_its_broker_is_excused_only_by_a_loss_since_its_first_delivery() {
    // n10's hand-backs fail (the master is gone): it re-hands its copy of T/q0 offset 1
    // itself every 5 s, until it drops the queue with the lost broker (chaos seeds 6282,
    // 13800). The loss came before the last failure, but after the copy was delivered.
    let rehands = |h: H| {
        h.deliver(6_010, "g", 10, "T", 1, 1, 1, LATER)
            .deliver(11_010, "g", 10, "T", 1, 1, 2, LATER)
            .commit(11_500, 2)
            .quiet(12_000, 200_000)
    };
    let base = || H::new().send(1_000, 1);
    let lost = rehands(base().deliver(1_010, "g", 10, "T", 1, 1, 0, LATER).fault(
        3_000,
        FaultKind::MachineLost,
        1,
    ));
    let r = check(&lost.h);
    assert!(excused(&r, "retry/retry_copy_lost"), "{}", violations(&r));
    assert!(r.violations.iter().all(|v| v.rule != Rule::Retry));
    // A cache loss before the copy was first delivered did not take it: the broker
    // handed it out afterwards.
    fails_with_retry(
        &rehands(
            base()
                .fault(1_003, FaultKind::PowerCut, 1)
                .fault(1_005, FaultKind::Restart, 1)
                .deliver(1_010, "g", 10, "T", 1, 1, 0, LATER),
        ),
        "never came back",
    );
}

#[test]
fn a_failed_stale_copy_of_a_message_the_group_consumed_may_be_dropped() {
    // n11 consumed it; n10, holding the queue for a moment at a rebalance, got it
    // again, failed it and gave the queue up before handing it back.
    let h = H::new()
        .send(1_000, 1)
        .deliver(1_010, "g", 11, "T", 1, 1, 0, OK)
        .deliver(5_000, "g", 10, "T", 1, 1, 0, LATER)
        .commit(6_000, 2)
        .quiet(7_000, 200_000);
    passes(&h);
}

#[test]
fn a_suspend_never_followed_up_is_left_to_the_rules_of_its_queue() {
    // An orderly listener's SUSPEND re-hands the message in place, from its own
    // position: if it never comes back, that position's rules judge it (lost,
    // key_order), not the retry path's. The same history with RECONSUME_LATER fires.
    let run = |status| {
        H::new()
            .send(1_000, 1)
            .deliver(1_010, "g", 10, "T", 1, 1, 0, status)
            .commit(1_500, 2)
            .quiet(2_000, 200_000)
    };
    let r = check(&run(ConsumeOutcome::SuspendCurrentQueueAMoment).h);
    assert!(
        r.violations.iter().all(|v| v.rule != Rule::Retry),
        "{}",
        violations(&r)
    );
    fails_with_retry(&run(LATER), "never came back");
}
