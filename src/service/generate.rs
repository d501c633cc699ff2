//! `generate-registration`: writes the doctor's registration and, where the
//! config still holds placeholder tokens, fresh tokens into the config too,
//! editing only those two values so the admin's comments survive.

use std::path::Path;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::input::config::{Config, is_placeholder_token};
use crate::input::registration::Registration;
use crate::shared::private;

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
    #[error("{path}: cannot find `{field}` to write the new value into; add the key and run again")]
    NoField { path: String, field: &'static str },
    #[error(
        "{path} is a symbolic link (to {target}): the doctor never writes through a link. Name the real file instead ({option} {target}), or remove the link, and run again."
    )]
    Link {
        path: String,
        target: String,
        option: &'static str,
    },
}

/// Refuses to write at `path` when it is a symbolic link, dangling or not.
/// Refusing rather than replacing the link: a link there is either the
/// admin's (who then expects the file it points to to change, and would
/// be left with a stale one) or planted by someone else (worth stopping
/// at); either way the admin decides, and the message says how.
fn refuse_link(path: &Path, option: &'static str) -> Result<(), GenerateError> {
    match private::link_target(path) {
        Some(target) => Err(GenerateError::Link {
            path: path.display().to_string(),
            target,
            option,
        }),
        None => Ok(()),
    }
}

pub struct Generated {
    pub tokens_written_to_config: bool,
    /// The registration's path was written into `appservice.registration`.
    pub path_written_to_config: bool,
}

/// The reference config, every key with its meaning, as shipped.
pub const EXAMPLE_CONFIG: &str = include_str!("../../config.example.yaml");

/// A first run: writes the example config where none is (never over one,
/// nor through a link), for the doctor's user alone.
pub fn write_example_config(path: &Path) -> Result<(), GenerateError> {
    use std::os::unix::fs::OpenOptionsExt;
    refuse_link(path, "-c")?;
    let write_error = |source| GenerateError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(private::FILE_MODE)
        .open(path)
        .map_err(write_error)?;
    std::io::Write::write_all(&mut file, EXAMPLE_CONFIG.as_bytes()).map_err(write_error)
}

/// The config values generated when they hold the placeholder. The pickle
/// key only when the config has it: an older config without an
/// `encryption` section keeps working, the bot then says how to add it.
const GENERATED_FIELDS: [&str; 3] = [
    "appservice.as_token",
    "appservice.hs_token",
    "encryption.pickle_key",
];

fn generated_value<'a>(config: &'a mut Config, field: &str) -> Option<&'a mut String> {
    match field {
        "appservice.as_token" => Some(&mut config.appservice.as_token),
        "appservice.hs_token" => Some(&mut config.appservice.hs_token),
        "encryption.pickle_key" if config.document.root.path(field).is_some() => {
            Some(&mut config.encryption.pickle_key)
        }
        _ => None,
    }
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
    refuse_link(registration_path, "-r")?;
    let write_error = |path: &Path| {
        let path = path.display().to_string();
        move |source| GenerateError::Write { path, source }
    };
    let existing = Registration::load(registration_path).ok();

    let text = std::fs::read_to_string(config_path).map_err(write_error(config_path))?;
    let (text, tokens_written) = fill_placeholders(&mut config, text)?;
    let (text, path_written) = record_registration_path(&config, text, registration_path)?;

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
    // Both links refused before either file is written: new tokens in one
    // file only would leave the doctor and the homeserver disagreeing.
    let edit_config = tokens_written || path_written;
    if edit_config {
        refuse_link(config_path, "-c")?;
    }
    private::replace(registration_path, registration.as_bytes())
        .map_err(write_error(registration_path))?;
    if edit_config {
        private::replace(config_path, text.as_bytes()).map_err(write_error(config_path))?;
    }
    Ok(Generated {
        tokens_written_to_config: tokens_written,
        path_written_to_config: path_written,
    })
}

/// Writes where the registration went into `appservice.registration` when
/// the config would not find it there: the doctor then checks the file the
/// homeserver was given, not a `registration.yaml` that may not exist.
fn record_registration_path(
    config: &Config,
    text: String,
    registration_path: &Path,
) -> Result<(String, bool), GenerateError> {
    if crate::facts::same_file(
        config.appservice.registration_or_default(),
        registration_path,
    ) {
        return Ok((text, false));
    }
    let absolute = std::path::absolute(registration_path).unwrap_or(registration_path.to_owned());
    let value = format!("'{}'", absolute.display().to_string().replace('\'', "''"));
    let no_field = || GenerateError::NoField {
        path: config.path.display().to_string(),
        field: "appservice.registration",
    };
    let text = match config.document.root.path("appservice.registration") {
        Some(node) => crate::input::yaml::replace_scalar(&text, node.pos, None, &value),
        None => insert_after_value_line(
            &text,
            config.position_of("appservice.hs_token"),
            &format!("registration: {value}"),
        ),
    }
    .ok_or_else(no_field)?;
    Ok((text, true))
}

/// `text` with `entry` on a new line after the line holding the value at
/// `pos`, indented like that line (a sibling key in a block mapping).
fn insert_after_value_line(
    text: &str,
    pos: crate::input::yaml::Pos,
    entry: &str,
) -> Option<String> {
    let index = usize::try_from(pos.line).ok()?.checked_sub(1)?;
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_owned).collect();
    let line = lines.get_mut(index)?;
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    if indent.is_empty() {
        return None;
    }
    if !line.ends_with('\n') {
        line.push('\n');
    }
    lines.insert(index + 1, format!("{indent}{entry}\n"));
    Some(lines.concat())
}

/// Puts random values where the config holds placeholders, editing only
/// those scalars (comments stay), and adds an `encryption` section with a
/// pickle key to a config written before it existed.
fn fill_placeholders(
    config: &mut Config,
    mut text: String,
) -> Result<(String, bool), GenerateError> {
    let mut written = false;
    for field in GENERATED_FIELDS {
        let Some(current) = generated_value(config, field) else {
            continue;
        };
        if !is_placeholder_token(current) {
            continue;
        }
        let pos = config.position_of(field);
        let token = random_token(64);
        text = crate::input::yaml::replace_scalar(&text, pos, None, &format!("\"{token}\""))
            .ok_or_else(|| GenerateError::NoField {
                path: config.path.display().to_string(),
                field,
            })?;
        if let Some(value) = generated_value(config, field) {
            *value = token;
        }
        written = true;
    }
    if config.document.root.get("encryption").is_none() {
        let key = random_token(64);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "\n# Encrypted rooms: the bot's own device, its keys in `store`, encrypted with pickle_key.\nencryption:\n    allow: true\n    pickle_key: \"{key}\"\n    store: crypto\n"
        ));
        config.encryption.pickle_key = key;
        written = true;
    }
    Ok((text, written))
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
        let text = EXAMPLE_CONFIG;
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

    #[test]
    fn fills_the_pickle_key_and_adds_the_section_to_older_configs() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_config(dir.path());
        let registration = dir.path().join("registration.yaml");
        generate(&config_path, &registration, false).unwrap();
        let config = Config::load(&config_path).unwrap();
        assert!(!config.encryption.has_placeholder_key());
        assert_eq!(config.encryption.pickle_key.len(), 64);
        assert!(config.encryption.store.ends_with("crypto"));
        // Generating again keeps the key: a new one would lose the store.
        generate(&config_path, &registration, false).unwrap();
        assert_eq!(
            Config::load(&config_path).unwrap().encryption.pickle_key,
            config.encryption.pickle_key
        );

        // A config from before the encryption section gets one, comments kept.
        let text = std::fs::read_to_string(&config_path).unwrap();
        let start = text.find("# Encrypted rooms").unwrap();
        let end = text.find("# The doctor's database").unwrap();
        let older = format!("{}{}", &text[..start], &text[end..]);
        std::fs::write(&config_path, older).unwrap();
        generate(&config_path, &registration, false).unwrap();
        let config = Config::load(&config_path).unwrap();
        assert!(config.encryption.allow);
        assert_eq!(config.encryption.pickle_key.len(), 64);
        let text = std::fs::read_to_string(&config_path).unwrap();
        assert!(text.contains("# The doctor's database"), "comments lost");
    }

    #[test]
    fn links_at_either_file_are_refused_before_anything_is_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_config(dir.path());
        let target = dir.path().join("target");
        std::fs::write(&target, "untouched").unwrap();
        let registration = dir.path().join("registration.yaml");
        std::os::unix::fs::symlink(&target, &registration).unwrap();
        let err = generate(&config_path, &registration, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(err.contains(&format!("-r {}", target.display())), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(&config_path).unwrap(),
            EXAMPLE_CONFIG,
            "the config was edited though the registration was refused"
        );

        // A dangling link is no better.
        std::fs::remove_file(&registration).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &registration).unwrap();
        assert!(generate(&config_path, &registration, false).is_err());
        assert!(!dir.path().join("nowhere").exists());

        std::fs::remove_file(&registration).unwrap();
        generate(&config_path, &registration, false).unwrap();
        for file in [&registration, &config_path] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", file.display());
        }
    }

    #[test]
    fn records_where_the_registration_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = write_config(dir.path());
        let text = std::fs::read_to_string(&config_path).unwrap();
        let without = text.replace("    registration: registration.yaml\n", "");
        std::fs::write(&config_path, without).unwrap();
        let elsewhere = dir.path().join("synapse").join("doctor.yaml");
        std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();

        let generated = generate(&config_path, &elsewhere, false).unwrap();
        assert!(generated.path_written_to_config);
        let config = Config::load(&config_path).unwrap();
        assert_eq!(
            config.appservice.registration.as_deref(),
            Some(elsewhere.as_path())
        );
        let text = std::fs::read_to_string(&config_path).unwrap();
        assert!(
            text.contains("# The doctor's registration file"),
            "comments lost"
        );

        // Named already: generating to the same file changes nothing; to
        // another file, the path is replaced in place.
        assert!(
            !generate(&config_path, &elsewhere, false)
                .unwrap()
                .path_written_to_config
        );
        let moved = dir.path().join("moved.yaml");
        assert!(
            generate(&config_path, &moved, false)
                .unwrap()
                .path_written_to_config
        );
        let config = Config::load(&config_path).unwrap();
        assert_eq!(
            config.appservice.registration.as_deref(),
            Some(moved.as_path())
        );
    }
}
