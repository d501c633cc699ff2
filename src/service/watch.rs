//! Watch mode: while `run` is up, every target is checked again each
//! `watch.interval_seconds`; a target whose failing checks change is
//! announced once in each admin's management room (and once more when it
//! is healthy again). A failure that persists is not repeated: what failed
//! at the last run is kept in the store, also across restarts. A new
//! failure found on the interval is announced only when the next run finds
//! it too, so a bridge restarted between two runs raises no alert; one found
//! right after a config or registration changed is announced at once.
//! Recovery is announced only when a target stays healthy for two runs in a
//! row, so a flapping bridge does not flood the room.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::checks::{self, Finding, Status};
use crate::facts::Facts;
use crate::input::config::Config;
use crate::render::report::Report;
use crate::service::bot::Bot;
use crate::service::metrics::Metrics;
use crate::service::store::FailingChecks;

/// What changed for one target between two runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// These checks fail now and did not before.
    Failing { target: String, checks: Vec<String> },
    /// Everything that failed passes again.
    Recovered { target: String },
}

/// The failing checks of each target in `findings` (every target listed).
pub fn failing(findings: &[Finding]) -> FailingChecks {
    let mut failing = FailingChecks::new();
    for finding in findings {
        let checks = failing.entry(finding.target.clone()).or_default();
        if matches!(finding.status, Status::Fail | Status::Error) {
            checks.insert(finding.check.clone());
        }
    }
    failing
}

/// The changes worth an alert from `before` to `now`; a target not seen
/// before counts as healthy before.
pub fn changes(before: &FailingChecks, now: &FailingChecks) -> Vec<Change> {
    let empty = BTreeSet::new();
    let mut changes = Vec::new();
    for (target, failing) in now {
        let was = before.get(target).unwrap_or(&empty);
        let new: Vec<String> = failing.difference(was).cloned().collect();
        if !new.is_empty() {
            changes.push(Change::Failing {
                target: target.clone(),
                checks: new,
            });
        } else if failing.is_empty() && !was.is_empty() {
            changes.push(Change::Recovered {
                target: target.clone(),
            });
        }
    }
    changes
}

/// What started a watch run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The interval passed: a failure may be a restart in progress.
    Interval,
    /// A config or registration changed: what fails now is its effect.
    FileChanged,
}

/// Holds a change back for one run. A recovery is announced when the target
/// is still healthy at the next run, dropped when it fails again meanwhile;
/// a new failure found on the interval is announced when the next run finds
/// the target failing still, dropped when it is healthy again by then.
#[derive(Default)]
pub struct Debounce {
    recovering: BTreeSet<String>,
    failing: BTreeSet<String>,
}

impl Debounce {
    /// The changes to announce now, and the targets whose state must not be
    /// saved yet (the last saved state stays the reference).
    pub fn settle(
        &mut self,
        changes: Vec<Change>,
        now: &FailingChecks,
        trigger: Trigger,
    ) -> (Vec<Change>, BTreeSet<String>) {
        let mut announce = Vec::new();
        let mut held = BTreeSet::new();
        for change in changes {
            match &change {
                Change::Recovered { target } if self.recovering.insert(target.clone()) => {
                    held.insert(target.clone());
                }
                Change::Recovered { target } => {
                    self.recovering.remove(target);
                    announce.push(change);
                }
                Change::Failing { target, .. }
                    if trigger == Trigger::Interval && self.failing.insert(target.clone()) =>
                {
                    held.insert(target.clone());
                }
                Change::Failing { target, .. } => {
                    self.failing.remove(target);
                    announce.push(change);
                }
            }
        }
        // A failure held last run and not failing anew now: it passed.
        self.failing.retain(|t| held.contains(t));
        // Held last run and healthy again now: announce; failing again: forget.
        let waiting: Vec<String> = self
            .recovering
            .iter()
            .filter(|t| !held.contains(*t))
            .cloned()
            .collect();
        for target in waiting {
            self.recovering.remove(&target);
            if now.get(&target).is_some_and(BTreeSet::is_empty) {
                announce.push(Change::Recovered { target });
            }
        }
        (announce, held)
    }
}

/// A short SHA-256 of `bytes` (64 bits in hex): tells contents apart
/// without keeping them.
pub(super) fn hash(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))[..16].to_owned()
}

/// What tells one running homeserver from another: software and version,
/// when its process started (when it runs on this machine), its config.
pub fn homeserver_prints(homeserver: &crate::facts::HomeserverFacts) -> BTreeMap<String, String> {
    let mut prints = BTreeMap::new();
    if let Some(software) = &homeserver.software {
        prints.insert(
            "homeserver".to_owned(),
            format!("{} {}", software.name, software.version),
        );
    }
    if let Some(Ok(config)) = &homeserver.config {
        // Only the watch asks when the process started: `check` need not
        // walk /proc.
        if let Some(started) = crate::facts::process::homeserver_started_at(&config.path) {
            prints.insert("homeserver_started".to_owned(), started.to_string());
        }
        if let Ok(bytes) = std::fs::read(&config.path) {
            prints.insert("homeserver_config".to_owned(), hash(&bytes));
        }
    }
    prints
}

/// Fingerprints of what makes a target work: its files, its tokens and
/// the homeserver's prints. Hashes only: a value never leaves the process.
pub fn fingerprints(
    target: &crate::facts::TargetFacts,
    homeserver: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut prints = homeserver.clone();
    if let Ok(bytes) = std::fs::read(&target.registration_path) {
        prints.insert("registration".to_owned(), hash(&bytes));
    }
    if let Some(config) = target.config()
        && let Ok(bytes) = std::fs::read(config.path())
    {
        prints.insert("config".to_owned(), hash(&bytes));
    }
    if let Some(registration) = target.registration() {
        let tokens = format!(
            "{}\n{}",
            registration.as_token.as_deref().unwrap_or_default(),
            registration.hs_token.as_deref().unwrap_or_default()
        );
        prints.insert("tokens".to_owned(), hash(tokens.as_bytes()));
    }
    prints
}

/// What differs from when the target was last healthy, in words.
pub fn what_changed(
    healthy: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let differs = |key: &str| healthy.contains_key(key) && healthy.get(key) != now.get(key);
    let mut changed = Vec::new();
    if differs("tokens") {
        changed.push("its tokens were regenerated".to_owned());
    } else if differs("registration") {
        changed.push("its registration file changed".to_owned());
    }
    if differs("config") {
        changed.push("its config file changed".to_owned());
    }
    if differs("homeserver") {
        changed.push(format!(
            "the homeserver changed from {} to {}",
            healthy["homeserver"],
            now.get("homeserver").map_or("nothing", String::as_str)
        ));
    } else if differs("homeserver_started")
        && let Some(started) = now.get("homeserver_started").and_then(|s| s.parse().ok())
    {
        // An upgrade is a restart too; a homeserver that is not running
        // now has no start time, and the checks say it is down.
        changed.push(format!(
            "the homeserver restarted (at {})",
            crate::shared::rfc3339(started)
        ));
    }
    if differs("homeserver_config") {
        changed.push("the homeserver's config changed".to_owned());
    }
    changed
}

/// Checks every target every interval, and at once when a config or
/// registration changes, until the process ends.
pub async fn watch(config: Config, bot: Arc<Bot>, metrics: Arc<Metrics>) {
    let Some(interval) = config.watch_interval else {
        return;
    };
    let (changed, mut changes) = tokio::sync::mpsc::channel(1);
    let _watcher = watch_files(&watched_files(&config), changed);
    let mut memory = Memory::default();
    let mut trigger = Trigger::Interval;
    loop {
        if let Err(err) = run_once(&config, &bot, &metrics, &mut memory, trigger).await {
            tracing::warn!("watch: could not compare with the last run: {err}");
        }
        trigger = tokio::select! {
            () = tokio::time::sleep(interval) => Trigger::Interval,
            Some(()) = changes.recv() => {
                // Let the writer finish (and a burst of writes settle).
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                while changes.try_recv().is_ok() {}
                tracing::info!("watch: a config or registration file changed; checking now");
                Trigger::FileChanged
            }
        };
    }
}

/// Every file whose change should be checked at once: the doctor's config,
/// the homeserver's, and each target's config and registration.
fn watched_files(config: &Config) -> Vec<std::path::PathBuf> {
    let facts = Facts::load(config);
    let mut files = vec![config.path.clone()];
    files.extend(crate::facts::homeserver_files(&config.homeserver.config));
    for target in &facts.targets {
        files.push(target.registration_path.clone());
        files.extend(target.config().map(|c| c.path().to_owned()));
    }
    files
        .into_iter()
        .filter_map(|f| std::path::absolute(f).ok())
        .collect()
}

/// Tells `changed` when one of `files` is written, created, replaced or
/// removed. Their folders are watched, because editors and generators
/// replace a file by renaming a new one over it. `None` (logged) when the
/// system refuses file notifications; the interval still applies.
fn watch_files(
    files: &[std::path::PathBuf],
    changed: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let wanted: BTreeSet<std::path::PathBuf> = files.iter().cloned().collect();
    let handler = move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|p| wanted.contains(p))
        {
            let _ = changed.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(err) => {
            tracing::warn!("watch: no file notifications ({err}); checking on the interval only");
            return None;
        }
    };
    let folders: BTreeSet<&std::path::Path> = files.iter().filter_map(|f| f.parent()).collect();
    for folder in folders {
        if let Err(err) = watcher.watch(folder, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %folder.display(), "watch: cannot watch the folder: {err}");
        }
    }
    Some(watcher)
}

/// What the watch keeps between runs in memory.
#[derive(Default)]
struct Memory {
    debounce: Debounce,
    /// The healthy fingerprints last written per target, so an unchanged
    /// target costs no write.
    healthy_prints: BTreeMap<String, String>,
}

async fn run_once(
    config: &Config,
    bot: &Bot,
    metrics: &Metrics,
    memory: &mut Memory,
    trigger: Trigger,
) -> Result<(), crate::service::store::StoreError> {
    let mut facts = Facts::load(config);
    facts.observe(config, false).await;
    let findings = checks::run_all(&facts);
    metrics.record_run(&findings);
    let now = failing(&findings);
    let store = bot.store();
    let before = store.failing_checks().await?;
    let (announce, held) = memory
        .debounce
        .settle(changes(&before, &now), &now, trigger);
    let homeserver = homeserver_prints(&facts.homeserver);
    if !announce.is_empty() {
        let report = Report::new(&facts, findings);
        announce_changes(bot, &announce, &report, &facts, &homeserver).await?;
    }
    let nothing = BTreeSet::new();
    for (target, checks) in now.iter().filter(|(t, _)| !held.contains(*t)) {
        if before.get(target).unwrap_or(&nothing) != checks {
            store.set_failing_checks(target, checks).await?;
        }
        let Some(target_facts) = facts.targets.iter().find(|t| &t.id == target) else {
            continue;
        };
        if checks.is_empty() {
            let prints =
                serde_json::to_string(&fingerprints(target_facts, &homeserver)).unwrap_or_default();
            if memory.healthy_prints.get(target) != Some(&prints) {
                store.set_healthy_fingerprints(target, &prints).await?;
                memory.healthy_prints.insert(target.clone(), prints);
            }
        }
    }
    Ok(())
}

/// One notice per change in the admins' rooms, each kept in the history.
async fn announce_changes(
    bot: &Bot,
    announce: &[Change],
    report: &Report,
    facts: &Facts,
    homeserver: &BTreeMap<String, String>,
) -> Result<(), crate::service::store::StoreError> {
    let store = bot.store();
    for change in announce {
        tracing::info!(?change, "watch: a target changed");
        let changed = match change {
            Change::Failing { target, .. } => match (
                facts.targets.iter().find(|t| &t.id == target),
                store.healthy_fingerprints(target).await?,
            ) {
                (Some(target), Some(healthy)) => what_changed(
                    &serde_json::from_str(&healthy).unwrap_or_default(),
                    &fingerprints(target, homeserver),
                ),
                _ => Vec::new(),
            },
            Change::Recovered { .. } => Vec::new(),
        };
        bot.notify_admins(crate::render::matrix::alert(
            &alert_of(change, &changed),
            report,
        ))
        .await;
        store.add_history(&history_entry(change)).await?;
    }
    Ok(())
}

/// The change as the renderer reads it.
fn alert_of<'a>(change: &'a Change, changed: &'a [String]) -> crate::render::matrix::Alert<'a> {
    match change {
        Change::Failing { target, checks } => crate::render::matrix::Alert::Failing {
            target,
            checks,
            changed,
        },
        Change::Recovered { target } => crate::render::matrix::Alert::Recovered { target },
    }
}

fn history_entry(change: &Change) -> crate::service::store::HistoryEntry {
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    match change {
        Change::Failing { target, checks } => crate::service::store::HistoryEntry {
            target: target.clone(),
            at,
            change: "failing".to_owned(),
            checks: checks.join(", "),
        },
        Change::Recovered { target } => crate::service::store::HistoryEntry {
            target: target.clone(),
            at,
            change: "recovered".to_owned(),
            checks: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(entries: &[(&str, &[&str])]) -> FailingChecks {
        entries
            .iter()
            .map(|(t, c)| ((*t).to_owned(), c.iter().map(|c| (*c).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn only_changes_are_announced() {
        let healthy = state(&[("tg", &[]), ("doctor", &[])]);
        let down = state(&[("tg", &["ping.connection_failed"]), ("doctor", &[])]);
        assert_eq!(
            changes(&healthy, &down),
            [Change::Failing {
                target: "tg".into(),
                checks: vec!["ping.connection_failed".into()]
            }]
        );
        assert!(
            changes(&down, &down).is_empty(),
            "a persisting failure is not repeated"
        );
        let worse = state(&[
            ("tg", &["ping.connection_failed", "logs.ping_failed"]),
            ("doctor", &[]),
        ]);
        assert_eq!(
            changes(&down, &worse),
            [Change::Failing {
                target: "tg".into(),
                checks: vec!["logs.ping_failed".into()]
            }],
            "only what newly fails"
        );
        let better = state(&[("tg", &["logs.ping_failed"]), ("doctor", &[])]);
        assert!(
            changes(&worse, &better).is_empty(),
            "partly better is not yet healthy"
        );
        assert_eq!(
            changes(&better, &healthy),
            [Change::Recovered {
                target: "tg".into()
            }]
        );
        assert_eq!(
            changes(&FailingChecks::new(), &healthy),
            [],
            "first run, healthy: silence"
        );
    }

    #[test]
    fn a_recovery_is_announced_when_it_holds_for_two_runs() {
        let down = state(&[("tg", &["ping.connection_failed"])]);
        let up = state(&[("tg", &[])]);
        let mut debounce = Debounce::default();
        // First healthy run: held back, and the failure stays the reference.
        let (announce, held) = debounce.settle(changes(&down, &up), &up, Trigger::Interval);
        assert!(announce.is_empty());
        assert!(held.contains("tg"));
        // Still healthy: announced.
        let (announce, held) = debounce.settle(changes(&down, &up), &up, Trigger::Interval);
        assert_eq!(
            announce,
            [Change::Recovered {
                target: "tg".into()
            }]
        );
        assert!(held.is_empty());

        // Flapping: healthy once, failing again: nothing at all.
        let mut debounce = Debounce::default();
        let _ = debounce.settle(changes(&down, &up), &up, Trigger::Interval);
        let (announce, _) = debounce.settle(changes(&down, &down), &down, Trigger::Interval);
        assert!(announce.is_empty(), "{announce:?}");
    }

    #[test]
    fn a_failure_on_the_interval_is_announced_when_the_next_run_finds_it_too() {
        let up = state(&[("tg", &[])]);
        let down = state(&[("tg", &["ping.connection_failed"])]);
        let failing = || {
            vec![Change::Failing {
                target: "tg".into(),
                checks: vec!["ping.connection_failed".into()],
            }]
        };
        let mut debounce = Debounce::default();
        // First failing run: held, and the healthy state stays the reference.
        let (announce, held) = debounce.settle(changes(&up, &down), &down, Trigger::Interval);
        assert!(announce.is_empty());
        assert!(held.contains("tg"));
        // Still failing: announced.
        let (announce, held) = debounce.settle(changes(&up, &down), &down, Trigger::Interval);
        assert_eq!(announce, failing());
        assert!(held.is_empty());

        // Restarted between two runs: failing once, then healthy: nothing.
        let mut debounce = Debounce::default();
        let _ = debounce.settle(changes(&up, &down), &down, Trigger::Interval);
        let (announce, _) = debounce.settle(changes(&up, &up), &up, Trigger::Interval);
        assert!(announce.is_empty(), "{announce:?}");
        let (announce, _) = debounce.settle(changes(&up, &down), &down, Trigger::Interval);
        assert!(
            announce.is_empty(),
            "a later failure is held anew: {announce:?}"
        );

        // Right after a file changed: at once.
        let mut debounce = Debounce::default();
        let (announce, held) = debounce.settle(changes(&up, &down), &down, Trigger::FileChanged);
        assert_eq!(announce, failing());
        assert!(held.is_empty());
    }

    fn prints(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn what_changed_names_files_tokens_and_the_homeserver_never_values() {
        let healthy = prints(&[
            ("config", "a1"),
            ("registration", "b1"),
            ("tokens", "c1"),
            ("homeserver", "Synapse 1.162.0"),
        ]);
        assert!(what_changed(&healthy, &healthy).is_empty());
        let now = prints(&[
            ("config", "a2"),
            ("registration", "b2"),
            ("tokens", "c2"),
            ("homeserver", "Synapse 1.163.2"),
        ]);
        assert_eq!(
            what_changed(&healthy, &now),
            [
                "its tokens were regenerated",
                "its config file changed",
                "the homeserver changed from Synapse 1.162.0 to Synapse 1.163.2"
            ]
        );
        let only_file = prints(&[
            ("config", "a1"),
            ("registration", "b2"),
            ("tokens", "c1"),
            ("homeserver", "Synapse 1.162.0"),
        ]);
        assert_eq!(
            what_changed(&healthy, &only_file),
            ["its registration file changed"]
        );
    }

    #[test]
    fn a_restart_or_a_new_homeserver_config_is_named_an_upgrade_once() {
        let healthy = prints(&[
            ("homeserver", "Synapse 1.163.2"),
            ("homeserver_started", "1795000000"),
            ("homeserver_config", "h1"),
        ]);
        let restarted = prints(&[
            ("homeserver", "Synapse 1.163.2"),
            ("homeserver_started", "1795003600"),
            ("homeserver_config", "h2"),
        ]);
        assert_eq!(
            what_changed(&healthy, &restarted),
            [
                "the homeserver restarted (at 2026-11-18T12:06:40Z)",
                "the homeserver's config changed"
            ]
        );
        let upgraded = prints(&[
            ("homeserver", "Synapse 1.164.0"),
            ("homeserver_started", "1795003600"),
            ("homeserver_config", "h1"),
        ]);
        assert_eq!(
            what_changed(&healthy, &upgraded),
            ["the homeserver changed from Synapse 1.163.2 to Synapse 1.164.0"]
        );
        // Down now: no start time, and no claim of a restart.
        let down = prints(&[
            ("homeserver", "Synapse 1.163.2"),
            ("homeserver_config", "h1"),
        ]);
        assert!(what_changed(&healthy, &down).is_empty());
    }

    #[test]
    fn fingerprints_hash_tokens_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registration.yaml");
        let yaml = "id: tg\nurl: null\nas_token: SECRET-AS-TOKEN\nhs_token: SECRET-HS-TOKEN\nsender_localpart: s\nnamespaces: {}\n";
        std::fs::write(&path, yaml).unwrap();
        let target = crate::facts::bridge_target(&crate::input::config::BridgeEntry {
            id: None,
            config: None,
            registration: path.clone(),
            logs: Vec::new(),
            found: None,
            deployment: Default::default(),
        });
        let homeserver = BTreeMap::from([("homeserver".to_owned(), "Synapse 1.163.2".to_owned())]);
        let before = fingerprints(&target, &homeserver);
        assert!(before.values().all(|v| !v.contains("SECRET")), "{before:?}");
        std::fs::write(&path, yaml.replace("SECRET-AS-TOKEN", "NEW-AS-TOKEN")).unwrap();
        let target = crate::facts::bridge_target(&crate::input::config::BridgeEntry {
            id: None,
            config: None,
            registration: path,
            logs: Vec::new(),
            found: None,
            deployment: Default::default(),
        });
        let after = fingerprints(&target, &homeserver);
        assert_eq!(
            what_changed(&before, &after),
            ["its tokens were regenerated"]
        );
    }
}
