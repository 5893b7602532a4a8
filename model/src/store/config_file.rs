//! Config files (`config/topics.json`, `consumerOffset.json`, `delayOffset.json`, …)
//! written so that a crash at any point leaves either the old or the new content:
//!
//! 1. write `X.tmp` and fsync it;
//! 2. when that completes: rename `X` → `X.bak`, rename `X.tmp` → `X`, sync the directory;
//! 3. when that completes: persisted.
//!
//! Whatever prefix of step 2's directory operations reaches the disk, `X` or `X.bak`
//! holds a complete, fsynced copy. Loading tries `X`, then `X.bak` (RocketMQ's
//! `ConfigManager` does the same), and never hands out a file that does not parse.
//! A persist requested while one is in flight replaces any queued one (the newest
//! content wins; at most one is queued).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::disk::{parent_dir, Disk, DiskError, SyncTarget, SyncTicket, SyncWaiter};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Idle,
    TmpSync(SyncTicket),
    DirSync(SyncTicket),
}

/// Where loaded content came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadSource {
    Primary,
    /// The primary was missing or unreadable; the reason is kept.
    Backup(String),
    /// Neither copy was usable: the default, with the reasons.
    Default(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigEvent {
    NotMine,
    InProgress,
    Persisted,
    Failed(DiskError),
}

#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: String,
    step: Step,
    queued: Option<String>,
    persisted_count: u64,
}

impl ConfigFile {
    pub fn new(path: impl Into<String>) -> ConfigFile {
        ConfigFile {
            path: path.into(),
            step: Step::Idle,
            queued: None,
            persisted_count: 0,
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn tmp_path(&self) -> String {
        format!("{}.tmp", self.path)
    }

    fn bak_path(&self) -> String {
        format!("{}.bak", self.path)
    }

    pub fn is_idle(&self) -> bool {
        self.step == Step::Idle && self.queued.is_none()
    }

    /// How many persists completed.
    pub fn persisted_count(&self) -> u64 {
        self.persisted_count
    }

    /// Loads and parses the file, falling back to the backup, then to `T::default()`.
    pub fn load<T: DeserializeOwned + Default>(&self, disk: &dyn Disk) -> (T, LoadSource) {
        let primary = read_json::<T>(disk, &self.path);
        let primary_err = match primary {
            Ok(v) => return (v, LoadSource::Primary),
            Err(e) => e,
        };
        match read_json::<T>(disk, &self.bak_path()) {
            Ok(v) => {
                tracing::warn!(path = %self.path, reason = %primary_err, "config loaded from backup");
                (v, LoadSource::Backup(primary_err))
            }
            Err(bak_err) => {
                let reason = format!("{primary_err}; {bak_err}");
                if disk.exists(&self.path) || disk.exists(&self.bak_path()) {
                    tracing::warn!(path = %self.path, %reason, "config unusable; using defaults");
                }
                (T::default(), LoadSource::Default(reason))
            }
        }
    }

    /// Starts persisting `content` (or queues it behind the persist in flight).
    pub fn persist(&mut self, disk: &mut dyn Disk, content: String) -> Result<(), DiskError> {
        if self.step != Step::Idle {
            self.queued = Some(content);
            return Ok(());
        }
        let tmp = self.tmp_path();
        if disk.exists(&tmp) {
            disk.delete(&tmp)?;
        }
        disk.create(&tmp)?;
        disk.write(&tmp, 0, content.as_bytes())?;
        self.step = Step::TmpSync(disk.request_sync(SyncTarget::File(&tmp))?);
        Ok(())
    }

    pub fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> ConfigEvent {
        match (&self.step, result) {
            (Step::TmpSync(t) | Step::DirSync(t), _) if *t != ticket => ConfigEvent::NotMine,
            (Step::Idle, _) => ConfigEvent::NotMine,
            (_, Err(e)) => {
                self.step = Step::Idle;
                ConfigEvent::Failed(e)
            }
            (Step::TmpSync(_), Ok(())) => match self.swap_in(disk) {
                Ok(t) => {
                    self.step = Step::DirSync(t);
                    ConfigEvent::InProgress
                }
                Err(e) => {
                    self.step = Step::Idle;
                    ConfigEvent::Failed(e)
                }
            },
            (Step::DirSync(_), Ok(())) => {
                self.step = Step::Idle;
                self.persisted_count += 1;
                if let Some(next) = self.queued.take() {
                    if let Err(e) = self.persist(disk, next) {
                        return ConfigEvent::Failed(e);
                    }
                }
                ConfigEvent::Persisted
            }
        }
    }

    fn swap_in(&self, disk: &mut dyn Disk) -> Result<SyncTicket, DiskError> {
        if disk.exists(&self.path) {
            disk.rename(&self.path, &self.bak_path())?;
        }
        disk.rename(&self.tmp_path(), &self.path)?;
        disk.request_sync(SyncTarget::Dir(parent_dir(&self.path)))
    }
}

impl SyncWaiter for ConfigFile {
    type Event = ConfigEvent;
    fn on_sync_complete(
        &mut self,
        disk: &mut dyn Disk,
        ticket: SyncTicket,
        result: Result<(), DiskError>,
    ) -> ConfigEvent {
        ConfigFile::on_sync_complete(self, disk, ticket, result)
    }
}

/// A table kept in memory and written through its [`ConfigFile`] when it changed
/// (consumer offsets, delay offsets): the owner says when to persist, the table
/// knows whether there is anything to write.
#[derive(Clone, Debug)]
pub struct PersistedTable<T> {
    table: T,
    file: ConfigFile,
    /// Changed since the last persist started.
    dirty: bool,
}

impl<T: Serialize + DeserializeOwned + Default> PersistedTable<T> {
    /// Loads `path` (or its backup, or the default; see [`ConfigFile::load`]).
    pub fn load(disk: &dyn Disk, path: &str) -> PersistedTable<T> {
        let file = ConfigFile::new(path);
        let (table, _source) = file.load(disk);
        PersistedTable {
            table,
            file,
            dirty: false,
        }
    }

    pub fn table(&self) -> &T {
        &self.table
    }

    /// The table to change; call [`PersistedTable::mark_dirty`] when it did.
    pub fn table_mut(&mut self) -> &mut T {
        &mut self.table
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Starts writing the table if it changed since the last persist started.
    pub fn persist(&mut self, disk: &mut dyn Disk) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        let json = serde_json::to_string(&self.table).expect("config tables serialize");
        if let Err(e) = self.file.persist(disk, json) {
            tracing::warn!(path = %self.file.path(), error = %e, "config file not persisted");
        }
    }

    /// The file: its syncs complete through it, and it tells when it is idle.
    pub fn file(&mut self) -> &mut ConfigFile {
        &mut self.file
    }
}

fn read_json<T: DeserializeOwned>(disk: &dyn Disk, path: &str) -> Result<T, String> {
    let text = read_text(disk, path)?;
    parse_json(&text).map_err(|e| format!("{path}: {e}"))
}

/// The whole of file `path` as UTF-8 text.
pub fn read_text(disk: &dyn Disk, path: &str) -> Result<String, String> {
    let len = disk.len(path).map_err(|e| e.to_string())?;
    let bytes = disk
        .read(path, 0, len as usize)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes.into_owned()).map_err(|_| format!("{path}: not UTF-8"))
}

/// A config table from its JSON text, as RocketMQ (fastjson) writes it too: integer
/// map keys may come without quotes (`{0:12}`).
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => serde_json::from_str(&quote_bare_integer_keys(text))
            .map_err(|_| format!("not valid JSON for this file: {first}")),
    }
}

/// Quotes object keys that are bare integers, outside strings: `{0:1,-1:2}` →
/// `{"0":1,"-1":2}`. Leaves everything else (strings, array items) untouched.
pub fn quote_bare_integer_keys(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len() + 16);
    // true for an object, false for an array; bounded by the input's nesting.
    let mut containers: Vec<bool> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut expecting_key = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        if expecting_key && (c == b'-' || c.is_ascii_digit()) {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            out.push(b'"');
            out.extend_from_slice(&bytes[start..i]);
            out.push(b'"');
            expecting_key = false;
            continue;
        }
        match c {
            b'"' => {
                in_string = true;
                expecting_key = false;
            }
            b'{' => {
                containers.push(true);
                expecting_key = true;
            }
            b'[' => {
                containers.push(false);
                expecting_key = false;
            }
            b'}' | b']' => {
                containers.pop();
                expecting_key = false;
            }
            b',' => expecting_key = containers.last() == Some(&true),
            b' ' | b'\n' | b'\r' | b'\t' => {}
            _ => expecting_key = false,
        }
        out.push(c);
        i += 1;
    }
    // Only ASCII quotes were inserted, next to ASCII bytes: still valid UTF-8.
    String::from_utf8(out).expect("input was UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::config_tables::ConsumerOffsetTable;
    use crate::store::MemDisk;

    #[test]
    fn persist_then_load_and_backup_fallback() {
        let mut disk = MemDisk::new();
        let mut f = ConfigFile::new("config/consumerOffset.json");
        f.persist(&mut disk, r#"{"offsetTable":{"T@g":{"0":5}}}"#.into())
            .unwrap();
        let events = disk.complete_syncs(&mut f);
        assert_eq!(events.last(), Some(&ConfigEvent::Persisted));
        f.persist(&mut disk, r#"{"offsetTable":{"T@g":{"0":9}}}"#.into())
            .unwrap();
        disk.complete_syncs(&mut f);
        let (t, src) = f.load::<ConsumerOffsetTable>(&disk);
        assert_eq!(src, LoadSource::Primary);
        assert_eq!(t.offset_table["T@g"][&0], 9);
        // A torn primary falls back to the previous good copy, never to garbage.
        disk.write("config/consumerOffset.json", 10, b"\xff\xff")
            .unwrap();
        let (t, src) = f.load::<ConsumerOffsetTable>(&disk);
        assert!(matches!(src, LoadSource::Backup(_)));
        assert_eq!(t.offset_table["T@g"][&0], 5);
        disk.delete("config/consumerOffset.json.bak").unwrap();
        let (t, src) = f.load::<ConsumerOffsetTable>(&disk);
        assert!(matches!(src, LoadSource::Default(_)));
        assert!(t.offset_table.is_empty());
    }

    #[test]
    fn newest_queued_content_wins() {
        let mut disk = MemDisk::new();
        let mut f = ConfigFile::new("config/delayOffset.json");
        f.persist(&mut disk, "{\"offsetTable\":{}}".into()).unwrap();
        f.persist(&mut disk, "{\"offsetTable\":{\"1\":1}}".into())
            .unwrap();
        f.persist(&mut disk, "{\"offsetTable\":{\"1\":2}}".into())
            .unwrap();
        disk.complete_syncs(&mut f);
        assert!(f.is_idle());
        assert_eq!(f.persisted_count(), 2);
        let text = &disk.files()["config/delayOffset.json"];
        assert_eq!(text.as_slice(), b"{\"offsetTable\":{\"1\":2}}");
    }

    #[test]
    fn fastjson_integer_keys_are_read() {
        assert_eq!(
            quote_bare_integer_keys(r#"{"offsetTable":{"a@b":{0:250, 1:3}},"s":"{0:x}"}"#),
            r#"{"offsetTable":{"a@b":{"0":250, "1":3}},"s":"{0:x}"}"#
        );
        assert_eq!(
            quote_bare_integer_keys("{ -1 :2,\"é\":[1,2]}"),
            "{ \"-1\" :2,\"é\":[1,2]}"
        );
    }
}
