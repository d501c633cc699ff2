//! Homeserver -> bridge: the appservice ping, asked of the homeserver with
//! the target's as_token, tells whether the homeserver can deliver to it.

use super::{Check, Context, Verdict};
use crate::facts::database::DatabaseState;
use crate::facts::{Mode, TargetKind};
use crate::matrix::{Answer, ConnectError};

pub const CHECKS: &[Check] = &[
    Check {
        id: "ping.connection_failed",
        run: connection_failed,
    },
    Check {
        id: "ping.timeout",
        run: timeout,
    },
    Check {
        id: "ping.bad_status",
        run: bad_status,
    },
    Check {
        id: "ping.id_mismatch",
        run: id_mismatch,
    },
    Check {
        id: "ping.unsupported",
        run: unsupported,
    },
    Check {
        id: "ping.backoff",
        run: backoff,
    },
];

const FAQ_ANCHOR: &str = "homeserver---bridge-connection-is-not-working";

/// The ping's answer, or the verdict for when there is none to judge.
pub fn ping_answer<'a>(ctx: &'a Context) -> Result<Option<&'a Answer>, Verdict> {
    let live = ctx
        .target
        .live
        .as_ref()
        .ok_or_else(|| Verdict::skip("offline: no network probe was made"))?;
    match &live.ping {
        None => Err(Verdict::skip(
            "no ping was made (homeserver unreachable, or no as_token or id)",
        )),
        Some(Err(error)) => Err(Verdict::skip(format!(
            "the ping request failed: {}",
            error.message()
        ))),
        Some(Ok(answer)) => Ok(answer.as_ref()),
    }
}

/// A ping the homeserver could not even start, for reasons other checks own.
fn answered_by_homeserver(answer: &Answer) -> bool {
    !(answer.errcode_is("M_UNKNOWN_TOKEN") || answer.errcode_is("M_MISSING_TOKEN"))
}

/// Runs `judge` on a real ping answer; everything else passes or skips.
fn with_answer(ctx: &Context, pass: &str, judge: impl Fn(&Answer) -> Option<Verdict>) -> Verdict {
    match ping_answer(ctx) {
        Err(skip) => skip,
        Ok(None) => Verdict::skip("the homeserver has no ping endpoint"),
        Ok(Some(answer)) if !answered_by_homeserver(answer) => {
            Verdict::skip("the homeserver refused the as_token (see tokens.as_token_rejected)")
        }
        Ok(Some(answer)) => judge(answer).unwrap_or_else(|| Verdict::pass(pass)),
    }
}

fn url(ctx: &Context) -> String {
    ctx.target
        .registration()
        .and_then(|r| r.url().map(str::to_owned))
        .unwrap_or_else(|| "(unset)".to_owned())
}

fn reach_fix(ctx: &Context) -> Vec<String> {
    let mut steps = Vec::new();
    if ctx.target.kind == TargetKind::Doctor && ctx.facts.mode == Mode::Check {
        steps.push("If `bridge-doctor run` is not running, start it: nothing else answers on this address.".to_owned());
    }
    steps.extend([
        format!("Check that the bridge is running and listens on the host and port of the registration's `url` ({}).", url(ctx)),
        "The homeserver uses the registration's `url`, not the bridge config: if `appservice.address` changed, copy it into the registration the homeserver loads and restart the homeserver.".to_owned(),
        "When the homeserver runs in a container, `localhost` is the container itself: use an address the container can reach.".to_owned(),
        "Make the bridge listen on an interface the homeserver can reach (`appservice.hostname`: 0.0.0.0 or the right address, not 127.0.0.1 across hosts).".to_owned(),
    ]);
    steps
}

fn connection_failed(ctx: &Context) -> Verdict {
    with_answer(
        ctx,
        "the homeserver can connect to the appservice",
        |answer| {
            let broken_ok = answer.is_success()
                && answer
                    .json
                    .as_ref()
                    .and_then(|j| j.get("duration_ms"))
                    .is_none();
            if !(answer.errcode_is("M_CONNECTION_FAILED") || broken_ok) {
                return None;
            }
            let title = format!(
                "the homeserver cannot connect to the appservice at {}",
                url(ctx)
            );
            // The doctor being down during `check` is expected when `run` is
            // not up, and so is a bridge that never started (no database yet).
            let never_started = ctx
                .target
                .database
                .as_ref()
                .is_some_and(|d| d.state == DatabaseState::NotCreated);
            let verdict = if ctx.target.kind == TargetKind::Doctor && ctx.facts.mode == Mode::Check
            {
                Verdict::warn(title)
            } else if never_started {
                Verdict::warn(format!("{title}: the bridge has not started yet"))
            } else {
                Verdict::fail(title)
            };
            Some(
            verdict
                .detail(format!("The homeserver's ping answered {}. This is the homeserver's own error while connecting to the bridge, not an error of the bridge.", answer.summary()))
                .evidence("field", "url")
                .evidence("homeserver_error", crate::shared::redact::line(answer.error.as_deref().unwrap_or_default()))
                .fix(reach_fix(ctx))
                .faq(FAQ_ANCHOR),
        )
        },
    )
}

fn timeout(ctx: &Context) -> Verdict {
    if let Some(verdict) = doctor_outwaited(ctx) {
        return verdict;
    }
    with_answer(
        ctx,
        "the appservice answers the homeserver in time",
        |answer| {
            answer
                .errcode_is("M_CONNECTION_TIMEOUT")
                .then(|| timed_out(ctx, format!("The ping answered {}.", answer.summary())))
        },
    )
}

/// The doctor's own ping request ran out of time while the homeserver
/// answered the requests made beside it: the homeserver is waiting on the
/// appservice, which took the connection and never answered (Synapse
/// itself waits 60 s before it says so).
fn doctor_outwaited(ctx: &Context) -> Option<Verdict> {
    let live = ctx.target.live.as_ref()?;
    let Some(Err(ConnectError::Timeout(_))) = &live.ping else {
        return None;
    };
    let homeserver_answers = matches!(&live.whoami_sender, Some(Ok(_)));
    homeserver_answers.then(|| {
        timed_out(
            ctx,
            format!(
                "The homeserver answered the doctor's other requests at once, but not its ping within {} s: it was still waiting for the appservice at {}, which accepted the connection and never answered.",
                crate::facts::PROBE_TIMEOUT.as_secs(),
                url(ctx)
            ),
        )
    })
}

fn timed_out(ctx: &Context, detail: String) -> Verdict {
    Verdict::fail("the homeserver's connection to the appservice timed out")
        .detail(detail)
        .evidence("field", "url")
        .fix([
            format!("Check that nothing (firewall, wrong host in `url` = {}) swallows the connection.", url(ctx)),
            "Check that the bridge is not stuck (high load, a blocked database); its log shows whether requests arrive.".to_owned(),
        ])
        .faq(FAQ_ANCHOR)
}

/// The status the bridge answered the homeserver with, from `M_BAD_STATUS`.
pub fn bad_status_code(answer: &Answer) -> Option<u64> {
    if !answer.errcode_is("M_BAD_STATUS") {
        return None;
    }
    answer.json.as_ref()?.get("status")?.as_u64()
}

/// The body the bridge answered the homeserver with, from `M_BAD_STATUS`.
pub fn bad_status_body(answer: &Answer) -> String {
    let body = answer
        .json
        .as_ref()
        .and_then(|j| j.get("body"))
        .and_then(|b| b.as_str())
        .unwrap_or_default();
    crate::shared::redact::line(body)
}

fn bad_status(ctx: &Context) -> Verdict {
    with_answer(
        ctx,
        "the appservice answers the ping with success",
        |answer| {
            let status = bad_status_code(answer)?;
            // 401/403 are the bridge rejecting the hs_token: tokens.hs_token_rejected owns those.
            if status == 401 || status == 403 {
                return None;
            }
            let body = bad_status_body(answer);
            Some(
            Verdict::fail(format!("the appservice answered the homeserver's ping with HTTP {status}"))
                .detail(format!("The homeserver reached {} but got {status}; body: {}", url(ctx), body.chars().take(200).collect::<String>()))
                .evidence("field", "url")
                .evidence("status", status)
                .fix([
                    "A 404 usually means another program listens on that port, or the `url` has a path it should not have: the homeserver appends /_matrix/app/v1/... itself.",
                    "Check which program listens on the port of the registration's `url` (`ss -ltnp`).",
                    "A 5xx means the bridge failed while answering: read its log at the time of the ping.",
                ])
                .faq(FAQ_ANCHOR),
        )
        },
    )
}

fn id_mismatch(ctx: &Context) -> Verdict {
    with_answer(
        ctx,
        "the appservice id matches the registration",
        |answer| {
            let mismatch = answer.errcode_is("M_FORBIDDEN")
                && answer
                    .error
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains("mismatching application service"));
            mismatch.then(|| {
            Verdict::fail("the bridge's appservice.id is not the id of the registration the homeserver loaded")
                .detail(format!("The ping answered {}.", answer.summary()))
                .evidence("field", "appservice.id")
                .fix([
                    "Make `appservice.id` in the bridge config equal to `id` in the registration (they are copied at generation).",
                    "If you changed the id on purpose, regenerate the registration, give it to the homeserver and restart both.",
                ])
                .faq(FAQ_ANCHOR)
        })
        },
    )
}

fn unsupported(ctx: &Context) -> Verdict {
    match ping_answer(ctx) {
        Err(skip) => skip,
        Ok(None) => Verdict::fail("the homeserver has no appservice ping endpoint")
            .detail("/versions advertises neither v1.7 nor fi.mau.msc2659, so the connection to the bridge cannot be tested.")
            .fix(["Upgrade the homeserver (Synapse 1.84 or later has the ping)."]),
        Ok(Some(answer)) if answer.errcode_is("M_UNRECOGNIZED") => {
            Verdict::fail("the homeserver does not know the appservice ping endpoint")
                .detail(format!("The ping answered {}.", answer.summary()))
                .fix(["Upgrade the homeserver (Synapse 1.84 or later has the ping).", "If a reverse proxy is in front, let it pass /_matrix/client/v1/appservice/."])
        }
        Ok(Some(_)) => Verdict::pass("the homeserver supports the appservice ping"),
    }
}

/// The homeserver's log lines about delivering to this target: by its id
/// (recoverer, retries) or by its url (push_bulk failures).
fn backoff(ctx: &Context) -> Verdict {
    let hits = match ctx
        .target
        .logs_scanned
        .as_ref()
        .and_then(|l| l.homeserver_hits.as_ref())
    {
        None => return Verdict::skip("no homeserver log configured (`homeserver.log`)"),
        Some(Err(error)) => {
            return Verdict::skip(format!("the homeserver log cannot be read: {error}"));
        }
        Some(Ok(hits)) => hits,
    };
    // Synapse's delivery failures and retry scheduling, already recognised by
    // the knowledge-base scan and attributed to this appservice.
    let failures: Vec<_> = hits
        .iter()
        .filter(|h| ["homeserver_backoff", "transactions_failing"].contains(&h.entry.id.as_str()))
        .collect();
    let lines: Vec<String> = failures
        .iter()
        .flat_map(|h| h.lines())
        .map(|l| l.text.chars().take(300).collect())
        .collect();
    if lines.is_empty() {
        return Verdict::pass("the homeserver log shows no failed deliveries to this appservice");
    }
    let shown: Vec<String> = lines.iter().rev().take(5).rev().cloned().collect();
    let verdict = Verdict::fail("the homeserver failed to deliver to this appservice and is backing off")
        .log_lines(&format!("{} matching line(s) at the end of the homeserver log; the last ones:", lines.len()), &shown, shown.clone().into())
        .fix([
            "Fix what stops the homeserver from reaching the bridge (see the ping checks of this target).",
            "Then trigger a ping (restarting a current mautrix bridge does it, or `bridge-doctor check`): on Synapse 1.132 and later it resets the backoff at once.",
            "On older homeservers, wait for the next retry or restart the homeserver.",
        ])
        .faq("why-is-the-bridge-bot-not-accepting-invites-or-not-receiving-messages-from-matrix");
    let earliest = failures.iter().filter_map(|h| h.earliest_ms).min();
    let latest = failures.iter().filter_map(|h| h.latest_ms).max();
    super::evidence::judge(ctx, verdict, earliest, latest)
}
