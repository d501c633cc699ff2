//! `generate-registration`: writes the doctor's registration and, where the
//! config still holds placeholder tokens, fresh tokens into the config too,
//! editing only those two values so the admin's comments survive.

use std::path::Path;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::input::config::{Config, is_placeholder_token};
use crate::input::registration::Registration;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{0}")]
    Config(#[from] crate::input::config::ConfigError),
    #[error(
        "{path}: cannot write: {source}. Check the folder exists and this user may write there."
    )]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already holds other tokens than the config; the homeserver may be using them. Copy its as_token and hs_token into the config, or pass --force to replace them (then restart the homeserver)."
    )]
    WouldReplaceTokens { path: String },
    #[error(
        "{path}: cannot find `appservice.{field}` to write the new token into; add the key and run again"
    )]
    NoTokenField { path: String, field: &'static str },
}

pub struct Generated {
    pub tokens_written_to_config: bool,
}

fn random_token(length: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

pub fn generate(
    config_path: &Path,
    registration_path: &Path,
    force: bool,
) -> Result<Generated, GenerateError> {
    let mut config = Config::load(config_path)?;
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| GenerateError::Write { path, source }
    };
    let existing = Registration::load(registration_path).ok();

    let mut text = std::fs::read_to_string(config_path).map_err(write_error(config_path))?;
    let mut tokens_written = false;
    for field in ["as_token", "hs_token"] {
        let current = match field {
            "as_token" => &config.appservice.as_token,
            _ => &config.appservice.hs_token,
        };
        if !is_placeholder_token(current) {
            continue;
        }
        let pos = config.position_of(&format!("appservice.{field}"));
        let token = random_token(64);
        text = crate::input::yaml::replace_scalar(&text, pos, None, &format!("\"{token}\""))
            .ok_or_else(|| GenerateError::NoTokenField {
                path: config_path.display().to_string(),
                field,
            })?;
        match field {
            "as_token" => config.appservice.as_token = token,
            _ => config.appservice.hs_token = token,
        }
        tokens_written = true;
    }

    if let Some(existing) = &existing {
        let differs = existing.as_token.as_deref() != Some(config.appservice.as_token.as_str())
            || existing.hs_token.as_deref() != Some(config.appservice.hs_token.as_str());
        if differs && !force {
            return Err(GenerateError::WouldReplaceTokens {
                path: registration_path.display().to_string(),
            });
        }
    }
    let sender_localpart = existing
        .as_ref()
        .and_then(|r| r.sender_localpart.clone())
        .unwrap_or_else(|| random_token(32));
    let registration = render_doctor_registration(&config, &sender_localpart);
    std::fs::write(registration_path, registration).map_err(write_error(registration_path))?;
    if tokens_written {
        std::fs::write(config_path, text).map_err(write_error(config_path))?;
    }
    Ok(Generated {
        tokens_written_to_config: tokens_written,
    })
}

/// The regex of a users namespace that holds exactly one user ID, anchored
/// at both ends, as Synapse matches it with Python `re.match`.
fn exact_user_regex(localpart: &str, domain: &str) -> String {
    format!("^@{}:{}$", regex::escape(localpart), regex::escape(domain))
}

/// The doctor's own registration, as `generate-registration` writes it.
fn render_doctor_registration(config: &Config, sender_localpart: &str) -> String {
    let appservice = &config.appservice;
    let users_regex = exact_user_regex(&appservice.bot_username, &config.homeserver.domain);
    // Single-quoted YAML scalars: only `'` needs escaping, and none of these
    // values (a regex, a URL, base62 tokens) contain one except by accident.
    let quote = |text: &str| format!("'{}'", text.replace('\'', "''"));
    format!(
        "# Registration of bridge-doctor, written by `bridge-doctor generate-registration`.\n\
         # Give this file to the homeserver (see registration/README.md), then restart it.\n\
         id: {id}\n\
         url: {url}\n\
         as_token: {as_token}\n\
         hs_token: {hs_token}\n\
         sender_localpart: {sender}\n\
         rate_limited: false\n\
         namespaces:\n  users:\n    - regex: {regex}\n      exclusive: true\n  aliases: []\n  rooms: []\n",
        id = quote(&appservice.id),
        url = quote(&appservice.address),
        as_token = quote(&appservice.as_token),
        hs_token = quote(&appservice.hs_token),
        sender = quote(sender_localpart),
        regex = quote(&users_regex),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(dir: &Path) -> std::path::PathBuf {
        let path = dir.join("config.yaml");
        let text = include_str!("../../config.example.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn generates_tokens_into_config_and_refuses_to_replace_them() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_config(dir.path());
        let registration = dir.path().join("registration.yaml");
        let generated = generate(&config_path, &registration, false).unwrap();
        assert!(generated.tokens_written_to_config);
        let config = Config::load(&config_path).unwrap();
        assert!(!config.appservice.has_placeholder_tokens());
        let text = std::fs::read_to_string(&config_path).unwrap();
        assert!(
            text.contains("# Where the homeserver reaches the doctor"),
            "comments lost"
        );
        let reg = Registration::load(&registration).unwrap();
        assert!(reg.problems.is_empty(), "{:?}", reg.problems);
        assert_eq!(
            reg.as_token.as_deref(),
            Some(config.appservice.as_token.as_str())
        );
        assert_eq!(reg.namespaces.users[0].regex, "^@doctor:example\\.com$");

        // Same tokens: regenerating is fine and keeps the sender.
        generate(&config_path, &registration, false).unwrap();
        assert_eq!(
            Registration::load(&registration).unwrap().sender_localpart,
            reg.sender_localpart
        );

        // Tokens changed in the config: refuse without --force.
        let changed = text.replace(&config.appservice.as_token, "another-token");
        std::fs::write(&config_path, changed).unwrap();
        let err = generate(&config_path, &registration, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        assert!(!err.contains("another-token"));
        generate(&config_path, &registration, true).unwrap();
        assert_eq!(
            Registration::load(&registration)
                .unwrap()
                .as_token
                .as_deref(),
            Some("another-token")
        );
    }
}
