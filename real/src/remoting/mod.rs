//! RocketMQ's remoting protocol (reference G): frames, JSON and ROCKETMQ binary headers,
//! and the mapping between wire commands and the model's typed requests and responses.
//!
//! - `frame.rs`: `[u32 total][u8 serialize type | u24 header length][header][body]`,
//!   decoded from the front of a byte buffer as it streams in ([`decode_frame`]).
//! - `json_header.rs` / `binary_header.rs`: the two header encodings.
//! - `fields.rs`: typed reads of extFields (what a missing or bad field is called).
//! - `fastjson.rs`: reads JSON as Java's fastjson writes it (unquoted integer keys).
//! - `bodies.rs`: the JSON bodies whose wire shape differs from the model's types.
//! - `batch_body.rs`: the binary body of a batch send.
//! - `requests.rs` / `responses.rs`: wire ⇄ [`rmq_model::protocol`].
//! - `fuzz_case.rs`: the fuzz target's check ([`run_remoting_case`]), shared with
//!   `cargo test`'s corpus replay.
//!
//! Input from the network is never trusted: every length is checked against the bytes
//! present and the configured maximum before anything is allocated, and every problem
//! is a [`FrameError`] or [`MappingError`] naming it. Decoding is liberal where real
//! clients differ (numbers or booleans as extField values, a trailing newline, a null
//! or empty remark, unknown fields); encoding writes what Java's RocketMQ writes.
//!
//! Deviation: a ROCKETMQ binary header holds the code and version in 16 bits. A command
//! whose code or version does not fit (5.x POP codes such as 200050) is written with a
//! JSON header instead of being truncated as Java's `(short)` cast would; every
//! RocketMQ decoder reads the serialize type from the frame, so the receiver copes.

mod batch_body;
mod binary_header;
mod bodies;
mod fastjson;
mod fields;
mod frame;
mod fuzz_case;
mod json_header;
mod requests;
mod responses;

use std::collections::BTreeMap;

pub use fields::MappingError;
pub use frame::{decode_frame, encode_frame, FrameError, DEFAULT_MAX_FRAME_BYTES};
pub use fuzz_case::run_remoting_case;
pub use requests::{
    is_remoting, request_from_wire, request_to_wire, rocketmq_sends_oneway, try_request_from_wire,
    try_request_to_wire,
};
pub use responses::{response_from_wire, response_to_wire};

/// How a frame's header is encoded: the high byte of the header-length word.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SerializeType {
    /// Type 0: fastjson text. What Java clients send by default and the only header
    /// the C++ client reads.
    Json,
    /// Type 1: `RocketMQSerializable`'s binary layout.
    RocketMq,
}

impl SerializeType {
    pub const fn code(self) -> u8 {
        match self {
            SerializeType::Json => 0,
            SerializeType::RocketMq => 1,
        }
    }

    pub const fn from_code(code: u8) -> Option<SerializeType> {
        match code {
            0 => Some(SerializeType::Json),
            1 => Some(SerializeType::RocketMq),
            _ => None,
        }
    }
}

/// `RemotingCommand.flag` bit 0: this is a response.
pub const FLAG_RESPONSE: u32 = 1;
/// `RemotingCommand.flag` bit 1: a request that must not be answered.
pub const FLAG_ONEWAY: u32 = 2;

/// The language we answer with: every client version knows JAVA (reference G.2).
pub const ANSWER_LANGUAGE: &str = "JAVA";
/// The language our own client sends: JAVA too, as brokers older than 4.9 do not know
/// RUST and nothing we rely on depends on it.
pub const CLIENT_LANGUAGE: &str = "JAVA";
/// The version our client sends: `MQVersion.V4_9_8`, so a RocketMQ name server answers
/// in standard JSON (≥ V4_9_4).
pub const CLIENT_VERSION: i32 = 409;

/// `LanguageCode`: the byte a binary header carries, and the name a JSON one does.
const LANGUAGES: [(&str, u8); 14] = [
    ("JAVA", 0),
    ("CPP", 1),
    ("DOTNET", 2),
    ("PYTHON", 3),
    ("DELPHI", 4),
    ("ERLANG", 5),
    ("RUBY", 6),
    ("OTHER", 7),
    ("HTTP", 8),
    ("GO", 9),
    ("PHP", 10),
    ("OMS", 11),
    ("RUST", 12),
    ("NODE_JS", 13),
];

/// A language byte's name; an unknown byte reads as OTHER (Java would read null).
pub(crate) fn language_name(code: u8) -> &'static str {
    LANGUAGES
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("OTHER", |(n, _)| n)
}

/// A language name's byte; an unknown name is written as OTHER.
pub(crate) fn language_code(name: &str) -> u8 {
    LANGUAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(7, |(_, c)| *c)
}

/// One remoting command, request or response, as it travels (reference G.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemotingCommand {
    /// The request code of a request, the response code of a response.
    pub code: i32,
    /// `LanguageCode` name, e.g. "JAVA", "CPP".
    pub language: String,
    /// The sender's `MQVersion` ordinal.
    pub version: i32,
    /// The request id; a response echoes its request's. Java's int, read bit for bit.
    pub opaque: u32,
    /// [`FLAG_RESPONSE`] and [`FLAG_ONEWAY`] bits.
    pub flag: u32,
    /// None when absent, null or empty (the three mean the same on every client).
    pub remark: Option<String>,
    /// The custom header, every value as a string.
    pub ext_fields: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The header encoding it came in, or goes out in.
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// A response with no header fields and no body.
    pub fn response(
        code: i32,
        opaque: u32,
        remark: Option<String>,
        serialize_type: SerializeType,
    ) -> RemotingCommand {
        RemotingCommand {
            code,
            language: ANSWER_LANGUAGE.to_string(),
            version: CLIENT_VERSION,
            opaque,
            flag: FLAG_RESPONSE,
            remark: remark.filter(|r| !r.is_empty()),
            ext_fields: BTreeMap::new(),
            body: Vec::new(),
            serialize_type,
        }
    }
}
