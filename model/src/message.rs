//! Message-level formats shared by the store, the broker and the wire: the property
//! string, tag hash codes, message ids (reference A.2, A.3).

use std::fmt::Write as _;
use std::net::IpAddr;

/// Separates a property's name from its value (U+0001).
pub const NAME_VALUE_SEPARATOR: char = '\u{1}';
/// Ends each name/value pair (U+0002).
pub const PROPERTY_SEPARATOR: char = '\u{2}';

pub const PROPERTY_TAGS: &str = "TAGS";
pub const PROPERTY_KEYS: &str = "KEYS";
pub const PROPERTY_UNIQ_KEY: &str = "UNIQ_KEY";
pub const PROPERTY_WAIT_STORE_MSG_OK: &str = "WAIT";
pub const PROPERTY_CRC32: &str = "__CRC32#";

/// RocketMQ's topic length limit (`TopicValidator`, 4.x): the V1 record stores it in a u8.
pub const TOPIC_MAX_LENGTH: usize = 127;

/// Encodes pairs as `name\u{1}value\u{2}…` (the 5.x form, which keeps the trailing
/// separator; 4.9 strips it, and [`properties`] reads both).
pub fn encode_properties<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in pairs {
        out.push_str(name);
        out.push(NAME_VALUE_SEPARATOR);
        out.push_str(value);
        out.push(PROPERTY_SEPARATOR);
    }
    out
}

/// Iterates the pairs of a property string, skipping malformed segments and pairs with
/// an empty name or value as RocketMQ's `string2messageProperties` does.
pub fn properties(encoded: &str) -> impl Iterator<Item = (&str, &str)> {
    encoded
        .split(PROPERTY_SEPARATOR)
        .filter_map(|segment| segment.split_once(NAME_VALUE_SEPARATOR))
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
}

/// The value of one property, without building a map.
pub fn property<'a>(encoded: &'a str, name: &str) -> Option<&'a str> {
    properties(encoded)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Java's `String.hashCode()`: `h = 31*h + c` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    for unit in s.encode_utf16() {
        h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
    }
    h
}

/// The consume-queue tag code of a message: the hash of its TAGS, 0 without tags.
pub fn tags_code(tags: Option<&str>) -> i64 {
    match tags {
        Some(t) if !t.is_empty() => i64::from(java_string_hash(t)),
        _ => 0,
    }
}

/// Whether RocketMQ would accept this topic name (`^[%|a-zA-Z0-9_-]+$`, ≤ 127 bytes).
/// The store also relies on it: a topic names a directory under `consumequeue/`.
pub fn is_valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= TOPIC_MAX_LENGTH
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
}

/// The "offset message id": store host IP, store port (i32) and commit-log offset
/// (i64), big-endian, as upper-case hex (32 characters for IPv4, 56 for IPv6).
pub fn offset_msg_id(store_ip: IpAddr, store_port: i32, commit_log_offset: i64) -> String {
    let mut bytes = Vec::with_capacity(28);
    match store_ip {
        IpAddr::V4(ip) => bytes.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => bytes.extend_from_slice(&ip.octets()),
    }
    bytes.extend_from_slice(&store_port.to_be_bytes());
    bytes.extend_from_slice(&commit_log_offset.to_be_bytes());
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Parses an offset message id back into (store IP, store port, commit-log offset).
pub fn decode_offset_msg_id(id: &str) -> Option<(IpAddr, i32, i64)> {
    let ip_len = match id.len() {
        32 => 4,
        56 => 16,
        _ => return None,
    };
    let mut bytes = Vec::with_capacity(id.len() / 2);
    for pair in id.as_bytes().chunks(2) {
        let hex = std::str::from_utf8(pair).ok()?;
        bytes.push(u8::from_str_radix(hex, 16).ok()?);
    }
    let ip = if ip_len == 4 {
        IpAddr::from(<[u8; 4]>::try_from(&bytes[..4]).ok()?)
    } else {
        IpAddr::from(<[u8; 16]>::try_from(&bytes[..16]).ok()?)
    };
    let port = i32::from_be_bytes(bytes[ip_len..ip_len + 4].try_into().ok()?);
    let offset = i64::from_be_bytes(bytes[ip_len + 4..ip_len + 12].try_into().ok()?);
    Some((ip, port, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values computed by Java's String.hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("hello"), 99162322);
        // Wrapping: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn properties_roundtrip_and_tolerate_4x_form() {
        let enc = encode_properties([("TAGS", "TagA"), ("KEYS", "k1 k2")]);
        assert_eq!(enc, "TAGS\u{1}TagA\u{2}KEYS\u{1}k1 k2\u{2}");
        assert_eq!(property(&enc, "KEYS"), Some("k1 k2"));
        let stripped = enc.trim_end_matches(PROPERTY_SEPARATOR);
        assert_eq!(property(stripped, "KEYS"), Some("k1 k2"));
        assert_eq!(property("\u{1}x\u{2}A\u{1}\u{2}B\u{1}v", "B"), Some("v"));
        assert_eq!(property("\u{1}x\u{2}A\u{1}\u{2}", "A"), None);
    }

    #[test]
    fn msg_id_roundtrip() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let id = offset_msg_id(ip, 10911, 0x0012_3456_789A);
        assert_eq!(id, "0A01020300002A9F000000123456789A");
        assert_eq!(
            decode_offset_msg_id(&id),
            Some((ip, 10911, 0x0012_3456_789A))
        );
        let v6: IpAddr = "::1".parse().unwrap();
        let id6 = offset_msg_id(v6, 1, 2);
        assert_eq!(id6.len(), 56);
        assert_eq!(decode_offset_msg_id(&id6), Some((v6, 1, 2)));
        assert_eq!(decode_offset_msg_id("zz"), None);
    }

    #[test]
    fn topic_validation() {
        assert!(is_valid_topic("TopicTest"));
        assert!(is_valid_topic("%RETRY%group_1"));
        assert!(!is_valid_topic(""));
        assert!(!is_valid_topic("a/b"));
        assert!(!is_valid_topic(".."));
        assert!(!is_valid_topic(&"x".repeat(128)));
    }
}
