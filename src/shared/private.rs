//! Files the doctor writes: for its own user only (files 0600, folders
//! 0700, whatever the umask), each created new under a random name in its
//! destination folder and renamed into place, so nothing is ever written
//! through a link planted at a name the doctor would use.

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tempfile::NamedTempFile;

/// Only the user may enter a folder the doctor creates.
pub const FOLDER_MODE: u32 = 0o700;
/// Only the user may read or write a file the doctor creates.
pub const FILE_MODE: u32 = 0o600;

/// Makes every file the process creates from now on its user's alone.
/// Libraries create files with the umask as it is: SQLite its database,
/// WAL and shared-memory files, matrix-sdk its crypto store.
pub fn owner_only_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// The folder `path` is in (`.` for a bare file name).
pub fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    }
}

/// A new file under a random name in `folder` (tempfile creates it with
/// `O_EXCL` and mode 0600), removed when dropped unless persisted.
pub fn new_file_in(folder: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".partial")
        .tempfile_in(folder)
}

/// Replaces `path` with `contents` atomically: a new file beside it,
/// renamed over it. A replaced file keeps its owner and group (root
/// editing the doctor's config must not take it from the doctor's user);
/// its mode becomes 0600. A link at `path` is replaced itself, its target
/// left alone: callers that must not lose an admin's link refuse it first
/// ([`refuse_link`]).
pub fn replace(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = new_file_in(folder_of(path), ".bridge-doctor-")?;
    if let Ok(old) = std::fs::symlink_metadata(path)
        && old.is_file()
    {
        // Only root may give a file away; anyone else keeps it as theirs.
        let _ = std::os::unix::fs::fchown(file.as_file(), Some(old.uid()), Some(old.gid()));
    }
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Where the link at `path` points, when `path` is a symbolic link
/// (dangling or not).
pub fn link_target(path: &Path) -> Option<String> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .map(|_| {
            std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".to_owned())
        })
}

/// Creates `path` as a new folder only its user may enter; fails when
/// anything is there already (a folder, a file, a link).
pub fn create_folder(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(FOLDER_MODE).create(path)
}

/// Makes the folder at `path` its user's alone: created 0700 (with any
/// missing folder above it) when missing, narrowed to 0700 when an
/// earlier version made it under a looser umask.
pub fn private_folder(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(FOLDER_MODE)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(FOLDER_MODE))
}

/// Narrows an existing file to 0600 (one an earlier version made under a
/// looser umask); nothing when it is missing or not this user's to change.
pub fn narrow_file(path: &Path) {
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_replaced_file_is_new_and_private_and_a_link_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "untouched").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        replace(&link, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert!(link_target(&link).is_none());
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "new");
        assert_eq!(mode(&link), 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "a temporary file was left behind");
    }

    #[test]
    fn links_are_told_apart_dangling_ones_included() {
        let dir = tempfile::tempdir().unwrap();
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(link_target(&dangling).unwrap().ends_with("nowhere"));
        assert!(link_target(dir.path()).is_none());
        assert!(create_folder(&dangling).is_err());
        let folder = dir.path().join("folder");
        create_folder(&folder).unwrap();
        assert_eq!(mode(&folder), 0o700);
    }

    #[test]
    fn existing_files_and_folders_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/store");
        private_folder(&folder).unwrap();
        assert_eq!(mode(&folder), 0o700);
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_folder(&folder).unwrap();
        assert_eq!(mode(&folder), 0o700);
        let file = folder.join("db");
        std::fs::write(&file, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        narrow_file(&file);
        assert_eq!(mode(&file), 0o600);
        narrow_file(&folder.join("missing"));
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("x.zip")), Path::new("."));
        assert_eq!(folder_of(Path::new("/a/x.zip")), Path::new("/a"));
    }
}
