//! Remoting framing (reference G.1, `NettyDecoder` / `RemotingCommand.encode`):
//!
//! ```text
//! [u32 total = 4 + header length + body length]   (does not count itself)
//! [u8 serialize type | u24 header length]
//! [header][body]
//! ```
//!
//! The decoder works on whatever prefix of the stream has arrived: it answers "need
//! more" until a whole frame is there, and rejects a frame as soon as its first eight
//! bytes prove it bad, so a hostile length never makes it wait for (or allocate) 4 GiB.

use super::{binary_header, json_header, RemotingCommand, SerializeType};

/// Netty's `frameMaxLength` default in RocketMQ: 16 MiB, the length field included.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The length field plus the serialize-type/header-length word.
const PREFIX_BYTES: usize = 8;
/// The header length is the low 24 bits of its word.
const MAX_HEADER_BYTES: usize = 0xFF_FFFF;

/// Why a frame or its header cannot be decoded. Any of these means the peer does not
/// speak the protocol (or the stream lost sync): close the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {frame_bytes} bytes exceeds the maximum of {max_frame_bytes}")]
    FrameTooLarge {
        frame_bytes: u64,
        max_frame_bytes: usize,
    },
    #[error("frame length {total_len} is shorter than the 4-byte header-length word")]
    FrameTooShort { total_len: u32 },
    #[error("unknown serialize type {0} (0 = JSON, 1 = ROCKETMQ)")]
    UnknownSerializeType(u8),
    #[error("header length {header_len} runs past the frame's {room} bytes after the header-length word")]
    HeaderPastFrame { header_len: usize, room: usize },
    #[error("JSON header is not valid UTF-8 (from byte {valid_up_to})")]
    HeaderNotUtf8 { valid_up_to: usize },
    #[error("JSON header is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON header is not an object")]
    HeaderNotObject,
    #[error("header has no `{0}`")]
    MissingHeaderField(&'static str),
    #[error("header field `{field}` is invalid: {reason}")]
    InvalidHeaderField { field: String, reason: String },
    #[error("binary header ends inside {what}: needs {needed} bytes, {available} left")]
    BinaryHeaderTruncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("binary header has a negative length {len} for {what}")]
    NegativeLength { what: &'static str, len: i64 },
    #[error("binary header's {what} is not valid UTF-8")]
    BinaryNotUtf8 { what: &'static str },
}

/// Decodes one frame from the front of `buf`: `Ok(None)` until the whole frame has
/// arrived, then the command and how many bytes it took. `max_frame_bytes` bounds the
/// whole frame, length field included (as Netty counts it).
pub fn decode_frame(
    buf: &[u8],
    max_frame_bytes: usize,
) -> Result<Option<(RemotingCommand, usize)>, FrameError> {
    let Some(total_bytes) = buf.get(0..4) else {
        return Ok(None);
    };
    let total_len = u32::from_be_bytes(total_bytes.try_into().expect("4 bytes"));
    let frame_bytes = 4 + u64::from(total_len);
    if frame_bytes > max_frame_bytes as u64 {
        return Err(FrameError::FrameTooLarge {
            frame_bytes,
            max_frame_bytes,
        });
    }
    // Fits in usize: it is at most max_frame_bytes.
    let frame_bytes = frame_bytes as usize;
    if total_len < 4 {
        return Err(FrameError::FrameTooShort { total_len });
    }
    let Some(word) = buf.get(4..PREFIX_BYTES) else {
        return Ok(None);
    };
    let word = u32::from_be_bytes(word.try_into().expect("4 bytes"));
    let type_code = (word >> 24) as u8;
    let serialize_type =
        SerializeType::from_code(type_code).ok_or(FrameError::UnknownSerializeType(type_code))?;
    let header_len = (word as usize) & MAX_HEADER_BYTES;
    let room = frame_bytes - PREFIX_BYTES;
    if header_len > room {
        return Err(FrameError::HeaderPastFrame { header_len, room });
    }
    let Some(frame) = buf.get(..frame_bytes) else {
        return Ok(None);
    };
    let header = &frame[PREFIX_BYTES..PREFIX_BYTES + header_len];
    let body = &frame[PREFIX_BYTES + header_len..];
    let mut cmd = match serialize_type {
        SerializeType::Json => json_header::decode(header)?,
        SerializeType::RocketMq => binary_header::decode(header)?,
    };
    cmd.body = body.to_vec();
    Ok(Some((cmd, frame_bytes)))
}

/// Appends `cmd` as one frame to `out`, its header in `cmd.serialize_type` (JSON when
/// a binary header cannot hold the code or version; see the module docs).
///
/// # Panics
/// If the header exceeds 16 MiB or the frame 4 GiB: only our own commands are encoded,
/// and none comes near either.
pub fn encode_frame(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    let start = out.len();
    // Reserve the prefix, write the header after it, then fill the prefix in.
    out.extend_from_slice(&[0; PREFIX_BYTES]);
    let serialize_type = match cmd.serialize_type {
        SerializeType::RocketMq if binary_header::fits(cmd) => {
            binary_header::encode(cmd, out);
            SerializeType::RocketMq
        }
        _ => {
            json_header::encode(cmd, out);
            SerializeType::Json
        }
    };
    let header_len = out.len() - start - PREFIX_BYTES;
    assert!(
        header_len <= MAX_HEADER_BYTES,
        "header of {header_len} bytes does not fit 24 bits"
    );
    out.extend_from_slice(&cmd.body);
    let total_len = u32::try_from(out.len() - start - 4).expect("frame under 4 GiB");
    let word = (u32::from(serialize_type.code()) << 24) | header_len as u32;
    out[start..start + 4].copy_from_slice(&total_len.to_be_bytes());
    out[start + 4..start + PREFIX_BYTES].copy_from_slice(&word.to_be_bytes());
}
