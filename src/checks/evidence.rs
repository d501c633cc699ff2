//! Evidence in time: a problem the logs show is judged against the
//! target's last proof of health. Lines older than that proof describe the
//! past: the finding says when it was resolved instead of failing the
//! target. Live facts win over logs: a ping that fails now leaves every
//! log problem current, a ping that passes now is the newest proof.

use super::{Context, Status, Verdict};
use crate::knowledge::scan::EntryHits;
use crate::matrix::Answer;

/// Problems resolved within this long ago that had come back after an
/// earlier proof of health are a warning: the bridge is flapping.
const RECENT_MS: i64 = 60 * 60 * 1000;

/// The newest evidence that the target worked, and what it was.
pub struct Proof {
    pub at_ms: i64,
    pub what: String,
    /// The times of the proofs of health the logs show (the first and
    /// last ones, and those of the lines kept).
    pub in_logs_ms: Vec<i64>,
}

/// The target's last proof of health; `None` when there is none, or when
/// the live ping fails now.
pub fn last_proof(ctx: &Context) -> Option<Proof> {
    let logs = ctx.target.logs_scanned.as_ref()?;
    let health: Vec<&EntryHits> = logs
        .hits
        .iter()
        .chain(logs.homeserver_hits.iter().flatten().flatten())
        .filter(|hits| hits.entry.is_health())
        .collect();
    let in_logs_ms: Vec<i64> = health
        .iter()
        .flat_map(|h| {
            let kept = h.lines().into_iter().filter_map(|line| line.time_ms);
            kept.chain(h.earliest_ms).chain(h.latest_ms)
        })
        .collect();
    let ping = ctx.target.live.as_ref().and_then(|live| live.ping.as_ref());
    match ping {
        Some(Ok(Some(answer))) if passed(answer) => Some(Proof {
            at_ms: logs.read_at_ms,
            what: "a ping through the homeserver passed just now".to_owned(),
            in_logs_ms,
        }),
        // A ping made that did not pass: the problem may well be current.
        Some(Ok(Some(_)) | Err(_)) => None,
        // No live ping (offline, or a homeserver without the endpoint).
        Some(Ok(None)) | None => {
            let newest = health.iter().max_by_key(|h| h.latest_ms)?;
            Some(Proof {
                at_ms: newest.latest_ms?,
                what: newest.entry.title.clone(),
                in_logs_ms,
            })
        }
    }
}

fn passed(answer: &Answer) -> bool {
    answer.is_success()
        && answer
            .json
            .as_ref()
            .is_some_and(|json| json.get("duration_ms").is_some())
}

/// `verdict`, built on log lines written between `earliest_ms` and
/// `latest_ms`, as of now: unchanged when the lines are newer than the last
/// proof of health (or have no time), else resolved: `info`, or `warn` when
/// it came back after an earlier proof of health within the last hour.
pub fn judge(
    ctx: &Context,
    verdict: Verdict,
    earliest_ms: Option<i64>,
    latest_ms: Option<i64>,
) -> Verdict {
    if !matches!(verdict.status, Status::Fail | Status::Warn) {
        return verdict;
    }
    let (Some(proof), Some(latest), Some(logs)) =
        (last_proof(ctx), latest_ms, ctx.target.logs_scanned.as_ref())
    else {
        return verdict;
    };
    if latest >= proof.at_ms {
        return verdict;
    }
    // It came back: the problem was seen, then health, then the problem.
    let first = earliest_ms.unwrap_or(latest);
    let came_back = proof
        .in_logs_ms
        .iter()
        .any(|&health| first < health && health < latest);
    let status = if came_back && logs.read_at_ms - latest < RECENT_MS {
        Status::Warn
    } else {
        Status::Info
    };
    let when = match earliest_ms.filter(|first| *first < latest) {
        Some(first) => format!("between {} and {}", clock(first), clock(latest)),
        None => format!("at {}", clock(latest)),
    };
    let about = format!(
        "Resolved: seen {when}, none since {} ({}).",
        proof.what,
        clock(proof.at_ms)
    );
    // Before the detail's first line, which stays the line that is kept
    // when the quoted log lines are withheld.
    let detail = match verdict.detail.split_once('\n') {
        Some((first, quoted)) => format!("{about} {first}\n{quoted}"),
        None => format!("{about} {}", verdict.detail),
    };
    Verdict {
        status,
        title: format!("resolved: {}", verdict.title),
        detail,
        resolved_at: Some(crate::shared::rfc3339(proof.at_ms.div_euclid(1000))),
        ..verdict
    }
}

/// A time as the report shows it (UTC, to the second).
fn clock(ms: i64) -> String {
    crate::shared::rfc3339(ms.div_euclid(1000))
}
