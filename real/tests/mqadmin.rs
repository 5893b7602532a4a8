//! `mqadmin` against mqnamesrv and mqbroker run from cargo's build output: every
//! command's output checked for what RocketMQ's prints, and its failures (a name
//! server that is not there, a bad option) for a clear message and exit code.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::procs::{broker_conf, free_port, start_broker, start_namesrv, Proc};
use common::{delivered, start_consumer, wait_for, TOPIC};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn mqadmin(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_mqadmin"))
        .args(args)
        .env_remove("NAMESRV_ADDR")
        .output()
        .expect("mqadmin runs");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `mqadmin args -n namesrv`, which must succeed.
fn ok(namesrv: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["-n", namesrv]);
    let run = mqadmin(&all);
    assert_eq!(
        run.code,
        Some(0),
        "mqadmin {all:?}\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

struct Cluster {
    _namesrv: Proc,
    _broker: Proc,
    ns: String,
    broker_addr: String,
}

fn start(home: &Path) -> Cluster {
    let (namesrv, ns) = start_namesrv(home);
    let port = free_port();
    let conf = broker_conf(home, port, &ns);
    let broker = start_broker("mqbroker", &conf, port, home);
    let cluster = Cluster {
        _namesrv: namesrv,
        _broker: broker,
        ns,
        broker_addr: format!("127.0.0.1:{port}"),
    };
    wait_for("the broker to register", Duration::from_secs(20), || {
        mqadmin(&["clusterList", "-n", &cluster.ns])
            .stdout
            .contains(&cluster.broker_addr)
    });
    cluster
}

/// `mqadmin sendMessage` of `body-{i}` with tag TagA to [`TOPIC`], which must succeed.
/// Sends `body-{i}` tagged TagA to queue `i % 2` of broker-a: every queue gets some,
/// so a consumer commits an offset for each (a reset refuses a group with a queue it
/// never committed, as RocketMQ's broker does).
fn send_tagged(ns: &str, i: usize) {
    ok(
        ns,
        &[
            "sendMessage",
            "-t",
            TOPIC,
            "-p",
            &format!("body-{i}"),
            "-c",
            "TagA",
            "-b",
            "broker-a",
            "-i",
            &(i % 2).to_string(),
        ],
    );
}

/// The values of `name=` in `text`, in order.
fn fields<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!("{name}=");
    text.match_indices(&key)
        .map(|(at, _)| {
            let rest = &text[at + key.len()..];
            &rest[..rest.find([',', ' ', ']']).unwrap_or(rest.len())]
        })
        .collect()
}

#[test]
fn mqadmin_creates_sends_reads_and_reports() {
    let home = tempfile::tempdir().unwrap();
    let c = start(home.path());
    let ns = c.ns.as_str();

    let clusters = ok(ns, &["clusterList"]);
    let mut lines = clusters.lines();
    assert!(lines.next().unwrap().starts_with("#Cluster Name"));
    let broker_line: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        &broker_line[..4],
        ["DefaultCluster", "broker-a", "0", c.broker_addr.as_str()]
    );
    // The runtime columns come from the broker itself (GET_BROKER_RUNTIME_INFO).
    assert!(broker_line[4].starts_with("rocketsim-"), "{clusters}");
    assert_eq!(broker_line.last(), Some(&"true"), "activated: {clusters}");

    // updateTopic, then topicList and topicRoute show it with the queue counts given.
    let created = ok(
        ns,
        &[
            "updateTopic",
            "-c",
            "DefaultCluster",
            "-t",
            TOPIC,
            "-r",
            "3",
            "-w",
            "3",
        ],
    );
    assert!(
        created.contains(&format!("create topic to {} success.", c.broker_addr)),
        "{created}"
    );
    assert!(
        created.contains(&format!(
            "TopicConfig [topicName={TOPIC}, readQueueNums=3, writeQueueNums=3, perm=RW-"
        )),
        "{created}"
    );
    wait_for("the topic in topicList", Duration::from_secs(10), || {
        ok(ns, &["topicList"]).lines().any(|l| l == TOPIC)
    });
    let route: serde_json::Value =
        serde_json::from_str(&ok(ns, &["topicRoute", "-t", TOPIC])).unwrap();
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 3, "{route}");
    assert_eq!(route["queueDatas"][0]["writeQueueNums"], 3, "{route}");
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"]["0"],
        c.broker_addr.as_str()
    );
    let listed = ok(ns, &["topicRoute", "-t", TOPIC, "-l"]);
    assert!(
        listed.lines().last().unwrap().starts_with("Total:"),
        "{listed}"
    );

    // sendMessage N: each SEND_OK; topicStatus's max offsets sum to N.
    const N: usize = 5;
    let mut uniq_ids = BTreeSet::new();
    for i in 0..N {
        let (body, key) = (format!("body-{i}"), format!("key-{i}"));
        let sent = ok(
            ns,
            &[
                "sendMessage",
                "-t",
                TOPIC,
                "-p",
                &body,
                "-k",
                &key,
                "-c",
                "TagA",
            ],
        );
        let mut lines = sent.lines();
        assert!(lines.next().unwrap().starts_with("#Broker Name"), "{sent}");
        let cols: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!((cols[0], cols[2]), ("broker-a", "SEND_OK"), "{sent}");
        assert!(cols[1].parse::<u32>().unwrap() < 3, "{sent}");
        uniq_ids.insert(cols[3].to_string());
    }
    assert_eq!(uniq_ids.len(), N, "every message its own id");
    let status = ok(ns, &["topicStatus", "-t", TOPIC]);
    let rows: Vec<Vec<&str>> = status
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{status}");
    let max_sum: u64 = rows.iter().map(|r| r[3].parse::<u64>().unwrap()).sum();
    assert_eq!(max_sum, N as u64, "{status}");
    assert!(
        rows.iter().all(|r| r[0] == "broker-a" && r[2] == "0"),
        "{status}"
    );

    // consumeMessage prints every body, under the id the send printed.
    let consumed = ok(ns, &["consumeMessage", "-t", TOPIC]);
    let messages: Vec<&str> = consumed
        .lines()
        .filter(|l| l.starts_with("MSGID: "))
        .collect();
    assert_eq!(messages.len(), N, "{consumed}");
    for i in 0..N {
        assert!(
            messages
                .iter()
                .any(|m| m.ends_with(&format!(" BODY: body-{i}"))),
            "body-{i}: {consumed}"
        );
    }
    let printed_ids: BTreeSet<String> = messages
        .iter()
        .map(|m| m.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    assert_eq!(printed_ids, uniq_ids);

    // queryMsgById with a message's offset id (MessageExt's msgId field).
    let line = messages
        .iter()
        .find(|m| m.ends_with(" BODY: body-2"))
        .unwrap();
    let offset_id = fields(line, "msgId")[0];
    let queried = ok(ns, &["queryMsgById", "-i", offset_id]);
    assert!(
        queried.contains(&format!("OffsetID:            {offset_id}\n")),
        "{queried}"
    );
    assert!(
        queried.contains(&format!("Topic:               {TOPIC}\n")),
        "{queried}"
    );
    assert!(
        queried.contains("Keys:                [key-2]\n"),
        "{queried}"
    );
    assert!(
        queried.contains("Tags:                [TagA]\n"),
        "{queried}"
    );
    let path = queried
        .lines()
        .find_map(|l| l.strip_prefix("Message Body Path:"))
        .unwrap()
        .trim();
    assert_eq!(std::fs::read_to_string(path).unwrap(), "body-2");

    // consumerProgress: a model consumer consumes and commits, stops; two more sends
    // show as the diff.
    let (mut consumer, events) = start_consumer(home.path().join("consumer"), ns, "g_admin");
    wait_for("every message delivered", Duration::from_secs(60), || {
        delivered(&events).len() >= N
    });
    wait_for("the group's commits", Duration::from_secs(60), || {
        let run = mqadmin(&["consumerProgress", "-g", "g_admin", "-n", ns]);
        run.stdout.contains("Consume Diff Total: 0\n")
    });
    consumer.stop().unwrap();
    for i in N..N + 2 {
        send_tagged(ns, i);
    }
    let progress = ok(ns, &["consumerProgress", "-g", "g_admin"]);
    assert!(progress.starts_with("#Topic"), "{progress}");
    assert!(progress.contains("Consume Diff Total: 2\n"), "{progress}");
    let rows: Vec<Vec<&str>> = progress
        .lines()
        .filter(|l| l.starts_with(TOPIC))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{progress}");
    for r in &rows {
        let (broker, consumer, diff): (i64, i64, i64) = (
            r[3].parse().unwrap(),
            r[4].parse().unwrap(),
            r[5].parse().unwrap(),
        );
        assert_eq!(broker - consumer, diff, "{progress}");
    }
}

#[test]
fn mqadmin_fails_clearly() {
    // Nothing listens: a clear error, exit 1, no hang.
    let nobody = format!("127.0.0.1:{}", free_port());
    let run = mqadmin(&["topicList", "-n", &nobody]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&nobody) && run.stderr.contains("cannot connect"),
        "{}",
        run.stderr
    );

    // Bad options: the reason and the usage, exit 2.
    let run = mqadmin(&["topicRoute", "-n", &nobody, "-x", "1"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("Unrecognized option: -x"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("usage: mqadmin topicRoute"),
        "{}",
        run.stderr
    );
    let run = mqadmin(&["topicRoute", "-n", &nobody]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("Missing required option: t"),
        "{}",
        run.stderr
    );
    let run = mqadmin(&["topicList"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("NAMESRV_ADDR"), "{}", run.stderr);
    let run = mqadmin(&["noSuchCommand"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .contains("The sub command noSuchCommand not exist."),
        "{}",
        run.stderr
    );
    let run = mqadmin(&["queryMsgById", "-i", "not-an-id"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("not an offset message id"),
        "{}",
        run.stderr
    );

    // Help: the usage on stdout, exit 0.
    let run = mqadmin(&["help", "sendMessage"]);
    assert_eq!(run.code, Some(0));
    assert!(
        run.stdout.starts_with("usage: mqadmin sendMessage"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("-p,--body <arg>"), "{}", run.stdout);
    let run = mqadmin(&[]);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("   topicStatus "), "{}", run.stdout);
}

#[test]
fn reset_offset_by_time_rewinds_a_running_consumer() {
    let home = tempfile::tempdir().unwrap();
    let c = start(home.path());
    let ns = c.ns.as_str();
    ok(
        ns,
        &[
            "updateTopic",
            "-b",
            &c.broker_addr,
            "-t",
            TOPIC,
            "-r",
            "2",
            "-w",
            "2",
        ],
    );
    wait_for("the topic's route", Duration::from_secs(10), || {
        ok(ns, &["topicList"]).lines().any(|l| l == TOPIC)
    });
    // Before the first send, by this machine's clock (the broker's too).
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 1_000;
    const N: usize = 4;
    for i in 0..N {
        send_tagged(ns, i);
    }
    let (_consumer, events) = start_consumer(home.path().join("consumer"), ns, "g_reset");
    wait_for("every message delivered", Duration::from_secs(60), || {
        delivered(&events).len() >= N
    });
    wait_for("the group's commits", Duration::from_secs(60), || {
        mqadmin(&["consumerProgress", "-g", "g_reset", "-n", ns])
            .stdout
            .contains("Consume Diff Total: 0\n")
    });

    let reset = ok(
        ns,
        &[
            "resetOffsetByTime",
            "-g",
            "g_reset",
            "-t",
            TOPIC,
            "-s",
            &before_ms.to_string(),
        ],
    );
    let mut lines = reset.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("start reset consumer offset by specified, group[g_reset], topic[{TOPIC}], force[true], timestamp(string)[{before_ms}], timestamp(long)[{before_ms}]")
    );
    assert!(lines.next().unwrap().starts_with("#brokerName"), "{reset}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows,
        vec![vec!["broker-a", "0", "0"], vec!["broker-a", "1", "0"]],
        "{reset}"
    );

    // The running consumer starts over from offset 0 and gets every message again.
    wait_for(
        "every message delivered again",
        Duration::from_secs(60),
        || delivered(&events).len() >= 2 * N,
    );
    let bodies: Vec<Vec<u8>> = delivered(&events)
        .into_iter()
        .map(|(_, _, _, b)| b)
        .collect();
    for i in 0..N {
        let body = format!("body-{i}").into_bytes();
        assert_eq!(bodies.iter().filter(|b| **b == body).count(), 2, "body-{i}");
    }
    let moved = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e,
                rmq_model::client::ClientEvent::Owned {
                    offset_moved: true,
                    start_offset: 0,
                    ..
                }
            )
        })
        .count();
    assert_eq!(moved, 2, "each queue restarts from the reset offset");
    wait_for(
        "the group's commits after the reset",
        Duration::from_secs(60),
        || {
            mqadmin(&["consumerProgress", "-g", "g_reset", "-n", ns])
                .stdout
                .contains("Consume Diff Total: 0\n")
        },
    );
    // A bad timestamp is a usage error.
    let run = mqadmin(&[
        "resetOffsetByTime",
        "-n",
        ns,
        "-g",
        "g_reset",
        "-t",
        TOPIC,
        "-s",
        "yesterday",
    ]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("yyyy-MM-dd#HH:mm:ss:SSS"),
        "{}",
        run.stderr
    );
}
