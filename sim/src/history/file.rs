//! The history file: JSON lines, one [`Entry`] per line, written and read back with
//! every field checked (docs/history.md documents the format).

use std::io::{self, BufRead, Write};

use super::{Entry, History};

impl History {
    pub fn write_jsonl(&self, out: &mut dyn Write) -> io::Result<()> {
        for e in &self.entries {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Reads a history written as JSON lines by anything (see `docs/history.md`),
    /// checking what the checker relies on: every line is one JSON object with a
    /// known `op` and fields of the right types; the first is the `meta` entry and
    /// no other is; entries are in time order, each at most
    /// [`TIME_DISORDER_TOLERANCE_MS`] earlier than the latest before it. An error
    /// names the line, and the field when one is wrong. Blank lines are skipped.
    pub fn read_jsonl(input: &mut dyn BufRead) -> Result<History, HistoryError> {
        let mut entries = Vec::new();
        // The latest time so far, and the line that had it.
        let mut latest: Option<(u64, usize)> = None;
        for (i, line) in input.lines().enumerate() {
            let n = i + 1;
            let line = line.map_err(|e| HistoryError::at(n, format!("unreadable: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            let e = parse_line(&line).map_err(|m| HistoryError::at(n, m))?;
            if let Some((field, v)) = e.out_of_range() {
                return Err(HistoryError::at(
                    n,
                    format!(
                        "op \"{}\": field `{field}`: {v} is beyond {MAX_TIME_OR_OFFSET}, \
                         the largest time or offset a history may hold",
                        e.op_name()
                    ),
                ));
            }
            let is_meta = matches!(e, Entry::Meta { .. });
            match (entries.is_empty(), is_meta) {
                (true, false) => {
                    return Err(HistoryError::at(
                        n,
                        format!(
                        "the first entry must be the run's `meta` (op \"meta\"), found op \"{}\"",
                        e.op_name()
                    ),
                    ))
                }
                (false, true) => {
                    return Err(HistoryError::at(
                        n,
                        "a second `meta` entry: a history describes one run".to_string(),
                    ))
                }
                _ => {}
            }
            if !is_meta {
                let at = e.at_ms();
                match latest {
                    Some((max, max_line))
                        if at.saturating_add(TIME_DISORDER_TOLERANCE_MS) < max =>
                    {
                        return Err(HistoryError::at(
                            n,
                            format!(
                                "at_ms {at} is {} ms before at_ms {max} of line {max_line}: \
                                 entries must be in time order (at most \
                                 {TIME_DISORDER_TOLERANCE_MS} ms out of order)",
                                max - at
                            ),
                        ));
                    }
                    Some((max, _)) if at <= max => {}
                    _ => latest = Some((at, n)),
                }
            }
            entries.push(e);
        }
        if entries.is_empty() {
            return Err(HistoryError::at(
                1,
                "empty history: the first line must be the run's `meta` entry".to_string(),
            ));
        }
        Ok(History { entries })
    }
}

/// How far (in true time) an entry of a history file may come before one written
/// ahead of it: writers that merge the logs of several clients may interleave them
/// slightly out of order, and the checker puts them back in order. More than this
/// is taken for a broken writer (a clock in seconds, a history appended twice).
pub const TIME_DISORDER_TOLERANCE_MS: u64 = 1_000;

/// The largest time (ms) or queue offset a history file may hold: 2^53 - 1, the
/// largest integer every JSON reader keeps exact (285,000 years of milliseconds), so
/// the checker's arithmetic on times and offsets never overflows.
pub const MAX_TIME_OR_OFFSET: u64 = (1 << 53) - 1;

/// A history file the checker cannot read: which line and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line number in the file.
    pub line: usize,
    pub message: String,
}

impl HistoryError {
    fn at(line: usize, message: String) -> HistoryError {
        HistoryError { line, message }
    }
}

impl std::fmt::Display for HistoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HistoryError {}

/// Every `op` a history line may carry.
pub const OPS: [&str; 11] = [
    "meta",
    "fault",
    "send_invoke",
    "send_ok",
    "send_fail",
    "deliver",
    "consumed",
    "own",
    "disown",
    "commit",
    "dead_letter",
];

impl Entry {
    /// The first time or offset field past [`MAX_TIME_OR_OFFSET`], and its value.
    fn out_of_range(&self) -> Option<(&'static str, u64)> {
        let fields: [(&'static str, u64); 3] = match self {
            Entry::Meta {
                heal_at_ms, end_ms, ..
            } => [("heal_at_ms", *heal_at_ms), ("end_ms", *end_ms), ("", 0)],
            Entry::SendOk {
                at_ms,
                queue_offset,
                ..
            }
            | Entry::Deliver {
                at_ms,
                queue_offset,
                ..
            }
            | Entry::Consumed {
                at_ms,
                queue_offset,
                ..
            } => [("at_ms", *at_ms), ("queue_offset", *queue_offset), ("", 0)],
            Entry::Own {
                at_ms,
                start_offset,
                ..
            } => [("at_ms", *at_ms), ("start_offset", *start_offset), ("", 0)],
            Entry::Commit { at_ms, offset, .. } => {
                [("at_ms", *at_ms), ("offset", *offset), ("", 0)]
            }
            Entry::DeadLetter {
                at_ms,
                queue_offset,
                ..
            } => [("at_ms", *at_ms), ("queue_offset", *queue_offset), ("", 0)],
            e => [("at_ms", e.at_ms()), ("", 0), ("", 0)],
        };
        fields.into_iter().find(|(_, v)| *v > MAX_TIME_OR_OFFSET)
    }

    /// The entry's `op` in the JSON form.
    pub fn op_name(&self) -> &'static str {
        match self {
            Entry::Meta { .. } => "meta",
            Entry::Fault { .. } => "fault",
            Entry::SendInvoke { .. } => "send_invoke",
            Entry::SendOk { .. } => "send_ok",
            Entry::SendFail { .. } => "send_fail",
            Entry::Deliver { .. } => "deliver",
            Entry::Consumed { .. } => "consumed",
            Entry::Own { .. } => "own",
            Entry::Disown { .. } => "disown",
            Entry::Commit { .. } => "commit",
            Entry::DeadLetter { .. } => "dead_letter",
        }
    }
}

/// serde_json's error, with its position made relative to the one line it read.
fn in_line(e: serde_json::Error) -> String {
    let text = e.to_string();
    match text.find(" at line 1 column ") {
        Some(i) => format!("{} at column {}", &text[..i], &text[i + 18..]),
        None => text,
    }
}

/// One line into an entry, or what is wrong with it (without the line number).
fn parse_line(line: &str) -> Result<Entry, String> {
    // The common case, fast: a well-formed entry.
    let first_err = match serde_json::from_str::<Entry>(line) {
        Ok(e) => return Ok(e),
        Err(e) => e,
    };
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {}", in_line(e)))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("not a JSON object: each line is one entry, {\"op\": ...}".to_string());
    };
    let op = match obj.get("op") {
        Some(serde_json::Value::String(op)) => op.clone(),
        Some(other) => return Err(format!("\"op\" must be a string, found {other}")),
        None => return Err("no \"op\" field: each line is one entry, {\"op\": ...}".into()),
    };
    if !OPS.contains(&op.as_str()) {
        return Err(format!("unknown op \"{op}\" (known: {})", OPS.join(", ")));
    }
    let message = in_line(first_err);
    if message.starts_with("missing field") {
        return Err(format!("op \"{op}\": {message}"));
    }
    // Name the field: the one whose removal changes the error (serde stops at the
    // first bad field, and reports a missing one only once every field parsed).
    let field = obj.keys().filter(|k| *k != "op").find(|k| {
        let mut without = obj.clone();
        without.remove(*k);
        match serde_json::from_value::<Entry>(serde_json::Value::Object(without)) {
            Ok(_) => true,
            Err(e) => e.to_string() != message,
        }
    });
    match field {
        Some(f) if !message.contains(&format!("`{f}`")) => {
            Err(format!("op \"{op}\": field `{f}`: {message}"))
        }
        _ => Err(format!("op \"{op}\": {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{user_properties_crc, FaultKind, MessageFields, Promise};

    fn meta() -> Entry {
        Entry::Meta {
            scenario: "s".into(),
            seed: 1,
            brokers: Vec::new(),
            groups: Vec::new(),
            heal_at_ms: 10,
            end_ms: 20,
            promise: Box::default(),
        }
    }

    #[test]
    fn round_trips_as_json_lines() {
        let mut h = History::default();
        h.push(meta());
        h.push(Entry::SendInvoke {
            at_ms: 5,
            client: 3,
            wid: 1,
            topic: "T".into(),
            tags: Some("a".into()),
            body_crc: 7,
            fields: None,
            delay_level: 0,
            sharding_key: None,
        });
        h.push(Entry::Fault {
            at_ms: 9,
            kind: FaultKind::PowerCut,
            node: Some(1),
            detail: String::new(),
        });
        // Names held inline (up to 24 bytes) and on the heap (longer) read and write
        // alike, as JSON strings.
        let long = "%RETRY%a_consumer_group_named_at_length";
        h.push(Entry::Commit {
            at_ms: 10,
            group: long[7..].into(),
            client: 4,
            broker: "broker-a".into(),
            topic: long.into(),
            queue_id: 0,
            offset: 3,
        });
        let mut buf = Vec::new();
        h.write_jsonl(&mut buf).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with(r#"{"op":"meta","#), "{text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with(r#"{"op":"send_invoke","at_ms":5"#),
            "{text}"
        );
        assert!(
            text.contains(&format!(r#""group":"{}""#, &long[7..])),
            "{text}"
        );
        let back = History::read_jsonl(&mut buf.as_slice()).unwrap();
        assert_eq!(back, h);
        let Entry::Commit { topic, .. } = &back.entries[3] else {
            panic!("the commit reads back: {back:?}");
        };
        assert_eq!(topic.as_str(), long);
        let err = History::read_jsonl(&mut "{\"op\":\"nope\"}\n".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
    }

    /// A history written before `Meta.promise` existed (with the windows its brokers
    /// used to carry) still loads, judged by RocketMQ's default promises.
    #[test]
    fn old_meta_without_a_promise_loads_with_the_defaults() {
        let line = r#"{"op":"meta","scenario":"s","seed":1,"brokers":[{"broker_name":"b","master_node":1,"slave_node":null,"flush":"async_flush","replication":"none","async_flush_window_ms":10510,"async_replication_window_ms":10510}],"groups":[],"heal_at_ms":5,"end_ms":9}"#;
        let h = History::read_jsonl(&mut line.as_bytes()).unwrap();
        let Entry::Meta { promise, .. } = &h.entries[0] else {
            panic!("not a Meta: {:?}", h.entries[0]);
        };
        assert_eq!(**promise, Promise::default());
        assert_eq!(promise.async_flush_window_ms(), 10_510);
        let partial = line.replace(
            r#""end_ms":9}"#,
            r#""end_ms":9,"promise":{"fsync_max_ms":50}}"#,
        );
        let h = History::read_jsonl(&mut partial.as_bytes()).unwrap();
        let Entry::Meta { promise, .. } = &h.entries[0] else {
            panic!("not a Meta");
        };
        assert_eq!(promise.fsync_max_ms, 50);
        assert_eq!(promise.flush_interval_commit_log_ms, 500);
    }

    /// The checker's windows with RocketMQ's defaults are the values the rules used
    /// before they were promises; a declared interval moves every window built on it,
    /// and a declared bound replaces its derivation.
    #[test]
    fn derived_windows_follow_the_declared_intervals() {
        let p = Promise::default();
        assert_eq!(p.handover_window_ms(), 35_000);
        assert_eq!(p.view_convergence_ms(), 60_000);
        assert_eq!(p.settle_window_ms(), 65_000);
        assert_eq!(p.ack_grace_window_ms(), 30_000);
        let slow = Promise {
            rebalance_interval_ms: 60_000,
            poll_name_server_interval_ms: 45_000,
            heartbeat_broker_interval_ms: 120_000,
            ..Promise::default()
        };
        assert_eq!(slow.handover_window_ms(), 75_000);
        assert_eq!(slow.view_convergence_ms(), 120_000);
        assert_eq!(slow.settle_window_ms(), 120_000);
        assert_eq!(slow.ack_grace_window_ms(), 45_000);
        let declared = Promise {
            settle_after_heal_ms: Some(10_000),
            ack_grace_ms: Some(1_000),
            ..slow
        };
        assert_eq!(declared.settle_window_ms(), 10_000);
        assert_eq!(declared.ack_grace_window_ms(), 1_000);
    }

    const META: &str = r#"{"op":"meta","scenario":"s","seed":1,"brokers":[],"groups":[],"heal_at_ms":10,"end_ms":20}"#;
    const INVOKE: &str = r#"{"op":"send_invoke","at_ms":5000,"client":3,"wid":1,"topic":"T","tags":null,"body_crc":7}"#;

    fn read(lines: &[&str]) -> Result<History, HistoryError> {
        History::read_jsonl(&mut lines.join("\n").as_bytes())
    }

    fn error(lines: &[&str]) -> String {
        read(lines).expect_err("bad input").to_string()
    }

    #[test]
    fn bad_input_is_an_error_naming_the_line() {
        assert!(read(&[META, INVOKE]).is_ok());
        let e = error(&[META, "{\"op\":\"send_invoke\",", INVOKE]);
        assert!(e.starts_with("line 2: not JSON: "), "{e}");
        assert!(e.ends_with("EOF while parsing a value at column 20"), "{e}");
        let e = error(&[META, "", "[1, 2]"]);
        assert!(e.starts_with("line 3: not a JSON object"), "{e}");
        let e = error(&[META, r#"{"op":"send_ack","at_ms":1}"#]);
        assert!(
            e.starts_with("line 2: unknown op \"send_ack\" (known: meta, "),
            "{e}"
        );
        let e = error(&[META, r#"{"at_ms":1}"#]);
        assert!(e.starts_with("line 2: no \"op\" field"), "{e}");
        let e = error(&[META, r#"{"op":7}"#]);
        assert!(e.starts_with("line 2: \"op\" must be a string"), "{e}");
    }

    #[test]
    fn meta_must_come_first_and_once() {
        let e = error(&[INVOKE, META]);
        assert!(
            e.starts_with("line 1: the first entry must be the run's `meta`"),
            "{e}"
        );
        assert!(e.contains("found op \"send_invoke\""), "{e}");
        let e = error(&["", META, INVOKE, META]);
        assert!(e.starts_with("line 4: a second `meta` entry"), "{e}");
        let e = error(&[]);
        assert!(e.starts_with("line 1: empty history"), "{e}");
    }

    #[test]
    fn wrong_field_types_name_the_field() {
        let e = error(&[META, &INVOKE.replace("\"at_ms\":5000", "\"at_ms\":\"5s\"")]);
        assert_eq!(
            e,
            "line 2: op \"send_invoke\": field `at_ms`: invalid type: string \"5s\", expected u64"
        );
        let e = error(&[META, &INVOKE.replace("\"wid\":1", "\"wid\":-1")]);
        assert!(
            e.starts_with("line 2: op \"send_invoke\": field `wid`: "),
            "{e}"
        );
        let e = error(&[META, &INVOKE.replace(",\"body_crc\":7", "")]);
        assert_eq!(e, "line 2: op \"send_invoke\": missing field `body_crc`");
        let bad_promise = META.replace(
            "\"end_ms\":20",
            "\"end_ms\":20,\"promise\":{\"fsync_max_ms\":\"x\"}",
        );
        let e = error(&[&bad_promise]);
        assert!(
            e.starts_with("line 1: op \"meta\": field `promise`: "),
            "{e}"
        );
        let unknown_promise = META.replace(
            "\"end_ms\":20",
            "\"end_ms\":20,\"promise\":{\"flush_ms\":1}",
        );
        let e = error(&[&unknown_promise]);
        assert!(e.contains("flush_ms"), "{e}");
    }

    #[test]
    fn time_order_within_the_tolerance_only() {
        let at = |ms: u64| INVOKE.replace("5000", &ms.to_string());
        let within = at(5_000 - TIME_DISORDER_TOLERANCE_MS);
        assert!(read(&[META, INVOKE, &within]).is_ok());
        let beyond = at(5_000 - TIME_DISORDER_TOLERANCE_MS - 1);
        let huge = at(MAX_TIME_OR_OFFSET);
        assert!(read(&[META, INVOKE, &huge]).is_ok());
        let e = error(&[META, INVOKE, &at(u64::MAX)]);
        assert!(
            e.starts_with(
                "line 3: op \"send_invoke\": field `at_ms`: 18446744073709551615 is beyond"
            ),
            "{e}"
        );
        let e = error(&[&META.replace("\"end_ms\":20", "\"end_ms\":9007199254740992")]);
        assert!(
            e.starts_with("line 1: op \"meta\": field `end_ms`: "),
            "{e}"
        );
        let e = error(&[META, INVOKE, &at(4_500), &beyond]);
        assert_eq!(
            e,
            format!(
                "line 4: at_ms 3999 is 1001 ms before at_ms 5000 of line 2: entries must be \
                 in time order (at most {TIME_DISORDER_TOLERANCE_MS} ms out of order)"
            )
        );
    }

    proptest::proptest! {
        /// Whatever is written, reading returns a history or an error; never a panic.
        #[test]
        fn any_text_reads_or_errs(cut in 0usize..200, junk in "[ -~]{0,12}") {
            let text = format!("{META}\n{INVOKE}\n");
            let cut = cut.min(text.len());
            let mangled = format!("{}{junk}{}", &text[..cut], &text[cut..]);
            let _ = History::read_jsonl(&mut mangled.as_bytes());
        }
    }

    #[test]
    fn message_fields_round_trip_and_old_lines_still_load() {
        let fields = MessageFields {
            keys_crc: Some(crc32fast::hash(b"wid-1")),
            props_crc: user_properties_crc([("WID", "1"), ("TAGS", "ignored")]),
            born_ms: 42,
            born_host_crc: crc32fast::hash(b"10.0.0.5:10911"),
            msg_id_crc: None,
        };
        // System properties are not user properties.
        assert_eq!(fields.props_crc, user_properties_crc([("WID", "1")]));
        assert_eq!(user_properties_crc([]), 0);
        // Order does not matter, however many there are.
        let names: Vec<String> = (0..12).map(|i| format!("p{i}")).collect();
        let pairs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let reversed: Vec<(&str, &str)> = pairs.iter().rev().copied().collect();
        assert_eq!(
            user_properties_crc(pairs.clone()),
            user_properties_crc(reversed)
        );
        assert_ne!(
            user_properties_crc(pairs.clone()),
            user_properties_crc(pairs[1..].to_vec())
        );
        let invoke = Entry::SendInvoke {
            at_ms: 5,
            client: 3,
            wid: 1,
            topic: "T".into(),
            tags: None,
            body_crc: 7,
            fields: Some(fields),
            delay_level: 0,
            sharding_key: None,
        };
        let line = serde_json::to_string(&invoke).unwrap();
        assert!(line.contains(r#""fields":{"keys_crc":"#), "{line}");
        assert!(!line.contains("msg_id_crc"), "{line}");
        assert_eq!(serde_json::from_str::<Entry>(&line).unwrap(), invoke);
        let old = r#"{"op":"deliver","at_ms":1,"group":"g","client":1,"topic":"T","broker":"b","queue_id":0,"queue_offset":0,"wid":1,"reconsume_times":0,"body_crc":7,"tags":null}"#;
        let back: Entry = serde_json::from_str(old).unwrap();
        assert!(matches!(back, Entry::Deliver { fields: None, .. }));
        let ok = r#"{"op":"send_ok","at_ms":1,"client":1,"wid":1,"status":"SEND_OK","broker":"b","queue_id":0,"queue_offset":0,"msg_id":"M"}"#;
        let back: Entry = serde_json::from_str(ok).unwrap();
        assert!(matches!(
            back,
            Entry::SendOk {
                retried_after_unknown: false,
                ..
            }
        ));
    }
}
