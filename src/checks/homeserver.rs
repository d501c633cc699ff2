//! Can the target reach a Matrix homeserver at its `homeserver.address`,
//! and is it the right one?

use std::net::IpAddr;

use ipnet::IpNet;

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
    Check {
        id: "homeserver.ip_whitelist",
        run: ip_whitelist,
    },
    Check {
        id: "homeserver.media_unavailable",
        run: media_unavailable,
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

/// Whether `host` (of a URL) is this machine's loopback address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn ip_whitelist(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    if registration.ip_range_whitelist.is_empty() {
        return Verdict::pass("no ip_range_whitelist: the as_token is accepted from any address");
    }
    let ranges: Vec<IpNet> = registration
        .ip_range_whitelist
        .iter()
        .filter_map(|r| {
            r.parse::<IpNet>()
                .ok()
                .or_else(|| r.parse::<IpAddr>().ok().map(IpNet::from))
        })
        .collect();
    // Only when the token itself agrees with the registration: otherwise a
    // rejection says nothing about addresses.
    let same_token = registration.as_token.as_deref() == ctx.target.as_token();
    let rejected_live = same_token
        && ctx
            .target
            .live
            .as_ref()
            .and_then(|l| l.whoami_sender.as_ref())
            .and_then(|w| w.as_ref().ok())
            .is_some_and(|a| a.errcode_is("M_UNKNOWN_TOKEN"));
    let loopback_excluded = url::Url::parse(&address(ctx))
        .ok()
        .and_then(|u| u.host_str().map(is_loopback))
        .unwrap_or(false)
        && !["127.0.0.1", "::1"]
            .iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .any(|ip| ranges.iter().any(|r| r.contains(&ip)));
    if !rejected_live && !loopback_excluded {
        return Verdict::pass("the ip_range_whitelist admits the bridge's address");
    }
    let why = if loopback_excluded {
        "The bridge reaches the homeserver on this machine (loopback), and no range admits 127.0.0.1 or ::1."
    } else {
        "The homeserver answered the bridge's as_token with M_UNKNOWN_TOKEN from this machine's address, which the whitelist does not admit."
    };
    Verdict::fail("the registration's ip_range_whitelist shuts out the address the bridge connects from")
        .detail(format!(
            "{why} Ranges: {} ({}). Outside them the homeserver treats the as_token as unknown, which looks exactly like a wrong token.",
            registration.ip_range_whitelist.join(", "),
            registration.path.display()
        ))
        .evidence("field", "ip_range_whitelist")
        .fix([
            "Add the address the bridge connects from (127.0.0.1/8 and ::1/128 on the same machine, the container network's range under Docker) to `ip_range_whitelist`, or remove the key.",
            "Behind a reverse proxy, the homeserver sees the proxy's address unless its listener has `x_forwarded: true`.",
            "Restart the homeserver.",
        ])
        .faq("the-as_token-was-not-accepted")
}

fn media_unavailable(ctx: &Context) -> Verdict {
    let Some(answer) = ctx
        .target
        .live
        .as_ref()
        .and_then(|l| l.media_config.as_ref())
    else {
        return Verdict::skip("offline, or no as_token to ask with");
    };
    let answer = match answer {
        Ok(answer) => answer,
        Err(_) => {
            return Verdict::skip("the homeserver could not be reached (homeserver.unreachable)");
        }
    };
    if answer.is_success() {
        return Verdict::pass(
            "authenticated media answers the bridge (/_matrix/client/v1/media/config)",
        );
    }
    if answer.errcode_is("M_UNKNOWN_TOKEN") {
        return Verdict::skip("the as_token is not accepted (tokens.as_token_rejected)");
    }
    Verdict::fail("the bridge cannot use the homeserver's media repository")
        .detail(format!(
            "GET /_matrix/client/v1/media/config with the bridge's as_token answered {}. Bridges upload and download every image and file there; without it media messages fail in both directions.",
            answer.summary()
        ))
        .evidence("status", answer.status)
        .fix([
            "A 404 means the authenticated media paths (/_matrix/client/v1/media/...) are not routed: add them to the reverse proxy, or to the media worker's routes.",
            "An old homeserver lacks authenticated media altogether: upgrade it (Synapse 1.111 or newer).",
            "Check the media settings (`enable_media_repo`, `max_upload_size`) of the homeserver.",
        ])
}
