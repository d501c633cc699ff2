//! One registration file on its own: would the homeserver accept it, can it
//! deliver to the bridge, and do its flags fit the bridge and the server?

use super::{Check, Context, Verdict};
use crate::input::bridge::{BridgeFormat, flag};
use crate::input::registration::Registration;

pub const CHECKS: &[Check] = &[
    Check {
        id: "registration.invalid",
        run: registration_invalid,
    },
    Check {
        id: "registration.not_a_registration",
        run: not_a_registration,
    },
    Check {
        id: "registration.url_unset",
        run: url_unset,
    },
    Check {
        id: "registration.url_invalid",
        run: url_invalid,
    },
    Check {
        id: "registration.url_mismatch",
        run: url_mismatch,
    },
    Check {
        id: "registration.rate_limited",
        run: rate_limited,
    },
    Check {
        id: "registration.msc4190_mismatch",
        run: msc4190_mismatch,
    },
];

/// A bridge config, not a registration: it has the bridge's own sections.
fn is_bridge_config(registration: &Registration) -> bool {
    let root = &registration.document.root;
    BridgeFormat::detect(root).is_some()
        || (root.get("homeserver").is_some() && root.get("appservice").is_some())
}

fn not_a_registration(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    // The homeserver may also be given the bridge's config by mistake.
    let config_loaded = ctx.target.config().map(|c| c.path()).filter(|config| {
        ctx.facts
            .homeserver
            .registrations
            .iter()
            .any(|(path, _)| ctx.facts.homeserver.real_paths.same(path, config))
    });
    let wrong = if is_bridge_config(registration) {
        registration.path.clone()
    } else if let Some(config) = config_loaded {
        config.to_owned()
    } else {
        return Verdict::pass("the registration is a registration, not a bridge config");
    };
    Verdict::fail("a bridge config is used as a registration")
        .detail(format!(
            "{} has the sections of a bridge config (`homeserver`, `appservice`), not the top-level `id`, `as_token` and `namespaces` of a registration. The homeserver refuses to start on it, or the bridge gets no events.",
            wrong.display()
        ))
        .evidence("file", wrong.display().to_string())
        .fix([
            "Generate the registration with the bridge (`-g` for mautrix bridges, `--generate` for heisenbridge); it writes a separate file.",
            "List that registration file, not the config, in the homeserver's `app_service_config_files`.",
            "Restart the homeserver.",
        ])
}

fn url_invalid(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let Some(url) = registration.url().filter(|u| !u.trim().is_empty()) else {
        return Verdict::skip("no url (registration.url_unset)");
    };
    let problem = match url::Url::parse(url) {
        Err(err) => Some(format!("it is not a URL ({err})")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => Some(format!(
            "its scheme is `{}`; the homeserver only pushes over http:// or https://",
            parsed.scheme()
        )),
        Ok(parsed) if matches!(parsed.host(), Some(url::Host::Ipv6(_))) => Some(
            "it is an IPv6 literal, which Synapse cannot push to; use a host name that resolves to the address".to_owned(),
        ),
        Ok(_) => None,
    };
    let Some(problem) = problem else {
        return Verdict::pass(format!("the url {url} is an http(s) address"));
    };
    Verdict::fail(format!("the registration url {url} cannot be used: {problem}"))
        .detail(format!(
            "`url` at {}:{}.",
            registration.path.display(),
            registration.position_of("url")
        ))
        .evidence("field", "url")
        .fix([
            "Write `url` as http://host:port (or https://), the address where the homeserver reaches the bridge, e.g. http://localhost:29317.",
            "Put the same address in the bridge's `appservice.address`, then restart the homeserver.",
        ])
        .faq("homeserver---bridge-connection-is-not-working")
}

fn rate_limited(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    if registration.rate_limited == Some(false) {
        return Verdict::pass("the homeserver does not rate-limit this appservice");
    }
    let how = if registration.rate_limited.is_none() {
        "`rate_limited` is absent, which means true"
    } else {
        "`rate_limited` is true"
    };
    Verdict::warn("the homeserver rate-limits this bridge's users")
        .detail(format!(
            "{how} in {}: every ghost user is limited like a person, so backfill and busy chats hit 429 M_LIMIT_EXCEEDED and messages arrive late or not at all.",
            registration.path.display()
        ))
        .evidence("field", "rate_limited")
        .fix([
            "Set `rate_limited: false` in the registration the homeserver loads.",
            "Restart the homeserver.",
        ])
}

fn msc4190_mismatch(ctx: &Context) -> Verdict {
    let (Some(registration), Some(config)) = (ctx.target.registration(), ctx.target.config())
    else {
        return Verdict::skip("needs the registration and the bridge config");
    };
    let encryption = &config.encryption;
    if !encryption.allowed() {
        return Verdict::skip("the bridge does not use encryption, so it creates no devices");
    }
    let registered = registration.msc4190.effective();
    let bridge_uses = flag(&encryption.msc4190);
    if registered == bridge_uses {
        return Verdict::pass("the bridge and its registration agree on MSC4190 device management");
    }
    let (title, detail) = if registered {
        (
            "the registration enables MSC4190 but the bridge logs in the old way",
            "With `io.element.msc4190: true` the homeserver refuses appservice login (\"This appservice has MSC4190 enabled, so appservice login cannot be used.\"), which is how this bridge gets its encryption device.",
        )
    } else {
        (
            "the bridge uses MSC4190 but its registration does not enable it",
            "The bridge creates its device with PUT /devices as the appservice, which the homeserver only allows with `io.element.msc4190: true` in the registration.",
        )
    };
    Verdict::fail(title)
        .detail(format!(
            "{detail} Registration: {} = {registered}; bridge: {} = {bridge_uses}.",
            registration.path.display(),
            encryption
                .msc4190
                .as_ref()
                .map(|f| config.locate(f))
                .unwrap_or_else(|| "encryption.msc4190 (absent)".to_owned()),
        ))
        .evidence("fields", vec!["io.element.msc4190", "encryption.msc4190"])
        .fix([
            "Set both to the same value: true on homeservers that delegate auth (MAS), where appservice login does not exist; otherwise either works.",
            "Restart the homeserver after changing the registration, then the bridge.",
        ])
}

fn registration_invalid(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    if registration.problems.is_empty() {
        return Verdict::pass("the homeserver would accept this registration");
    }
    let lines: Vec<String> = registration
        .problems
        .iter()
        .map(ToString::to_string)
        .collect();
    let fields: Vec<&str> = registration
        .problems
        .iter()
        .map(|p| p.field.as_str())
        .collect();
    Verdict::fail(format!("the homeserver would refuse this registration ({} problem(s))", lines.len()))
        .detail(lines.join("\n"))
        .evidence("fields", fields)
        .fix([
            "Fix each field listed above; Synapse does not start at all while one registration is invalid.",
            "Simplest: regenerate the registration with the bridge's own generator and give the new file to the homeserver.",
        ])
}

fn url_unset(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let empty = matches!(&registration.url, Some(None))
        || registration.url().is_some_and(|u| u.trim().is_empty());
    if !empty {
        return Verdict::pass("the registration has a url");
    }
    Verdict::fail("the registration has no url: the homeserver will send nothing to this bridge")
        .detail(format!("`url` is null or empty at {}:{}.", registration.path.display(), registration.position_of("url")))
        .evidence("field", "url")
        .fix([
            "Set `url` in the registration to the address where the homeserver reaches the bridge (the bridge's `appservice.address`).",
            "Restart the homeserver.",
        ])
        .faq("homeserver---bridge-connection-is-not-working")
}

fn url_mismatch(ctx: &Context) -> Verdict {
    let (Some(config), Some(registration)) = (ctx.target.config(), ctx.target.registration())
    else {
        return Verdict::skip("needs both the bridge config and the registration");
    };
    let (Some(address), Some(url)) = (&config.appservice_address, registration.url()) else {
        return Verdict::skip("appservice.address or url is not set");
    };
    if address.value.trim_end_matches('/') == url.trim_end_matches('/') {
        return Verdict::pass("the registration url is the bridge's appservice.address");
    }
    Verdict::fail("the registration url differs from the bridge's appservice.address")
        .detail(format!(
            "The homeserver sends to `url` = {url} ({}:{}), but the bridge says it is at `appservice.address` = {} ({}).",
            registration.path.display(),
            registration.position_of("url"),
            address.value,
            config.locate(address)
        ))
        .evidence("field", "url")
        .fix([
            "Decide which address is right for reaching the bridge from the homeserver.",
            "Put it in both places (the registration's `url` and the bridge's `appservice.address`), then restart the homeserver and the bridge.",
        ])
        .faq("homeserver---bridge-connection-is-not-working")
}
