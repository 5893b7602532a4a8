//! The ROCKETMQ binary header (serialize type 1, `RocketMQSerializable`, reference G.3),
//! big-endian:
//!
//! ```text
//! i16 code | u8 language | i16 version | i32 opaque | i32 flag |
//! i32 remark length + UTF-8 remark (0 = none) |
//! i32 ext length + repeated (i16 key length + key, i32 value length + value)
//! ```
//!
//! The ext region must hold whole entries (Java reads entries until it is exhausted);
//! bytes after it inside the header are ignored, as Java ignores them.

use std::collections::BTreeMap;

use super::{language_code, language_name, FrameError, RemotingCommand, SerializeType};

/// Whether `cmd` can be written in this layout: code and version fit 16 bits, and every
/// key fits a 16-bit length.
pub(super) fn fits(cmd: &RemotingCommand) -> bool {
    i16::try_from(cmd.code).is_ok()
        && i16::try_from(cmd.version).is_ok()
        && cmd
            .ext_fields
            .keys()
            .all(|k| i16::try_from(k.len()).is_ok())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        let available = self.buf.len() - self.pos;
        if n > available {
            return Err(FrameError::BinaryHeaderTruncated {
                what,
                needed: n,
                available,
            });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, FrameError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, FrameError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    /// A length field; negative is an error rather than "none".
    fn len(&mut self, value: i64, what: &'static str) -> Result<usize, FrameError> {
        usize::try_from(value).map_err(|_| FrameError::NegativeLength { what, len: value })
    }

    fn string(&mut self, len: usize, what: &'static str) -> Result<String, FrameError> {
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| FrameError::BinaryNotUtf8 { what })
    }
}

pub(super) fn decode(header: &[u8]) -> Result<RemotingCommand, FrameError> {
    let mut r = Reader {
        buf: header,
        pos: 0,
    };
    let code = r.i16("code")?;
    let [language] = r.array::<1>("language")?;
    let version = r.i16("version")?;
    let opaque = r.i32("opaque")?;
    let flag = r.i32("flag")?;
    let remark_len = r.i32("remark length")?;
    let remark_len = r.len(remark_len.into(), "remark")?;
    let remark = match remark_len {
        0 => None,
        n => Some(r.string(n, "remark")?),
    };
    let ext_len = r.i32("extFields length")?;
    let ext_len = r.len(ext_len.into(), "extFields")?;
    let ext = r.take(ext_len, "extFields")?;
    Ok(RemotingCommand {
        code: code.into(),
        language: language_name(language).to_string(),
        version: version.into(),
        opaque: opaque as u32,
        flag: flag as u32,
        remark,
        ext_fields: decode_ext(ext)?,
        body: Vec::new(),
        serialize_type: SerializeType::RocketMq,
    })
}

fn decode_ext(ext: &[u8]) -> Result<BTreeMap<String, String>, FrameError> {
    let mut r = Reader { buf: ext, pos: 0 };
    let mut fields = BTreeMap::new();
    while r.pos < ext.len() {
        let key_len = r.i16("extFields key length")?;
        let key_len = r.len(key_len.into(), "extFields key")?;
        let key = r.string(key_len, "extFields key")?;
        let value_len = r.i32("extFields value length")?;
        let value_len = r.len(value_len.into(), "extFields value")?;
        let value = r.string(value_len, "extFields value")?;
        fields.insert(key, value);
    }
    Ok(fields)
}

/// Writes the header of `cmd`, which must [`fits`].
pub(super) fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    let short = |v: i32| i16::try_from(v).expect("checked by fits()");
    let length = |n: usize| i32::try_from(n).expect("a header field under 2 GiB");
    out.extend_from_slice(&short(cmd.code).to_be_bytes());
    out.push(language_code(&cmd.language));
    out.extend_from_slice(&short(cmd.version).to_be_bytes());
    out.extend_from_slice(&cmd.opaque.to_be_bytes());
    out.extend_from_slice(&cmd.flag.to_be_bytes());
    let remark = cmd.remark.as_deref().unwrap_or("");
    out.extend_from_slice(&length(remark.len()).to_be_bytes());
    out.extend_from_slice(remark.as_bytes());
    let ext_len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    for (key, value) in &cmd.ext_fields {
        let key_len = i16::try_from(key.len()).expect("checked by fits()");
        out.extend_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&length(value.len()).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    let ext_len = length(out.len() - ext_len_at - 4);
    out[ext_len_at..ext_len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
}
