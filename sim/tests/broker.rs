//! The broker in the world, driven by a scripted client: sends and their answers under
//! each flush mode and role, pulls with long polling and tag filtering, replication to
//! a slave, consumer offsets between master and slave (SlaveSynchronize), and a clean
//! shutdown that leaves no abort marker.

mod broker_world;

use std::rc::Rc;

use broker_world::*;
use rmq_model::broker::{BrokerConfig, BrokerRole, FlushDiskType};
use rmq_model::protocol::{pull_sys_flag, response_code, Message, QueueKey, Request, Response};
use rmq_model::store::ABORT_PATH;
use rmq_sim::cluster::world::{Fault, World};

/// A pull that carries `commit` with COMMIT_OFFSET, as a consumer sends to a master.
fn pull_committing(queue_id: i32, offset: u64, commit: u64) -> Request {
    let Request::PullMessage(mut p) = pull(queue_id, offset, "*") else {
        unreachable!()
    };
    p.sys_flag |= pull_sys_flag::COMMIT_OFFSET;
    p.commit_offset = commit;
    Request::PullMessage(p)
}

#[test]
fn sends_pulls_long_polling_and_tag_filter() {
    let answers: Answers = Rc::default();
    let script = vec![
        (1_000, MASTER, send(0, "a", "one")),
        (1_100, MASTER, send(0, "b", "two")),
        (1_200, MASTER, send(0, "a", "three")),
        (1_500, MASTER, pull(0, 0, "*")),
        (1_600, MASTER, pull(0, 0, "a")),
        // Held: nothing at offset 3 until the send at 4 s.
        (2_000, MASTER, pull(0, 3, "*")),
        (4_000, MASTER, send(0, "a", "four")),
        (4_100, MASTER, pull(0, 9, "*")),
        (4_200, MASTER, send(5, "a", "bad queue")),
    ];
    let mut w = world(
        1,
        config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush),
        None,
        script,
        &answers,
    );
    w.run_until(30_000);
    for (i, offset) in [(0, 0), (1, 1), (2, 2), (6, 3)] {
        let Response::Send(s) = answer(&answers, i).1 else {
            panic!("send {i} failed")
        };
        assert_eq!(
            (s.code, s.queue_id, s.queue_offset),
            (response_code::SUCCESS, 0, offset)
        );
    }
    let Response::Pull(p) = answer(&answers, 3).1 else {
        panic!()
    };
    assert_eq!(p.code, response_code::SUCCESS);
    assert_eq!(bodies(&p.records), ["one", "two", "three"]);
    assert_eq!((p.next_begin_offset, p.max_offset), (3, 3));
    let Response::Pull(p) = answer(&answers, 4).1 else {
        panic!()
    };
    assert_eq!(
        bodies(&p.records),
        ["one", "three"],
        "tag filter by hash code"
    );
    let (t, r) = answer(&answers, 5);
    let Response::Pull(p) = r else { panic!() };
    assert!(
        (4_000..4_100).contains(&t),
        "the held pull woke on arrival, at {t}"
    );
    assert_eq!(bodies(&p.records), ["four"]);
    let Response::Pull(p) = answer(&answers, 7).1 else {
        panic!()
    };
    assert_eq!(
        (p.code, p.next_begin_offset),
        (response_code::PULL_OFFSET_MOVED, 4)
    );
    let Response::Error { code, .. } = answer(&answers, 8).1 else {
        panic!()
    };
    assert_eq!(code, response_code::SYSTEM_ERROR);
}

#[test]
fn sync_flush_answers_after_the_covering_fsync() {
    let durable = |flush| durable_at_answer(flush, send(1, "a", "durable"), b"durable");
    assert!(
        durable(FlushDiskType::SyncFlush),
        "SEND_OK before the fsync"
    );
    // ASYNC_FLUSH answers at once: the same check sees the record still in the cache.
    assert!(!durable(FlushDiskType::AsyncFlush));
}

#[test]
fn sync_master_waits_for_the_slave_and_the_slave_serves_the_same_bytes() {
    let served = sync_master_case(send(0, "a", "replicated"), send(0, "a", "alone"));
    assert_eq!(served, ["replicated"]);
}

fn offset_key() -> QueueKey {
    QueueKey {
        consumer_group: "g".into(),
        topic: "TopicTest".into(),
        queue_id: 0,
    }
}

fn update_offset(offset: u64) -> Request {
    Request::UpdateConsumerOffset {
        key: offset_key(),
        offset,
    }
}

fn offset_answer(answers: &Answers, opaque: u32) -> u64 {
    match answer(answers, opaque).1 {
        Response::Offset(o) => o,
        other => panic!("query {opaque} answered {other:?}"),
    }
}

#[test]
fn slave_learns_its_masters_consumer_offsets_within_one_sync_interval() {
    let sync_ms = BrokerConfig::default().slave_synchronize_interval_ms;
    let answers: Answers = Rc::default();
    let query = Request::QueryConsumerOffset(offset_key());
    let commit_ms = 4_000;
    let script = vec![
        (1_000, MASTER, send(0, "a", "one")),
        (1_100, MASTER, send(0, "a", "two")),
        (1_200, MASTER, send(0, "a", "three")),
        (commit_ms, MASTER, update_offset(2)),
        // The slave has not synced since the commit.
        (commit_ms + 100, SLAVE, query.clone()),
        // One sync interval later, it has.
        (commit_ms + sync_ms + 100, SLAVE, query.clone()),
        // A commit taken by the slave (the consumer's route listed no master)
        // reaches the master.
        (commit_ms + sync_ms + 200, SLAVE, update_offset(1)),
        (commit_ms + sync_ms + 300, MASTER, query.clone()),
        // A commit past the queue's end (a consumer that read records the master
        // has since lost) is stored as the end.
        (commit_ms + sync_ms + 400, MASTER, update_offset(99)),
        (commit_ms + sync_ms + 500, MASTER, query.clone()),
        // After the next sync: a pull carrying a commit does not move a slave's offset.
        (
            commit_ms + 2 * sync_ms + 200,
            SLAVE,
            pull_committing(0, 3, 1),
        ),
        (commit_ms + 2 * sync_ms + 300, SLAVE, query.clone()),
    ];
    let mut w = world(
        5,
        config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush),
        Some(config(BrokerRole::Slave, FlushDiskType::AsyncFlush)),
        script,
        &answers,
    );
    w.run_until(commit_ms + sync_ms + 1_000);
    assert_eq!(
        offset_answer(&answers, 4),
        0,
        "no sync between the commit and this query"
    );
    assert_eq!(
        offset_answer(&answers, 5),
        2,
        "the slave synced within {sync_ms} ms"
    );
    assert_eq!(offset_answer(&answers, 7), 1, "the slave passed it on");
    assert_eq!(offset_answer(&answers, 9), 3, "clamped to the queue's end");
    // The slave persists what it learned, as the master does.
    w.run_until(commit_ms + 2 * sync_ms + 1_000);
    assert_eq!(
        offset_answer(&answers, 11),
        3,
        "the master's clamped offset, synced; the pull's commit ignored"
    );
    let file = w
        .disk(SLAVE)
        .durable_bytes("config/consumerOffset.json")
        .expect("the slave persisted its offsets");
    let text = String::from_utf8(file.to_vec()).unwrap();
    assert!(text.contains("TopicTest@g"), "{text}");
}

/// An ASYNC_MASTER, ASYNC_FLUSH broker alone, at 2 s, having stored body "x" at 1 s.
fn async_master_after_one_send() -> World<Message> {
    let answers: Answers = Rc::default();
    let script = vec![(1_000, MASTER, send(0, "a", "x"))];
    let mut w = world(
        4,
        config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush),
        None,
        script,
        &answers,
    );
    w.run_until(2_000);
    w
}

#[test]
fn clean_shutdown_removes_the_abort_marker() {
    let mut w = async_master_after_one_send();
    assert!(
        w.disk(MASTER).cache_bytes(ABORT_PATH).is_some(),
        "a running store has the marker"
    );
    w.inject(Fault::CleanShutdown { node: MASTER });
    w.run_until(3_000);
    assert!(!w.is_up(MASTER), "the broker stopped after its shutdown");
    assert!(
        w.disk(MASTER).durable_bytes(ABORT_PATH).is_none(),
        "the marker is durably gone"
    );
    let log = w
        .disk(MASTER)
        .durable_bytes("commitlog/00000000000000000000")
        .unwrap();
    assert!(log.windows(1).any(|x| x == b"x"));
}

#[test]
fn a_restart_during_a_clean_shutdown_boots_the_broker_once_it_has_stopped() {
    // The heal restarts every node; one still flushing its clean shutdown then must
    // come back once it has stopped, not stay down for the rest of the run.
    let mut w = async_master_after_one_send();
    w.inject(Fault::CleanShutdown { node: MASTER });
    assert!(w.is_up(MASTER), "a clean shutdown takes a while");
    w.inject(Fault::Restart { node: MASTER });
    w.run_until(3_000);
    assert!(
        w.trace().any(|l| l.contains("stopped cleanly")),
        "the shutdown completed"
    );
    assert!(w.is_up(MASTER), "the deferred restart booted the broker");
    let restarts = w
        .faults()
        .iter()
        .filter(|f| matches!(f.fault, Fault::Restart { node } if node == MASTER))
        .count();
    assert_eq!(restarts, 1, "the restart is recorded once, when it happens");
}

/// ASYNC_FLUSH's thorough flush after the master's clock ran ahead and was set back
/// (chaos seed 81309): the record is durable within the thorough interval, not only
/// once the clock has caught up with the jump.
#[test]
fn async_flush_thorough_flush_survives_a_clock_set_back() {
    let answers: Answers = Rc::default();
    let script = vec![(1_500, MASTER, send(1, "a", "skewed"))];
    let mut w = world(
        3,
        config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush),
        None,
        script,
        &answers,
    );
    w.schedule(
        900,
        Fault::ClockSkew {
            node: MASTER,
            skew_ms: 20_000,
        },
    );
    w.schedule(
        1_200,
        Fault::ClockSkew {
            node: MASTER,
            skew_ms: 0,
        },
    );
    w.run_until(12_500);
    let Response::Send(s) = answer(&answers, 0).1 else {
        panic!()
    };
    assert_eq!(s.code, response_code::SUCCESS);
    assert!(w
        .disk(MASTER)
        .durable_bytes("commitlog/00000000000000000000")
        .is_some_and(|log| log.windows(6).any(|x| x == b"skewed")));
}

/// A producer that restarts while its send waits for the slave never gets the old
/// process's answer: the broker would write it to the closed channel. (It used to reach
/// the new process, whose requests reuse the old opaques, which took it for the answer
/// to its own request: swarm seeds 359, 748 and 935.) The record stays stored.
#[test]
fn a_waiting_send_is_not_answered_to_a_restarted_producer() {
    let answers: Answers = Rc::default();
    let script = vec![(12_000, MASTER, send(0, "a", "waits"))];
    let mut w = world(
        3,
        config(BrokerRole::SyncMaster, FlushDiskType::AsyncFlush),
        Some(config(BrokerRole::Slave, FlushDiskType::AsyncFlush)),
        script,
        &answers,
    );
    w.run_until(11_000);
    // The slave's acknowledgement comes a second late: the send waits for it.
    w.clog(MASTER, SLAVE, 1_000);
    w.run_until(12_100);
    assert!(answers.borrow().is_empty(), "still waiting for the slave");
    w.crash(CLIENT, rmq_sim::storage::disk::CrashKind::ProcessCrash);
    w.restart(CLIENT);
    w.run_until(20_000);
    assert!(
        answers.borrow().is_empty(),
        "the new process got the old one's answer: {:?}",
        answers.borrow()
    );
    let records = w
        .disk(MASTER)
        .cache_bytes("commitlog/00000000000000000000")
        .expect("the first commit-log file");
    assert!(
        records.windows(5).any(|b| b == b"waits"),
        "the record stays stored"
    );
}

/// A pull held at offset 0 before a send: (when the send was answered, when the pull
/// was answered, what the pull served).
fn held_pull_against_send(
    master: BrokerConfig,
    slave: Option<BrokerConfig>,
) -> (u64, u64, Vec<String>) {
    let answers: Answers = Rc::default();
    let script = vec![
        (12_000, MASTER, pull(0, 0, "*")),
        (12_100, MASTER, send(0, "a", "one")),
    ];
    let mut w = world(5, master, slave, script, &answers);
    w.run_until(20_000);
    let (sent_ms, Response::Send(s)) = answer(&answers, 1) else {
        panic!()
    };
    assert_ne!(s.code, response_code::SYSTEM_ERROR);
    let (pulled_ms, Response::Pull(p)) = answer(&answers, 0) else {
        panic!()
    };
    (sent_ms, pulled_ms, bodies(&p.records))
}

#[test]
fn sync_flush_pull_serves_a_record_only_once_flushed() {
    // The held pull is woken by the flush, not by the arrival: it is answered with
    // the send's SEND_OK (which waits for the fsync), never before.
    let (sent_ms, pulled_ms, served) = held_pull_against_send(
        config(BrokerRole::AsyncMaster, FlushDiskType::SyncFlush),
        None,
    );
    assert_eq!(served, ["one"]);
    assert!(
        pulled_ms >= sent_ms,
        "served at {pulled_ms}ms, flushed by {sent_ms}ms"
    );
    // ASYNC_FLUSH promises nothing past the page cache: served on arrival.
    let (sent_ms, pulled_ms, served) = held_pull_against_send(
        config(BrokerRole::AsyncMaster, FlushDiskType::AsyncFlush),
        None,
    );
    assert_eq!(served, ["one"]);
    assert!(pulled_ms <= sent_ms + 1, "{pulled_ms} {sent_ms}");
}

#[test]
fn sync_master_pull_serves_a_record_only_once_the_slave_has_it() {
    let (sent_ms, pulled_ms, served) = held_pull_against_send(
        config(BrokerRole::SyncMaster, FlushDiskType::AsyncFlush),
        Some(config(BrokerRole::Slave, FlushDiskType::AsyncFlush)),
    );
    assert_eq!(served, ["one"]);
    assert!(
        pulled_ms >= sent_ms,
        "served at {pulled_ms}ms, replicated by {sent_ms}ms"
    );
}

#[test]
fn sync_master_without_a_slave_serves_what_the_master_flushed() {
    // No slave in sync (SLAVE_NOT_AVAILABLE): consumers are not stalled behind it; the
    // record is served once the master's own flush covers it.
    let answers: Answers = Rc::default();
    let script = vec![
        (12_000, MASTER, pull(0, 0, "*")),
        (12_100, MASTER, send(0, "a", "alone")),
    ];
    let mut w = world(
        6,
        config(BrokerRole::SyncMaster, FlushDiskType::AsyncFlush),
        None,
        script,
        &answers,
    );
    w.run_until(20_000);
    let Response::Send(s) = answer(&answers, 1).1 else {
        panic!()
    };
    assert_eq!(s.code, response_code::SLAVE_NOT_AVAILABLE);
    let (pulled_ms, Response::Pull(p)) = answer(&answers, 0) else {
        panic!()
    };
    assert_eq!(bodies(&p.records), ["alone"]);
    assert!(
        w.disk(MASTER)
            .durable_bytes("commitlog/00000000000000000000")
            .is_some_and(|log| log.windows(5).any(|x| x == b"alone")),
        "served at {pulled_ms}ms"
    );
    assert!(
        pulled_ms < 12_100 + 2_000,
        "not held until the suspend timeout"
    );
}
