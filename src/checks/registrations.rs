//! This registration among all the homeserver loads: duplicates, and a
//! stale copy loaded in place of the bridge's own file.

use super::{Check, Context, Verdict};
use crate::facts::same_file;
use crate::input::registration::Registration;

pub const CHECKS: &[Check] = &[
    Check {
        id: "registration.duplicate_as_token",
        run: duplicate_as_token,
    },
    Check {
        id: "registration.duplicate_id",
        run: duplicate_id,
    },
    Check {
        id: "registration.stale_copy",
        run: stale_copy,
    },
];

/// The other registrations the homeserver loads (not this target's file).
fn others<'a>(ctx: &'a Context) -> Result<Vec<(&'a std::path::Path, &'a Registration)>, Verdict> {
    if ctx.target.registration().is_none() {
        return Err(Verdict::skip("the registration could not be read"));
    }
    if ctx.facts.homeserver.registrations.is_empty() {
        return Err(Verdict::skip(
            "needs the homeserver config to know the other registrations",
        ));
    }
    Ok(ctx
        .facts
        .homeserver
        .registrations
        .iter()
        .filter(|(path, _)| !same_file(path, &ctx.target.registration_path))
        .filter_map(|(path, reg)| reg.as_ref().ok().map(|r| (path.as_path(), r)))
        .collect())
}

fn duplicate_as_token(ctx: &Context) -> Verdict {
    let others = match others(ctx) {
        Ok(others) => others,
        Err(skip) => return skip,
    };
    let mine = ctx
        .target
        .registration()
        .and_then(|r| r.as_token.as_deref());
    let clashes: Vec<String> = others
        .iter()
        .filter(|(_, other)| mine.is_some() && other.as_token.as_deref() == mine)
        .map(|(path, _)| path.display().to_string())
        .collect();
    if clashes.is_empty() {
        return Verdict::pass("no other loaded registration shares this as_token");
    }
    Verdict::fail("another registration the homeserver loads has the same as_token")
        .detail(format!("{} and {} share an as_token (value not shown). Synapse refuses to start with duplicate tokens.", ctx.target.registration_path.display(), clashes.join(", ")))
        .evidence("field", "as_token")
        .evidence("files", clashes)
        .fix([
            "A copied registration is the usual cause: regenerate one of them so it gets its own tokens.",
            "Put the new tokens into that bridge's config too, then restart the homeserver and the bridge.",
        ])
}

fn duplicate_id(ctx: &Context) -> Verdict {
    let others = match others(ctx) {
        Ok(others) => others,
        Err(skip) => return skip,
    };
    let mine = ctx.target.registration().and_then(|r| r.id.as_deref());
    let clashes: Vec<String> = others
        .iter()
        .filter(|(_, other)| mine.is_some() && other.id.as_deref() == mine)
        .map(|(path, _)| path.display().to_string())
        .collect();
    if clashes.is_empty() {
        return Verdict::pass("no other loaded registration has this id");
    }
    Verdict::fail(format!("another registration the homeserver loads has the id {}", mine.unwrap_or_default()))
        .detail(format!("Also in: {}.", clashes.join(", ")))
        .evidence("field", "id")
        .evidence("files", clashes)
        .fix(["Keep one registration per bridge in `app_service_config_files`; give each bridge a unique `id` (and `appservice.id`).", "Restart the homeserver."])
}

fn stale_copy(ctx: &Context) -> Verdict {
    let others = match others(ctx) {
        Ok(others) => others,
        Err(skip) => return skip,
    };
    let Some(mine) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let Some((path, loaded)) = others
        .iter()
        .find(|(_, other)| other.id.is_some() && other.id == mine.id)
    else {
        return Verdict::pass("the homeserver loads this file itself, not a copy");
    };
    let differing: Vec<&str> = [
        ("as_token", mine.as_token != loaded.as_token),
        ("hs_token", mine.hs_token != loaded.hs_token),
        ("url", mine.url() != loaded.url()),
        (
            "namespaces",
            mine.namespaces.users.iter().map(|e| &e.regex).ne(loaded
                .namespaces
                .users
                .iter()
                .map(|e| &e.regex)),
        ),
    ]
    .into_iter()
    .filter(|(_, differs)| *differs)
    .map(|(name, _)| name)
    .collect();
    if differing.is_empty() {
        return Verdict::pass(
            "the copy the homeserver loads is the same as the bridge's registration",
        );
    }
    Verdict::fail("the homeserver loads an outdated copy of this registration")
        .detail(format!(
            "{} (loaded by the homeserver) differs from {} in: {}.",
            path.display(),
            mine.path.display(),
            differing.join(", ")
        ))
        .evidence("fields", differing)
        .evidence("loaded", path.display().to_string())
        .fix([
            format!(
                "Copy {} over {} (or point `app_service_config_files` at the bridge's file).",
                mine.path.display(),
                path.display()
            ),
            "Restart the homeserver.".to_owned(),
        ])
        .faq("the-as_token-was-not-accepted")
}
