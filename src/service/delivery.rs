//! The doctor's end-to-end delivery probe: the bot sends an event into its
//! own private room, and the homeserver must push that event back to the
//! doctor in a transaction. The ping only proves the homeserver can connect;
//! this proves transactions flow (a missing appservice worker, a stuck
//! queue or a backoff stop them while the ping still works).

use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use ruma::{RoomId, UserId};
use serde_json::json;

use crate::facts::{DeliveryProbe, PROBE_TIMEOUT};
use crate::input::config::Config;
use crate::matrix::{AsUser, HomeserverClient};
use crate::service::appservice::{AppserviceState, PROBE_KEY};

/// How long the homeserver gets to deliver the probe event.
pub const PROBE_WAIT: Duration = Duration::from_secs(15);

/// Sends the probe and waits for it to come back.
pub async fn probe(config: &Config, state: &AppserviceState) -> DeliveryProbe {
    let client = HomeserverClient::new(&config.homeserver.address, PROBE_TIMEOUT);
    let versions = match client.versions().await {
        Ok(versions) => versions,
        Err(_) => {
            return DeliveryProbe::NotSent("the homeserver did not answer /versions".to_owned());
        }
    };
    let Ok(bot) = UserId::parse(config.appservice.bot_user_id(&config.homeserver.domain)) else {
        return DeliveryProbe::NotSent("the bot's user ID is not valid".to_owned());
    };
    let as_bot = AsUser {
        client: &client,
        versions: &versions,
        as_token: &config.appservice.as_token,
        user: &bot,
    };
    let nonce: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let delivered = state.expect_probe(&nonce);
    let started = Instant::now();
    if let Err(reason) = send(&as_bot, state, &nonce).await {
        return DeliveryProbe::NotSent(reason);
    }
    match tokio::time::timeout(PROBE_WAIT, delivered).await {
        Ok(Ok(())) => DeliveryProbe::Delivered {
            milliseconds: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        },
        _ => DeliveryProbe::NotDelivered {
            waited_seconds: PROBE_WAIT.as_secs(),
        },
    }
}

/// Sends the probe event into the probe room, making the room when there
/// is none yet or the old one is gone.
async fn send(as_bot: &AsUser<'_>, state: &AppserviceState, nonce: &str) -> Result<(), String> {
    let content = json!({ PROBE_KEY: nonce });
    let user = as_bot.user.as_str();
    let stored = state
        .store
        .probe_room(user)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(room) = stored.as_deref().and_then(|r| RoomId::parse(r).ok()) {
        match as_bot.send_event(&room, PROBE_KEY, &content).await {
            Ok(answer) if answer.is_success() => return Ok(()),
            Ok(answer)
                if !(answer.errcode_is("M_FORBIDDEN") || answer.errcode_is("M_NOT_FOUND")) =>
            {
                return Err(format!(
                    "sending the probe event was refused: {}",
                    answer.summary()
                ));
            }
            Ok(_) => {
                tracing::info!(room = %room, "the delivery probe room is gone; making a new one")
            }
            Err(err) => return Err(format!("sending the probe event failed: {}", err.message())),
        }
    }
    let created = as_bot
        .create_private_room("bridge-doctor delivery probe")
        .await
        .map_err(|e| format!("creating the probe room failed: {}", e.message()))?;
    let room = created
        .json
        .as_ref()
        .and_then(|j| j.get("room_id")?.as_str())
        .and_then(|r| RoomId::parse(r).ok())
        .ok_or_else(|| format!("creating the probe room was refused: {}", created.summary()))?;
    state
        .store
        .set_probe_room(user, room.as_str())
        .await
        .map_err(|e| e.to_string())?;
    let answer = as_bot
        .send_event(&room, PROBE_KEY, &content)
        .await
        .map_err(|e| format!("sending the probe event failed: {}", e.message()))?;
    if answer.is_success() {
        Ok(())
    } else {
        Err(format!(
            "sending the probe event was refused: {}",
            answer.summary()
        ))
    }
}
