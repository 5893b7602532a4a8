//! The retry rule on hand-built histories: a message a group's listener failed comes
//! back raised, caused, to its own group, not early, dead-lettered at the maximum and
//! never past it, and is never left behind; each planted break fails with `retry`, and
//! each excuse needs its evidence. An orderly group with a maximum dead-letters at its
//! own maximum, and key order lets it skip only such a message.

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
        max_reconsume_times: None,
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
            promise: Box::new(promise()),
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
    fn send(self, at: u64, wid: u64) -> H {
        self.send_keyed(at, wid, None)
    }

    /// Group g consumes orderly, with the maximum `max` (`None`: RocketMQ's default).
    fn orderly(mut self, max: Option<u32>) -> H {
        if let Entry::Meta { groups, .. } = &mut self.h.entries[0] {
            groups[0].orderly = true;
            groups[0].max_reconsume_times = max;
        }
        self
    }

    /// [`H::send`], with a sharding key.
    fn send_keyed(mut self, at: u64, wid: u64, key: Option<&str>) -> H {
        self.h.push(Entry::SendInvoke {
            at_ms: at,
            client: 20,
            wid,
            topic: "T".into(),
            tags: None,
            body_crc: 7,
            fields: None,
            delay_level: 0,
            sharding_key: key.map(Into::into),
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

    /// g's n10's listener answers `status` at `at` for its delivery of `wid` at
    /// (`topic`, `offset`) (delivered earlier with [`H::deliver_unanswered`]).
    fn answer(mut self, at: u64, topic: &str, offset: u64, wid: u64, status: ConsumeOutcome) -> H {
        self.h.push(Entry::Consumed {
            at_ms: at,
            group: "g".into(),
            client: 10,
            broker: "b".into(),
            topic: topic.into(),
            queue_id: 0,
            queue_offset: offset,
            wid: Some(wid),
            status,
        });
        self
    }

    /// A delivery of `wid` to g's n10 whose listener has not answered yet.
    fn deliver_unanswered(
        mut self,
        at: u64,
        topic: &str,
        offset: u64,
        wid: u64,
        reconsume: i32,
    ) -> H {
        self.h.push(Entry::Deliver {
            at_ms: at,
            group: "g".into(),
            client: 10,
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
        self
    }

    /// Declares `Promise::consume_timeout_ms`.
    fn consume_timeout(mut self, ms: u64) -> H {
        if let Entry::Meta { promise, .. } = &mut self.h.entries[0] {
            promise.consume_timeout_ms = ms;
        }
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
const TIME_OUT: ConsumeOutcome = ConsumeOutcome::TimeOut;

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

#[test]
fn a_listener_given_up_on_after_the_consume_timeout_is_a_failure_handed_back() {
    // n10's listener hangs on wid 1; its consumer gives up 2 s later (TIME_OUT) and the
    // copy comes back from %RETRY%g, count 1, before the listener's late answer.
    let hung = || {
        H::new()
            .consume_timeout(2_000)
            .send(1_000, 1)
            .deliver_unanswered(1_010, "T", 1, 1, 0)
    };
    let back = |h: H| {
        h.deliver(3_400, "g", 10, "%RETRY%g", 100, 1, 1, OK)
            .answer(7_010, "T", 1, 1, OK)
            .commit(7_500, 2)
    };
    passes(&back(hung().answer(3_100, "T", 1, 1, TIME_OUT)));
    // Given up on before the timeout: fires.
    fails_with_retry(
        &back(hung().answer(2_500, "T", 1, 1, TIME_OUT)),
        "gave up on its listener (TIME_OUT) at 2500ms",
    );
    // Never given up on: the late success, more than twice the timeout after the
    // delivery, cannot be the message's end; it must come back, and does not.
    fails_with_retry(
        &hung()
            .answer(7_010, "T", 1, 1, OK)
            .commit(7_500, 2)
            .quiet(8_000, 200_000),
        "never came back",
    );
    // A late answer within twice the timeout may have beaten the sweep: no obligation.
    passes(
        &hung()
            .answer(4_500, "T", 1, 1, OK)
            .commit(5_000, 2)
            .quiet(8_000, 200_000),
    );
}
const SUSPEND: ConsumeOutcome = ConsumeOutcome::SuspendCurrentQueueAMoment;

/// Orderly g with maximum 2: keyed messages 1 and 2 of key k; n10 suspends 1 in place
/// `failures` times (counts 0, 1, …).
fn orderly_failing(failures: i32) -> H {
    let mut h = H::new()
        .orderly(Some(2))
        .send_keyed(1_000, 1, Some("k"))
        .send_keyed(1_100, 2, Some("k"));
    for n in 0..failures {
        h = h.deliver(1_200 + n as u64 * 1_000, "g", 10, "T", 1, 1, n, SUSPEND);
    }
    h
}

/// The next message of the key, consumed after the failures.
fn then_the_next(h: H) -> H {
    h.deliver(9_000, "g", 10, "T", 2, 2, 0, OK)
}

#[test]
fn an_orderly_message_dead_lettered_at_its_groups_maximum_may_be_skipped() {
    let r = passes(&then_the_next(orderly_failing(3).dead_letter(4_000, 1, 3)));
    assert!(
        excused(&r, "key_order/dead_lettered"),
        "{:?}",
        r.stats.excuses
    );
}

#[test]
fn an_orderly_message_skipped_without_its_dead_letter_copy_fires_key_order() {
    let r = check(&then_the_next(orderly_failing(3)).h);
    assert!(
        r.violations
            .iter()
            .any(|v| v.rule == Rule::KeyOrder && v.detail.contains("never consumed")),
        "{}",
        violations(&r)
    );
    // A copy with another count than the maximum's is no excuse either.
    let r = check(&then_the_next(orderly_failing(3).dead_letter(4_000, 1, 2)).h);
    assert!(
        r.violations.iter().any(|v| v.rule == Rule::KeyOrder),
        "{}",
        violations(&r)
    );
}

#[test]
fn an_orderly_dead_letter_one_failure_early_fires() {
    // Maximum 2: dead-lettered at the third failure, count 3; here after two.
    fails_with_retry(
        &then_the_next(orderly_failing(2).dead_letter(3_500, 1, 3)),
        "reconsume count 3 after 2 failure(s)",
    );
    passes(&then_the_next(orderly_failing(3).dead_letter(3_500, 1, 3)));
}

#[test]
fn an_orderly_group_without_a_maximum_never_dead_letters_and_never_reaches_one() {
    // Twenty suspends in place: past the promise's 16, no maximum to pass.
    let mut h = H::new().orderly(None).send_keyed(1_000, 1, Some("k"));
    for n in 0..20 {
        h = h.deliver(1_200 + n as u64 * 1_000, "g", 10, "T", 1, 1, n, SUSPEND);
    }
    passes(&h);
    fails_with_retry(&h.dead_letter(30_000, 1, 17), "has no maximum");
}

#[test]
fn an_orderly_message_delivered_past_its_maximum_fires_unless_its_copy_failed() {
    // Dead-lettered at count 3, then handed over again with count 3 by another client.
    let again = then_the_next(orderly_failing(3).dead_letter(4_000, 1, 3))
        .deliver(9_500, "g", 11, "T", 1, 1, 3, OK);
    let r = check(&again.h);
    assert!(
        r.violations
            .iter()
            .any(|v| v.rule == Rule::Retry && v.detail.contains("past the maximum 2")),
        "{}",
        violations(&r)
    );
    // The copy failed: n10 suspended it once more and hands it over in place.
    let rehand = orderly_failing(3)
        .deliver(4_200, "g", 10, "T", 1, 1, 3, SUSPEND)
        .dead_letter(5_000, 1, 4);
    passes(&then_the_next(rehand));
}
