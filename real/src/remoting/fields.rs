//! Typed reads of a command's extFields (the Java custom header), and the error that
//! names what is missing or wrong. Values are strings on the wire; numbers parse as
//! Java's `Integer.parseInt`/`Long.parseLong` would (surrounding blanks allowed), and
//! booleans accept "true"/"false" and the C++ client's "1"/"0".

use std::collections::BTreeMap;
use std::fmt::Display;
use std::str::FromStr;

use rmq_model::protocol::response_code;

/// Why a command cannot be mapped to or from the model's protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MappingError {
    #[error("request code {0} is not supported")]
    UnsupportedRequestCode(i32),
    /// A request the model cannot represent (a batch send, a compressed registration);
    /// `response_code` is what a server answers.
    #[error("request code {code} is not supported: {reason}")]
    Unsupported {
        code: i32,
        reason: String,
        response_code: i32,
    },
    #[error("command {code} has no required header field `{field}`")]
    MissingField { code: i32, field: &'static str },
    #[error("command {code}: header field `{field}` = {value:?} is invalid: {reason}")]
    InvalidField {
        code: i32,
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("command {code}: invalid body: {reason}")]
    InvalidBody { code: i32, reason: String },
    #[error("{0} is not a remoting command: RocketMQ carries it on the HA port")]
    NotRemoting(&'static str),
    #[error("the command is a response (flag {flag}), not a request")]
    NotARequest { flag: u32 },
    #[error("the command is a request (flag {flag}), not a response")]
    NotAResponse { flag: u32 },
    #[error(
        "response {response_code} to request code {request_code} has no model response: {reason}"
    )]
    NoModelResponse {
        request_code: i32,
        response_code: i32,
        reason: &'static str,
    },
}

impl MappingError {
    /// The response code a server answers a request it cannot map with.
    pub fn response_code(&self) -> i32 {
        match self {
            MappingError::UnsupportedRequestCode(_) => response_code::REQUEST_CODE_NOT_SUPPORTED,
            MappingError::Unsupported { response_code, .. } => *response_code,
            _ => response_code::SYSTEM_ERROR,
        }
    }
}

/// The extFields of one command with code `code` (named in errors).
pub(super) struct Fields<'a> {
    pub code: i32,
    pub ext: &'a BTreeMap<String, String>,
}

impl<'a> Fields<'a> {
    pub fn opt_str(&self, field: &'static str) -> Option<&'a str> {
        self.ext.get(field).map(String::as_str)
    }

    pub fn str(&self, field: &'static str) -> Result<&'a str, MappingError> {
        self.opt_str(field).ok_or(MappingError::MissingField {
            code: self.code,
            field,
        })
    }

    pub fn string(&self, field: &'static str) -> Result<String, MappingError> {
        self.str(field).map(str::to_string)
    }

    fn invalid(&self, field: &'static str, value: &str, reason: impl Display) -> MappingError {
        MappingError::InvalidField {
            code: self.code,
            field,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }

    fn parse<T>(&self, field: &'static str, value: &str) -> Result<T, MappingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        value
            .trim()
            .parse()
            .map_err(|e| self.invalid(field, value, e))
    }

    /// A required number.
    pub fn num<T>(&self, field: &'static str) -> Result<T, MappingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.parse(field, self.str(field)?)
    }

    /// An optional number: `default` when absent, an error when present but invalid.
    pub fn num_or<T>(&self, field: &'static str, default: T) -> Result<T, MappingError>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.opt_str(field)
            .map_or(Ok(default), |v| self.parse(field, v))
    }

    /// An optional boolean, false when absent.
    pub fn flag(&self, field: &'static str) -> Result<bool, MappingError> {
        match self.opt_str(field).map(str::trim) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" || v.is_empty() => Ok(false),
            Some(v) => Err(self.invalid(field, v, "not a boolean")),
        }
    }

    /// An optional string where "" means absent (the C++ client's way of saying null).
    pub fn opt_non_empty(&self, field: &'static str) -> Option<String> {
        self.opt_str(field)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

/// Builds an extFields map from `(key, value)` pairs.
pub(super) fn ext<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
