//! The folder the bot builds packets in before posting them: one per
//! doctor (its user and its config), so the next start finds what a killed
//! run left and removes it. Only the doctor's user may enter it (0700,
//! created new, never taken over from someone else).

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::input::config::Config;
use crate::shared::private;

/// `$TMPDIR/bridge-doctor-packets-<uid>-<config>`: the uid keeps the
/// doctors of several users apart, a digest of the config's path several
/// doctors of one user.
pub fn packet_work_dir(config: &Config) -> PathBuf {
    let config_path = std::path::absolute(&config.path).unwrap_or_else(|_| config.path.clone());
    let digest = Sha256::digest(config_path.as_os_str().as_encoded_bytes());
    let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!(
        "bridge-doctor-packets-{}-{short}",
        nix::unistd::geteuid()
    ))
}

/// At start: removes what an earlier run left there (a link or file in its
/// place goes itself, never what it points to) and creates the folder new.
pub fn reset(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dir)?,
        Ok(_) => std::fs::remove_file(dir)?,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    private::create_folder(dir)
}

/// A new folder for one packet inside `dir`, removed when dropped; `dir`
/// is created when missing (a cleaner of temporary files may have removed
/// it) and used only when it is still this user's private folder.
pub fn packet_folder(dir: &Path) -> io::Result<tempfile::TempDir> {
    match private::create_folder(dir) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let private = meta.is_dir()
        && meta.uid() == nix::unistd::geteuid().as_raw()
        && meta.permissions().mode() & 0o077 == 0;
    if !private {
        return Err(io::Error::other(format!(
            "{} is not the doctor's own private folder: remove it and ask again",
            dir.display()
        )));
    }
    tempfile::Builder::new().prefix("packet-").tempdir_in(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_left_folder_is_cleared_and_a_planted_one_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("left.zip"), "old").unwrap();
        reset(&dir).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);

        let packet = packet_folder(&dir).unwrap();
        assert!(packet.path().starts_with(&dir));
        drop(packet);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);

        // Opened up by someone: not used, and a link in its place is
        // removed at start, its target kept.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = packet_folder(&dir).unwrap_err().to_string();
        assert!(err.contains("not the doctor's own private folder"), "{err}");
        std::fs::remove_dir(&dir).unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("keep"), "kept").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &dir).unwrap();
        assert!(packet_folder(&dir).is_err());
        reset(&dir).unwrap();
        assert!(elsewhere.join("keep").exists());
        assert!(std::fs::symlink_metadata(&dir).unwrap().is_dir());
    }
}
