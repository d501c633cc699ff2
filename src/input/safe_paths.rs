//! Which values of a config may be shown to a stranger: the allow-list of
//! each known format, as key path patterns.
//!
//! Deny by default: a string value is shown only when its path matches a
//! pattern of its format (addresses, ports, ids, user names, regexes,
//! paths, enumerations). Each format keeps its list beside its reader
//! (`SAFE_PATHS` in `bridge.rs`, `registration.rs`, `homeserver.rs`,
//! `config.rs`), so a new field is judged where it is read.
//!
//! A pattern is dotted steps: a key, `*` (any one key), `[]` (any item of a
//! list) or `**` (anything below, at any depth). `bridge.permissions.*`
//! matches the value of every user in the permissions map.

use crate::input::bridge::BridgeFormat;
use crate::input::scalars::Step;

/// What a config file is, as far as the allow-lists go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Doctor,
    Registration,
    Homeserver,
    Bridge(BridgeFormat),
    /// A format the doctor does not know: no value is shown.
    Unknown,
}

impl ConfigKind {
    pub fn name(self) -> &'static str {
        match self {
            ConfigKind::Doctor => "bridge-doctor config",
            ConfigKind::Registration => "appservice registration",
            ConfigKind::Homeserver => "Synapse config",
            ConfigKind::Bridge(format) => format.name(),
            ConfigKind::Unknown => "unknown format",
        }
    }

    /// The format's allow-list, as lists of patterns (formats share some).
    fn patterns(self) -> &'static [&'static [&'static str]] {
        match self {
            ConfigKind::Doctor => &[crate::input::config::SAFE_PATHS],
            ConfigKind::Registration => &[crate::input::registration::SAFE_PATHS],
            ConfigKind::Homeserver => &[crate::input::homeserver::SAFE_PATHS],
            ConfigKind::Bridge(format) => format.safe_paths(),
            ConfigKind::Unknown => &[],
        }
    }

    /// Whether the value at `path` may be shown.
    pub fn allows(self, path: &[Step]) -> bool {
        self.patterns()
            .iter()
            .flat_map(|list| list.iter())
            .any(|pattern| matches(&steps(pattern), path))
    }
}

/// A pattern's steps: `a.b[].c` is `a`, `b`, `[]`, `c`.
fn steps(pattern: &'static str) -> Vec<&'static str> {
    pattern.split('.').flat_map(split_items).collect()
}

/// `listeners[]` is two steps: the key and the item.
fn split_items(step: &str) -> Vec<&str> {
    let mut steps = Vec::new();
    let mut rest = step;
    while let Some(key) = rest.strip_suffix("[]") {
        steps.push("[]");
        rest = key;
    }
    if !rest.is_empty() {
        steps.push(rest);
    }
    steps.reverse();
    steps
}

fn matches(pattern: &[&str], path: &[Step]) -> bool {
    match (pattern.first(), path.first()) {
        (Some(&"**"), _) => true,
        (None, None) => true,
        (Some(&"[]"), Some(Step::Item)) => matches(&pattern[1..], &path[1..]),
        (Some(&"*"), Some(Step::Key(_))) => matches(&pattern[1..], &path[1..]),
        (Some(want), Some(Step::Key(key))) if want == key => matches(&pattern[1..], &path[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(steps: &[&str]) -> Vec<Step> {
        steps
            .iter()
            .map(|s| match *s {
                "[]" => Step::Item,
                key => Step::Key(key.to_owned()),
            })
            .collect()
    }

    #[test]
    fn patterns_match_keys_items_and_depth() {
        assert!(matches(&["a", "*"], &path(&["a", "b.c"])));
        assert!(!matches(&["a", "*"], &path(&["a", "b", "c"])));
        assert!(matches(&["a", "[]", "b"], &path(&["a", "[]", "b"])));
        assert!(matches(&["a", "**"], &path(&["a", "[]", "b", "c"])));
        assert!(!matches(&["a"], &path(&["a", "b"])));
        assert_eq!(split_items("namespaces"), ["namespaces"]);
        assert_eq!(split_items("listeners[]"), ["listeners", "[]"]);
    }

    #[test]
    fn registrations_show_ids_and_regexes_not_tokens() {
        let kind = ConfigKind::Registration;
        assert!(kind.allows(&path(&["namespaces", "users", "[]", "regex"])));
        assert!(kind.allows(&path(&["url"])));
        assert!(!kind.allows(&path(&["as_token"])));
        assert!(!kind.allows(&path(&["some_new_field"])));
    }
}
