//! Message-level formats shared by the store, the broker and the wire: the property
//! string, tag hash codes, message ids (reference A.2, A.3).

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
/// `MessageConst.PROPERTY_RETRY_TOPIC`: the topic a retried message was first sent to;
/// the consumer shows it to the listener instead of `%RETRY%{group}`.
pub const PROPERTY_RETRY_TOPIC: &str = "RETRY_TOPIC";
/// `MessageConst.PROPERTY_ORIGIN_MESSAGE_ID`: the first stored copy's message id.
pub const PROPERTY_ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
/// `MixAll.RETRY_GROUP_TOPIC_PREFIX`.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// A retried message's first delay level is this plus its reconsume times (10 s with
/// RocketMQ's default levels): the broker's hand-back and the client's own retry-topic
/// send both set it, so it lives with the message's other constants.
pub const RETRY_DELAY_LEVEL_BASE: i32 = 3;
/// `MixAll.DLQ_GROUP_TOPIC_PREFIX`.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

/// `MixAll.getRetryTopic`: where a group's failed messages come back from.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// `MixAll.getDLQTopic`: where a group's exhausted messages go.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// Declares [`SYSTEM_PROPERTIES`] and [`is_system_property`] from one list: the test
/// runs for every property of every send and delivery, and a `match` on the name
/// dispatches on its length instead of comparing it with each entry in turn.
macro_rules! system_properties {
    ($($name:literal,)*) => {
        /// The property names RocketMQ reserves for itself (`MessageConst.STRING_HASH_SET`,
        /// 4.9/5.x). Every other property is a user property: `Message.putUserProperty`
        /// refuses these names, and a user reads the rest back unchanged.
        pub const SYSTEM_PROPERTIES: &[&str] = &[$($name,)*];

        /// Whether `name` is one of RocketMQ's own properties, not a user property.
        pub fn is_system_property(name: &str) -> bool {
            matches!(name, $($name)|*)
        }
    };
}

system_properties! {
    "TRACE_ON",
    "MSG_REGION",
    "KEYS",
    "TAGS",
    "WAIT",
    "DELAY",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "TRAN_MSG",
    "PGROUP",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "BUYER_ID",
    "ORIGIN_MESSAGE_ID",
    "TRANSFER_FLAG",
    "CORRECTION_FLAG",
    "MQ2_FLAG",
    "RECONSUME_TIME",
    "UNIQ_KEY",
    "MAX_RECONSUME_TIMES",
    "CONSUME_START_TIME",
    "TRAN_PREPARED_QUEUE_OFFSET",
    "TRANSACTION_CHECK_TIMES",
    "CHECK_IMMUNITY_TIME_IN_SECONDS",
    "SHARDING_KEY",
    "__transactionId__",
    "INSTANCE_ID",
    "CORRELATION_ID",
    "REPLY_TO_CLIENT",
    "TTL",
    "ARRIVE_TIME",
    "PUSH_REPLY_TIME",
    "CLUSTER",
    "MSG_TYPE",
    "__STARTDELIVERTIME",
    "TIMER_DELIVER_MS",
    "TIMER_DELAY_SEC",
    "TIMER_DELAY_MS",
    "DUP_INFO",
    "__CRC32#",
}

/// RocketMQ's topic length limit (`TopicValidator`, 4.x): the V1 record stores it in a u8.
pub const TOPIC_MAX_LENGTH: usize = 127;

/// Encodes pairs as `name\u{1}value\u{2}…` (the 5.x form, which keeps the trailing
/// separator; 4.9 strips it, and [`properties`] reads both).
pub fn encode_properties<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    // Room for a typical message's few properties, so appending rarely reallocates.
    let mut out = String::with_capacity(128);
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
///
/// Segment ends are found as [`property`] finds them, eight bytes at a time: the
/// simulator's history digests the user properties of every delivery, and `split` with
/// `split_once` cost more than the rest of recording one.
pub fn properties(encoded: &str) -> impl Iterator<Item = (&str, &str)> {
    Properties { encoded, start: 0 }
}

struct Properties<'a> {
    encoded: &'a str,
    /// Where the next segment begins.
    start: usize,
}

impl<'a> Iterator for Properties<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let bytes = self.encoded.as_bytes();
        while self.start < bytes.len() {
            let start = self.start;
            let end = find_property_separator(bytes, start);
            self.start = end + 1;
            // A segment's name is what precedes its first U+0001; the value is the rest.
            let Some(at) = bytes[start..end]
                .iter()
                .position(|&b| b == NAME_VALUE_SEPARATOR as u8)
            else {
                continue;
            };
            let (name_end, value_start) = (start + at, start + at + 1);
            if name_end > start && end > value_start {
                // Every cut is next to an ASCII separator or at an end of the string,
                // so on a char boundary.
                return Some((
                    &self.encoded[start..name_end],
                    &self.encoded[value_start..end],
                ));
            }
        }
        None
    }
}

/// The value of one property, without building a map: the first pair of
/// [`properties`] named `name`.
///
/// Why not `properties(encoded).find(..)`: recovery asks every record for its TAGS, and
/// through `split` and `split_once` that lookup cost more than the CRC of the whole
/// 1 KiB record. Here each segment start is compared with `name\u{1}` directly and
/// segment ends are found eight bytes at a time, several times faster. Same answer: a
/// segment's name is what precedes its first U+0001, so for a `name` without
/// separators the segment is named `name` exactly when it starts with `name\u{1}`; a
/// name with a separator or an empty one never matches, as there.
pub fn property<'a>(encoded: &'a str, name: &str) -> Option<&'a str> {
    let bytes = encoded.as_bytes();
    let name = name.as_bytes();
    if name.is_empty() || name.iter().any(|&b| is_separator_byte(b)) {
        return None;
    }
    let mut start = 0;
    while start < bytes.len() {
        let end = find_property_separator(bytes, start);
        let segment = &bytes[start..end];
        // The value must be non-empty, as `properties` requires.
        if segment.len() > name.len() + 1
            && segment[name.len()] == NAME_VALUE_SEPARATOR as u8
            && segment.starts_with(name)
        {
            // Both ends are next to ASCII separators (or the string's ends), so they
            // are char boundaries.
            return Some(&encoded[start + name.len() + 1..end]);
        }
        start = end + 1;
    }
    None
}

fn is_separator_byte(b: u8) -> bool {
    b == NAME_VALUE_SEPARATOR as u8 || b == PROPERTY_SEPARATOR as u8
}

/// The index of the first U+0002 at or after `from`, or `bytes.len()`.
fn find_property_separator(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SEPARATORS: u64 = u64::from_ne_bytes([PROPERTY_SEPARATOR as u8; 8]);
    let mut at = from;
    while let Some(word) = bytes.get(at..at + 8) {
        // A zero byte of `x` is a separator byte of the word. The lowest flagged byte
        // of this classic test is exact (borrows only flag bytes above a real zero).
        let x = u64::from_le_bytes(word.try_into().expect("eight bytes")) ^ SEPARATORS;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return at + (zeros.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b == PROPERTY_SEPARATOR as u8)
        .map_or(bytes.len(), |i| at + i)
}

/// Java's `String.hashCode()`: `h = 31*h + c` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    // An ASCII byte is its own UTF-16 code unit. Tags are almost always ASCII and
    // recovery hashes one per record, so skip the UTF-16 encoder for them.
    let step = |h: i32, unit: u16| h.wrapping_mul(31).wrapping_add(i32::from(unit));
    if s.is_ascii() {
        s.bytes().fold(0, |h, b| step(h, u16::from(b)))
    } else {
        s.encode_utf16().fold(0, step)
    }
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
        && topic.bytes().all(|b| TOPIC_BYTES[usize::from(b)])
}

/// The bytes a topic may hold, as a table: recovery checks the topic of every record,
/// and one load per byte is cheaper than the chain of range tests.
const TOPIC_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'%' | b'|' | b'_' | b'-');
        b += 1;
    }
    table
};

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
    push_upper_hex(&mut out, &bytes);
    out
}

/// Appends `bytes` as upper-case hex, two digits each (RocketMQ's `UtilAll.bytes2string`).
/// Written out by hand: message ids are made for every send and every stored record.
pub fn push_upper_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
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

    /// `string2messageProperties` said plainly: split at U+0002, then at the first
    /// U+0001, keeping pairs with a name and a value.
    fn properties_by_split(encoded: &str) -> impl Iterator<Item = (&str, &str)> {
        encoded
            .split(PROPERTY_SEPARATOR)
            .filter_map(|segment| segment.split_once(NAME_VALUE_SEPARATOR))
            .filter(|(name, value)| !name.is_empty() && !value.is_empty())
    }

    proptest::proptest! {
        /// The fast lookup gives the answer of its definition, on strings dense in
        /// separators, prefixes of names, empty values and multi-byte characters.
        #[test]
        fn property_is_the_first_matching_pair(
            encoded in "[\u{1}\u{2}TAGSKEY\u{e9}\u{1F600}x]{0,40}",
            name in proptest::sample::select(vec!["TAGS", "TAG", "T", "KEYS", "", "A\u{1}", "\u{2}", "\u{e9}"]),
        ) {
            let expected = properties_by_split(&encoded)
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v);
            proptest::prop_assert_eq!(property(&encoded, name), expected);
        }

        /// The fast iterator yields the pairs of its definition, in order.
        #[test]
        fn properties_are_the_pairs_of_their_definition(
            encoded in "[\u{1}\u{2}TAGSKEY\u{e9}\u{1F600}x]{0,40}",
        ) {
            let expected: Vec<_> = properties_by_split(&encoded).collect();
            proptest::prop_assert_eq!(properties(&encoded).collect::<Vec<_>>(), expected);
        }
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
    fn java_hash_of_non_ascii_uses_utf16_units() {
        // "é".hashCode() == 233; "😀" is a surrogate pair: 31 * 0xD83D + 0xDE00.
        assert_eq!(java_string_hash("\u{e9}"), 233);
        assert_eq!(java_string_hash("\u{1F600}"), 31 * 0xD83D + 0xDE00);
        assert_eq!(java_string_hash("a\u{e9}"), 31 * 97 + 233);
    }

    #[test]
    fn topic_table_matches_rocketmq_pattern() {
        for b in 0..=255u8 {
            let allowed = b.is_ascii_alphanumeric() || b"%|_-".contains(&b);
            assert_eq!(TOPIC_BYTES[usize::from(b)], allowed, "byte {b}");
        }
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
