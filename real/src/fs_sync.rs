//! Making files and directories durable, and OS errors as the store sees them: what
//! [`crate::fs_disk::FsDisk`] and its sync worker (`sync_worker.rs`) both do, so that
//! neither reaches into the other.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rmq_model::store::disk::parent_dir;
use rmq_model::store::DiskError;

/// The real path of a directory under `root`; "" is the root itself. Checked lexically:
/// no absolute paths, no empty, `.` or `..` components.
pub(crate) fn dir_path(root: &Path, path: &str) -> Result<PathBuf, DiskError> {
    if path.is_empty() {
        return Ok(root.to_path_buf());
    }
    if path.starts_with('/') {
        return Err(DiskError::io(path, "absolute path outside the store root"));
    }
    if path.contains('\0') {
        return Err(DiskError::io(path, "path contains a NUL byte"));
    }
    for component in path.split('/') {
        if component.is_empty() || component == "." || component == ".." {
            return Err(DiskError::io(
                path,
                format!("path component {component:?} is not allowed"),
            ));
        }
    }
    Ok(root.join(path))
}

/// A file's data and length to the media (see the module doc for why not `sync_all`).
pub(crate) fn sync_file(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// fsyncs `dir` (or, if it no longer exists, its nearest existing ancestor) and every
/// ancestor up to and including `root`.
pub(crate) fn sync_dir_chain(root: &Path, dir: &str) -> Result<(), DiskError> {
    let mut current = dir;
    loop {
        let real = dir_path(root, current)?;
        match File::open(&real) {
            // A directory's entries are its data; sync_all as there is nothing to skip.
            Ok(handle) => handle.sync_all().map_err(|e| map_io(current, e))?,
            // Removed together with its last file: the removal lives in the parent,
            // which the loop syncs next.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !current.is_empty() => {}
            Err(e) => return Err(map_io(current, e)),
        }
        if current.is_empty() {
            return Ok(());
        }
        current = parent_dir(current);
    }
}

/// An OS error as the store sees it. A missing parent that is a file ("a/b" when "a" is
/// a file) is a missing file, as in the model.
pub(crate) fn map_io(path: &str, e: io::Error) -> DiskError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => DiskError::not_found(path),
        io::ErrorKind::AlreadyExists => DiskError::AlreadyExists {
            path: path.to_string(),
        },
        _ => DiskError::io(path, e.to_string()),
    }
}
