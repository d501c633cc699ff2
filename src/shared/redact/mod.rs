//! Keeping secrets out of everything the doctor lets out: terminal, JSON,
//! chat, the packet and its own log all pass their lines through [`line`].

mod hunt;
mod output;
#[cfg(test)]
mod review_tests;
mod rules;

pub use hunt::remember;
pub use output::{Redacting, json};

/// A look-alike of a secret: letters become `x`, digits `0`, everything
/// else stays, so a reader still sees length and special characters (a
/// common cause of config errors) but never the value.
pub fn mask(value: &str) -> String {
    let mut masked = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            // A JSON escape stays an escape, so masking JSON or a quoted
            // string keeps it valid (`\n` would become `\x`); `\uXXXX`
            // would show the character, so it becomes `\u0078` (`x`).
            ('\\', Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't')) => {
                masked.push(c);
                masked.extend(chars.next());
            }
            ('\\', Some('u')) => {
                masked.push_str("\\u0078");
                chars.next();
                for _ in 0..4 {
                    chars.next_if(char::is_ascii_hexdigit);
                }
            }
            (c, _) if c.is_ascii_digit() => masked.push('0'),
            (c, _) if c.is_alphabetic() => masked.push('x'),
            (c, _) => masked.push(c),
        }
    }
    // A value made of `x`, `0` and punctuation would look like itself.
    if masked == value {
        "*".repeat(value.chars().count())
    } else {
        masked
    }
}

/// A line with every secret the doctor can recognise masked: the values it
/// has read in any config (in any encoding, [`hunt`]) and values the generic
/// rules recognise by what stands before them ([`rules`]).
pub fn line(text: &str) -> String {
    let hunted = hunt::apply(text);
    let text = hunted.as_deref().unwrap_or(text);
    rules::apply(text).unwrap_or_else(|| text.to_owned())
}

/// `text` with only the known secret values masked (no generic rules): for
/// a text that is already sanitised by its structure, such as a config.
pub fn known_secrets(text: &str) -> String {
    hunt::apply(text).unwrap_or_else(|| text.to_owned())
}

/// Whether `text` is already a mask ([`mask`]'s letters, digits and stars
/// only), so masking it again would only lose its shape.
pub fn is_mask(text: &str) -> bool {
    text.chars()
        .all(|c| matches!(c, 'x' | '0' | '*') || !c.is_alphanumeric())
}

/// The credentials the generic rules find in `text` (a password in a URI,
/// `password=` in a libpq string, `API_KEY=` in an environment line), so
/// whoever reads them can hunt them everywhere else.
pub fn credentials_in(text: &str) -> Vec<String> {
    rules::spans(text)
        .into_iter()
        .map(|span| text[span].to_owned())
        .collect()
}

/// [`line`], and which kinds of rule fired, for the packet's record of
/// what it masked.
pub fn line_explained(text: &str) -> (String, Vec<&'static str>) {
    let mut reasons = Vec::new();
    let hunted = hunt::apply(text);
    if hunted.is_some() {
        reasons.push("secret value read from a config");
    }
    let text = hunted.as_deref().unwrap_or(text);
    let ruled = rules::apply(text);
    if ruled.is_some() {
        reasons.push("credential by its key, header or URI");
    }
    (ruled.unwrap_or_else(|| text.to_owned()), reasons)
}

/// Any text, line by line (a report, a reply, a file of the packet).
pub fn text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (body, end) = match piece.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (piece, ""),
        };
        out.push_str(&line(body));
        out.push_str(end);
    }
    out
}

/// Words that make a key secret when they are one of its parts
/// (`smtp_pass`, `botToken`, `client-secret`, `API_KEY`).
const SECRET_WORDS: &[&str] = &[
    "token",
    "tokens",
    "secret",
    "secrets",
    "password",
    "passwd",
    "pass",
    "passcode",
    "passphrase",
    "pwd",
    "key",
    "keys",
    "apikey",
    "hash",
    "pickle",
    "credential",
    "credentials",
    "cookie",
    "cookies",
    "session",
    "sessions",
    "macaroon",
    "auth",
    "signature",
    "salt",
    "authorization",
];

/// What may follow the secret word in a key that still holds the secret
/// (`login_shared_secret_map`, `password_b64`). Anything else names
/// something about it: a place (`signing_key_path`, `passFile`), servers
/// (`trusted_key_servers`), a duration (`session_lifetime`), a switch
/// (`allow_key_sharing`).
const SECRET_TAILS: &[&str] = &[
    "map", "maps", "list", "value", "values", "b64", "base64", "hex", "raw", "old", "new", "str",
    "string",
];

/// The parts of a key name, lower case: split at every non-alphanumeric
/// character and before each capital that follows a lower-case letter.
fn key_parts(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut previous_lower = false;
    for c in key.chars() {
        if (!c.is_alphanumeric() || (c.is_uppercase() && previous_lower)) && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        if c.is_alphanumeric() {
            current.extend(c.to_lowercase());
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Whether a key's value is a secret by the key's name, in any style: a
/// part of it names a secret, and only [`SECRET_TAILS`] follow that part.
pub fn is_secret_key(key: &str) -> bool {
    let parts = key_parts(key);
    let names_secret = |part: &String| {
        SECRET_WORDS.contains(&part.as_str())
            || part.ends_with("token")
            || part.ends_with("secret")
            || part.ends_with("password")
    };
    parts.iter().rposition(names_secret).is_some_and(|last| {
        parts[last + 1..]
            .iter()
            .all(|p| SECRET_TAILS.contains(&p.as_str()) || p.chars().all(|c| c.is_ascii_digit()))
    })
}

/// Whether a value found under a key of no secret name still looks like a
/// generated credential: long, no spaces, letters and digits, and none of
/// the marks of an address, a path, an ID, a template or a regex.
pub fn looks_like_token(value: &str) -> bool {
    value.len() >= 16
        && !value.contains(char::is_whitespace)
        && !value.contains("://")
        && !value.starts_with(['/', '.', '~', '@', '!', '#', '$', '+'])
        && !value.contains(['{', '}', '[', ']', '(', ')', '^', '*', '?', '|', '\\', ':'])
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
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
        assert_eq!(
            mask(r#"ab\ncd\u00e9\"q"#),
            r#"xx\nxx\u0078\"x"#,
            "escapes stay valid"
        );
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
    fn every_form_admins_log_a_credential_in_is_masked() {
        let lines = [
            (
                "Authorization: Basic Ym9iOkNhbmFyeUJhc2lj",
                "Ym9iOkNhbmFyeUJhc2lj",
            ),
            ("Proxy-Authorization: Digest CanaryDigest1", "CanaryDigest1"),
            ("Cookie: sid=CanaryCookie1; theme=dark", "CanaryCookie1"),
            ("set-cookie: session=CanaryCookie2", "CanaryCookie2"),
            ("X-Api-Key: CanaryApiKey1", "CanaryApiKey1"),
            ("GET /x?api_key=CanaryApiKey2&page=1", "CanaryApiKey2"),
            ("env POSTGRES_PASSWORD=Canary Env Pass", "Canary Env Pass"),
            ("{\"accessToken\": \"CanaryCamel1\"}", "CanaryCamel1"),
            ("botToken=CanaryCamel2 next", "CanaryCamel2"),
            ("dialing postgres://bob:CanaryUri1@db:5432/x", "CanaryUri1"),
            (
                "GET /_matrix?access_token%3DCanaryEncoded1 HTTP",
                "CanaryEncoded1",
            ),
            ("password: canary value with spaces", "value with spaces"),
            ("smtp_pass: \"Canary quoted pass\"", "Canary quoted pass"),
            (
                "X-Matrix origin=a.org,key=\"ed25519:a\",sig=\"CanarySig1\"",
                "CanarySig1",
            ),
            (
                "host=db user=bob password=CanaryLibpq1 dbname=x",
                "CanaryLibpq1",
            ),
        ];
        for (text, secret) in lines {
            let cleaned = line(text);
            assert!(!cleaned.contains(secret), "{text} -> {cleaned}");
        }
        assert!(line("dialing postgres://bob:pw1234@db:5432/x").ends_with("@db:5432/x"));
        let own = line("1. set `pickle_key: abc` (random) check=encryption.doctor_unavailable");
        assert!(
            own.ends_with("(random) check=encryption.doctor_unavailable") && !own.contains("abc"),
            "a backtick ends the value: {own}"
        );
        let quoted = line("smtp_pass: \"Canary quoted pass\"");
        assert_eq!(quoted, "smtp_pass: \"xxxxxx xxxxxx xxxx\"", "quotes stay");
    }

    #[test]
    fn ordinary_lines_are_left_alone() {
        for text in [
            "mautrix.errors.request.MUnknownToken: Invalid access token passed.",
            "bypass: the proxy",
            "Sending 3 keys to the server",
            "[INFO] starting the keyboard session",
            "[✗] registration.duplicate_as_token: Two registrations share an as_token",
            "tokens.hs_token_rejected: The bridge rejects the homeserver's hs_token (HTTP 401)",
            "{\"token_type\": \"Bearer\", \"expires_in\": 3600}",
        ] {
            assert_eq!(line(text), text);
        }
    }

    #[test]
    fn secret_keys_are_recognised_in_every_style() {
        for key in [
            "as_token",
            "hs_token",
            "api_hash",
            "pickle_key",
            "login_shared_secret_map",
            "password",
            "macaroon_secret_key",
            "cookie",
            "smtp_pass",
            "passcode",
            "apikey",
            "auth",
            "botToken",
            "accessToken",
            "clientSecret",
            "API_KEY",
            "registration_shared_secret",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "address",
            "domain",
            "username_template",
            "keyboard",
            "bot_username",
            "signing_key_path",
            "passFile",
            "private_chat_portal_meta",
            "bypass",
            "trusted_key_servers",
            "password_providers",
            "session_lifetime",
            "token_type",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
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
                // A value that looks masked already ("0+0+") is left as a mask.
                prop_assume!(!is_mask(&value));
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
