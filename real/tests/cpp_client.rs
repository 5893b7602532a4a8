//! Interop with RocketMQ's own C++ client (issue 9 §4): mqnamesrv and mqbroker
//! (SYNC_FLUSH) from cargo's build output on free loopback ports, driven by
//! `tests/interop/client.py` over PyPI's `rocketmq-client-python==0.5.0rc2`, which
//! bundles librocketmq.so (rocketmq-client-cpp). Checked: sync sends with tags, keys and
//! a user property arrive intact in queue order; orderly sends keep a sharding key on
//! one queue and an orderly push consumer (LOCK_BATCH_MQ) gets them in order; push
//! consumers in clustering (two split the queues) and broadcasting (each
//! gets everything) mode with `TagA || TagB` see no TagC; the C pull API; a consumer
//! restarted mid-stream resumes from its committed offset; a broker killed with SIGKILL
//! loses no SEND_OK.
//!
//! The test prepares its own Python: a venv under cargo's target directory, made once
//! and reused. Without python3 or PyPI it fails under `CI=true` and otherwise skips
//! with a message on stderr (a developer offline can still run `cargo test`).
//!
//! Each client run has its own HOME (the client writes ~/logs and broadcasting offsets
//! under it) and is killed past [`CLIENT_TIMEOUT`]: a hung broker can block this client
//! for about a minute per call.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rmq_model::protocol::{request_code, QueueKey, Request, Response};
use rmq_real::remoting::{
    decode_frame, encode_frame, request_to_wire, response_from_wire, DEFAULT_MAX_FRAME_BYTES,
};
use serde_json::Value;

use common::procs::{broker_conf, free_port, start_broker, start_namesrv, Proc};

/// The pin: 0.5.0rc2 is the last release that ships librocketmq.so (2.0.0 ships none).
const CLIENT_PACKAGE: &str = "rocketmq-client-python==0.5.0rc2";
/// Past this a client run is killed and the test fails with its output.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// `client.py produce` cycles these by message index; consumers subscribe `TagA || TagB`.
const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];
const EXPRESSION: &str = "TagA || TagB";
/// The broker's default for an auto-created topic.
const QUEUES: i32 = 4;

// ---------------------------------------------------------------------------------
// Python and the client driver

/// The venv's python, made on first use; `None` when it cannot be made outside CI.
fn python() -> Option<&'static Path> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(prepare_venv) {
        Ok(python) => Some(python),
        Err(why) if in_ci() => {
            panic!("cannot prepare RocketMQ's C++ client (CI=true, so no skipping): {why}")
        }
        Err(why) => {
            // Straight to stderr: the harness would swallow eprintln! from a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: cannot prepare RocketMQ's C++ client: {why}"
            );
            None
        }
    }
}

/// CI=true (or any value but empty, 0 and false, as CI services set it).
fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !["", "0", "false"].contains(&v.to_ascii_lowercase().as_str()))
}

/// `python3 -m venv` + `pip install` the pinned client under CARGO_TARGET_TMPDIR. Built
/// in a scratch directory and renamed into place once complete, so an interrupted
/// install is never reused and concurrent test binaries do not share a half-made one.
fn prepare_venv() -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = root.join("cpp-client-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    let installed = || std::fs::read_to_string(&ready).is_ok_and(|pin| pin == CLIENT_PACKAGE);
    if installed() {
        return Ok(python);
    }
    let scratch = root.join(format!("cpp-client-venv.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let run = |what: &str, cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("{what}: cannot run: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    run(
        "python3 -m venv (python3 with the venv module is needed)",
        Command::new("python3").arg("-m").arg("venv").arg(&scratch),
    )?;
    run(
        &format!("pip install {CLIENT_PACKAGE} (PyPI must be reachable)"),
        Command::new(scratch.join("bin/python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(["--timeout", "30", CLIENT_PACKAGE]),
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&scratch);
    })?;
    // The venv's own scripts hold its path, but we only run bin/python, which finds
    // its packages relative to itself: renaming the directory is safe.
    std::fs::write(scratch.join(".installed"), CLIENT_PACKAGE).map_err(|e| e.to_string())?;
    // Another test binary may have finished first: keep its venv (it may be in use).
    if !installed() {
        let _ = std::fs::remove_dir_all(&venv); // an interrupted or differently pinned one
        if std::fs::rename(&scratch, &venv).is_err() && !installed() {
            return Err(format!("cannot move {} into place", scratch.display()));
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(python)
}

/// One run of `client.py`: its JSON lines as they arrive, its stderr in a file.
struct Client {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: PathBuf,
    started: Instant,
}

impl Client {
    fn start(python: &Path, home: &Path, what: &str, args: &[&str]) -> Client {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/client.py");
        let stderr = home.join(format!("client-{}.err", what.replace(' ', "_")));
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .env("HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let lines: Arc<Mutex<Vec<Value>>> = Arc::default();
        let sink = lines.clone();
        let name = what.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("{name} printed a line that is not JSON ({e}): {line}")
                });
                sink.lock().unwrap().push(value);
            }
        });
        Client {
            what: what.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
            started: Instant::now(),
        }
    }

    fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    fn ops(&self, op: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["op"] == op).collect()
    }

    fn received(&self) -> Vec<Received> {
        self.ops("received").iter().map(Received::from).collect()
    }

    fn stderr(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.stderr).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Waits until `done` holds for what was printed so far; fails past the timeout.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Client) -> bool) {
        while !done(self) {
            if self.started.elapsed() > CLIENT_TIMEOUT {
                panic!(
                    "{}: timed out waiting for {what}; printed:\n{:#?}\nstderr:\n{}",
                    self.what,
                    self.lines(),
                    self.stderr()
                );
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                // Exited: whatever it printed is all there will be (after the reader drains).
                std::thread::sleep(Duration::from_millis(100));
                assert!(
                    done(self),
                    "{} exited ({status}) before {what}; printed:\n{:#?}\nstderr:\n{}",
                    self.what,
                    self.lines(),
                    self.stderr()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin (a consumer's signal to shut down cleanly), waits for the exit and
    /// the final `done` line.
    fn finish(mut self) -> Client {
        self.stdin.take();
        self.wait_until("its final line", |c| !c.ops("done").is_empty());
        let started = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} did not exit after its final line",
                self.what
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivery as `client.py` printed it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Received {
    i: u64,
    topic: String,
    tags: String,
    keys: String,
    body: String,
    sharding_key: String,
    queue_id: i32,
    queue_offset: u64,
    reconsume_times: i64,
    msg_id: String,
}

impl From<&Value> for Received {
    fn from(v: &Value) -> Received {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Received {
            i: s("n")
                .parse()
                .unwrap_or_else(|_| panic!("user property n missing or mangled: {v}")),
            topic: s("topic"),
            tags: s("tags"),
            keys: s("keys"),
            body: s("body"),
            sharding_key: s("sharding_key"),
            queue_id: v["queue_id"].as_i64().unwrap() as i32,
            queue_offset: v["queue_offset"].as_u64().unwrap(),
            reconsume_times: v["reconsume_times"].as_i64().unwrap(),
            msg_id: s("msg_id"),
        }
    }
}

/// Every field as `client.py produce` wrote it for message `i`.
fn assert_intact(topic: &str, r: &Received) {
    let i = r.i as usize;
    assert_eq!(r.topic, topic, "{r:?}");
    assert_eq!(r.body, format!("body-{i}"), "{r:?}");
    assert_eq!(r.keys, format!("key-{i}"), "{r:?}");
    assert_eq!(r.tags, TAGS[i % TAGS.len()], "{r:?}");
    assert!((0..QUEUES).contains(&r.queue_id), "{r:?}");
}

/// One consumer's deliveries of each queue come in offset order.
fn assert_queue_order(who: &str, received: &[Received]) {
    let mut last: BTreeMap<i32, u64> = BTreeMap::new();
    for r in received {
        if let Some(prev) = last.insert(r.queue_id, r.queue_offset) {
            assert!(
                r.queue_offset > prev,
                "{who}: queue {} went from offset {prev} to {}",
                r.queue_id,
                r.queue_offset
            );
        }
    }
}

fn indexes(received: &[Received]) -> BTreeSet<u64> {
    received.iter().map(|r| r.i).collect()
}

/// The messages of `range` a `TagA || TagB` subscription must get.
fn matching(range: std::ops::Range<u64>) -> BTreeSet<u64> {
    range
        .filter(|i| TAGS[*i as usize % TAGS.len()] != "TagC")
        .collect()
}

// ---------------------------------------------------------------------------------
// The cluster

struct Cluster {
    home: tempfile::TempDir,
    python: &'static Path,
    // Held so it stops (on drop) with the cluster.
    _namesrv: Proc,
    ns_addr: String,
    broker: Proc,
    broker_port: u16,
    conf: PathBuf,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let python = python()?;
        let home = tempfile::tempdir().unwrap();
        let (namesrv, ns_addr) = start_namesrv(home.path());
        let broker_port = free_port();
        let conf = broker_conf(home.path(), broker_port, &ns_addr);
        let broker = start_broker("mqbroker", &conf, broker_port, home.path());
        // Let the broker register before a client asks for a route.
        std::thread::sleep(Duration::from_millis(500));
        Some(Cluster {
            home,
            python,
            _namesrv: namesrv,
            ns_addr,
            broker,
            broker_port,
            conf,
        })
    }

    /// Starts `client.py --namesrv .. --topic .. --group .. args` with HOME at its own
    /// directory under the cluster's.
    fn client(&self, what: &str, topic: &str, group: &str, args: &[&str]) -> Client {
        let home = self
            .home
            .path()
            .join("clients")
            .join(what.replace(' ', "_"));
        std::fs::create_dir_all(&home).unwrap();
        let mut all = vec![
            "--namesrv",
            &self.ns_addr,
            "--topic",
            topic,
            "--group",
            group,
        ];
        all.extend_from_slice(args);
        Client::start(self.python, &home, what, &all)
    }

    /// `produce`: messages `first..first + count`, each expected SEND_OK; the sent lines.
    fn produce(&self, topic: &str, first: u64, count: u64) -> BTreeMap<u64, Value> {
        let (first_arg, count_arg) = (first.to_string(), count.to_string());
        let client = self
            .client(
                &format!("produce {first}"),
                topic,
                "p_interop",
                &["produce", "--first", &first_arg, "--count", &count_arg],
            )
            .finish();
        let sent: BTreeMap<u64, Value> = client
            .ops("sent")
            .into_iter()
            .map(|l| (l["i"].as_u64().unwrap(), l))
            .collect();
        for (i, line) in &sent {
            assert_eq!(line["status"], "SEND_OK", "message {i}: {line}");
        }
        assert_eq!(
            sent.len() as u64,
            count,
            "sends: {:#?}\n{}",
            client.lines(),
            client.stderr()
        );
        sent
    }

    /// `pull`: every queue of `topic` from offset 0 to its end, through the C pull API.
    fn pull_all(&self, topic: &str, group: &str) -> Vec<Received> {
        let client = self
            .client(&format!("pull {group}"), topic, group, &["pull"])
            .finish();
        let queues = &client.ops("queues")[0]["queues"];
        assert_eq!(
            queues.as_array().unwrap().len(),
            QUEUES as usize,
            "{queues}"
        );
        for pulled in client.ops("pulled") {
            assert!(
                ["FOUND", "NO_NEW_MSG"].contains(&pulled["status"].as_str().unwrap()),
                "{pulled}"
            );
        }
        client.received()
    }

    /// The offset the broker holds for `group` on a queue (QUERY_CONSUMER_OFFSET, asked
    /// over RocketMQ's remoting protocol through our own codec).
    fn committed_offset(&self, topic: &str, group: &str, queue_id: i32) -> u64 {
        let request = Request::QueryConsumerOffset(QueueKey {
            consumer_group: group.into(),
            topic: topic.into(),
            queue_id,
        });
        let mut frame = Vec::new();
        encode_frame(&request_to_wire(1, &request, false), &mut frame);
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", self.broker_port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(&frame).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let cmd = loop {
            if let Some((cmd, _)) = decode_frame(&buf, DEFAULT_MAX_FRAME_BYTES).unwrap() {
                break cmd;
            }
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "the broker closed the connection");
            buf.extend_from_slice(&chunk[..n]);
        };
        match response_from_wire(request_code::QUERY_CONSUMER_OFFSET, &cmd).unwrap() {
            Response::Offset(offset) => offset,
            other => panic!("QUERY_CONSUMER_OFFSET {group} {topic}/{queue_id}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// The tests

#[test]
fn sync_send_then_push_in_clustering_and_broadcasting_and_pull() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    const TOPIC: &str = "TopicCppSend";
    // The first sends create the topic: a consumer of a topic that does not exist yet
    // would find it only at its next route poll, 30 s later.
    let mut sent = cluster.produce(TOPIC, 0, 30);

    let consume = |what: &str, group: &str, model: &str| {
        let what = what.to_string();
        cluster.client(
            &what,
            TOPIC,
            group,
            &[
                "consume",
                "--model",
                model,
                "--expression",
                EXPRESSION,
                "--instance",
                &what,
                "--count",
                "1000000",
                "--timeout",
                "55",
                "--stop-on-stdin-eof",
            ],
        )
    };
    let mut consumers = [
        consume("clustering 1", "g_cluster", "clustering"),
        consume("clustering 2", "g_cluster", "clustering"),
        consume("broadcasting 1", "g_broadcast", "broadcasting"),
        consume("broadcasting 2", "g_broadcast", "broadcasting"),
    ];
    for c in &mut consumers {
        c.wait_until("its start", |c| !c.ops("started").is_empty());
    }
    // Both clustering consumers registered and rebalanced; each broadcasting consumer
    // placed at the end of every queue (a new broadcasting consumer starts from the
    // last offset: RocketMQ's CONSUME_FROM_LAST_OFFSET with a local offset store).
    std::thread::sleep(Duration::from_secs(3));
    sent.extend(cluster.produce(TOPIC, 30, 30));

    // Clustering: together everything matching, from the first message (the broker
    // answers 0 for a new group's queue that still starts at 0).
    let expected = matching(0..60);
    let [c1, c2, b1, b2] = &mut consumers;
    let together = |a: &Client, b: &Client| {
        let mut all = indexes(&a.received());
        all.extend(indexes(&b.received()));
        all
    };
    let started = Instant::now();
    while together(c1, c2) != expected {
        assert!(
            together(c1, c2).is_subset(&expected),
            "clustering delivered something not subscribed: {:?}",
            together(c1, c2).difference(&expected)
        );
        assert!(
            started.elapsed() < CLIENT_TIMEOUT,
            "clustering consumers missed {:?}",
            expected.difference(&together(c1, c2))
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Broadcasting: each gets every matching message sent after it started.
    let expected_broadcast = matching(30..60);
    for b in [&mut *b1, &mut *b2] {
        b.wait_until("every matching message of the second batch", |b| {
            indexes(&b.received()).is_superset(&expected_broadcast)
        });
    }
    let [c1, c2, b1, b2] = consumers.map(Client::finish);

    for (who, c) in [
        ("clustering 1", &c1),
        ("clustering 2", &c2),
        ("broadcasting 1", &b1),
        ("broadcasting 2", &b2),
    ] {
        let received = c.received();
        for r in &received {
            assert_intact(TOPIC, r);
            assert_ne!(r.tags, "TagC", "{who}: the filter let {r:?} through");
            let send = &sent[&r.i];
            assert_eq!(r.msg_id, send["msg_id"].as_str().unwrap(), "{who}: {r:?}");
            assert_eq!(
                r.queue_offset,
                send["queue_offset"].as_u64().unwrap(),
                "{who}: {r:?}"
            );
        }
        assert_queue_order(who, &received);
    }
    for b in [&b1, &b2] {
        assert_eq!(indexes(&b.received()), expected_broadcast);
    }
    // Once both ran, the group split the queues: each queue's second batch went to one
    // of them, and each had some.
    let owners = |c: &Client| -> BTreeSet<i32> {
        c.received()
            .iter()
            .filter(|r| r.i >= 30)
            .map(|r| r.queue_id)
            .collect()
    };
    let (q1, q2) = (owners(&c1), owners(&c2));
    assert!(
        !q1.is_empty() && !q2.is_empty(),
        "one consumer had every queue: {q1:?} {q2:?}"
    );
    assert!(
        q1.is_disjoint(&q2),
        "both consumed the same queue: {q1:?} {q2:?}"
    );

    // The pull consumer (the C API): every message, intact, each queue dense from 0.
    let pulled = cluster.pull_all(TOPIC, "g_pull");
    assert_eq!(indexes(&pulled), (0..60).collect());
    assert_eq!(pulled.len(), 60, "pulled some message twice");
    assert_queue_order("pull", &pulled);
    let mut next: BTreeMap<i32, u64> = BTreeMap::new();
    for r in &pulled {
        assert_intact(TOPIC, r);
        let expect = next.entry(r.queue_id).or_insert(0);
        assert_eq!(r.queue_offset, *expect, "{r:?}");
        *expect += 1;
        assert_eq!(r.msg_id, sent[&r.i]["msg_id"].as_str().unwrap(), "{r:?}");
        assert_eq!(r.reconsume_times, 0, "{r:?}");
    }
}

#[test]
fn orderly_send_keeps_each_sharding_key_on_one_queue_and_an_orderly_consumer_gets_it_in_order() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    const TOPIC: &str = "TopicCppOrderly";
    let client = cluster
        .client(
            "produce orderly",
            TOPIC,
            "p_orderly",
            &["produce-orderly", "--count", "48", "--keys", "4"],
        )
        .finish();
    let sent = client.ops("sent");
    assert_eq!(sent.len(), 48, "{:#?}\n{}", client.lines(), client.stderr());
    assert!(sent.iter().all(|l| l["status"] == "SEND_OK"), "{sent:#?}");

    let pulled = cluster.pull_all(TOPIC, "g_pull_orderly");
    assert_eq!(indexes(&pulled), (0..48).collect());
    let mut by_key: BTreeMap<String, Vec<&Received>> = BTreeMap::new();
    for r in &pulled {
        assert_eq!(r.body, format!("body-{}", r.i));
        assert_eq!(r.sharding_key, format!("order-{}", r.i % 4), "{r:?}");
        by_key.entry(r.sharding_key.clone()).or_default().push(r);
    }
    for (key, mut msgs) in by_key {
        let queues: BTreeSet<i32> = msgs.iter().map(|r| r.queue_id).collect();
        assert_eq!(queues.len(), 1, "{key} spread over queues {queues:?}");
        // In the queue, the key's messages stand in the order they were sent.
        msgs.sort_by_key(|r| r.queue_offset);
        let order: Vec<u64> = msgs.iter().map(|r| r.i).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            order, sorted,
            "{key}'s messages out of send order in its queue"
        );
    }
    // An orderly push consumer (it locks its queues with LOCK_BATCH_MQ before pulling)
    // gets each key's messages in the order they were sent.
    let mut orderly = cluster.client(
        "consume orderly",
        TOPIC,
        "g_orderly",
        &[
            "consume",
            "--orderly",
            "--instance",
            "orderly",
            "--count",
            "48",
            "--timeout",
            "55",
        ],
    );
    orderly.wait_until("48 deliveries", |c| c.received().len() >= 48);
    let orderly = orderly.finish();
    let received = orderly.received();
    assert_eq!(indexes(&received), (0..48).collect());
    assert_queue_order("orderly consumer", &received);
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &received {
        if let Some(prev) = last.insert(&r.sharding_key, r.i) {
            assert!(prev < r.i, "{}: {} after {prev}", r.sharding_key, r.i);
        }
    }
}

#[test]
fn a_consumer_restarted_mid_stream_resumes_from_its_committed_offset() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    const TOPIC: &str = "TopicCppRestart";
    const GROUP: &str = "g_restart";
    cluster.produce(TOPIC, 0, 60);
    let run = |what: &str, count: &str, consume_ms: &str| {
        cluster.client(
            what,
            TOPIC,
            GROUP,
            &[
                "consume",
                "--expression",
                EXPRESSION,
                "--instance",
                what,
                "--count",
                count,
                "--timeout",
                "55",
                "--stop-on-stdin-eof",
                "--consume-ms",
                consume_ms,
            ],
        )
    };
    // The first run, slow, stops (shutting down cleanly) once it has 12 of the 40
    // matching, holding pulled messages it has not consumed (it consumes a few more
    // while it shuts down).
    let mut first = run("first", "12", "50");
    first.wait_until("12 deliveries", |c| c.received().len() >= 12);
    let first = first.finish();
    assert!(
        first.received().len() < matching(0..60).len(),
        "the first run was to stop mid-stream: {:?}",
        first.received()
    );
    let committed: BTreeMap<i32, u64> = (0..QUEUES)
        .map(|q| (q, cluster.committed_offset(TOPIC, GROUP, q)))
        .collect();

    cluster.produce(TOPIC, 60, 30);
    let before = first.received();
    let mut second = run("second", "1000000", "0");
    let expected = matching(0..90);
    second.wait_until("everything the first run did not get", |c| {
        let mut all = indexes(&before);
        all.extend(indexes(&c.received()));
        all == expected
    });
    let second = second.finish();
    let after = second.received();
    for r in before.iter().chain(&after) {
        assert_intact(TOPIC, r);
    }
    assert_queue_order("first", &before);
    assert_queue_order("second", &after);

    // Nothing skipped: the two runs together got every matching message (waited for
    // above). At-least-once allows the second run to repeat what the first consumed
    // but had not committed; it never goes below a committed offset...
    for r in &after {
        assert!(
            r.queue_offset >= committed[&r.queue_id],
            "{r:?} is below the committed offset {committed:?}"
        );
    }
    // ...and a clean shutdown commits every offset consumed (the client's oneway
    // UPDATE_CONSUMER_OFFSET before it unregisters), so nothing was uncommitted and
    // the bound on repeats is zero.
    let mut consumed_to: BTreeMap<i32, u64> = BTreeMap::new();
    for r in &before {
        let end = consumed_to.entry(r.queue_id).or_default();
        *end = (*end).max(r.queue_offset + 1);
    }
    for (q, end) in &consumed_to {
        assert!(
            committed[q] >= *end,
            "queue {q}: committed {} but the first run consumed up to {end}",
            committed[q]
        );
    }
    eprintln!(
        "restart: first run {} deliveries, committed {committed:?}, second run {}",
        before.len(),
        after.len()
    );
    let repeats: Vec<_> = after
        .iter()
        .filter(|r| indexes(&before).contains(&r.i))
        .collect();
    assert!(repeats.is_empty(), "delivered again: {repeats:?}");
}

#[test]
fn a_sync_flush_broker_killed_mid_stream_loses_nothing_acknowledged() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    const TOPIC: &str = "TopicCppKill";
    // Sends one at a time until the first failure (the kill); a short send timeout so
    // the failure comes quickly.
    let mut producer = cluster.client(
        "produce until killed",
        TOPIC,
        "p_kill",
        &[
            "produce",
            "--count",
            "100000",
            "--interval-ms",
            "2",
            "--stop-on-failure",
            "--send-timeout-ms",
            "1000",
        ],
    );
    producer.wait_until("200 SEND_OK", |c| c.ops("sent").len() >= 200);
    cluster.broker.signal("-KILL");
    cluster.broker.wait_exit(Duration::from_secs(10));
    let producer = producer.finish();
    let acknowledged: BTreeMap<u64, Value> = producer
        .ops("sent")
        .into_iter()
        .filter(|l| l["status"] == "SEND_OK")
        .map(|l| (l["i"].as_u64().unwrap(), l))
        .collect();
    assert!(acknowledged.len() >= 200);
    assert!(
        !producer.ops("send_failed").is_empty(),
        "the producer saw no failure: {:#?}",
        producer.lines()
    );
    assert!(cluster.home.path().join("store/abort").exists());

    cluster.broker = start_broker(
        "mqbroker (restarted)",
        &cluster.conf,
        cluster.broker_port,
        cluster.home.path(),
    );
    // It listens before it has recovered the store; it registers (and the route to
    // the topic comes back) once recovery is done.
    let started = Instant::now();
    while !cluster.broker.output().contains("store recovered") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            cluster.broker.output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pulled = cluster.pull_all(TOPIC, "g_pull_kill");
    let by_index: BTreeMap<u64, &Received> = pulled.iter().map(|r| (r.i, r)).collect();
    for (i, send) in &acknowledged {
        let r = by_index
            .get(i)
            .unwrap_or_else(|| panic!("message {i} got SEND_OK and was lost: {send}"));
        assert_intact(TOPIC, r);
        assert_eq!(r.msg_id, send["msg_id"].as_str().unwrap(), "{r:?}");
        assert_eq!(
            r.queue_offset,
            send["queue_offset"].as_u64().unwrap(),
            "{r:?}"
        );
    }
    // Whatever else survived (a send cut off by the kill) is whole and in its place.
    assert_queue_order("pull", &pulled);
    for r in &pulled {
        assert_intact(TOPIC, r);
    }
    let said = cluster.broker.output();
    assert!(said.contains("mode=Abnormal"), "{said}");
    eprintln!(
        "killed: {} SEND_OK, {} stored after the restart",
        acknowledged.len(),
        pulled.len()
    );
}
