//! The bot's own device for encrypted rooms (matrix-sdk with its SQLite
//! crypto store, encrypted with `encryption.pickle_key`).
//!
//! matrix-sdk cannot log in with the as_token, so the device comes from an
//! appservice login sent with ruma (`m.login.application_service`), and the
//! session is then restored into matrix-sdk. The device id and its access
//! token are kept in the doctor's store and reused on every start: a new
//! device per restart would be a new unverified device for every admin each
//! time, and a login per start one more valid token left behind. A login
//! happens only when the homeserver no longer takes the stored token, or
//! the crypto store is gone (a new device; the old one is logged out).

use std::path::Path;
use std::time::Duration;

use matrix_sdk::authentication::matrix::MatrixSession;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::encryption::EncryptionSettings;
use matrix_sdk::store::RoomLoadSettings;
use matrix_sdk::{Client, SessionMeta, SessionTokens};
use ruma::{OwnedDeviceId, OwnedUserId};

use crate::facts::DeviceFacts;
use crate::input::config::Config;
use crate::matrix::{AsUser, HomeserverClient, Versions};
use crate::service::store::{Store, StoredDevice};

/// The file matrix-sdk keeps the crypto store in, inside `encryption.store`.
const CRYPTO_DB: &str = "matrix-sdk-crypto.sqlite3";

/// A device the bot can read and write encrypted rooms with.
pub struct BotDevice {
    pub client: Client,
    pub device_id: OwnedDeviceId,
}

/// Why the bot has no device, with what to do; never holds a secret.
pub struct Unavailable {
    pub reason: String,
    pub fix: Vec<String>,
}

impl Unavailable {
    fn new<S: Into<String>>(reason: impl Into<String>, fix: impl IntoIterator<Item = S>) -> Self {
        Unavailable {
            reason: reason.into(),
            fix: fix.into_iter().map(Into::into).collect(),
        }
    }
}

/// What the self-check reports about `device`.
pub fn facts(device: &Result<Option<BotDevice>, Unavailable>, cross_signed: bool) -> DeviceFacts {
    match device {
        Ok(None) => DeviceFacts::NotWanted,
        Ok(Some(device)) => DeviceFacts::Ready {
            device_id: device.device_id.to_string(),
            cross_signed,
        },
        Err(unavailable) => DeviceFacts::Unavailable {
            reason: unavailable.reason.clone(),
            fix: unavailable.fix.clone(),
        },
    }
}

/// Sets up the bot's device: `Ok(None)` when `encryption.allow` is false.
pub async fn open(
    config: &Config,
    store: &Store,
    homeserver: &HomeserverClient,
    versions: &Versions,
    user_id: &OwnedUserId,
) -> Result<Option<BotDevice>, Unavailable> {
    let encryption = &config.encryption;
    if !encryption.allow {
        return Ok(None);
    }
    if encryption.has_placeholder_key() {
        return Err(Unavailable::new(
            format!(
                "`encryption.pickle_key` in {} is not set",
                config.path.display()
            ),
            [
                "Under `encryption:` in the config, set `pickle_key: generate` (add the line if it is missing).".to_owned(),
                format!(
                    "Run `bridge-doctor generate-registration -c {}`: it replaces the placeholder with a random key and keeps the tokens.",
                    config.path.display()
                ),
            ],
        ));
    }
    let known = store.bot_device(user_id.as_str()).await.map_err(|e| {
        Unavailable::new(
            format!("the doctor's database: {e}"),
            ["Check `database` in the config."],
        )
    })?;
    let store_exists = encryption.store.join(CRYPTO_DB).exists();
    if known.is_some() && !store_exists {
        tracing::warn!(
            store = %encryption.store.display(),
            "the crypto store is missing: the bot starts a new device; messages sent to the old one cannot be decrypted"
        );
    }
    let reuse = known.clone().filter(|_| store_exists);
    let (session, fresh) = session(config, homeserver, versions, reuse.as_ref()).await?;
    // The device's token is a secret the doctor holds: every output hunts it.
    crate::shared::redact::remember([session.tokens.access_token.clone()]);
    let device_id = session.meta.device_id.clone();
    // Recorded before the crypto store is opened: a token that is not
    // recorded could never be reused nor logged out.
    if fresh {
        let token = &session.tokens.access_token;
        if let Err(err) = store
            .set_bot_device(user_id.as_str(), device_id.as_str(), token)
            .await
        {
            tracing::warn!("could not record the bot's device: {err}");
        }
        if let Some(old) = known.filter(|old| old.device_id != device_id.as_str()) {
            log_out_replaced(homeserver, versions, &old).await;
        }
    }
    let client = restore(config, &encryption.store, session).await?;
    Ok(Some(BotDevice { client, device_id }))
}

/// The device's session: the stored one while the homeserver still takes
/// its token, else a login (on the stored device when there is one). True
/// when it comes from a login.
async fn session(
    config: &Config,
    homeserver: &HomeserverClient,
    versions: &Versions,
    stored: Option<&StoredDevice>,
) -> Result<(MatrixSession, bool), Unavailable> {
    let device_id = stored.map(|s| s.device_id.as_str());
    if let Some(stored) = stored
        && let Some(token) = &stored.access_token
        && let Some(session) = still_valid(homeserver, versions, stored, token).await?
    {
        return Ok((session, false));
    }
    Ok((login(config, homeserver, versions, device_id).await?, true))
}

/// The stored session, when whoami with its token names its device;
/// `None` when the homeserver no longer takes the token (a login follows).
async fn still_valid(
    homeserver: &HomeserverClient,
    versions: &Versions,
    stored: &StoredDevice,
    token: &str,
) -> Result<Option<MatrixSession>, Unavailable> {
    let answer = homeserver
        .whoami_device(versions, token)
        .await
        .map_err(|e| {
            Unavailable::new(
                format!(
                    "the homeserver could not be asked about the bot's device: {}",
                    e.message()
                ),
                ["Check that the homeserver is up and `homeserver.address` is right."],
            )
        })?;
    if answer.status == 401 {
        tracing::info!(
            device = %stored.device_id,
            "the homeserver no longer takes the bot's device token: logging in again"
        );
        return Ok(None);
    }
    let json = answer.json.clone().unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(|v| v.as_str());
    let user_id = field("user_id").and_then(|u| ruma::UserId::parse(u).ok());
    match user_id {
        Some(user_id) if answer.is_success() && field("device_id") == Some(&stored.device_id) => {
            Ok(Some(MatrixSession {
                meta: SessionMeta {
                    user_id,
                    device_id: stored.device_id.as_str().into(),
                },
                tokens: SessionTokens {
                    access_token: token.to_owned(),
                    refresh_token: None,
                },
            }))
        }
        // Another device's token (the store was edited): a login on the
        // stored device.
        _ if answer.is_success() => Ok(None),
        _ => Err(Unavailable::new(
            format!(
                "the homeserver did not say whether the bot's device token is valid: {}",
                answer.summary()
            ),
            ["Check the homeserver's log, then restart the doctor."],
        )),
    }
}

/// Logs out the token of a device the bot no longer uses (its crypto store
/// was lost), so it does not stay valid; the homeserver deletes the device.
async fn log_out_replaced(homeserver: &HomeserverClient, versions: &Versions, old: &StoredDevice) {
    let Some(token) = &old.access_token else {
        return;
    };
    match homeserver.logout_device(versions, token).await {
        Ok(answer) if answer.is_success() || answer.status == 401 => {
            tracing::info!(device = %old.device_id, "the bot's previous device was logged out");
        }
        Ok(answer) => tracing::warn!(
            device = %old.device_id,
            "the bot's previous device could not be logged out: {}. Delete it in an admin client.",
            answer.summary()
        ),
        Err(err) => tracing::warn!(
            device = %old.device_id,
            "the bot's previous device could not be logged out: {}. Delete it in an admin client.",
            err.message()
        ),
    }
}

/// The appservice login, mapped to what an admin can do about a refusal.
async fn login(
    config: &Config,
    homeserver: &HomeserverClient,
    versions: &Versions,
    device_id: Option<&str>,
) -> Result<MatrixSession, Unavailable> {
    let answer = homeserver
        .login_appservice_user(
            versions,
            &config.appservice.as_token,
            &config.appservice.bot_username,
            device_id,
        )
        .await
        .map_err(|e| {
            Unavailable::new(
                format!(
                    "the appservice login did not reach the homeserver: {}",
                    e.message()
                ),
                ["Check that the homeserver is up and `homeserver.address` is right."],
            )
        })?;
    if !answer.is_success() {
        return Err(Unavailable::new(
            format!(
                "the homeserver refused the bot's appservice login: {}",
                answer.summary()
            ),
            [
                "A homeserver that delegates authentication (Matrix Authentication Service) has no appservice login: enable MSC4190 (`io.element.msc4190: true` in the doctor's registration and `experimental_features: {msc4190_enabled: true}` in Synapse) and restart the homeserver.",
                "Otherwise check that the bot's user is in the registration's users namespace.",
                "Until then the bot answers only in unencrypted rooms.",
            ],
        ));
    }
    let json = answer.json.unwrap_or_default();
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    let (Some(user_id), Some(access_token), Some(device_id)) =
        (field("user_id"), field("access_token"), field("device_id"))
    else {
        return Err(Unavailable::new(
            "the homeserver's login answer has no user_id, access_token or device_id",
            ["Report this with the homeserver's name and version."],
        ));
    };
    let user_id = ruma::UserId::parse(user_id).map_err(|e| {
        Unavailable::new(format!("the login answer's user_id: {e}"), ["Report this."])
    })?;
    Ok(MatrixSession {
        meta: SessionMeta {
            user_id,
            device_id: device_id.into(),
        },
        tokens: SessionTokens {
            access_token,
            refresh_token: None,
        },
    })
}

/// matrix-sdk on the crypto store, with the session of the login.
async fn restore(
    config: &Config,
    store: &Path,
    session: MatrixSession,
) -> Result<Client, Unavailable> {
    let settings = EncryptionSettings {
        auto_enable_cross_signing: true,
        ..EncryptionSettings::default()
    };
    // The device's private keys: the folder is the doctor's user's alone
    // (matrix-sdk would create it under the umask), so are the files in it.
    crate::shared::private::private_folder(store).map_err(|e| {
        Unavailable::new(
            format!(
                "the crypto store folder {} cannot be made the doctor's alone: {e}",
                store.display()
            ),
            ["Let the doctor's user create `encryption.store` (or own it, if it exists)."],
        )
    })?;
    let client = Client::builder()
        .homeserver_url(&config.homeserver.address)
        .sqlite_store(store, Some(&config.encryption.pickle_key))
        .with_encryption_settings(settings)
        .build()
        .await
        .map_err(|e| {
            Unavailable::new(
                format!(
                    "the crypto store in {} cannot be opened: {e}",
                    store.display()
                ),
                [
                    "If `encryption.pickle_key` was changed, put the old one back.".to_owned(),
                    format!(
                        "Otherwise move {} away and restart: the bot starts a new device.",
                        store.display()
                    ),
                ],
            )
        })?;
    client
        .matrix_auth()
        .restore_session(session, RoomLoadSettings::default())
        .await
        .map_err(|e| {
            Unavailable::new(
                format!(
                    "the crypto store in {} does not fit the bot's device: {e}",
                    store.display()
                ),
                [format!(
                    "Move {} away and restart: the bot starts a new device.",
                    store.display()
                )],
            )
        })?;
    Ok(client)
}

/// Uploads the device's keys and signs the device with the bot's own
/// cross-signing identity, made on the first start (the homeserver takes
/// that first upload without interactive auth; the private keys then stay
/// in the crypto store, so the identity is never reset). Returns whether
/// the homeserver shows the device signed by the bot's self-signing key,
/// which is what other users' clients go by.
pub async fn prepare(device: &BotDevice, bot: &AsUser<'_>) -> bool {
    let settings = SyncSettings::default().timeout(Duration::ZERO);
    if let Err(err) = device.client.sync_once(settings).await {
        tracing::warn!("the bot's device could not sync: {err}");
        return false;
    }
    let encryption = device.client.encryption();
    encryption.wait_for_e2ee_initialization_tasks().await;
    if let Err(err) = encryption.bootstrap_cross_signing_if_needed(None).await {
        tracing::warn!("the bot's cross-signing identity could not be set up: {err}");
    }
    if server_says_cross_signed(device, bot).await {
        return true;
    }
    // An identity whose private keys are gone (the store was lost) cannot
    // sign the new device: replace it, which the homeserver allows without
    // interactive auth only where it trusts the appservice to (MSC4190).
    let keys_here = encryption
        .cross_signing_status()
        .await
        .is_some_and(|status| status.has_self_signing);
    if !keys_here {
        match encryption.bootstrap_cross_signing(None).await {
            Ok(()) => tracing::info!(
                "the bot's cross-signing identity was renewed: the old keys were lost with the crypto store"
            ),
            Err(err) => tracing::warn!(
                "the bot's cross-signing identity, whose keys were lost with the crypto store, could not be renewed: {err}"
            ),
        }
    }
    server_says_cross_signed(device, bot).await
}

/// Does the homeserver show the device signed by the bot's self-signing key?
async fn server_says_cross_signed(device: &BotDevice, bot: &AsUser<'_>) -> bool {
    match bot.own_keys().await {
        Ok(answer) if answer.is_success() => answer.json.is_some_and(|keys| {
            is_cross_signed(&keys, bot.user.as_str(), device.device_id.as_str())
        }),
        Ok(answer) => {
            tracing::warn!("could not read the bot's keys: {}", answer.summary());
            false
        }
        Err(err) => {
            tracing::warn!("could not read the bot's keys: {}", err.message());
            false
        }
    }
}

/// In a `/keys/query` answer: is `device` of `user` signed by the user's
/// self-signing key?
fn is_cross_signed(keys: &serde_json::Value, user: &str, device: &str) -> bool {
    let self_signing = keys
        .pointer(&format!("/self_signing_keys/{user}/keys"))
        .and_then(|k| k.as_object());
    let signatures = keys
        .get("device_keys")
        .and_then(|d| d.get(user))
        .and_then(|d| d.get(device))
        .and_then(|d| d.get("signatures"))
        .and_then(|s| s.get(user))
        .and_then(|s| s.as_object());
    match (self_signing, signatures) {
        (Some(self_signing), Some(signatures)) => self_signing
            .keys()
            .any(|key_id| signatures.contains_key(key_id)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cross_signed_means_signed_by_the_self_signing_key() {
        let user = "@doctor:doctor.test";
        let keys = |device_signatures: serde_json::Value| {
            json!({
                "device_keys": {user: {"DEV": {"signatures": {user: device_signatures}}}},
                "self_signing_keys": {user: {"keys": {"ed25519:SSK": "SSK"}}},
            })
        };
        let signed = keys(json!({"ed25519:DEV": "own", "ed25519:SSK": "cross"}));
        assert!(is_cross_signed(&signed, user, "DEV"));
        let unsigned = keys(json!({"ed25519:DEV": "own"}));
        assert!(!is_cross_signed(&unsigned, user, "DEV"));
        assert!(!is_cross_signed(&signed, user, "OTHER"));
        assert!(!is_cross_signed(&json!({}), user, "DEV"));
    }
}
