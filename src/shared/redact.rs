//! Keeping secrets out of everything the doctor prints.

use std::sync::OnceLock;

use regex::Regex;

/// A look-alike of a secret: letters become `x`, digits `0`, everything
/// else stays, so a reader still sees length and special characters (a
/// common cause of config errors) but never the value.
pub fn mask(value: &str) -> String {
    let masked: String = value
        .chars()
        .map(|c| match c {
            c if c.is_ascii_digit() => '0',
            c if c.is_alphabetic() => 'x',
            c => c,
        })
        .collect();
    // A value made of `x`, `0` and punctuation would look like itself.
    if masked == value {
        "*".repeat(value.chars().count())
    } else {
        masked
    }
}

/// Secrets that show up inside log lines: `access_token=` parameters,
/// `Authorization: Bearer` values, and `key: value` / `"key": "value"` pairs
/// whose key names a secret.
fn line_patterns() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(concat!(
            // Synapse names a reused as_token when it refuses to start.
            r#"(?P<prefix>access_token=|(?i:bearer)\s+|as_token across application services:\s*|"#,
            r#"["']?\b[a-z_.]*(?:token|secret|password|passwd|api_hash|pickle_key)["']?\s*[:=]\s*["']?)"#,
            r#"(?P<value>[^\s"'&,;}]+)"#,
        ))
        .expect("redaction pattern compiles")
    })
}

/// A log line with every recognisable secret replaced by its look-alike.
pub fn line(text: &str) -> String {
    line_patterns()
        .replace_all(text, |caps: &regex::Captures| {
            format!("{}{}", &caps["prefix"], mask(&caps["value"]))
        })
        .into_owned()
}

/// A URI or connection string without its user info: scheme, host, port,
/// path (database name) and query stay, because they are what an admin
/// needs to see; the password never is.
pub fn uri(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    // User info ends at the last `@` before the query, so a password holding
    // `@` or `/` is still removed whole.
    let query_start = rest.find('?').unwrap_or(rest.len());
    match rest[..query_start].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_shape_not_value() {
        assert_eq!(mask("Ab9_x-Z"), "xx0_x-x");
        assert_eq!(mask("x0-x00"), "******", "a value that masks to itself");
    }

    #[test]
    fn log_lines_lose_tokens() {
        let text = line(
            "GET /sync?access_token=syt_abc123&since=1 Authorization: Bearer abc.def as_token: Q1w2 \"hs_token\": \"zz9\"",
        );
        for secret in ["syt_abc123", "abc.def", "Q1w2", "zz9"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert!(text.contains("since=1"), "{text}");
        assert_eq!(line("nothing here"), "nothing here");
        let synapse = line(
            "ConfigError: Cannot reuse as_token across application services: Zq9Token (files: /a.yaml, /b.yaml)",
        );
        assert!(
            !synapse.contains("Zq9Token") && synapse.contains("/a.yaml"),
            "{synapse}"
        );
        let error = "mautrix.errors.request.MUnknownToken: Invalid access token passed.";
        assert_eq!(line(error), error, "an error name is not a secret key");
    }

    #[test]
    fn uri_loses_user_info_keeps_host_and_database() {
        assert_eq!(
            uri("postgres://user:p%40ss@db.example:5432/bridge?sslmode=disable"),
            "postgres://db.example:5432/bridge?sslmode=disable"
        );
        assert_eq!(uri("postgres://u:a@b/c@host/db"), "postgres://host/db");
        assert_eq!(uri("sqlite:x.db"), "sqlite:x.db");
    }

    mod property {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// A secret-named key's value never survives in a log line, in
            /// the `key: value`, `key=value` and JSON forms.
            #[test]
            fn keyed_secrets_never_survive(
                key in prop::sample::select(&["as_token", "hs_token", "access_token", "password", "pickle_key", "shared_secret"][..]),
                value in "[A-Za-z0-9][A-Za-z0-9_.~+/-]{3,40}",
                form in 0u8..3,
                before in "[ -~]{0,40}",
            ) {
                let pair = match form {
                    0 => format!("{key}: {value}"),
                    1 => format!("{key}={value}"),
                    _ => format!("\"{key}\": \"{value}\""),
                };
                let text = line(&format!("{before} {pair} end"));
                prop_assert!(!text.contains(&format!("{value} end")) && !text.contains(&format!("{value}\" end")), "{text}");
            }

            #[test]
            fn any_text_redacts_without_panic(text in "\\PC{0,300}") {
                let _ = line(&text);
                let _ = uri(&text);
                let _ = mask(&text);
            }
        }
    }
}
