//! `sim check --history FILE` judges a written history exactly as the run that wrote
//! it did: the same verdict text, the same exit code, for a passing run and for a
//! planted bug; and bad files are errors naming the line, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::rc::Rc;

use rmq_model::broker::{Broker, FlushDiskType};
use rmq_model::store::Disk;
use rmq_sim::cluster::runner::{self, BrokerFactory, RunOptions};
use rmq_sim::cluster::scenario::LoadedScenario;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{name}.toml"))
}

fn temp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(format!("history_file_{name}.jsonl"))
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(args)
        .output()
        .expect("the sim binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The verdict block: from `# verdict` up to (not including) the replay's fingerprint.
fn verdict(text: &str) -> String {
    let start = text.find("# verdict").expect("a verdict block");
    text[start..]
        .lines()
        .filter(|l| !l.starts_with("fingerprint "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn check_reproduces_replays_verdict() {
    let path = temp("replay");
    let scenario = scenario("case4_power_cut");
    let replay = sim(&[
        "replay",
        "--scenario",
        scenario.to_str().unwrap(),
        "--seed",
        "1",
        "--tail",
        "0",
        "--history",
        path.to_str().unwrap(),
    ]);
    assert!(replay.status.success(), "{}", stdout(&replay));
    let check = sim(&["check", "--history", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), replay.status.code());
    let (r, c) = (verdict(&stdout(&replay)), verdict(&stdout(&check)));
    assert_eq!(r, c);
    // The seed has losses the allowance covers: the excuse is named in both.
    assert!(c.contains("lost/async_flush x"), "{c}");
    assert!(c.ends_with("PASS\n"), "{c}");
}

/// SYNC_FLUSH claimed, ASYNC_FLUSH done: SEND_OK before the fsync (tests/mutants.rs).
fn lying_flush() -> BrokerFactory {
    Rc::new(|mut config, disk: &mut dyn Disk| {
        config.flush_disk_type = FlushDiskType::AsyncFlush;
        Box::new(Broker::boot(config, disk))
    })
}

#[test]
fn check_reproduces_a_failing_runs_verdict() {
    let loaded = LoadedScenario::load(&scenario("case4_power_cut")).unwrap();
    let out = (0..40)
        .filter(|s| loaded.variant_for(*s).name.contains("flush=sync_flush"))
        .map(|seed| {
            let v = loaded.variant_for(seed);
            runner::run(v, seed, lying_flush(), RunOptions::default())
        })
        .find(|out| !out.report.passed())
        .expect("the lying broker fails a seed");
    let path = temp("failing");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    out.history.write_jsonl(&mut file).unwrap();
    drop(file);
    let check = sim(&["check", "--history", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    let printed = verdict(&stdout(&check));
    assert_eq!(printed, format!("# verdict\n{}", out.report));
    assert!(printed.contains("VIOLATION [lost]"), "{printed}");
    // And as JSON: the same violations and excuses.
    let json = sim(&["check", "--json", "--history", path.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        v["violations"].as_array().unwrap().len(),
        out.report.violations.len()
    );
    assert_eq!(
        v["excuses"].as_array().unwrap().len(),
        out.report.excuses.len()
    );
}

#[test]
fn bad_history_files_are_errors_naming_the_line() {
    let meta = r#"{"op":"meta","scenario":"s","seed":1,"brokers":[],"groups":[],"heal_at_ms":10,"end_ms":20}"#;
    let cases: [(&str, String, &str); 5] = [
        ("not_json", format!("{meta}\nnot json\n"), ":2: not JSON"),
        (
            "unknown_op",
            format!("{meta}\n{{\"op\":\"explode\",\"at_ms\":1}}\n"),
            ":2: unknown op \"explode\"",
        ),
        (
            "no_meta",
            "{\"op\":\"fault\",\"at_ms\":1,\"kind\":\"heal\",\"node\":null,\"detail\":\"\"}\n"
                .to_string(),
            ":1: the first entry must be the run's `meta`",
        ),
        (
            "time",
            format!(
                "{meta}\n{}\n{}\n",
                r#"{"op":"fault","at_ms":9000,"kind":"heal","node":null,"detail":""}"#,
                r#"{"op":"fault","at_ms":10,"kind":"heal","node":null,"detail":""}"#
            ),
            ":3: at_ms 10 is 8990 ms before at_ms 9000 of line 2",
        ),
        (
            "field_type",
            format!(
                "{meta}\n{}\n",
                r#"{"op":"fault","at_ms":1,"kind":"heal","node":"n3","detail":""}"#
            ),
            ":2: op \"fault\": field `node`: invalid type: string \"n3\"",
        ),
    ];
    for (name, text, expected) in cases {
        let path = temp(name);
        std::fs::write(&path, text).unwrap();
        let o = sim(&["check", "--history", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.starts_with(&format!("error: {}{expected}", path.display())),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

/// docs/history.md documents every op and every promise, and its example is a
/// history the checker reads and passes.
#[test]
fn the_format_document_matches_the_code() {
    let doc_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/history.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/history.md");
    for op in rmq_sim::history::OPS {
        assert!(
            doc.contains(&format!("## `{op}`")),
            "no section for op {op}"
        );
    }
    let promise = serde_json::to_value(rmq_sim::history::Promise::default()).unwrap();
    for (field, default) in promise.as_object().unwrap() {
        assert!(
            doc.contains(&format!("| `{field}` | {default} |")),
            "promise field {field} (default {default}) is not documented"
        );
    }
    let start = doc.find("```json\n").expect("an example") + "```json\n".len();
    let end = start + doc[start..].find("```").expect("the example ends");
    let h = rmq_sim::history::History::read_jsonl(&mut &doc.as_bytes()[start..end])
        .unwrap_or_else(|e| panic!("the example: {e}"));
    let r = rmq_sim::check::check(&h);
    assert!(r.passed(), "{r}");
    assert_eq!(r.stats.deliveries, 1);
}

mod extremes {
    use proptest::prelude::*;
    use rmq_sim::history::{
        BrokerGroupMeta, Entry, FaultKind, FlushMode, GroupMeta, History, Replication, SendStatus,
        MAX_TIME_OR_OFFSET,
    };

    /// Times and offsets a reader accepts, the extremes among them.
    fn num() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(1),
            0u64..50,
            Just(MAX_TIME_OR_OFFSET - 1),
            Just(MAX_TIME_OR_OFFSET),
        ]
    }

    fn wid() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..4, Just(u64::MAX)]
    }

    fn entry() -> impl Strategy<Value = Entry> {
        let kinds = prop_oneof![
            Just(FaultKind::PowerCut),
            Just(FaultKind::MachineLost),
            Just(FaultKind::Restart),
            Just(FaultKind::ProcessCrash),
            Just(FaultKind::Partition),
        ];
        prop_oneof![
            (num(), wid()).prop_map(|(at_ms, wid)| Entry::SendInvoke {
                at_ms,
                client: 20,
                wid,
                topic: "T".into(),
                tags: None,
                body_crc: 1,
                fields: None,
                delay_level: 0,
                sharding_key: None,
            }),
            (num(), wid(), num()).prop_map(|(at_ms, wid, queue_offset)| Entry::SendOk {
                at_ms,
                client: 20,
                wid,
                status: SendStatus::SendOk,
                broker: "b".into(),
                queue_id: 0,
                queue_offset,
                msg_id: String::new(),
                retried_after_unknown: false,
            }),
            (num(), wid(), num(), 10u32..12).prop_map(|(at_ms, wid, queue_offset, client)| {
                Entry::Deliver {
                    at_ms,
                    group: "g".into(),
                    client,
                    topic: "T".into(),
                    broker: "b".into(),
                    queue_id: 0,
                    queue_offset,
                    wid: Some(wid),
                    reconsume_times: 0,
                    body_crc: 1,
                    tags: None,
                    fields: None,
                }
            }),
            (num(), num(), 10u32..12).prop_map(|(at_ms, start_offset, client)| Entry::Own {
                at_ms,
                group: "g".into(),
                client,
                broker: "b".into(),
                topic: "T".into(),
                queue_id: 0,
                start_offset,
                offset_from_broker_id: Some(1),
                offset_moved: false,
            }),
            (num(), num(), 10u32..12).prop_map(|(at_ms, offset, client)| Entry::Commit {
                at_ms,
                group: "g".into(),
                client,
                broker: "b".into(),
                topic: "T".into(),
                queue_id: 0,
                offset,
            }),
            (num(), kinds, 1u32..3).prop_map(|(at_ms, kind, node)| Entry::Fault {
                at_ms,
                kind,
                node: Some(node),
                detail: String::new(),
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any values a history file may hold are judged without a panic.
        #[test]
        fn the_checker_takes_extreme_values(
            entries in proptest::collection::vec(entry(), 0..30),
            heal in num(),
            end in num(),
            broadcasting: bool,
        ) {
            let mut h = History::default();
            h.push(Entry::Meta {
                scenario: "extremes".into(),
                seed: 0,
                brokers: vec![BrokerGroupMeta {
                    broker_name: "b".into(),
                    master_node: 1,
                    slave_node: Some(2),
                    flush: FlushMode::AsyncFlush,
                    replication: Replication::Async,
                }],
                groups: vec![GroupMeta {
                    group: "g".into(),
                    topic: "T".into(),
                    tag_expression: "*".into(),
                    broadcasting,
                    orderly: false,
                    max_reconsume_times: None,
                    consumers: vec![10, 11],
                }],
                heal_at_ms: heal,
                end_ms: end,
                promise: Box::default(),
            });
            h.entries.extend(entries);
            let _ = rmq_sim::check::check(&h).to_string();
        }
    }
}
