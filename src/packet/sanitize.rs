//! Sanitising configs and logs for the support packet, deny by default.
//!
//! Configs are edited in place (the packet's copy keeps the admin's line
//! numbers and comments): every scalar under a key whose name says secret is
//! replaced by a look-alike of the same shape, URIs lose their user info, and
//! `as_token:...` strings (double-puppet secrets) are masked wherever they
//! are. Every value masked in a config is then masked in the logs too.

use aho_corasick::AhoCorasick;
use serde::Serialize;

use crate::input::yaml::{Document, Node, Value, scalar_span};
use crate::shared::redact::{self, mask};

/// Words that make a key secret when they appear as a part of its name.
const SECRET_WORDS: &[&str] = &[
    "token",
    "tokens",
    "secret",
    "secrets",
    "password",
    "passwd",
    "key",
    "keys",
    "hash",
    "pickle",
    "credential",
    "credentials",
    "cookie",
    "cookies",
    "session",
    "sessions",
    "private",
    "macaroon",
];

/// Shorter values are not searched for in logs: they would mask ordinary words.
const MIN_SECRET_LEN: usize = 6;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Redaction {
    pub file: String,
    /// The field path in a config, or `line N` in a log.
    pub location: String,
    pub rule: &'static str,
    /// What kind of value was there (never the value).
    pub kind: String,
}

pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_lowercase();
    lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|part| SECRET_WORDS.contains(&part))
        || lower.contains("shared_secret")
        || lower.contains("api_hash")
}

/// A description of a value's shape for `redactions.json`.
fn kind_of(value: &str) -> String {
    let special = value.chars().any(|c| !c.is_ascii_alphanumeric());
    format!(
        "{} characters{}",
        value.chars().count(),
        if special {
            ", with special characters"
        } else {
            ""
        }
    )
}

struct Edit {
    range: std::ops::Range<usize>,
    replacement: String,
}

pub struct SanitizedFile {
    pub text: String,
    pub redactions: Vec<Redaction>,
    /// The original values masked, to be masked in logs as well.
    pub secrets: Vec<String>,
}

/// Masks a value but keeps YAML valid: quote characters are letters here.
fn yaml_mask(value: &str) -> String {
    mask(value).replace(['"', '\'', '\\'], "x")
}

/// One file's walk: the text being sanitised and what was found so far.
struct Walker<'a> {
    text: &'a str,
    file: &'a str,
    edits: Vec<Edit>,
    out: SanitizedFile,
}

impl Walker<'_> {
    fn walk(&mut self, node: &Node, path: &str, under_secret: bool) {
        match &node.value {
            Value::Map(entries) => {
                for (key, child) in entries {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.walk(child, &child_path, under_secret || is_secret_key(key));
                }
            }
            Value::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.walk(item, &format!("{path}[{index}]"), under_secret);
                }
            }
            Value::Bool(_) | Value::Null => {}
            Value::Str(_) | Value::Int(_) | Value::Float(_) => {
                self.scalar(node, path, under_secret)
            }
        }
    }

    /// Masks one scalar in place when it is a secret, keeping its quotes.
    fn scalar(&mut self, node: &Node, path: &str, under_secret: bool) {
        let value = node.scalar_text().unwrap_or_default();
        let (rule, replacement) = if under_secret {
            ("secret key", yaml_mask(&value))
        } else if value.contains("://") && redact::uri(&value) != value {
            ("uri credentials", redact::uri(&value))
        } else if value.starts_with("as_token:") {
            ("double-puppet secret", yaml_mask(&value))
        } else {
            return;
        };
        let Some(range) = scalar_span(self.text, node.pos, node.as_str()) else {
            return;
        };
        let quote = self.text[range.clone()]
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'');
        let replacement = match quote {
            Some(q) => format!("{q}{replacement}{q}"),
            None => replacement,
        };
        self.edits.push(Edit { range, replacement });
        self.out.redactions.push(Redaction {
            file: self.file.to_owned(),
            location: path.to_owned(),
            rule,
            kind: kind_of(&value),
        });
        if rule == "uri credentials" {
            self.out.secrets.extend(uri_userinfo_secrets(&value));
        } else {
            self.out.secrets.push(value);
        }
    }
}

/// The user info of a URI, and its password alone: the secrets to hunt
/// for in logs.
fn uri_userinfo_secrets(value: &str) -> Vec<String> {
    let Some(userinfo) = value
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .map(|(u, _)| u)
    else {
        return Vec::new();
    };
    let mut secrets = vec![userinfo.to_owned()];
    if let Some((_, password)) = userinfo.split_once(':') {
        secrets.push(password.to_owned());
    }
    secrets
}

/// Sanitises one YAML (or JSON) file. A file that does not parse is
/// sanitised line by line instead, and says so in its first redaction.
pub fn sanitize_config(file: &str, text: &str) -> SanitizedFile {
    let mut out = SanitizedFile {
        text: String::new(),
        redactions: Vec::new(),
        secrets: Vec::new(),
    };
    let document = match Document::parse(std::path::Path::new(file), text) {
        Ok(document) => document,
        Err(_) => {
            out.text = text
                .lines()
                .enumerate()
                .map(|(index, line)| {
                    let cleaned = redact::line(&key_value_line(line));
                    if cleaned != line {
                        out.redactions.push(Redaction {
                            file: file.to_owned(),
                            location: format!("line {}", index + 1),
                            rule: "unparsable file, line rule",
                            kind: "value".to_owned(),
                        });
                    }
                    cleaned + "\n"
                })
                .collect();
            return out;
        }
    };
    let mut walker = Walker {
        text,
        file,
        edits: Vec::new(),
        out,
    };
    walker.walk(&document.root, "", false);
    let Walker {
        mut edits, mut out, ..
    } = walker;
    edits.sort_by_key(|e| std::cmp::Reverse(e.range.start));
    let mut result = text.to_owned();
    for edit in edits {
        result.replace_range(edit.range, &edit.replacement);
    }
    out.text = result;
    out
}

/// `key: value` with a secret-sounding key, masked, for files we cannot parse.
fn key_value_line(line: &str) -> String {
    match line.split_once(':') {
        Some((key, value))
            if is_secret_key(key.trim().trim_matches(['"', '\'', '-', ' ']))
                && !value.trim().is_empty() =>
        {
            format!("{key}: {}", yaml_mask(value.trim()))
        }
        _ => line.to_owned(),
    }
}

/// Every secret value found in the configs, searched for in log lines.
pub struct SecretValues {
    automaton: Option<AhoCorasick>,
}

impl SecretValues {
    pub fn new(values: &[String]) -> SecretValues {
        let mut values: Vec<&str> = values
            .iter()
            .map(String::as_str)
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        values.sort_unstable_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        SecretValues {
            automaton: (!values.is_empty()).then(|| {
                AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                    .build(&values)
                    .expect("literal secrets build an automaton")
            }),
        }
    }

    /// The line with known secrets and secret-looking parameters masked;
    /// the rules that fired, for `redactions.json`.
    pub fn clean_line(&self, line: &str) -> (String, Vec<&'static str>) {
        let mut rules = Vec::new();
        let mut text = match &self.automaton {
            Some(automaton) if automaton.is_match(line) => {
                rules.push("secret value from a config");
                let mut out = String::with_capacity(line.len());
                let mut last = 0;
                for hit in automaton.find_iter(line) {
                    out.push_str(&line[last..hit.start()]);
                    out.push_str(&mask(&line[hit.start()..hit.end()]));
                    last = hit.end();
                }
                out.push_str(&line[last..]);
                out
            }
            _ => line.to_owned(),
        };
        let cleaned = redact::line(&text);
        if cleaned != text {
            rules.push("token parameter or header");
            text = cleaned;
        }
        (text, rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised_by_name_parts() {
        for key in [
            "as_token",
            "hs_token",
            "api_hash",
            "pickle_key",
            "login_shared_secret_map",
            "my_weird_secret",
            "password",
            "macaroon_secret_key",
            "cookie",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "address",
            "domain",
            "username_template",
            "keyboard",
            "bot_username",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn config_is_masked_in_place_keeping_shape_comments_and_hosts() {
        let text = "appservice:\n    as_token: \"Ab1-secretvalue\" # keep me\n    database: postgres://user:p@ss/w:rd@db.example:5432/bridge\nbridge:\n    login_shared_secret_map:\n        example.com: as_token:DoublePuppet99\n    nested:\n        deeper: {password: hunter22, user: bob}\n    allow_key_sharing: false\n";
        let out = sanitize_config("config.yaml", text);
        for secret in ["Ab1-secretvalue", "p@ss/w:rd", "DoublePuppet99", "hunter22"] {
            assert!(
                !out.text.contains(secret),
                "{secret} left in:\n{}",
                out.text
            );
        }
        assert!(
            out.text.contains("as_token: \"xx0-xxxxxxxxxxx\" # keep me"),
            "{}",
            out.text
        );
        assert!(
            out.text.contains("postgres://db.example:5432/bridge"),
            "{}",
            out.text
        );
        assert!(out.text.contains("user: bob"));
        assert!(out.text.contains("allow_key_sharing: false"));
        assert!(
            Document::parse(std::path::Path::new("x"), &out.text).is_ok(),
            "still YAML"
        );
        let locations: Vec<&str> = out.redactions.iter().map(|r| r.location.as_str()).collect();
        assert_eq!(
            locations,
            [
                "appservice.as_token",
                "appservice.database",
                "bridge.login_shared_secret_map.example.com",
                "bridge.nested.deeper.password"
            ]
        );
        assert!(out.secrets.contains(&"p@ss/w:rd".to_owned()));
    }

    #[test]
    fn log_lines_lose_config_secrets_anywhere() {
        let secrets = SecretValues::new(&["Ab1-secretvalue".to_owned(), "abc".to_owned()]);
        let (line, rules) = secrets.clean_line("connecting with Ab1-secretvalue to abc");
        assert_eq!(line, "connecting with xx0-xxxxxxxxxxx to abc");
        assert_eq!(rules, ["secret value from a config"]);
    }

    #[test]
    fn unparsable_config_falls_back_to_line_rules() {
        let out = sanitize_config("broken.yaml", "a: [\npassword: hunter22\n");
        assert!(!out.text.contains("hunter22"), "{}", out.text);
        assert_eq!(out.redactions[0].rule, "unparsable file, line rule");
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        /// A random secret as tokens and passwords look: letters, digits and
        /// the punctuation they carry, at least one letter or digit.
        fn secret() -> impl Strategy<Value = String> {
            "[A-Za-z0-9][A-Za-z0-9_.~+/=!@#%-]{5,40}"
        }

        /// A scalar as YAML writes it: plain, single- or double-quoted.
        fn written(value: &str, style: u8) -> String {
            match style % 3 {
                0 if !value.contains([
                    ':', '#', '@', '!', '%', '&', '*', '\'', '"', '`', '|', '>', '{', '[', ',',
                ]) =>
                {
                    value.to_owned()
                }
                1 => format!("'{}'", value.replace('\'', "''")),
                _ => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
            }
        }

        const SECRET_KEYS: &[&str] = &[
            "as_token",
            "hs_token",
            "password",
            "pickle_key",
            "shared_secret",
            "api_hash",
            "login_shared_secret",
        ];
        const PLAIN_KEYS: &[&str] = &["address", "domain", "id", "username", "port_name"];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            /// A config with secrets under secret-named keys, at any depth and
            /// in any quoting, comes out without any of them.
            #[test]
            fn sanitised_configs_keep_no_secret(
                entries in prop::collection::vec(
                    (prop::sample::select(SECRET_KEYS), secret(), 0u8..3, 0usize..3, prop::sample::select(PLAIN_KEYS), "[a-z0-9.-]{1,12}"),
                    1..6,
                )
            ) {
                let mut text = String::new();
                let mut secrets = Vec::new();
                for (n, (key, value, style, depth, plain_key, plain)) in entries.iter().enumerate() {
                    text.push_str(&format!("section{n}:\n"));
                    let indent = "  ".repeat(depth + 1);
                    for level in 0..*depth {
                        text.push_str(&format!("{}level{level}:\n", "  ".repeat(level + 1)));
                    }
                    text.push_str(&format!("{indent}{plain_key}: {plain}\n{indent}{key}: {}  # set me\n", written(value, *style)));
                    secrets.push(value.clone());
                }
                let out = sanitize_config("config.yaml", &text);
                for secret in &secrets {
                    prop_assert!(!out.text.contains(secret.as_str()), "{secret} in\n{}", out.text);
                }
            }

            /// Any config text at all: no panic.
            #[test]
            fn any_text_sanitises_without_panic(text in "\\PC{0,400}") {
                let _ = sanitize_config("x.yaml", &text);
            }

            /// A secret from a config is masked in any log line around it.
            #[test]
            fn log_lines_never_show_a_config_secret(
                secret in secret(), before in "\\PC{0,60}", after in "\\PC{0,60}"
            ) {
                let line = format!("{before}{secret}{after}");
                let (clean, _) = SecretValues::new(std::slice::from_ref(&secret)).clean_line(&line);
                prop_assert!(!clean.contains(secret.as_str()), "{clean}");
            }
        }
    }
}
