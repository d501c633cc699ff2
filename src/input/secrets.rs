//! The secret values of a config, found as it is read, so every output can
//! hunt them (`shared::redact::remember`).
//!
//! Secret here is wider than what a check needs: every value under a key
//! whose name says secret (at any depth, numbers included), every string
//! that looks like a generated credential whatever its key, and the
//! credentials inside strings (a URI's password, `password=` in a libpq
//! string, `API_KEY=` in an environment entry, a key in JSON inside a
//! string). A file that does not parse gives what its lines show.

use crate::input::scalars::{Scalar, Step, scalars};
use crate::shared::redact;

/// The secret values in a YAML (or JSON) text.
pub fn secrets_in(text: &str) -> Vec<String> {
    match scalars(text) {
        Ok(parsed) => parsed
            .values
            .iter()
            .flat_map(secrets_of)
            .chain(
                parsed
                    .keys
                    .iter()
                    .map(|key| key.value.clone())
                    .filter(|key| redact::looks_like_token(key)),
            )
            .collect(),
        Err(_) => text.lines().flat_map(secrets_of_line).collect(),
    }
}

/// Reads `text`'s secrets into the hunt of every output.
pub fn remember_secrets_in(text: &str) {
    redact::remember(secrets_in(text));
}

/// Whether a key on the path to a value names a secret.
pub fn under_secret_key(path: &[Step]) -> bool {
    path.iter()
        .any(|step| matches!(step, Step::Key(key) if redact::is_secret_key(key)))
}

/// Keys whose values are names the doctor prints (target ids, users,
/// addresses): not hunted for looking random (credentials inside them,
/// such as a URI's password, still are).
const NAME_KEYS: &[&str] = &[
    "id",
    "name",
    "username",
    "user",
    "localpart",
    "sender_localpart",
    "domain",
    "server_name",
    "displayname",
    "address",
    "url",
    "uri",
    "regex",
];

fn secrets_of(scalar: &Scalar) -> Vec<String> {
    let mut found = Vec::new();
    if under_secret_key(&scalar.path) {
        found.push(scalar.value.clone());
        // A double-puppet secret is sent without its prefix too.
        if let Some(token) = scalar.value.strip_prefix("as_token:") {
            found.push(token.to_owned());
        }
    }
    let is_name =
        matches!(scalar.path.last(), Some(Step::Key(key)) if NAME_KEYS.contains(&key.as_str()));
    for line in scalar.value.lines() {
        found.extend(redact::credentials_in(line));
        if !is_name {
            found.extend(token_like_words(line));
        }
    }
    found
}

/// What one line of a file that does not parse shows.
fn secrets_of_line(line: &str) -> Vec<String> {
    let mut found = redact::credentials_in(line);
    found.extend(token_like_words(line));
    found
}

/// Words that look like generated credentials.
fn token_like_words(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '=' | ';'))
        .map(|word| word.trim_end_matches(':'))
        .filter(|word| redact::looks_like_token(word))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_of_every_shape_are_found() {
        let text = concat!(
            "email:\n  smtp_pass: CanarySmtp1\n",
            "discord:\n  botToken: CanaryBot1\n",
            "db: postgres://u:CanaryUriPw@h/db\n",
            "libpq: host=h password=CanaryLibpq1\n",
            "env: 'POSTGRES_PASSWORD=CanaryEnv1'\n",
            "json: '{\"clientSecret\": \"CanaryJson1\"}'\n",
            "plain_looking: Zq8Kd93LmQpW02xYt\n",
            "numbers:\n  password: 12345678\n",
            "map:\n  login_shared_secret_map:\n    example.com: as_token:CanaryPuppet1\n",
        );
        let found = secrets_in(text);
        for canary in [
            "CanarySmtp1",
            "CanaryBot1",
            "CanaryUriPw",
            "CanaryLibpq1",
            "CanaryEnv1",
            "CanaryJson1",
            "Zq8Kd93LmQpW02xYt",
            "12345678",
            "as_token:CanaryPuppet1",
            "CanaryPuppet1",
        ] {
            assert!(
                found.iter().any(|f| f == canary),
                "{canary} not in {found:?}"
            );
        }
        assert!(!found.iter().any(|f| f == "example.com" || f == "h"));
    }

    /// From the adversarial review: `trusted_key_servers` names a secret by
    /// its `key` part only before another word, so Synapse's default
    /// config does not make `matrix.org` a secret in every output.
    #[test]
    fn trusted_key_servers_are_not_secrets() {
        let found = secrets_in(
            "server_name: example.com\ntrusted_key_servers:\n  - server_name: \"matrix.org\"\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_broken_file_still_gives_its_secrets() {
        let found = secrets_in("a: [\npassword: CanaryBroken1\ntoken=Zq8Kd93LmQpW02xYt\n");
        assert!(
            found.iter().any(|f| f.contains("CanaryBroken1")),
            "{found:?}"
        );
        assert!(found.iter().any(|f| f == "Zq8Kd93LmQpW02xYt"), "{found:?}");
    }
}
