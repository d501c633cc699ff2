//! Prometheus metrics of the running doctor (`metrics.listen`): each
//! target's health and failing checks from the last watch run, when that
//! was, the transactions received, and how long chat commands take.

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::checks::{Finding, Status};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TargetLabel {
    target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    target: String,
    check: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabel {
    command: String,
}

type Durations = Family<CommandLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    target_healthy: Family<TargetLabel, Gauge>,
    check_failing: Family<CheckLabels, Gauge>,
    last_check: Gauge,
    transactions: Counter,
    command_duration: Durations,
}

/// Command durations from 10 ms to about 40 s.
/// The router of the metrics listener: `GET /metrics` only.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

fn command_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            target_healthy: Family::default(),
            check_failing: Family::default(),
            last_check: Gauge::default(),
            transactions: Counter::default(),
            command_duration: Durations::new_with_constructor(command_buckets),
        };
        {
            let mut registry = metrics.lock();
            registry.register(
                "bridge_doctor_target_healthy",
                "1 when the target has no failing check, else 0",
                metrics.target_healthy.clone(),
            );
            registry.register(
                "bridge_doctor_check_failing",
                "1 when the check fails for the target, else 0",
                metrics.check_failing.clone(),
            );
            registry.register(
                "bridge_doctor_last_check_timestamp_seconds",
                "when the targets were last checked (Unix time)",
                metrics.last_check.clone(),
            );
            registry.register(
                "bridge_doctor_transactions",
                "transactions received from the homeserver",
                metrics.transactions.clone(),
            );
            registry.register(
                "bridge_doctor_command_duration_seconds",
                "how long chat commands take to answer",
                metrics.command_duration.clone(),
            );
        }
        metrics
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state of every target and check after a check run.
    pub fn record_run(&self, findings: &[Finding]) {
        self.target_healthy.clear();
        self.check_failing.clear();
        let mut healthy: std::collections::BTreeMap<&str, bool> = Default::default();
        for finding in findings {
            let failing = matches!(finding.status, Status::Fail | Status::Error);
            self.check_failing
                .get_or_create(&CheckLabels {
                    target: finding.target.clone(),
                    check: finding.check.clone(),
                })
                .set(i64::from(failing));
            *healthy.entry(&finding.target).or_insert(true) &= !failing;
        }
        for (target, healthy) in healthy {
            self.target_healthy
                .get_or_create(&TargetLabel {
                    target: target.to_owned(),
                })
                .set(i64::from(healthy));
        }
        self.last_check
            .set(time::OffsetDateTime::now_utc().unix_timestamp());
    }

    pub fn transaction_received(&self) {
        self.transactions.inc();
    }

    pub fn command_answered(&self, command: &str, seconds: f64) {
        self.command_duration
            .get_or_create(&CommandLabel {
                command: command.to_owned(),
            })
            .observe(seconds);
    }

    /// The text exposition (OpenMetrics, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.lock());
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(target: &str, check: &str, status: Status) -> Finding {
        Finding {
            check: check.into(),
            target: target.into(),
            status,
            title: String::new(),
            detail: String::new(),
            evidence: Default::default(),
            fix: Vec::new(),
            faq: None,
            resolved_at: None,
        }
    }

    #[test]
    fn the_contract_series_are_exposed() {
        let metrics = Metrics::default();
        metrics.record_run(&[
            finding("tg", "ping.connection_failed", Status::Fail),
            finding("tg", "tokens.mismatch", Status::Pass),
            finding("doctor", "tokens.mismatch", Status::Pass),
        ]);
        metrics.transaction_received();
        metrics.command_answered("check", 0.2);
        let text = metrics.render();
        for line in [
            "bridge_doctor_target_healthy{target=\"tg\"} 0",
            "bridge_doctor_target_healthy{target=\"doctor\"} 1",
            "bridge_doctor_check_failing{target=\"tg\",check=\"ping.connection_failed\"} 1",
            "bridge_doctor_check_failing{target=\"tg\",check=\"tokens.mismatch\"} 0",
            "bridge_doctor_transactions_total 1",
            "bridge_doctor_command_duration_seconds_count{command=\"check\"} 1",
            "bridge_doctor_last_check_timestamp_seconds ",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        // Healthy again.
        metrics.record_run(&[finding("tg", "ping.connection_failed", Status::Pass)]);
        assert!(
            metrics
                .render()
                .contains("bridge_doctor_target_healthy{target=\"tg\"} 1")
        );
    }
}
