//! Can the target reach a Matrix homeserver at its `homeserver.address`,
//! and is it the right one?

use super::{Check, Context, Verdict};
use crate::matrix::{ConnectError, Versions, VersionsError};

pub const CHECKS: &[Check] = &[
    Check {
        id: "homeserver.unreachable",
        run: unreachable,
    },
    Check {
        id: "homeserver.tls_untrusted",
        run: tls_untrusted,
    },
    Check {
        id: "homeserver.not_matrix",
        run: not_matrix,
    },
    Check {
        id: "homeserver.wrong_server",
        run: wrong_server,
    },
    Check {
        id: "homeserver.outdated",
        run: outdated,
    },
];

/// The `/versions` probe of this target, or the verdict to give when there is none.
fn versions<'a>(ctx: &'a Context) -> Result<&'a Result<Versions, VersionsError>, Verdict> {
    ctx.target
        .live
        .as_ref()
        .and_then(|live| live.versions.as_ref())
        .ok_or_else(|| Verdict::skip("offline: no network probe was made"))
}

fn connect_error<'a>(ctx: &'a Context) -> Result<Option<&'a ConnectError>, Verdict> {
    Ok(match versions(ctx)? {
        Err(VersionsError::Connect { error }) => Some(error),
        _ => None,
    })
}

fn address(ctx: &Context) -> String {
    ctx.target
        .live
        .as_ref()
        .map(|l| l.address.clone())
        .unwrap_or_default()
}

fn unreachable(ctx: &Context) -> Verdict {
    match connect_error(ctx) {
        Err(skip) => skip,
        Ok(Some(error)) if !matches!(error, ConnectError::TlsUntrusted(_)) => {
            let cause = match error {
                ConnectError::Dns(_) => "the host name does not resolve",
                ConnectError::Refused(_) => "nothing listens on that host and port",
                ConnectError::Timeout(_) => {
                    "the connection timed out (firewall, wrong host, or the server hangs)"
                }
                _ => "the connection failed",
            };
            Verdict::fail(format!("the homeserver at {} cannot be reached: {cause}", address(ctx)))
                .detail(format!("The request to /_matrix/client/versions failed: {}", error.message()))
                .evidence("field", "homeserver.address")
                .evidence("address", address(ctx))
                .fix([
                    "Check that the homeserver is running (for Synapse: `systemctl status matrix-synapse` or its container).",
                    "Check `homeserver.address` in the config: it is the address this program uses to reach the homeserver's client API, usually http://localhost:8008 when both run on one machine.",
                    "From the machine that runs the bridge, try `curl <address>/_matrix/client/versions`; it must print a JSON list of versions.",
                ])
        }
        Ok(_) => Verdict::pass(format!("the homeserver at {} answers", address(ctx))),
    }
}

fn tls_untrusted(ctx: &Context) -> Verdict {
    match connect_error(ctx) {
        Err(skip) => skip,
        Ok(Some(ConnectError::TlsUntrusted(message))) => {
            Verdict::fail("the homeserver's TLS certificate is not trusted")
                .detail(format!("TLS verification failed for {}: {message}", address(ctx)))
                .evidence("field", "homeserver.address")
                .fix([
                    "If the certificate is self-signed or from a private CA, add that CA to the system trust store of the machine running the bridge.",
                    "If the homeserver runs on the same machine, point `homeserver.address` at its plain local listener (http://localhost:8008) instead of the public HTTPS name.",
                    "Check that the certificate covers the host name in `homeserver.address` and has not expired.",
                ])
        }
        Ok(_) => Verdict::pass("TLS is fine or not used"),
    }
}

fn not_matrix(ctx: &Context) -> Verdict {
    match versions(ctx) {
        Err(skip) => skip,
        Ok(Err(VersionsError::NotMatrix { answer })) => {
            Verdict::fail(format!("{} answers, but not as a Matrix homeserver", address(ctx)))
                .detail(format!("/_matrix/client/versions answered {}", answer.summary()))
                .evidence("field", "homeserver.address")
                .evidence("status", answer.status)
                .fix([
                    "Check `homeserver.address`: it must be the homeserver's client API base, without a path such as /_matrix.",
                    "If a reverse proxy sits in front, check that it forwards /_matrix/ to the homeserver.",
                ])
        }
        Ok(Err(VersionsError::Connect { .. })) => Verdict::skip("the homeserver could not be reached"),
        Ok(Ok(_)) => Verdict::pass("the address answers as a Matrix homeserver"),
    }
}

/// The `server_name` the live homeserver answered with (whoami's user ID).
pub fn live_server_name(ctx: &Context) -> Option<String> {
    let answer = ctx
        .target
        .live
        .as_ref()?
        .whoami_sender
        .as_ref()?
        .as_ref()
        .ok()?;
    let user_id = answer.json.as_ref()?.get("user_id")?.as_str()?;
    user_id.split_once(':').map(|(_, server)| server.to_owned())
}

fn wrong_server(ctx: &Context) -> Verdict {
    let Some(live) = live_server_name(ctx) else {
        return Verdict::skip("no live answer tells the homeserver's server_name");
    };
    let (expected, source) = match ctx.facts.homeserver.server_name_from_config() {
        Some(name) => (name.to_owned(), "server_name in the homeserver config"),
        None => (
            ctx.facts.homeserver.domain.clone(),
            "homeserver.domain in the doctor's config",
        ),
    };
    if live == expected {
        return Verdict::pass(format!("{} is the homeserver for {expected}", address(ctx)));
    }
    Verdict::fail(format!("{} is a homeserver for {live}, not {expected}", address(ctx)))
        .detail(format!("whoami with this target's as_token answered a user on {live}; the {source} says {expected}."))
        .evidence("field", "homeserver.address")
        .evidence("live_server_name", live)
        .fix([
            "Point `homeserver.address` at the homeserver that serves your domain.",
            "If the domain is what is wrong instead, fix `homeserver.domain`, regenerate the registration and restart the homeserver and the bridge.",
        ])
        .faq("the-as_token-was-not-accepted")
}

fn outdated(ctx: &Context) -> Verdict {
    match versions(ctx) {
        Err(skip) => skip,
        Ok(Err(_)) => Verdict::skip("the homeserver did not answer /versions"),
        Ok(Ok(found)) => {
            let missing: Vec<&str> = [
                ("v1.4", "what mautrix bridges need"),
                ("v1.7", "the appservice ping"),
            ]
            .into_iter()
            .filter(|(version, _)| !found.supports(version))
            .map(|(version, _)| version)
            .collect();
            if missing.is_empty() {
                Verdict::pass("the homeserver supports spec v1.7 or later")
            } else {
                Verdict::fail("the homeserver is too old for current bridges")
                    .detail(format!(
                        "It advertises {}; bridges need v1.4, and the appservice ping needs v1.7 (missing: {}).",
                        found.versions.join(", "),
                        missing.join(", ")
                    ))
                    .fix(["Upgrade the homeserver to a current release."])
            }
        }
    }
}
