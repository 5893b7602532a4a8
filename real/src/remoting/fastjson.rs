//! JSON as Java's fastjson writes it. RocketMQ serializes maps with integer keys without
//! quotes (`"brokerAddrs":{0:"10.0.0.1:10911"}`, `"offsetTable":{"t@g":{0:250}}`) unless
//! asked for standard JSON, which only the name server can be (reference F), and maps
//! keyed by an object with the object itself as the key (`TopicStatsTable`,
//! `ConsumeStats`: `{{"brokerName":"b","queueId":0,"topic":"t"}:{...}}`). We read all
//! of these: standard JSON first, and on failure again with each bare integer key
//! quoted and each object key turned into a string holding its JSON text.
//! What we write is standard JSON, except where a body's keys are objects (see
//! `bodies.rs`): there is no standard form of those, and RocketMQ reads only this one.

use serde::de::DeserializeOwned;

/// Parses a JSON body, standard or fastjson-style; the error is standard JSON's.
pub(super) fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 from byte {}", e.valid_up_to()))?;
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(standard) => match quote_bare_keys(text) {
            Some(quoted) => serde_json::from_str(&quoted).map_err(|_| standard.to_string()),
            None => Err(standard.to_string()),
        },
    }
}

/// `text` with every object key that is a bare number put in quotes and every key that
/// is an object made a string of its text; None if there is none (the text failed for
/// another reason).
fn quote_bare_keys(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    // Open containers, innermost last: true = object. Only an object after `{` or `,`
    // expects a key; in an array the same position holds a value.
    let mut in_object: Vec<bool> = Vec::new();
    let mut expecting_key = false;
    let mut quoted_any = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                // Copy the whole string, escapes included.
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.extend_from_slice(&bytes[start..i]);
                expecting_key = false;
                continue;
            }
            b'{' if expecting_key => {
                let end = object_end(bytes, i)?;
                let key = std::str::from_utf8(&bytes[i..end]).ok()?;
                let quoted = serde_json::to_string(key).expect("a string serializes");
                out.extend_from_slice(quoted.as_bytes());
                i = end;
                expecting_key = false;
                quoted_any = true;
                continue;
            }
            b'{' => {
                in_object.push(true);
                expecting_key = true;
            }
            b'[' => {
                in_object.push(false);
                expecting_key = false;
            }
            b'}' | b']' => {
                in_object.pop();
                expecting_key = false;
            }
            b',' => expecting_key = in_object.last() == Some(&true),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'-' | b'0'..=b'9' if expecting_key => {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'0'..=b'9') {
                    i += 1;
                }
                out.push(b'"');
                out.extend_from_slice(&bytes[start..i]);
                out.push(b'"');
                expecting_key = false;
                quoted_any = true;
                continue;
            }
            _ => expecting_key = false,
        }
        out.push(b);
        i += 1;
    }
    // Only ASCII quotes were added, at ASCII boundaries: still UTF-8.
    quoted_any.then(|| String::from_utf8(out).expect("UTF-8 in, UTF-8 out"))
}

/// One past the `}` closing the object that opens at `bytes[start]`, skipping strings;
/// None when it is never closed.
fn object_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn bare_integer_keys_are_quoted_only_where_keys_go() {
        let text = r#"{"a":{0:"x, {1:2}",-1:[1,2,{3:4}]}, "b":[0,1]}"#;
        assert_eq!(
            quote_bare_keys(text).unwrap(),
            r#"{"a":{"0":"x, {1:2}","-1":[1,2,{"3":4}]}, "b":[0,1]}"#
        );
        assert_eq!(quote_bare_keys(r#"{"a":[1,2]}"#), None);
        let table: BTreeMap<String, BTreeMap<i32, i64>> =
            from_slice(br#"{"t@g":{0:250,1:3}}"#).unwrap();
        assert_eq!(table["t@g"][&1], 3);
        assert!(from_slice::<BTreeMap<String, i64>>(b"{0:").is_err());
        // Object keys become strings holding their text, braces in strings and all.
        let keyed = r#"{"t":{{"a":"}{","b":[1,{"c":2}]}:1,{"d":0}:{0:2}}}"#;
        assert_eq!(
            quote_bare_keys(keyed).unwrap(),
            r#"{"t":{"{\"a\":\"}{\",\"b\":[1,{\"c\":2}]}":1,"{\"d\":0}":{"0":2}}}"#
        );
        assert_eq!(
            quote_bare_keys(r#"{{"a":1"#),
            None,
            "an unclosed key object"
        );
    }
}
