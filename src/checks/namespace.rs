//! Namespaces, matched the way Synapse does: Python `re.match` (anchored at
//! the start only) on the full user ID.

use regex::Regex;

use super::{Check, Context, Verdict};
use crate::registration::NamespaceEntry;

pub const CHECKS: &[Check] = &[Check {
    id: "namespace.bot_not_covered",
    run: bot_not_covered,
}];

/// How a namespace regex behaves under Python's `re.match`.
#[derive(Debug)]
pub enum PyRegex {
    Usable(Regex),
    /// Syntax Rust's `regex` cannot run (lookaround, backreferences): we
    /// cannot tell what it matches, so we never claim it fails.
    Unverifiable(String),
    Invalid(String),
}

impl PyRegex {
    pub fn compile(pattern: &str) -> PyRegex {
        match Regex::new(&format!("^(?:{pattern})")) {
            Ok(regex) => PyRegex::Usable(regex),
            Err(err) => {
                let text = err.to_string();
                let python_only = ["look-around", "lookaround", "backreference"]
                    .iter()
                    .any(|needle| text.contains(needle));
                if python_only {
                    PyRegex::Unverifiable(text)
                } else {
                    PyRegex::Invalid(text)
                }
            }
        }
    }

    /// `Some(matched)`, or `None` when unverifiable or invalid.
    pub fn matches(&self, user_id: &str) -> Option<bool> {
        match self {
            PyRegex::Usable(regex) => Some(regex.is_match(user_id)),
            _ => None,
        }
    }
}

/// Whether any namespace entry matches: `Some(true)` if one surely does,
/// `None` if none surely does but one could not be verified.
pub fn covered(entries: &[NamespaceEntry], user_id: &str) -> Option<bool> {
    let mut unsure = false;
    for entry in entries {
        match PyRegex::compile(&entry.regex).matches(user_id) {
            Some(true) => return Some(true),
            Some(false) => {}
            None => unsure = true,
        }
    }
    if unsure { None } else { Some(false) }
}

fn bot_not_covered(ctx: &Context) -> Verdict {
    let (Some(registration), Some(bot)) =
        (ctx.target.registration(), ctx.target.bot_user_id(ctx.facts))
    else {
        return Verdict::skip("needs the registration and the bot username from the bridge config");
    };
    let localpart = bot
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap_or_default();
    if registration.sender_localpart.as_deref() == Some(localpart) {
        return Verdict::pass(format!("{bot} is the registration's sender_localpart"));
    }
    // A live /register refused as M_EXCLUSIVE confirms it (the doctor's own startup).
    let refused_live = ctx
        .target
        .live
        .as_ref()
        .and_then(|l| l.bot_registration.as_ref())
        .and_then(|r| r.as_ref().ok())
        .filter(|answer| {
            answer.errcode_is("M_EXCLUSIVE") || answer.errcode_is("M_INVALID_USERNAME")
        });
    let verdict = match covered(&registration.namespaces.users, &bot) {
        Some(true) if refused_live.is_none() => {
            return Verdict::pass(format!("{bot} is in the registration's users namespace"));
        }
        None if refused_live.is_none() => {
            return Verdict::warn(format!(
                "unverifiable: the users namespace uses regex syntax the doctor cannot run, so it cannot tell whether {bot} is covered"
            ));
        }
        _ => Verdict::fail(format!(
            "the bridge bot {bot} is not covered by the registration: the homeserver refuses to register it"
        )),
    };
    let regexes: Vec<&str> = registration
        .namespaces
        .users
        .iter()
        .map(|n| n.regex.as_str())
        .collect();
    let mut detail = format!(
        "Neither `sender_localpart` nor any `namespaces.users` regex of {} matches {bot} (regexes: {}).",
        registration.path.display(),
        regexes.join(", ")
    );
    if let Some(answer) = refused_live {
        detail.push_str(&format!(
            " The homeserver answered the registration of the bot with {}.",
            answer.summary()
        ));
    }
    verdict
        .detail(detail)
        .evidence("field", "namespaces.users")
        .evidence("bot", bot)
        .fix([
            "Check `homeserver.domain` (it must be the homeserver's server_name) and the bot username in the bridge config.",
            "If you changed the bot username or domain, regenerate the registration so its namespace includes the bot, give it to the homeserver and restart it.",
            "Check that no other registration claims the bot's user ID exclusively.",
        ])
        .faq("the-as_token-was-accepted-but-the-register-request-was-not")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_match_is_anchored_at_start_only() {
        let regex = PyRegex::compile("@telegram_.*:doctor\\.test");
        assert_eq!(regex.matches("@telegram_123:doctor.test"), Some(true));
        assert_eq!(regex.matches("x@telegram_123:doctor.test"), Some(false));
        // re.match does not anchor the end: a longer ID still matches.
        assert_eq!(PyRegex::compile("@a").matches("@abc:x"), Some(true));
    }

    #[test]
    fn lookaround_is_unverifiable_not_invalid() {
        assert!(matches!(
            PyRegex::compile("@(?!admin).*:x"),
            PyRegex::Unverifiable(_)
        ));
        assert!(matches!(PyRegex::compile("@a[:x"), PyRegex::Invalid(_)));
    }
}
