//! Watch mode: while `run` is up, every target is checked again each
//! `watch.interval_seconds`; a target whose failing checks change is
//! announced once in each admin's management room (and once more when it
//! is healthy again). A failure that persists is not repeated: what failed
//! at the last run is kept in the store, also across restarts.

use std::collections::BTreeSet;
use std::sync::Arc;

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

/// Checks every target every interval until the process ends.
pub async fn watch(config: Config, bot: Arc<Bot>, metrics: Arc<Metrics>) {
    let Some(interval) = config.watch_interval else {
        return;
    };
    loop {
        if let Err(err) = run_once(&config, &bot, &metrics).await {
            tracing::warn!("watch: could not compare with the last run: {err}");
        }
        tokio::time::sleep(interval).await;
    }
}

async fn run_once(
    config: &Config,
    bot: &Bot,
    metrics: &Metrics,
) -> Result<(), crate::service::store::StoreError> {
    let mut facts = Facts::load(config);
    facts.observe(config, false).await;
    let findings = checks::run_all(&facts);
    metrics.record_run(&findings);
    let now = failing(&findings);
    let store = bot.store();
    let before = store.failing_checks().await?;
    let report = Report::new(&facts, findings);
    for change in changes(&before, &now) {
        tracing::info!(?change, "watch: a target changed");
        bot.notify_admins(crate::render::matrix::alert(&change_view(&change), &report))
            .await;
    }
    for (target, checks) in &now {
        store.set_failing_checks(target, checks).await?;
    }
    Ok(())
}

/// The change as the renderer reads it.
fn change_view(change: &Change) -> crate::render::matrix::Alert<'_> {
    match change {
        Change::Failing { target, checks } => {
            crate::render::matrix::Alert::Failing { target, checks }
        }
        Change::Recovered { target } => crate::render::matrix::Alert::Recovered { target },
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
}
