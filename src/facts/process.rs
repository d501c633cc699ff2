//! The homeserver's process, when it runs on this machine: when it started,
//! read from `/proc`, so the watch can tell a restart from an upgrade; and
//! the config files it was given, which are the config it really runs. In a
//! container of its own the doctor cannot see it, and says nothing.

use std::path::{Path, PathBuf};

/// Clock ticks per second of `/proc/<pid>/stat`'s start time: USER_HZ,
/// fixed at 100 in Linux's user-space ABI.
const TICKS_PER_SECOND: i64 = 100;

/// A Synapse process given `config`: its `/proc` folder, its arguments,
/// and whether it is the main process (not a worker).
struct SynapseProcess {
    folder: PathBuf,
    args: Vec<String>,
    main: bool,
}

/// The Synapse processes given `config`, the main one first, then workers.
fn synapse_processes(config: &Path) -> Vec<SynapseProcess> {
    let Ok(config) = config.canonicalize() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<SynapseProcess> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let folder = PathBuf::from(format!("/proc/{pid}"));
            let args = arguments(&folder)?;
            // The name first: resolving every argument of every process
            // would cost a syscall each.
            let reads_config = args.iter().any(|arg| {
                Path::new(arg).file_name() == config.file_name()
                    && resolve(&folder, arg).is_some_and(|path| path == config)
            });
            let is_synapse = args.iter().any(|arg| arg.contains("synapse"));
            let main = args.iter().any(|arg| arg == "synapse.app.homeserver");
            (reads_config && is_synapse).then_some(SynapseProcess { folder, args, main })
        })
        .collect();
    found.sort_by_key(|process| !process.main);
    found
}

/// When the Synapse process reading `config` started, in Unix seconds: the
/// main process (`synapse.app.homeserver`) when it is there, else the
/// earliest process given that config (a worker).
pub fn homeserver_started_at(config: &Path) -> Option<i64> {
    let boot = boot_time()?;
    let processes = synapse_processes(config);
    let main = processes
        .iter()
        .filter(|p| p.main)
        .filter_map(|p| start_ticks(&p.folder))
        .min();
    let any = processes
        .iter()
        .filter_map(|p| start_ticks(&p.folder))
        .min();
    Some(boot + main.or(any)? / TICKS_PER_SECOND)
}

/// The config files and folders the Synapse process given `config` was
/// started with (`--config-path`/`-c`, repeatable, relative ones from its
/// own folder), in order; `None` when no such process runs here.
pub fn homeserver_config_paths(config: &Path) -> Option<Vec<PathBuf>> {
    let process = synapse_processes(config).into_iter().next()?;
    let mut paths = Vec::new();
    let mut args = process.args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-c" | "--config-path" => args.next().cloned(),
            _ => arg.strip_prefix("--config-path=").map(str::to_owned),
        };
        paths.extend(value.and_then(|value| resolve(&process.folder, &value)));
    }
    (!paths.is_empty()).then_some(paths)
}

fn arguments(process: &Path) -> Option<Vec<String>> {
    let raw = std::fs::read(process.join("cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
    )
}

/// An argument as a path, relative ones from the process's own folder.
fn resolve(process: &Path, arg: &str) -> Option<PathBuf> {
    let path = Path::new(arg);
    if path.is_absolute() {
        return path.canonicalize().ok();
    }
    std::fs::read_link(process.join("cwd"))
        .ok()?
        .join(path)
        .canonicalize()
        .ok()
}

/// Field 22 of `/proc/<pid>/stat`, after the command name in parentheses
/// (which may itself hold spaces and parentheses).
fn start_ticks(process: &Path) -> Option<i64> {
    let stat = std::fs::read_to_string(process.join("stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn boot_time() -> Option<i64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime ")?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_process_by_the_config_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(&config, "server_name: x\n").unwrap();
        // A stand-in whose command line names the config as Synapse's does.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; true", "synapse.app.homeserver"])
            .arg(&config)
            .spawn()
            .unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Until the child has exec'd, /proc shows the test's command line.
        let mut started = None;
        for _ in 0..100 {
            started = homeserver_started_at(&config);
            if started.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        let _ = child.wait();
        let started = started.expect("the process is found");
        assert!((now - started).abs() <= 5, "started {started}, now {now}");
        assert_eq!(homeserver_started_at(&dir.path().join("other.yaml")), None);
    }

    #[test]
    fn reads_the_config_paths_a_process_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("homeserver.yaml");
        std::fs::write(&config, "server_name: x\n").unwrap();
        std::fs::create_dir(dir.path().join("conf.d")).unwrap();
        // Debian's unit: the file, then a folder, the folder relative.
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "sleep 30; true",
                "synapse.app.homeserver",
                "--config-path",
            ])
            .arg(&config)
            .args(["-c", "conf.d"])
            .current_dir(dir.path())
            .spawn()
            .unwrap();
        let mut paths = None;
        for _ in 0..100 {
            paths = homeserver_config_paths(&config);
            if paths.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        let _ = child.wait();
        let dir = dir.path().canonicalize().unwrap();
        assert_eq!(
            paths.expect("the process is found"),
            [dir.join("homeserver.yaml"), dir.join("conf.d")]
        );
    }
}
