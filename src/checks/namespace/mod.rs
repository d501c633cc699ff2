//! Namespaces, matched the way Synapse does: Python `re.match` (anchored at
//! the start only) on the full user ID.

mod overlap;

use regex::Regex;

use super::{Check, Context, Verdict};
use crate::input::registration::{NamespaceEntry, Registration};
use overlap::{IdKind, Overlap};

pub const CHECKS: &[Check] = &[
    Check {
        id: "namespace.invalid_regex",
        run: invalid_regex,
    },
    Check {
        id: "namespace.localpart_only",
        run: localpart_only,
    },
    Check {
        id: "namespace.wrong_domain",
        run: wrong_domain,
    },
    Check {
        id: "namespace.bot_not_covered",
        run: bot_not_covered,
    },
    Check {
        id: "namespace.ghosts_not_covered",
        run: ghosts_not_covered,
    },
    Check {
        id: "namespace.exclusive_conflict",
        run: exclusive_conflict,
    },
    Check {
        id: "namespace.inline_flags",
        run: inline_flags,
    },
    Check {
        id: "namespace.too_broad",
        run: too_broad,
    },
    Check {
        id: "namespace.sender_is_bot",
        run: sender_is_bot,
    },
];

/// How a namespace regex behaves under Python's `re.match`.
#[derive(Debug)]
pub enum PyRegex {
    Usable(Regex),
    /// Syntax Rust's `regex` cannot run (lookaround, backreferences): we
    /// cannot tell what it matches, so we never claim it fails.
    Unverifiable,
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
                    PyRegex::Unverifiable
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

/// Every regex of the registration with where it is, for the regex checks.
fn all_entries(
    registration: &Registration,
) -> impl Iterator<Item = (&'static str, &NamespaceEntry)> {
    let ns = &registration.namespaces;
    ns.users
        .iter()
        .map(|e| ("users", e))
        .chain(ns.aliases.iter().map(|e| ("aliases", e)))
        .chain(ns.rooms.iter().map(|e| ("rooms", e)))
}

fn invalid_regex(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let mut invalid = Vec::new();
    let mut unverifiable = Vec::new();
    for (kind, entry) in all_entries(registration) {
        let place = format!(
            "namespaces.{kind} {:?} at {}:{}",
            entry.regex,
            registration.path.display(),
            entry.pos
        );
        match PyRegex::compile(&entry.regex) {
            PyRegex::Invalid(error) => invalid.push(format!(
                "{place}: {}",
                error.lines().last().unwrap_or_default().trim()
            )),
            PyRegex::Unverifiable => unverifiable.push(place),
            PyRegex::Usable(_) => {}
        }
    }
    if !invalid.is_empty() {
        return Verdict::fail(format!("{} namespace regex(es) do not compile", invalid.len()))
            .detail(invalid.join("\n"))
            .evidence("regexes", invalid)
            .fix([
                "Fix the regex syntax at the position given (an unescaped `[`, `(` or `\\` is the usual cause).",
                "Quote regexes in single quotes in YAML so backslashes stay as written.",
                "Restart the homeserver after the fix.",
            ]);
    }
    if !unverifiable.is_empty() {
        return Verdict::warn("unverifiable: a namespace regex uses lookaround or backreferences, which the doctor cannot evaluate")
            .detail(unverifiable.join("\n"))
            .evidence("regexes", unverifiable);
    }
    Verdict::pass("every namespace regex compiles")
}

/// Localparts the bridge will create, from its username template, with the
/// kinds of IDs networks use: digits, WhatsApp's `lid-` IDs, letters, dashes.
fn ghost_samples(template: &str) -> Vec<(String, bool)> {
    let placeholder = if template.contains("{{.}}") {
        "{{.}}"
    } else {
        "{userid}"
    };
    if !template.contains(placeholder) {
        return Vec::new();
    }
    let lid_is_real = template.contains("whatsapp");
    [
        ("4915112345678", true),
        ("lid-123456789", lid_is_real),
        ("alice", false),
        ("some-user", false),
    ]
    .into_iter()
    .map(|(value, must)| (template.replace(placeholder, value), must))
    .collect()
}

fn users_regexes(registration: &Registration) -> Vec<(&NamespaceEntry, PyRegex)> {
    registration
        .namespaces
        .users
        .iter()
        .map(|e| (e, PyRegex::compile(&e.regex)))
        .collect()
}

fn localpart_only(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let domain = ctx.target.domain(ctx.facts);
    let sender = registration.sender_localpart.clone().unwrap_or_default();
    let bad: Vec<String> = users_regexes(registration)
        .into_iter()
        .filter(|(entry, regex)| {
            // Written for a localpart: no `@`/`:` structure, and no full ID matches.
            let full_ids = [format!("@{sender}:{domain}"), format!("@user:{domain}")];
            !entry.regex.contains(':')
                && !entry.regex.contains('@')
                && full_ids.iter().all(|id| regex.matches(id) == Some(false))
        })
        .map(|(entry, _)| {
            format!(
                "{:?} at {}:{}",
                entry.regex,
                registration.path.display(),
                entry.pos
            )
        })
        .collect();
    if bad.is_empty() {
        return Verdict::pass("users regexes are written for full user IDs");
    }
    Verdict::fail("a users regex is written for the localpart alone and matches no user ID")
        .detail(format!(
            "The homeserver matches the whole ID `@localpart:{domain}`: {} never matches.",
            bad.join(", ")
        ))
        .evidence("regexes", bad)
        .fix([
            format!(
                "Write the regex for the full ID, e.g. '@prefix_.*:{}'.",
                regex::escape(domain)
            ),
            "Restart the homeserver.".to_owned(),
        ])
}

/// The literal domain a users regex names after its `:`, if plainly written.
fn regex_domain(pattern: &str) -> Option<String> {
    let (_, tail) = pattern.rsplit_once(':')?;
    let literal = tail
        .trim_end_matches('$')
        .trim_end_matches("\\Z")
        .replace("\\.", ".");
    let plain = !literal.is_empty()
        && literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    plain.then_some(literal)
}

fn wrong_domain(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let server_name = ctx
        .facts
        .homeserver
        .server_name_from_config()
        .unwrap_or(&ctx.facts.homeserver.domain);
    let wrong: Vec<String> = registration
        .namespaces
        .users
        .iter()
        .filter_map(|entry| {
            let domain = regex_domain(&entry.regex)?;
            (domain != server_name).then(|| {
                format!(
                    "{:?} names {domain} ({}:{})",
                    entry.regex,
                    registration.path.display(),
                    entry.pos
                )
            })
        })
        .collect();
    if wrong.is_empty() {
        return Verdict::pass(format!("users regexes name the server_name {server_name}"));
    }
    Verdict::fail(format!("a users regex names another domain than {server_name}"))
        .detail(wrong.join("\n"))
        .evidence("regexes", wrong)
        .fix([
            format!("Set `homeserver.domain` in the bridge config to {server_name}."),
            "Regenerate the registration, give it to the homeserver and restart the homeserver and the bridge.".to_owned(),
        ])
        .faq("the-as_token-was-accepted-but-the-register-request-was-not")
}

fn ghosts_not_covered(ctx: &Context) -> Verdict {
    let (Some(registration), Some(config)) = (ctx.target.registration(), ctx.target.config())
    else {
        return Verdict::skip("needs the registration and the bridge config");
    };
    let Some(template) = &config.username_template else {
        return Verdict::skip("the bridge config has no username template");
    };
    let domain = ctx.target.domain(ctx.facts);
    let samples = ghost_samples(&template.value);
    if samples.is_empty() {
        return Verdict::skip("the username template has no {userid} or {{.}} placeholder");
    }
    let mut must_fail = Vec::new();
    let mut may_fail = Vec::new();
    for (localpart, must) in samples {
        let user_id = format!("@{localpart}:{domain}");
        if covered(&registration.namespaces.users, &user_id) == Some(false) {
            if must {
                must_fail.push(user_id)
            } else {
                may_fail.push(user_id)
            }
        }
    }
    if must_fail.is_empty() && may_fail.is_empty() {
        return Verdict::pass(
            "sample ghost user IDs from the username template are in the namespace",
        );
    }
    let all: Vec<String> = must_fail.iter().chain(&may_fail).cloned().collect();
    let verdict = if must_fail.is_empty() {
        Verdict::warn("some possible ghost user IDs are outside the users namespace")
    } else {
        Verdict::fail("ghost user IDs the bridge creates are outside the users namespace")
    };
    verdict
        .detail(format!("From `{}` = {:?} ({}), these IDs match no users regex: {}. The homeserver refuses to create them (M_EXCLUSIVE: Invalid user localpart).", template.path, template.value, config.locate(template), all.join(", ")))
        .evidence("field", "namespaces.users")
        .evidence("unmatched", all)
        .fix([
            "Regenerate the registration with the bridge's own generator: it writes a regex that covers its template.",
            "Or widen the users regex, e.g. '@prefix_.*:domain' rather than '@prefix_[0-9]+:domain'.",
            "Restart the homeserver.",
        ])
        .faq("mautrix-whatsapp-messages-in-some-groups-are-no-longer-bridged")
}

/// The exclusive regexes of a registration, by the kind of ID they claim.
fn exclusive_by_kind(registration: &Registration) -> [(IdKind, Vec<&NamespaceEntry>); 3] {
    fn exclusive(entries: &[NamespaceEntry]) -> Vec<&NamespaceEntry> {
        entries.iter().filter(|e| e.exclusive).collect()
    }
    let ns = &registration.namespaces;
    [
        (IdKind::Users, exclusive(&ns.users)),
        (IdKind::Aliases, exclusive(&ns.aliases)),
        (IdKind::Rooms, exclusive(&ns.rooms)),
    ]
}

/// What comparing this registration with every other loaded one found:
/// conflicts with a witness ID, and pairs that could not be decided.
#[derive(Default)]
struct Comparison {
    conflicts: Vec<String>,
    unverifiable: Vec<String>,
}

fn compare(ctx: &Context, mine: &Registration, domain: &str) -> Comparison {
    let mut found = Comparison::default();
    let others = ctx
        .facts
        .homeserver
        .registrations
        .iter()
        .filter_map(|(path, other)| other.as_ref().ok().map(|o| (path, o)))
        .filter(|(path, other)| {
            other.id != mine.id
                && !mine.same_content(other)
                && !ctx
                    .facts
                    .homeserver
                    .real_paths
                    .same(path, &ctx.target.registration_path)
        });
    let my_kinds = exclusive_by_kind(mine);
    for (path, other) in others {
        let name = other.id.as_deref().unwrap_or("?");
        for ((kind, ours), (_, theirs)) in my_kinds.iter().zip(exclusive_by_kind(other)) {
            for (a, b) in ours.iter().flat_map(|a| theirs.iter().map(move |b| (a, b))) {
                let pair = format!(
                    "{:?} and {:?} of {name} ({})",
                    a.regex,
                    b.regex,
                    path.display()
                );
                match overlap::overlap(&a.regex, &b.regex, *kind, domain) {
                    Overlap::Disjoint => {}
                    Overlap::Shared(witness) => found
                        .conflicts
                        .push(format!("{witness} is claimed by both {pair}")),
                    Overlap::Unverifiable(why) => found.unverifiable.push(format!("{pair}: {why}")),
                }
            }
        }
    }
    found
}

fn exclusive_conflict(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    if ctx.facts.homeserver.registrations.is_empty() {
        return Verdict::skip("needs the homeserver config to know the other registrations");
    }
    let domain = ctx
        .facts
        .homeserver
        .server_name_from_config()
        .unwrap_or(&ctx.facts.homeserver.domain);
    let found = compare(ctx, registration, domain);
    if !found.conflicts.is_empty() {
        return Verdict::fail("another registration exclusively claims IDs this one claims exclusively")
            .detail(format!("{}\nThe homeserver gives each such ID to whichever registration it checks first; the other bridge's requests for it are refused (M_EXCLUSIVE).", found.conflicts.join("\n")))
            .evidence("conflicts", found.conflicts)
            .fix([
                "Give each bridge its own prefix: narrow the other registration's regex (or this one's) so they do not overlap; the ID above is one both claim.",
                "Remove registrations of bridges you no longer run from `app_service_config_files`.",
                "Restart the homeserver.",
            ])
            .faq("the-as_token-was-accepted-but-the-register-request-was-not");
    }
    if !found.unverifiable.is_empty() {
        return Verdict::warn(
            "unverifiable: some exclusive namespaces use regex syntax the doctor cannot compare",
        )
        .detail(found.unverifiable.join("\n"))
        .evidence("pairs", found.unverifiable);
    }
    Verdict::pass(format!(
        "no other loaded registration claims any ID of {domain} this one claims exclusively"
    ))
}

fn inline_flags(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let flagged: Vec<String> = registration
        .namespaces
        .users
        .iter()
        .filter(|e| e.exclusive && has_inline_flags(&e.regex))
        .map(|e| format!("{:?} at {}:{}", e.regex, registration.path.display(), e.pos))
        .collect();
    if flagged.is_empty() {
        return Verdict::pass("no exclusive users regex uses inline flags");
    }
    Verdict::fail("an exclusive users regex uses inline flags such as (?i)")
        .detail(format!("{}. Synapse joins all exclusive regexes into one, where an inline flag is no longer at the start; Python 3.11 and later refuse that, and Synapse fails to start.", flagged.join(", ")))
        .evidence("regexes", flagged)
        .fix(["Remove the inline flag; write character classes instead (e.g. [Aa] rather than (?i)a).", "Restart the homeserver."])
}

/// `(?i)`, `(?s)`, `(?ims)`... but not groups like `(?:` or `(?P<`.
fn has_inline_flags(pattern: &str) -> bool {
    pattern.match_indices("(?").any(|(i, _)| {
        let rest = &pattern[i + 2..];
        let letters: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        !letters.is_empty()
            && !letters.starts_with('P')
            && rest[letters.len()..].starts_with([')', ':', '-'])
    })
}

fn too_broad(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let domain = ctx.target.domain(ctx.facts);
    let people = [format!("@alice:{domain}"), format!("@admin:{domain}")];
    let broad: Vec<String> = registration
        .namespaces
        .users
        .iter()
        .filter(|e| {
            e.exclusive
                && people
                    .iter()
                    .all(|p| PyRegex::compile(&e.regex).matches(p) == Some(true))
        })
        .map(|e| format!("{:?} at {}:{}", e.regex, registration.path.display(), e.pos))
        .collect();
    if broad.is_empty() {
        return Verdict::pass("exclusive users regexes leave ordinary user IDs alone");
    }
    Verdict::fail("an exclusive users regex matches ordinary users of the server")
        .detail(format!(
            "{} matches {}: people can no longer register or use those IDs.",
            broad.join(", "),
            people.join(" and ")
        ))
        .evidence("regexes", broad)
        .fix([
            "Narrow the regex to the bridge's prefix, e.g. '@telegram_.*:domain'.",
            "Restart the homeserver.",
        ])
}

fn sender_is_bot(ctx: &Context) -> Verdict {
    let (Some(registration), Some(config)) = (ctx.target.registration(), ctx.target.config())
    else {
        return Verdict::skip("needs the registration and the bridge config");
    };
    let (Some(sender), Some(bot)) = (&registration.sender_localpart, &config.bot_username) else {
        return Verdict::skip("sender_localpart or the bot username is not set");
    };
    let encryption = &config.encryption;
    let syncs = encryption.allowed() && !crate::input::bridge::flag(&encryption.appservice);
    if sender != &bot.value || !syncs {
        return Verdict::pass("the bridge bot can sync for encryption as its own user");
    }
    Verdict::fail("the bridge bot is the registration's sender_localpart, but encryption needs it to /sync")
        .detail(format!(
            "`sender_localpart` in {} is `{sender}`, the bot username ({}). With encryption allowed and `encryption.appservice` off, the bridge bot syncs like a client, and the homeserver does not serve /sync to the appservice's own sender user: the bridge cannot decrypt anything.",
            registration.path.display(),
            config.locate(bot)
        ))
        .evidence("fields", vec!["sender_localpart", bot.path.as_str()])
        .fix([
            "Regenerate the registration with the bridge's own generator: it picks a random sender_localpart and puts the bot in the users namespace.",
            "Give the new registration to the homeserver and restart it, then the bridge.",
        ])
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
    fn ghost_samples_follow_both_template_styles() {
        let go = ghost_samples("whatsapp_{{.}}");
        assert!(
            go.iter()
                .any(|(l, must)| l == "whatsapp_lid-123456789" && *must)
        );
        let py = ghost_samples("telegram_{userid}");
        assert!(
            py.iter()
                .any(|(l, must)| l == "telegram_4915112345678" && *must)
        );
        assert!(py.iter().all(|(l, must)| !l.contains("lid-") || !must));
    }

    #[test]
    fn inline_flags_and_domains_are_recognised() {
        assert!(has_inline_flags("(?i)@bot:x"));
        assert!(!has_inline_flags("(?:a|b)@x"));
        assert!(!has_inline_flags("(?P<n>a)"));
        assert_eq!(
            regex_domain("@telegram_.*:doctor\\.test").as_deref(),
            Some("doctor.test")
        );
        assert_eq!(
            regex_domain("^@doctor:example\\.com$").as_deref(),
            Some("example.com")
        );
        assert_eq!(regex_domain("@a:.*"), None);
    }

    #[test]
    fn lookaround_is_unverifiable_not_invalid() {
        assert!(matches!(
            PyRegex::compile("@(?!admin).*:x"),
            PyRegex::Unverifiable
        ));
        assert!(matches!(PyRegex::compile("@a[:x"), PyRegex::Invalid(_)));
    }
}
