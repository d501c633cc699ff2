//! This registration among all the homeserver loads: is it loaded (itself
//! or an identical copy), is an outdated copy loaded instead, and does
//! another loaded registration share its id or as_token.
//!
//! Admins usually copy a bridge's registration into the homeserver's
//! folder; an identical copy is the same registration, never a duplicate.

use std::path::Path;

use super::{Check, Context, Verdict};
use crate::input::registration::Registration;

pub const CHECKS: &[Check] = &[
    Check {
        id: "registration.not_loaded",
        run: not_loaded,
    },
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

/// Every readable registration the homeserver loads, with its file.
type Loaded<'a> = Vec<(&'a Path, &'a Registration)>;

/// This target's registration and every readable registration the
/// homeserver loads, or why the cross-file checks cannot run.
fn loaded<'a>(ctx: &'a Context) -> Result<(&'a Registration, Loaded<'a>), Verdict> {
    let Some(mine) = ctx.target.registration() else {
        return Err(Verdict::skip("the registration could not be read"));
    };
    if !matches!(ctx.facts.homeserver.config, Some(Ok(_))) {
        return Err(Verdict::skip(
            "needs the homeserver config (`homeserver.config`) to know what it loads",
        ));
    }
    let loaded = ctx
        .facts
        .homeserver
        .registrations
        .iter()
        .filter_map(|(path, reg)| reg.as_ref().ok().map(|r| (path.as_path(), r)))
        .collect();
    Ok((mine, loaded))
}

/// A loaded file that is this target's registration: the file itself or an
/// identical copy.
fn is_mine(ctx: &Context, mine: &Registration, path: &Path, loaded: &Registration) -> bool {
    ctx.facts
        .homeserver
        .real_paths
        .same(path, &ctx.target.registration_path)
        || mine.same_content(loaded)
}

fn not_loaded(ctx: &Context) -> Verdict {
    let (mine, loaded) = match loaded(ctx) {
        Ok(found) => found,
        Err(skip) => return skip,
    };
    let path = &ctx.target.registration_path;
    if let Some((copy, _)) = loaded.iter().find(|(p, r)| is_mine(ctx, mine, p, r)) {
        return if ctx.facts.homeserver.real_paths.same(copy, path) {
            Verdict::pass("the homeserver loads this registration")
        } else {
            Verdict::pass(format!(
                "the homeserver loads an identical copy of this registration ({})",
                copy.display()
            ))
        };
    }
    if let Some((copy, _)) = loaded
        .iter()
        .find(|(_, r)| r.id.is_some() && r.id == mine.id)
    {
        return Verdict::pass(format!(
            "the homeserver loads a registration with this id from {} (registration.stale_copy compares them)",
            copy.display()
        ));
    }
    let hs_path = match &ctx.facts.homeserver.config {
        Some(Ok(hs)) => hs.path.display().to_string(),
        _ => "the homeserver config".to_owned(),
    };
    Verdict::fail("the homeserver does not load this registration")
        .detail(format!(
            "Neither {} nor a copy of it is in `app_service_config_files` of {hs_path}.",
            path.display(),
        ))
        .evidence("field", "app_service_config_files")
        .evidence("registration", path.display().to_string())
        .fix([
            format!(
                "Add `{}` to `app_service_config_files` in {hs_path} (or copy the file to where the homeserver reads it and list the copy).",
                path.display(),
            ),
            "Make sure the homeserver's user can read the file.".to_owned(),
            "Restart the homeserver.".to_owned(),
        ])
        .faq("the-as_token-was-not-accepted")
}

/// Loaded files holding the same value as this registration in `field`:
/// two or more make the homeserver refuse to start.
fn sharing<'a>(
    loaded: &[(&'a Path, &'a Registration)],
    mine: Option<&str>,
    field: fn(&Registration) -> Option<&str>,
) -> Vec<String> {
    let Some(mine) = mine else {
        return Vec::new();
    };
    let files: Vec<String> = loaded
        .iter()
        .filter(|(_, other)| field(other) == Some(mine))
        .map(|(path, _)| path.display().to_string())
        .collect();
    if files.len() < 2 { Vec::new() } else { files }
}

fn duplicate_as_token(ctx: &Context) -> Verdict {
    let (mine, loaded) = match loaded(ctx) {
        Ok(found) => found,
        Err(skip) => return skip,
    };
    let files = sharing(&loaded, mine.as_token.as_deref(), |r| r.as_token.as_deref());
    if files.is_empty() {
        return Verdict::pass("no two loaded registrations share this as_token");
    }
    Verdict::fail("the homeserver loads more than one registration with this as_token")
        .detail(format!("{} share an as_token (value not shown). Synapse refuses to start: \"Cannot reuse as_token across application services\".", files.join(", ")))
        .evidence("field", "as_token")
        .evidence("files", files)
        .fix([
            "If the files are the same bridge (the file and its copy both listed), list only one in `app_service_config_files`.",
            "If they are different bridges, regenerate one registration so it gets its own tokens, and put them into that bridge's config too.",
            "Restart the homeserver and the bridge.",
        ])
}

fn duplicate_id(ctx: &Context) -> Verdict {
    let (mine, loaded) = match loaded(ctx) {
        Ok(found) => found,
        Err(skip) => return skip,
    };
    let files = sharing(&loaded, mine.id.as_deref(), |r| r.id.as_deref());
    if files.is_empty() {
        return Verdict::pass("no two loaded registrations share this id");
    }
    Verdict::fail(format!(
        "the homeserver loads more than one registration with the id {}",
        mine.id.as_deref().unwrap_or_default()
    ))
    .detail(format!("In: {}. Synapse refuses to start: \"Cannot reuse ID across application services\".", files.join(", ")))
    .evidence("field", "id")
    .evidence("files", files)
    .fix([
        "Keep one registration per bridge in `app_service_config_files`; give each bridge a unique `id` (and `appservice.id`).",
        "Restart the homeserver.",
    ])
}

fn stale_copy(ctx: &Context) -> Verdict {
    let (mine, loaded) = match loaded(ctx) {
        Ok(found) => found,
        Err(skip) => return skip,
    };
    if loaded.iter().any(|(p, r)| is_mine(ctx, mine, p, r)) {
        return Verdict::pass("the homeserver loads this registration as it is");
    }
    let Some((path, copy)) = loaded
        .iter()
        .find(|(_, other)| other.id.is_some() && other.id == mine.id)
    else {
        return Verdict::skip("the homeserver loads no copy of this registration");
    };
    let differing = differing_fields(mine, copy);
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

/// The keys whose values differ between two versions of a registration.
fn differing_fields(mine: &Registration, copy: &Registration) -> Vec<String> {
    let (a, b) = (&mine.document.root, &copy.document.root);
    let mut keys: Vec<&str> = a.entries().iter().map(|(k, _)| k.as_str()).collect();
    keys.extend(
        b.entries()
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| a.get(k).is_none()),
    );
    keys.into_iter()
        .filter(|key| match (a.get(key), b.get(key)) {
            (Some(x), Some(y)) => !x.same_value(y),
            _ => true,
        })
        .map(str::to_owned)
        .collect()
}
