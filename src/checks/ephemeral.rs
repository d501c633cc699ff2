//! Ephemeral events (typing, receipts, presence) and end-to-bridge
//! encryption: flags that must agree across the bridge config, the
//! registration and the homeserver config.

use super::{Check, Context, Verdict};
use crate::facts::{DeviceFacts, TargetKind};
use crate::input::bridge::flag;
use crate::input::registration::{EPHEMERAL_KEYS, Flag, MSC3202_KEY};

pub const CHECKS: &[Check] = &[
    Check {
        id: "encryption.doctor_unavailable",
        run: doctor_unavailable,
    },
    Check {
        id: "ephemeral.registration_disabled",
        run: registration_disabled,
    },
    Check {
        id: "ephemeral.flag_not_boolean",
        run: flag_not_boolean,
    },
    Check {
        id: "encryption.appservice_mode_incomplete",
        run: appservice_mode_incomplete,
    },
    Check {
        id: "encryption.msc4190_required",
        run: msc4190_required,
    },
    Check {
        id: "encryption.incoherent",
        run: incoherent,
    },
    Check {
        id: "encryption.forced_by_server",
        run: forced_by_server,
    },
    Check {
        id: "encryption.self_sign_disabled",
        run: self_sign_disabled,
    },
    Check {
        id: "encryption.pickle_key_unset",
        run: pickle_key_unset,
    },
];

fn registration_disabled(ctx: &Context) -> Verdict {
    let (Some(config), Some(registration)) = (ctx.target.config(), ctx.target.registration())
    else {
        return Verdict::skip("needs both the bridge config and the registration");
    };
    if !flag(&config.ephemeral_events) {
        return Verdict::pass("the bridge does not ask for ephemeral events");
    }
    if registration.ephemeral_enabled() {
        return Verdict::pass("the registration lets the homeserver push ephemeral events");
    }
    Verdict::fail("the bridge wants ephemeral events, but the registration does not enable them")
        .detail(format!(
            "`appservice.ephemeral_events` is true in {}, but {} has neither `receive_ephemeral: true` nor `de.sorunome.msc2409.push_ephemeral: true`: typing notifications and read receipts will not reach the bridge.",
            config.path().display(),
            registration.path.display()
        ))
        .evidence("field", "receive_ephemeral")
        .fix([
            "Add both `receive_ephemeral: true` and `de.sorunome.msc2409.push_ephemeral: true` to the registration (or regenerate it).",
            "Restart the homeserver.",
        ])
        .faq("how-do-i-bridge-typing-notifications-and-read-receipts")
}

fn flag_not_boolean(ctx: &Context) -> Verdict {
    let Some(registration) = ctx.target.registration() else {
        return Verdict::skip("the registration could not be read");
    };
    let strings: Vec<String> = [
        (EPHEMERAL_KEYS[0], &registration.receive_ephemeral),
        (EPHEMERAL_KEYS[1], &registration.push_ephemeral),
    ]
    .into_iter()
    .filter_map(|(key, value)| match value {
        Flag::NotBoolean(text) => Some(format!(
            "{key}: {text:?} at {}:{}",
            registration.path.display(),
            registration.position_of(key)
        )),
        _ => None,
    })
    .collect();
    if strings.is_empty() {
        return Verdict::pass("ephemeral flags are booleans or absent");
    }
    Verdict::fail("an ephemeral flag is written as a string")
        .detail(format!("{}. The homeserver treats any non-empty string as true, so \"false\" enables the flag.", strings.join("; ")))
        .evidence("fields", strings)
        .fix(["Write the flag as a bare `true` or `false`, without quotes.", "Restart the homeserver."])
}

fn appservice_mode_incomplete(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    if !flag(&config.encryption.appservice) || !config.encryption.allowed() {
        return Verdict::pass("encryption in appservice mode is not used");
    }
    let mut missing = Vec::new();
    match ctx.target.registration() {
        Some(registration) => {
            if !matches!(registration.msc3202, Flag::Bool(true)) {
                missing.push(format!("`{MSC3202_KEY}: true` in the registration"));
            }
            if !registration.ephemeral_enabled() {
                missing.push("`receive_ephemeral: true` / `de.sorunome.msc2409.push_ephemeral: true` in the registration".to_owned());
            }
        }
        None => return Verdict::skip("the registration could not be read"),
    }
    if let Some(Ok(hs)) = &ctx.facts.homeserver.config {
        for feature in [
            "msc3202_transaction_extensions",
            "msc2409_to_device_messages_enabled",
        ] {
            if !hs.experimental_features.iter().any(|f| f == feature) {
                missing.push(format!(
                    "`experimental_features: {feature}: true` in {}",
                    hs.path.display()
                ));
            }
        }
    }
    if missing.is_empty() {
        return Verdict::pass("encryption in appservice mode has every flag it needs");
    }
    Verdict::fail("encryption.appservice is on, but the appservice encryption setup is incomplete")
        .detail(format!("Missing: {}.", missing.join("; ")))
        .evidence("missing", missing)
        .fix([
            "Add each missing flag listed above (the registration flags are written by the bridge when you regenerate it with appservice mode on).",
            "Restart the homeserver, then the bridge.",
            "Or turn `encryption.appservice` off to let the bridge use a normal device.",
        ])
        .faq("the-bridge-cant-decrypt-my-messages")
}

fn incoherent(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let encryption = &config.encryption;
    let forcing: Vec<&str> = [
        ("default", &encryption.default),
        ("require", &encryption.require),
    ]
    .into_iter()
    .filter(|(_, field)| flag(field))
    .map(|(name, _)| name)
    .collect();
    if forcing.is_empty() || encryption.allowed() {
        return Verdict::pass("encryption settings agree");
    }
    Verdict::fail(format!("encryption.{} is true while encryption.allow is false", forcing.join(" and ")))
        .detail("The bridge cannot default to or require encryption it is not allowed to use.")
        .evidence("field", "encryption.allow")
        .fix(["Set `allow: true` in the bridge's encryption section, or turn `default` and `require` off.", "Restart the bridge."])
}

fn self_sign_disabled(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let encryption = &config.encryption;
    if !encryption.allowed() || encryption.self_sign.is_none() || flag(&encryption.self_sign) {
        return Verdict::pass("self-signing is on or does not apply");
    }
    Verdict::warn("encryption is allowed, but the bridge does not self-sign its device")
        .detail("Clients that only encrypt for verified devices (a growing default) will stop encrypting for the bridge.")
        .evidence("field", "encryption.self_sign")
        .fix(["Set `encryption.self_sign: true` and restart the bridge."])
        .faq("why-are-messages-showing-up-as-encrypted-by-a-deleted-session")
}

fn pickle_key_unset(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    if !config.encryption.allowed() {
        return Verdict::pass("encryption is not allowed");
    }
    let Some(pickle_key) = &config.encryption.pickle_key else {
        return Verdict::pass("this bridge format has no pickle_key");
    };
    let unset = pickle_key.value.is_empty() || pickle_key.value == "generate";
    let writable = std::fs::metadata(config.path()).is_ok_and(|m| !m.permissions().readonly());
    if !unset || writable {
        return Verdict::pass("pickle_key is set, or the bridge can write the generated one");
    }
    Verdict::fail("encryption.pickle_key is not set and the config file is read-only")
        .detail(format!("The bridge generates the key at start but cannot save it into {}; after a restart it cannot read its own encryption keys.", config.path().display()))
        .evidence("field", pickle_key.path.clone())
        .fix(["Make the config writable by the bridge's user for one start, or set `pickle_key` to a long random string yourself.", "Restart the bridge."])
}

fn msc4190_required(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let from_config = matches!(&ctx.facts.homeserver.config, Some(Ok(hs)) if hs.delegated_auth);
    let from_live = ctx
        .facts
        .homeserver
        .versions
        .as_ref()
        .and_then(|v| v.as_ref().ok())
        .is_some_and(|v| {
            v.unstable_features
                .get("org.matrix.msc3861")
                .copied()
                .unwrap_or(false)
        });
    if !(from_config || from_live) {
        return Verdict::pass("the homeserver does not delegate authentication");
    }
    if !config.encryption.allowed() || flag(&config.encryption.msc4190) {
        return Verdict::pass("encryption is off or uses MSC4190");
    }
    Verdict::fail("the homeserver delegates auth (MAS), but the bridge does not use MSC4190 for its encryption device")
        .detail("With Matrix Authentication Service, appservices cannot log in devices the old way; without `encryption.msc4190: true` the bridge's encryption fails at start.")
        .evidence("field", "encryption.msc4190")
        .fix([
            "Set `encryption.msc4190: true` in the bridge config.",
            "Add `io.element.msc4190: true` to the registration (regenerating it does this) and restart the homeserver.",
            "Restart the bridge.",
        ])
}

fn forced_by_server(ctx: &Context) -> Verdict {
    let Some(config) = ctx.target.config() else {
        return Verdict::skip("needs the bridge config");
    };
    let Some(Ok(versions)) = ctx.facts.homeserver.versions.as_ref() else {
        return Verdict::skip("offline, or the homeserver did not answer /versions");
    };
    let forced: Vec<&String> = versions
        .unstable_features
        .iter()
        .filter(|(name, enabled)| name.starts_with("io.element.e2ee_forced") && **enabled)
        .map(|(name, _)| name)
        .collect();
    if forced.is_empty() || config.encryption.allowed() {
        return Verdict::pass("the homeserver does not force encryption the bridge lacks");
    }
    Verdict::fail("the homeserver forces encryption in new rooms, but the bridge does not allow encryption")
        .detail(format!("/versions advertises {}; portal rooms will be encrypted and the bridge cannot read them.", forced.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")))
        .evidence("field", "encryption.allow")
        .fix(["Set `encryption.allow: true` (and `default: true`) in the bridge config and restart it.", "Or stop forcing encryption on the homeserver (Synapse: `encryption_enabled_by_default_for_room_type`)."])
        .faq("the-bridge-cant-decrypt-my-messages")
}

/// The doctor's own device (set up by `run`): can the bot read and answer
/// in encrypted rooms, and do clients that only encrypt for verified
/// devices include it?
fn doctor_unavailable(ctx: &Context) -> Verdict {
    if ctx.target.kind != TargetKind::Doctor {
        return Verdict::skip("only the doctor has a device of its own here");
    }
    let Some(device) = ctx.target.live.as_ref().and_then(|l| l.device.as_ref()) else {
        return Verdict::skip("the bot's device is set up by `bridge-doctor run`");
    };
    match device {
        DeviceFacts::NotWanted => {
            Verdict::skip("`encryption.allow` is false: the bot does not answer in encrypted rooms")
        }
        DeviceFacts::Ready {
            device_id,
            cross_signed: true,
        } => Verdict::pass(format!(
            "the bot's device {device_id} is ready and cross-signed by the bot"
        ))
        .evidence("device_id", device_id.as_str()),
        DeviceFacts::Ready {
            device_id,
            cross_signed: false,
        } => Verdict::warn(format!(
            "the bot's device {device_id} is not cross-signed by the bot"
        ))
        .detail("Clients that only encrypt for verified devices leave it out, so it may not read their messages.")
        .evidence("device_id", device_id.as_str())
        .fix([
            "The bot's cross-signing keys are not in its crypto store: the store was lost or replaced (the log said so at start), or the identity was made elsewhere. The bot still answers; only clients that encrypt for verified devices alone leave it out.",
            "If you have a backup of the store folder (`encryption.store`), stop the doctor, put it back with the same `encryption.pickle_key`, and start it again: the old device and identity come back.",
            "On a homeserver that delegates login to the Matrix Authentication Service, a server admin can allow the replacement for 10 minutes (Synapse admin API: POST `/_synapse/admin/v1/users/<the bot's user ID>/_allow_cross_signing_replacement_without_uia`); restart the doctor within them and it renews its identity.",
        ]),
        DeviceFacts::Unavailable { reason, fix } => Verdict::fail(
            "the bot has no device for encrypted rooms: it says so there in a plain notice",
        )
        .detail(reason.clone())
        .fix(fix.clone()),
    }
}
