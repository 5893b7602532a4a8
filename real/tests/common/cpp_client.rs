//! RocketMQ's own C++ client for the interop tests (`cpp_client.rs`): the pinned
//! Python package in a venv made once under cargo's target directory, runs of
//! `tests/interop/client.py` read line by line, and a name server and SYNC_FLUSH broker
//! for them to talk to.

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

use super::procs::{broker_conf, free_port, start_broker, start_namesrv, Proc};

/// The pin: 0.5.0rc2 is the last release that ships librocketmq.so (2.0.0 ships none).
pub const CLIENT_PACKAGE: &str = "rocketmq-client-python==0.5.0rc2";
/// Past this a client run is killed and the test fails with its output.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// `client.py produce` cycles these by message index; consumers subscribe `TagA || TagB`.
pub const TAGS: [&str; 3] = ["TagA", "TagB", "TagC"];
pub const EXPRESSION: &str = "TagA || TagB";
/// The broker's default for an auto-created topic.
pub const QUEUES: i32 = 4;

/// The venv's python, made on first use; `None` when it cannot be made outside CI.
pub fn python() -> Option<&'static Path> {
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
pub fn in_ci() -> bool {
    std::env::var("CI")
        .is_ok_and(|v| !["", "0", "false"].contains(&v.to_ascii_lowercase().as_str()))
}

/// `python3 -m venv` + `pip install` the pinned client under CARGO_TARGET_TMPDIR. Built
/// in a scratch directory and renamed into place once complete, so an interrupted
/// install is never reused and concurrent test binaries do not share a half-made one.
pub fn prepare_venv() -> Result<PathBuf, String> {
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
pub struct Client {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Value>>>,
    stderr: PathBuf,
    started: Instant,
}

impl Client {
    pub fn start(python: &Path, home: &Path, what: &str, args: &[&str]) -> Client {
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

    pub fn lines(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    pub fn ops(&self, op: &str) -> Vec<Value> {
        self.lines().into_iter().filter(|l| l["op"] == op).collect()
    }

    pub fn received(&self) -> Vec<Received> {
        self.ops("received").iter().map(Received::from).collect()
    }

    pub fn stderr(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.stderr).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Waits until `done` holds for what was printed so far; fails past the timeout.
    pub fn wait_until(&mut self, what: &str, mut done: impl FnMut(&Client) -> bool) {
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
    pub fn finish(mut self) -> Client {
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
pub struct Received {
    pub i: u64,
    pub topic: String,
    pub tags: String,
    pub keys: String,
    pub body: String,
    pub sharding_key: String,
    pub queue_id: i32,
    pub queue_offset: u64,
    pub reconsume_times: i64,
    pub msg_id: String,
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
pub fn assert_intact(topic: &str, r: &Received) {
    let i = r.i as usize;
    assert_eq!(r.topic, topic, "{r:?}");
    assert_eq!(r.body, format!("body-{i}"), "{r:?}");
    assert_eq!(r.keys, format!("key-{i}"), "{r:?}");
    assert_eq!(r.tags, TAGS[i % TAGS.len()], "{r:?}");
    assert!((0..QUEUES).contains(&r.queue_id), "{r:?}");
}

/// One consumer's deliveries of each queue come in offset order.
pub fn assert_queue_order(who: &str, received: &[Received]) {
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

pub fn indexes(received: &[Received]) -> BTreeSet<u64> {
    received.iter().map(|r| r.i).collect()
}

/// The messages of `range` a `TagA || TagB` subscription must get.
pub fn matching(range: std::ops::Range<u64>) -> BTreeSet<u64> {
    range
        .filter(|i| TAGS[*i as usize % TAGS.len()] != "TagC")
        .collect()
}

pub struct Cluster {
    pub home: tempfile::TempDir,
    pub python: &'static Path,
    // Held so it stops (on drop) with the cluster.
    pub _namesrv: Proc,
    pub ns_addr: String,
    pub broker: Proc,
    pub broker_port: u16,
    pub conf: PathBuf,
}

impl Cluster {
    pub fn start() -> Option<Cluster> {
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
    pub fn client(&self, what: &str, topic: &str, group: &str, args: &[&str]) -> Client {
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
    pub fn produce(&self, topic: &str, first: u64, count: u64) -> BTreeMap<u64, Value> {
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

    /// Runs a `client.py` producing subcommand (`args`) to its end; every send it
    /// reports must be SEND_OK. Its "sent" lines.
    pub fn sends_ok(&self, topic: &str, group: &str, args: &[&str]) -> Vec<Value> {
        let client = self.client(args[0], topic, group, args).finish();
        let sent = client.ops("sent");
        assert!(
            !sent.is_empty() && sent.iter().all(|l| l["status"] == "SEND_OK"),
            "{:#?}\n{}",
            client.lines(),
            client.stderr()
        );
        sent
    }

    /// `pull`: every queue of `topic` from offset 0 to its end, through the C pull API.
    pub fn pull_all(&self, topic: &str, group: &str) -> Vec<Received> {
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
    pub fn committed_offset(&self, topic: &str, group: &str, queue_id: i32) -> u64 {
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
