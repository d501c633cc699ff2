//! Tokens and identity: do the bridge and the homeserver agree on who the
//! bridge is?

use super::ping::{bad_status_body, bad_status_code, ping_answer};
use super::{Check, Context, Verdict};
use crate::checks::homeserver::live_server_name;
use crate::facts::Facts;
use crate::matrix::ConnectError;

pub const CHECKS: &[Check] = &[
    Check {
        id: "tokens.mismatch",
        run: mismatch,
    },
    Check {
        id: "tokens.as_token_rejected",
        run: as_token_rejected,
    },
    Check {
        id: "tokens.hs_token_rejected",
        run: hs_token_rejected,
    },
    Check {
        id: "domain.mismatch",
        run: domain_mismatch,
    },
];

fn mismatch(ctx: &Context) -> Verdict {
    let (Some(config), Some(registration)) = (ctx.target.config(), ctx.target.registration())
    else {
        return Verdict::skip("needs both the bridge config and the registration");
    };
    let pairs = [
        (
            "as_token",
            config.as_token.as_ref(),
            registration.as_token.as_deref(),
        ),
        (
            "hs_token",
            config.hs_token.as_ref(),
            registration.hs_token.as_deref(),
        ),
    ];
    let differing: Vec<&str> = pairs
        .iter()
        .filter(|(_, in_config, in_registration)| {
            matches!((in_config, in_registration), (Some(c), Some(r)) if c.value != *r)
        })
        .map(|(name, _, _)| *name)
        .collect();
    if differing.is_empty() {
        return Verdict::pass(
            "as_token and hs_token are the same in the config and the registration",
        );
    }
    let which = differing.join(" and ");
    Verdict::fail(format!("{which} differs between the bridge config and the registration"))
        .detail(format!(
            "`appservice.{}` in {} is not the same as `{}` in {}. The values are not shown.",
            differing[0],
            config.path().display(),
            differing[0],
            registration.path.display()
        ))
        .evidence("field", which.clone())
        .evidence("config", config.path().display().to_string())
        .evidence("registration", registration.path.display().to_string())
        .fix([
            "Decide which file is right: usually the registration the homeserver loads, since the homeserver already uses it.",
            "Copy both tokens from that registration into `appservice.as_token` and `appservice.hs_token` of the bridge config (or regenerate the registration and give the new one to the homeserver).",
            "Restart the bridge, and the homeserver too if its registration changed.",
        ])
        .faq(if which == "hs_token" {
            "homeserver---bridge-connection-is-not-working"
        } else {
            "the-as_token-was-not-accepted"
        })
}

/// Ranked causes for a rejected as_token, most likely first, from what we know.
fn rejected_causes(ctx: &Context) -> Vec<String> {
    let mut causes = Vec::new();
    let facts: &Facts = ctx.facts;
    if let Some(Ok(hs)) = &facts.homeserver.config {
        let loaded = hs.app_service_config_files.iter().any(|p| {
            facts
                .homeserver
                .real_paths
                .same(p, &ctx.target.registration_path)
        });
        if !loaded {
            causes.push(format!(
                "The registration {} is not listed in `app_service_config_files` of {}: add it and restart the homeserver.",
                ctx.target.registration_path.display(),
                hs.path.display()
            ));
        }
    }
    causes.push("The homeserver was not restarted after the registration was added or changed: restart it (Synapse reads registrations only at start).".to_owned());
    if let (Some(config), Some(registration)) = (ctx.target.config(), ctx.target.registration())
        && config.as_token.as_ref().map(|f| f.value.as_str()) != registration.as_token.as_deref()
    {
        causes.push("The tokens were regenerated in one file and not copied to the other: the bridge config and the registration hold different as_tokens.".to_owned());
    } else {
        causes.push("The tokens were regenerated (a new registration always has new tokens) and the homeserver still has the old file.".to_owned());
    }
    causes.push(format!(
        "`homeserver.address` ({}) reaches a different homeserver than the one that loaded the registration.",
        ctx.target.live.as_ref().map(|l| l.address.as_str()).unwrap_or("?")
    ));
    if ctx
        .target
        .registration()
        .is_some_and(|r| r.document.root.get("ip_range_whitelist").is_some())
    {
        causes.push("The registration has `ip_range_whitelist`: requests from an address outside it are refused.".to_owned());
    }
    causes
}

fn as_token_rejected(ctx: &Context) -> Verdict {
    let Some(live) = &ctx.target.live else {
        return Verdict::skip("offline: no network probe was made");
    };
    let Some(answer) = &live.whoami_sender else {
        return Verdict::skip("no whoami was made (homeserver unreachable or no as_token)");
    };
    let answer = match answer {
        Err(error) => {
            return Verdict::skip(format!("whoami failed: {}", ConnectError::message(error)));
        }
        Ok(answer) => answer,
    };
    if answer.is_success() {
        return Verdict::pass("the homeserver accepts the as_token");
    }
    if !(answer.errcode_is("M_UNKNOWN_TOKEN") || answer.status == 401) {
        return Verdict::warn(format!(
            "whoami with the as_token answered {}",
            answer.summary()
        ));
    }
    let causes = rejected_causes(ctx);
    Verdict::fail("as_token not accepted: the homeserver does not know this appservice's as_token")
        .detail(format!(
            "whoami with the as_token of {} answered {}. Likely causes, most likely first:\n{}",
            ctx.target.registration_path.display(),
            answer.summary(),
            causes
                .iter()
                .enumerate()
                .map(|(i, c)| format!("  {}. {c}", i + 1))
                .collect::<Vec<_>>()
                .join("\n")
        ))
        .evidence("field", "as_token")
        .evidence(
            "registration",
            ctx.target.registration_path.display().to_string(),
        )
        .fix(causes)
        .faq("the-as_token-was-not-accepted")
}

fn hs_token_rejected(ctx: &Context) -> Verdict {
    let answer = match ping_answer(ctx) {
        Err(skip) => return skip,
        Ok(None) => return Verdict::skip("the homeserver has no ping endpoint"),
        Ok(Some(answer)) => answer,
    };
    let Some(status) = bad_status_code(answer).filter(|s| *s == 401 || *s == 403) else {
        return Verdict::pass("the appservice accepts the homeserver's hs_token");
    };
    let body = bad_status_body(answer);
    let stripped = body.contains("M_MISSING_TOKEN");
    let mut verdict = Verdict::fail(format!(
        "the appservice rejected the homeserver's hs_token (HTTP {status})"
    ))
    .evidence("field", "hs_token")
    .evidence("status", status)
    .faq("homeserver---bridge-connection-is-not-working");
    let legacy = matches!(&ctx.facts.homeserver.config, Some(Ok(hs)) if hs.legacy_appservice_auth);
    if stripped && legacy {
        verdict = verdict
            .detail("The bridge says no token arrived (M_MISSING_TOKEN), and the homeserver config has `use_appservice_legacy_authorization: true`: the homeserver sends the token only as a query parameter, which current bridges do not read.")
            .evidence("homeserver_field", "use_appservice_legacy_authorization")
            .fix([
                "Remove `use_appservice_legacy_authorization` from the homeserver config (or set it to false).",
                "Restart the homeserver.",
            ]);
    } else if stripped {
        verdict = verdict
            .detail("The bridge says no token arrived at all (M_MISSING_TOKEN): something between the homeserver and the bridge removes the Authorization header.")
            .fix([
                "If a reverse proxy sits between the homeserver and the bridge, make it pass the Authorization header through.",
                "Better: let the homeserver reach the bridge directly on its local address.",
            ]);
    } else {
        verdict = verdict
            .detail("The homeserver reached the bridge, but the bridge answered that the hs_token is wrong: the registration the homeserver loaded holds another hs_token than the bridge config.")
            .fix([
                "Copy `hs_token` from the registration the homeserver loads into `appservice.hs_token` of the bridge config.",
                "Restart the bridge; if you changed the registration instead, restart the homeserver.",
            ]);
    }
    verdict
}

fn domain_mismatch(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let Some(domain) = &config.homeserver_domain else {
        return Verdict::skip("the config has no homeserver.domain");
    };
    let (server_name, source) = match ctx.facts.homeserver.server_name_from_config() {
        Some(name) => (
            name.to_owned(),
            "`server_name` in the homeserver config".to_owned(),
        ),
        None => match live_server_name(ctx) {
            Some(name) => (name, "the homeserver's answer to whoami".to_owned()),
            None => {
                return Verdict::skip(
                    "the homeserver's server_name is unknown (no homeserver config, no live answer)",
                );
            }
        },
    };
    if domain.value == server_name {
        return Verdict::pass(format!(
            "homeserver.domain is the server_name {server_name}"
        ));
    }
    Verdict::fail(format!("homeserver.domain is {}, but the homeserver's server_name is {server_name}", domain.value))
        .detail(format!("{} says {}, while {source} says {server_name}. User IDs built with the wrong domain are refused.", config.locate(domain), domain.value))
        .evidence("field", "homeserver.domain")
        .evidence("position", config.locate(domain))
        .fix([
            format!("Set `homeserver.domain` to {server_name} (the homeserver's `server_name`, not its host name)."),
            "Regenerate the registration: its namespaces contain the domain.".to_owned(),
            "Give the new registration to the homeserver and restart the homeserver, then the bridge.".to_owned(),
        ])
        .faq("the-as_token-was-accepted-but-the-register-request-was-not")
}
