//! The JSON header (serialize type 0), read liberally and written as Java writes it.
//!
//! Read: `code` is required; `language` defaults to JAVA and may be a name or its byte;
//! `version`, `opaque` and `flag` default to 0 and may be numbers or numeric strings
//! (`opaque` and `flag` are Java ints, so -1 and 4294967295 are the same bits);
//! `remark` may be a string, "", null or absent; an extFields value may be a string, a
//! number or a boolean (the C++ client writes `"maxMsgNums":32`), a null value is the
//! same as an absent key, and a nested value is kept as its JSON text. Unknown fields
//! (`serializeTypeCurrentRPC`, ...) are ignored, and whitespace, such as the C++
//! client's trailing newline, is allowed around the object.
//!
//! Written: fastjson's alphabetical key order, `remark` omitted when there is none,
//! `opaque` and `flag` as Java ints, and `serializeTypeCurrentRPC` as Java adds it.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{language_name, FrameError, RemotingCommand, SerializeType};

pub(super) fn decode(header: &[u8]) -> Result<RemotingCommand, FrameError> {
    let text = std::str::from_utf8(header).map_err(|e| FrameError::HeaderNotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| FrameError::InvalidJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(FrameError::HeaderNotObject);
    };
    let code = int_field(&map, "code")?.ok_or(FrameError::MissingHeaderField("code"))?;
    Ok(RemotingCommand {
        code: to_i32("code", code)?,
        language: language(&map)?,
        version: to_i32("version", int_field(&map, "version")?.unwrap_or(0))?,
        opaque: java_int_bits("opaque", int_field(&map, "opaque")?.unwrap_or(0))?,
        flag: java_int_bits("flag", int_field(&map, "flag")?.unwrap_or(0))?,
        remark: remark(&map)?,
        ext_fields: ext_fields(&map)?,
        body: Vec::new(),
        serialize_type: SerializeType::Json,
    })
}

fn invalid(field: &str, reason: impl Into<String>) -> FrameError {
    FrameError::InvalidHeaderField {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// An integer given as a JSON integer or a string of one; None when absent or null.
fn int_field(map: &Map<String, Value>, field: &'static str) -> Result<Option<i64>, FrameError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(field, format!("{n} is not a 64-bit integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| invalid(field, format!("{s:?} is not an integer"))),
        Some(other) => Err(invalid(field, format!("{other} is not an integer"))),
    }
}

fn to_i32(field: &'static str, v: i64) -> Result<i32, FrameError> {
    i32::try_from(v).map_err(|_| invalid(field, format!("{v} is out of int range")))
}

/// A Java int's bits as u32: both -1 and 4294967295 read as 0xFFFF_FFFF.
fn java_int_bits(field: &'static str, v: i64) -> Result<u32, FrameError> {
    if let Ok(v) = i32::try_from(v) {
        return Ok(v as u32);
    }
    u32::try_from(v).map_err(|_| invalid(field, format!("{v} is out of int range")))
}

fn language(map: &Map<String, Value>) -> Result<String, FrameError> {
    match map.get("language") {
        None | Some(Value::Null) => Ok("JAVA".to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => match n.as_u64().and_then(|c| u8::try_from(c).ok()) {
            Some(c) => Ok(language_name(c).to_string()),
            None => Err(invalid("language", format!("{n} is not a language code"))),
        },
        Some(other) => Err(invalid("language", format!("{other} is not a language"))),
    }
}

fn remark(map: &Map<String, Value>) -> Result<Option<String>, FrameError> {
    match map.get("remark") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid("remark", format!("{other} is not a string"))),
    }
}

fn ext_fields(map: &Map<String, Value>) -> Result<BTreeMap<String, String>, FrameError> {
    let fields = match map.get("extFields") {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(fields)) => fields,
        Some(other) => return Err(invalid("extFields", format!("{other} is not an object"))),
    };
    Ok(fields
        .iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                nested @ (Value::Array(_) | Value::Object(_)) => nested.to_string(),
            };
            Some((k.clone(), text))
        })
        .collect())
}

/// Field order is fastjson's (alphabetical), so our frames read like Java's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeader<'a> {
    code: i32,
    ext_fields: &'a BTreeMap<String, String>,
    flag: i32,
    language: &'a str,
    opaque: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    remark: Option<&'a str>,
    #[serde(rename = "serializeTypeCurrentRPC")]
    serialize_type: &'static str,
    version: i32,
}

pub(super) fn encode(cmd: &RemotingCommand, out: &mut Vec<u8>) {
    let header = JsonHeader {
        code: cmd.code,
        ext_fields: &cmd.ext_fields,
        flag: cmd.flag as i32,
        language: &cmd.language,
        opaque: cmd.opaque as i32,
        remark: cmd.remark.as_deref().filter(|r| !r.is_empty()),
        serialize_type: "JSON",
        version: cmd.version,
    };
    serde_json::to_writer(out, &header).expect("a header of strings and ints serializes");
}
