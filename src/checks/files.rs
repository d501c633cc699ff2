//! Files: can every configured file be read, is it YAML, and does it hold
//! the admin's values rather than the examples?

use super::{Check, Context, Verdict};
use crate::facts::FileProblem;
use crate::input::config::TOKEN_PLACEHOLDER;

pub const CHECKS: &[Check] = &[
    Check {
        id: "config.unreadable",
        run: unreadable,
    },
    Check {
        id: "config.invalid_yaml",
        run: invalid_yaml,
    },
    Check {
        id: "config.not_configured",
        run: not_configured,
    },
];

/// Every file problem of this target: registration, bridge config, homeserver config.
fn file_problems<'a>(ctx: &'a Context) -> Vec<&'a FileProblem> {
    let mut problems = Vec::new();
    if let Err(problem) = &ctx.target.registration {
        problems.push(problem);
    }
    if let Some(Err(problem)) = &ctx.target.config {
        problems.push(problem);
    }
    if let Some(Err(problem)) = &ctx.facts.homeserver.config {
        problems.push(problem);
    }
    problems
}

fn unreadable(ctx: &Context) -> Verdict {
    let mut unreadable: Vec<_> = file_problems(ctx)
        .into_iter()
        .filter_map(|p| match p {
            FileProblem::Unreadable { path, message } => {
                Some(format!("{}: {message}", path.display()))
            }
            _ => None,
        })
        .collect();
    // Logs the `logs.*` checks could not read are configured files too.
    if let Some(logs) = &ctx.target.logs_scanned {
        unreadable.extend(logs.unreadable.iter().cloned());
    }
    if unreadable.is_empty() {
        return Verdict::pass("every configured file can be read");
    }
    Verdict::fail(format!("{} configured file(s) cannot be read", unreadable.len()))
        .detail(unreadable.join("\n"))
        .evidence("files", unreadable)
        .fix([
            "Check the path in the doctor's config (relative paths are taken from the config file's folder).",
            "Check that the user running bridge-doctor may read the file (`ls -l`, group membership).",
        ])
}

fn invalid_yaml(ctx: &Context) -> Verdict {
    let invalid: Vec<_> = file_problems(ctx)
        .into_iter()
        .filter_map(|p| match p {
            FileProblem::InvalidYaml { path, pos, message } => {
                Some(format!("{}:{pos}: {message}", path.display()))
            }
            _ => None,
        })
        .collect();
    if invalid.is_empty() {
        return Verdict::pass("every file is valid YAML");
    }
    Verdict::fail(format!("{} file(s) are not valid YAML", invalid.len()))
        .detail(invalid.join("\n"))
        .evidence("files", invalid)
        .fix([
            "Open the file at the line and column given and fix the syntax: mixed tabs and spaces, a missing space after `:`, or an unquoted value starting with `*`, `&`, `!` or `%` are the usual causes.",
            "Values with special characters (passwords in URIs, regexes) are safest in single quotes.",
        ])
}

/// Placeholder values that must be changed before a bridge works.
const PLACEHOLDERS: &[(&str, &str)] = &[
    ("homeserver.address", "https://example.com"),
    ("homeserver.address", "http://example.localhost:8008"),
    ("homeserver.domain", "example.com"),
    ("appservice.as_token", TOKEN_PLACEHOLDER),
    ("appservice.hs_token", TOKEN_PLACEHOLDER),
    ("telegram.api_id", "12345"),
];

fn not_configured(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let root = &config.document.root;
    let mut fields: Vec<String> = PLACEHOLDERS
        .iter()
        .filter(|(path, placeholder)| {
            root.path(path).and_then(|n| n.scalar_text()).as_deref() == Some(*placeholder)
        })
        .map(|(path, _)| {
            let pos = root.path(path).map(|n| n.pos).unwrap_or_default();
            format!("{path} ({}:{pos})", config.path().display())
        })
        .collect();
    for permissions in ["bridge.permissions", "permissions"] {
        let Some(node) = root.path(permissions) else {
            continue;
        };
        let keys: Vec<&str> = node.entries().iter().map(|(k, _)| k.as_str()).collect();
        if !keys.is_empty() && keys.iter().all(|k| *k == "*" || k.ends_with("example.com")) {
            fields.push(format!(
                "{permissions} ({}:{}): only the example entries",
                config.path().display(),
                node.pos
            ));
        }
    }
    if fields.is_empty() {
        return Verdict::pass("no field holds its example or placeholder value");
    }
    let names: Vec<&str> = fields
        .iter()
        .map(|f| f.split(' ').next().unwrap_or_default())
        .collect();
    Verdict::fail(format!("not configured: {}", names.join(", ")))
        .detail(format!("These fields still hold the example value: {}", fields.join("; ")))
        .evidence("fields", names.clone())
        .fix([
            "Set each field named above to your own value (dots mean nesting: `homeserver.domain` is `domain:` under `homeserver:`).".to_owned(),
            "For the tokens, generate the registration (`-g` for mautrix bridges, `bridge-doctor generate-registration` for the doctor): it fills them in.".to_owned(),
            "Restart the bridge after editing.".to_owned(),
        ])
        .faq("configuration-error-field-not-configured")
}
