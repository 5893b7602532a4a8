//! Configuration of the real binaries, read as RocketMQ reads it: a properties file given
//! with `-c`, the name server list with `-n` or the `NAMESRV_ADDR` environment variable,
//! and RocketMQ's key names and defaults (reference A.1, A.7, A.8, F).
//!
//! - [`properties`]: the `java.util.Properties` text format;
//! - [`broker_conf`]: `mqbroker`'s keys into [`broker_conf::BrokerConf`] (the model's
//!   `BrokerConfig` plus what only a process needs: ports, addresses, directories);
//! - [`namesrv_conf`]: `mqnamesrv`'s keys into [`namesrv_conf::NamesrvConf`];
//! - [`store_lock`]: the exclusive lock a broker holds on its store directory.
//!
//! Deliberate deviations from RocketMQ, which silently skips what it cannot parse
//! (`MixAll.properties2Object` swallows the exception) and reads any boolean that is not
//! `true` as false: a value that does not parse is an error naming the key, the value
//! and what is accepted, and a key nobody reads is reported (once) instead of ignored.
//! Values are trimmed of surrounding blanks (Java keeps trailing ones and then fails to
//! parse `10911 ` as a number).

pub mod broker_conf;
mod command_line;
pub mod namesrv_conf;
pub mod properties;
pub mod store_lock;
mod values;

use std::fmt;
use std::path::PathBuf;

pub use command_line::{parse_command_line, CommandLine, USAGE};

/// The environment a binary starts in, passed in explicitly so that tests never touch
/// the process's own environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// `NAMESRV_ADDR`: the name servers when neither `-n` nor `namesrvAddr` says.
    pub namesrv_addr: Option<String>,
    /// `HOME` (Java's `user.home`): `storePathRootDir` defaults to `{home}/store`.
    pub home_dir: Option<PathBuf>,
}

impl Env {
    /// `NAMESRV_ADDR` and `HOME` of this process.
    pub fn from_process() -> Env {
        Env {
            namesrv_addr: std::env::var("NAMESRV_ADDR").ok(),
            home_dir: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// Where a setting came from, for error messages and warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A line of a properties file.
    File { path: PathBuf, line: usize },
    /// A command-line option, e.g. `-n`.
    CommandLine(&'static str),
    /// An environment variable.
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::CommandLine(flag) => write!(f, "command line {flag}"),
            Origin::Env(var) => write!(f, "environment variable {var}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Syntax {
        path: PathBuf,
        source: properties::PropertiesError,
    },
    /// A value that does not parse or is out of range.
    #[error("{origin}: {key}={value:?} is invalid: expected {expected}")]
    InvalidValue {
        origin: Origin,
        key: String,
        value: String,
        expected: String,
    },
    /// Settings that are each valid but not together (a slave with brokerId 0).
    #[error("{0}")]
    Inconsistent(String),
    #[error("{0}\n{USAGE}")]
    Usage(String),
}

/// A key that no setting reads: logged once as a warning, otherwise ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKey {
    pub key: String,
    pub origin: Origin,
}

/// A parsed configuration and what the binary should log about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded<T> {
    pub conf: T,
    /// Keys no setting reads, in file order, each once.
    pub unknown_keys: Vec<UnknownKey>,
    /// Keys accepted without effect, values RocketMQ itself would have changed (a
    /// master's brokerId forced to 0), keys given twice.
    pub notes: Vec<String>,
}

impl<T> Loaded<T> {
    /// One line per warning: all unknown keys together, then each note.
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.unknown_keys.is_empty() {
            let keys: Vec<String> = self
                .unknown_keys
                .iter()
                .map(|u| format!("{} ({})", u.key, u.origin))
                .collect();
            lines.push(format!("unknown config keys ignored: {}", keys.join(", ")));
        }
        lines.extend(self.notes.iter().cloned());
        lines
    }
}

/// What one key does to a configuration of type `T`: `Ok(None)` when applied,
/// `Ok(Some(note))` when accepted with a remark, `Err(expected)` naming what is accepted.
pub(crate) type Setter<T> = fn(&mut T, &str) -> Result<Option<String>, String>;

/// What a known key does.
pub(crate) enum KeyAction<T> {
    Set(Setter<T>),
    /// A RocketMQ key accepted without effect, with the reason told to the operator.
    NoEffect(&'static str),
}

/// The entries of a properties file applied in order through `lookup`, collecting the
/// keys it does not know and the keys given twice.
pub(crate) fn apply_file<T>(
    conf: &mut T,
    path: &std::path::Path,
    text: &str,
    lookup: impl Fn(&str) -> Option<KeyAction<T>>,
    unknown_keys: &mut Vec<UnknownKey>,
    notes: &mut Vec<String>,
) -> Result<(), ConfError> {
    let entries = properties::parse(text).map_err(|source| ConfError::Syntax {
        path: path.to_path_buf(),
        source,
    })?;
    let mut seen: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for entry in &entries {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: entry.line,
        };
        if let Some(first_line) = seen.insert(&entry.key, entry.line) {
            notes.push(format!(
                "{origin}: {} given again (first on line {first_line}); the last one counts",
                entry.key
            ));
        }
        match lookup(&entry.key) {
            Some(KeyAction::Set(set)) => {
                apply_one(conf, set, &entry.key, &entry.value, origin, notes)?
            }
            Some(KeyAction::NoEffect(reason)) => {
                notes.push(format!("{origin}: {}: {reason}", entry.key))
            }
            None => {
                if !unknown_keys.iter().any(|u| u.key == entry.key) {
                    unknown_keys.push(UnknownKey {
                        key: entry.key.clone(),
                        origin,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Applies one value (trimmed) through its setter.
pub(crate) fn apply_one<T>(
    conf: &mut T,
    set: Setter<T>,
    key: &str,
    value: &str,
    origin: Origin,
    notes: &mut Vec<String>,
) -> Result<(), ConfError> {
    match set(conf, value.trim()) {
        Ok(None) => Ok(()),
        Ok(Some(note)) => {
            notes.push(format!("{origin}: {key}: {note}"));
            Ok(())
        }
        Err(expected) => Err(ConfError::InvalidValue {
            origin,
            key: key.to_string(),
            value: value.to_string(),
            expected,
        }),
    }
}

/// Reads a `-c` file.
pub(crate) fn read_file(path: &std::path::Path) -> Result<String, ConfError> {
    let bytes = std::fs::read(path).map_err(|source| ConfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(properties::decode(&bytes).into_owned())
}
