//! Files a config names (logs) are read only as the config's owner could
//! read them: whoever may edit a bridge's config, or swap its log for a
//! link, must not make a root-run doctor read (and a packet carry) a file
//! they could not read themselves. A log that is itself a link is never
//! followed; folders on the way may be links, the real file and every
//! folder above it must then be open to the config's owner.

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Group, Uid, User, getgrouplist};

#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("{path} is a symbolic link: not followed")]
    Link { path: String },
    #[error("{path} is not a regular file: skipped")]
    NotRegular { path: String },
    #[error(
        "{path} is owned by {owner} and not readable by the owner of the config that names it (uid {reader}): skipped"
    )]
    NotReadable {
        path: String,
        owner: String,
        reader: u32,
    },
    #[error(
        "{path} is inside {folder}, which the owner of the config that names it (uid {reader}) cannot enter: skipped"
    )]
    Hidden {
        path: String,
        folder: String,
        reader: u32,
    },
    #[error(
        "{log} is named by a config whose owner (uid {reader}) may not read the system journal (not root, not in the {groups} group): skipped"
    )]
    Journal {
        log: String,
        reader: u32,
        groups: String,
    },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
}

/// Opens the file at `path` that the config at `named_by` names, when it
/// is a regular file (not a link, not a FIFO that would block) that the
/// config's owner could read.
pub fn open_named(path: &Path, named_by: &Path) -> Result<File, Refused> {
    let shown = path.display().to_string();
    let io_error = |source: io::Error| Refused::Io {
        path: shown.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(nix::libc::ELOOP) => Refused::Link {
                path: shown.clone(),
            },
            _ => io_error(err),
        })?;
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(Refused::NotRegular { path: shown });
    }
    let reader = Reader::owner_of(named_by).map_err(io_error)?;
    if !reader.may(&meta, READ) {
        return Err(Refused::NotReadable {
            path: shown,
            owner: user_name(meta.uid()),
            reader: reader.uid,
        });
    }
    if let Some(folder) = real_path(&file, path)
        .map_err(io_error)?
        .ancestors()
        .skip(1)
        .find(|folder| !std::fs::metadata(folder).is_ok_and(|m| reader.may(&m, SEARCH)))
    {
        return Err(Refused::Hidden {
            path: shown,
            folder: folder.display().to_string(),
            reader: reader.uid,
        });
    }
    Ok(file)
}

/// The groups whose members journald lets read every unit's journal.
const JOURNAL_GROUPS: &[&str] = &["systemd-journal", "adm", "wheel"];

/// A unit's journal (`log`, as shown) that the config at `named_by` names
/// is read only when the config's owner could read the system journal:
/// root, or a member of one of [`JOURNAL_GROUPS`].
pub fn may_read_journal(log: &str, named_by: &Path) -> Result<(), Refused> {
    let reader = Reader::owner_of(named_by).map_err(|source| Refused::Io {
        path: named_by.display().to_string(),
        source,
    })?;
    let member = |name: &&str| {
        Group::from_name(name)
            .ok()
            .flatten()
            .is_some_and(|group| reader.groups.contains(&group.gid.as_raw()))
    };
    if reader.uid == 0 || JOURNAL_GROUPS.iter().any(member) {
        return Ok(());
    }
    Err(Refused::Journal {
        log: log.to_owned(),
        reader: reader.uid,
        groups: JOURNAL_GROUPS.join(", "),
    })
}

const READ: u32 = 0o4;
const SEARCH: u32 = 0o1;

/// Where the open file really is, every link on the way resolved: as the
/// kernel knows the open file, else (no /proc) as its path resolves now.
fn real_path(file: &File, path: &Path) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
        .or_else(|_| std::fs::canonicalize(path))
}

/// The owner of a config, as the permission bits see them.
struct Reader {
    uid: u32,
    /// Primary and supplementary groups, as the system's accounts list them.
    groups: Vec<u32>,
}

impl Reader {
    fn owner_of(config: &Path) -> io::Result<Reader> {
        let uid = std::fs::metadata(config)?.uid();
        Ok(Reader {
            uid,
            groups: groups_of(uid),
        })
    }

    /// Whether the owner, group or other bits (whichever apply to this
    /// reader, as the kernel picks them) allow `what`; root may do all.
    fn may(&self, meta: &Metadata, what: u32) -> bool {
        if self.uid == 0 {
            return true;
        }
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid {
            mode >> 6
        } else if self.groups.contains(&meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & what == what
    }
}

/// A uid's groups; none for a uid without an account (then only the
/// "other" bits count for it).
fn groups_of(uid: u32) -> Vec<u32> {
    let Ok(Some(user)) = User::from_uid(Uid::from_raw(uid)) else {
        return Vec::new();
    };
    let primary = user.gid.as_raw();
    CString::new(user.name)
        .ok()
        .and_then(|name| getgrouplist(&name, user.gid).ok())
        .map(|groups| groups.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_else(|| vec![primary])
}

fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A config owned by `nobody` (the tests run as root) naming logs.
    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, "logs").unwrap();
        std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
        (dir, config)
    }

    #[test]
    fn a_log_its_config_owner_may_read_is_opened() {
        let (dir, config) = setup();
        let log = dir.path().join("bridge.log");
        std::fs::write(&log, "line\n").unwrap();
        chmod(&log, 0o644);
        assert!(open_named(&log, &config).is_ok());
        // Through a linked folder: the real place is checked.
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(dir.path(), &linked).unwrap();
        assert!(open_named(&linked.join("bridge.log"), &config).is_ok());
    }

    #[test]
    fn links_other_files_and_closed_files_are_refused_with_the_reason() {
        let (dir, config) = setup();
        let secret = dir.path().join("secret.key");
        std::fs::write(&secret, "key").unwrap();
        chmod(&secret, 0o600);
        let err = open_named(&secret, &config).unwrap_err().to_string();
        assert!(
            err.contains("is owned by root and not readable by the owner of the config that names it (uid 65534): skipped"),
            "{err}"
        );
        let link = dir.path().join("bridge.log");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let err = open_named(&link, &config).unwrap_err().to_string();
        assert!(
            err.ends_with("bridge.log is a symbolic link: not followed"),
            "{err}"
        );
        let err = open_named(dir.path(), &config).unwrap_err().to_string();
        assert!(err.ends_with("is not a regular file: skipped"), "{err}");
        // A FIFO would block a plain open until someone writes to it.
        let fifo = dir.path().join("fifo.log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = open_named(&fifo, &config).unwrap_err().to_string();
        assert!(
            err.ends_with("fifo.log is not a regular file: skipped"),
            "{err}"
        );

        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        chmod(&closed, 0o700);
        let inside = closed.join("bridge.log");
        std::fs::write(&inside, "line\n").unwrap();
        chmod(&inside, 0o644);
        let err = open_named(&inside, &config).unwrap_err().to_string();
        assert!(err.contains("cannot enter: skipped"), "{err}");
        // Root's own config may name it.
        std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
        assert!(open_named(&inside, &config).is_ok());
    }

    #[test]
    fn a_journal_is_read_for_a_config_whose_owner_may_read_it() {
        let (_dir, config) = setup();
        let err = may_read_journal("journald:x.service", &config)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "journald:x.service is named by a config whose owner (uid 65534) may not read the system journal (not root, not in the systemd-journal, adm, wheel group): skipped"
        );
        std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
        assert!(may_read_journal("journald:x.service", &config).is_ok());
    }

    #[test]
    fn the_owner_group_and_other_bits_apply_as_the_kernel_picks_them() {
        let (dir, _) = setup();
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(0)).unwrap();
        chmod(&file, 0o044);
        let nobody = Reader {
            uid: 65534,
            groups: vec![],
        };
        let meta = std::fs::metadata(&file).unwrap();
        // The owner's bits alone count for the owner.
        assert!(!nobody.may(&meta, READ));
        let other = Reader {
            uid: 1000,
            groups: vec![0],
        };
        assert!(other.may(&meta, READ));
    }
}
