//! JSON as Java's fastjson writes it. RocketMQ serializes maps with integer keys without
//! quotes (`"brokerAddrs":{0:"10.0.0.1:10911"}`, `"offsetTable":{"t@g":{0:250}}`) unless
//! asked for standard JSON, which only the name server can be (reference F). We read
//! both: standard JSON first, and on failure again with bare integer keys quoted.
//! What we write is always standard JSON, which every RocketMQ client reads.

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

/// `text` with every object key that is a bare number put in quotes; None if there is
/// none (the text failed for another reason).
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
    }
}
