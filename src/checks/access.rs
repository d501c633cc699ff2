//! Who may use the bridge: its permissions, and the double-puppeting
//! secrets that let it act as local users.

use super::{Check, Context, Verdict};
use crate::input::yaml::Node;

pub const CHECKS: &[Check] = &[
    Check {
        id: "permissions.no_local_users",
        run: no_local_users,
    },
    Check {
        id: "doublepuppet.secret_format",
        run: secret_format,
    },
];

fn no_local_users(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let Some((path, permissions)) = config.permissions() else {
        return Verdict::skip("the config has no permissions section");
    };
    let domain = ctx.target.domain(ctx.facts);
    let local = |key: &str| {
        key == "*"
            || key == domain
            || key
                .strip_prefix('@')
                .and_then(|u| u.split_once(':'))
                .is_some_and(|(_, d)| d == domain)
    };
    let keys: Vec<&str> = permissions
        .entries()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    if keys.iter().any(|k| local(k)) {
        return Verdict::pass(format!("the permissions admit users of {domain}"));
    }
    Verdict::fail(format!("the bridge's permissions admit nobody on {domain}"))
        .detail(format!(
            "`{path}` ({}:{}) names only {}: the bridge bot answers every local user with a refusal.",
            config.path().display(),
            permissions.pos,
            if keys.is_empty() { "nothing".to_owned() } else { keys.join(", ") }
        ))
        .evidence("field", path)
        .fix([
            format!("Add `\"{domain}\": user` (everyone on the server) or `\"@you:{domain}\": admin` under `{path}`."),
            "Restart the bridge.".to_owned(),
        ])
}

/// What is wrong with one double-puppet secret for this server, if anything.
fn secret_problem(ctx: &Context, secret: &str) -> Option<String> {
    let trimmed = secret.trim();
    if trimmed.len() >= 2 && (trimmed.starts_with(['"', '\'']) || trimmed.ends_with(['"', '\''])) {
        return Some("keeps quotes inside the value (YAML quotes once; the inner quotes become part of the secret)".to_owned());
    }
    let Some(token) = trimmed.strip_prefix("as_token:") else {
        let module = matches!(&ctx.facts.homeserver.config, Some(Ok(hs)) if hs.shared_secret_auth);
        return (!module).then(|| "lacks the `as_token:` prefix, and the homeserver has no shared-secret login module for a plain secret".to_owned());
    };
    let loaded = &ctx.facts.homeserver.registrations;
    let known = loaded.iter().any(|(_, r)| {
        r.as_ref()
            .is_ok_and(|r| r.as_token.as_deref() == Some(token))
    });
    (!loaded.is_empty() && !known)
        .then(|| "names an as_token that no registration the homeserver loads has".to_owned())
}

fn secret_format(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let Some((path, secrets)) = config.double_puppet_secrets() else {
        return Verdict::skip("no double-puppeting secrets are configured");
    };
    let domain = ctx.target.domain(ctx.facts);
    let Some(secret) = secrets.get(domain).and_then(Node::scalar_text) else {
        return Verdict::skip(format!("no double-puppeting secret for {domain}"));
    };
    let Some(problem) = secret_problem(ctx, &secret) else {
        return Verdict::pass(format!(
            "the double-puppeting secret for {domain} is well formed"
        ));
    };
    let field = format!("{path}.{domain}");
    Verdict::fail(format!("the double-puppeting secret for {domain} {problem}"))
        .detail(format!(
            "`{field}` at {}:{} (value not shown). Double puppeting then fails for every local user: their messages from the other network appear as the bridge's ghost.",
            config.path().display(),
            secrets.get(domain).map(|n| n.pos).unwrap_or_default()
        ))
        .evidence("field", field)
        .fix([
            "Create a registration for double puppeting (its own as_token, `url: null`, a non-exclusive users regex for your server) and load it in the homeserver.".to_owned(),
            format!("Set `{path}` for {domain} to `as_token:` followed by that token, without extra quotes."),
            "Restart the homeserver and the bridge.".to_owned(),
        ])
}
