//! Encrypted rooms: the bot's device (`service::device`) set up at start,
//! the sync loop that hands decrypted commands to the same command path as
//! transactions, and sending into encrypted rooms through matrix-sdk.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::config::SyncSettings;
use matrix_sdk::deserialized_responses::EncryptionInfo;
use matrix_sdk::room::reply::{EnforceThread, Reply as ReplyTo};
use matrix_sdk::{Room, RoomState};
use matrix_sdk_crypto::AttachmentDecryptor;
use ruma::events::room::EncryptedFile;
use ruma::events::room::message::{AddMentions, OriginalSyncRoomMessageEvent};
use ruma::serde::Raw;
use ruma::{EventId, OwnedEventId, RoomId};
use serde_json::Value;

use super::Bot;
use crate::matrix::{Chunks, read_capped};
use crate::service::{device, selfcheck};

/// The shortest time between two syncs, against a server that answers a
/// long poll at once. matrix-sdk's own loop waits a whole second after any
/// quick answer, and the bot's own replies make the next answer quick: a
/// second added to every command.
const SYNC_FLOOR: Duration = Duration::from_millis(100);

/// Long-polls the homeserver for the device, for as long as the doctor
/// runs; failures are logged and retried with a growing pause.
async fn sync_loop(client: matrix_sdk::Client) {
    let mut failures: u32 = 0;
    loop {
        let started = tokio::time::Instant::now();
        match client.sync_once(SyncSettings::default()).await {
            Ok(_) => failures = 0,
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::warn!(failures, "the bot's device could not sync: {err}");
                let pause = Duration::from_secs(2u64.saturating_pow(failures.min(5)));
                tokio::time::sleep(pause).await;
            }
        }
        tokio::time::sleep_until(started + SYNC_FLOOR).await;
    }
}

/// How long a reply waits for the device to see a room the bot just joined.
const ROOM_WAIT: Duration = Duration::from_secs(10);

impl Bot {
    /// Sets the device up and logs the self-check's finding about it. No
    /// device is not fatal: the bot then answers in unencrypted rooms only.
    pub(super) async fn open_device(&mut self) {
        let opened = device::open(
            &self.config,
            &self.state.store,
            &self.client,
            &self.versions,
            &self.user_id,
        )
        .await;
        let cross_signed = match &opened {
            Ok(Some(device)) => device::prepare(device, &self.as_bot()).await,
            _ => false,
        };
        let facts = device::facts(&opened, cross_signed);
        if let Some(finding) = selfcheck::device_finding(&self.config, facts) {
            crate::render::log_lines::log_findings(std::slice::from_ref(&finding));
        }
        match opened {
            Ok(device) => self.device = device,
            Err(unavailable) => self.device_problem = Some(unavailable.reason),
        }
    }

    /// Syncs the device in the background; each decrypted message goes to
    /// the command path. Unencrypted ones are left to the transactions.
    pub fn start_sync(self: &Arc<Self>) {
        let Some(device) = &self.device else {
            return;
        };
        let bot = Arc::clone(self);
        device.client.add_event_handler(
            move |event: Raw<OriginalSyncRoomMessageEvent>,
                  room: Room,
                  encryption: Option<EncryptionInfo>| {
                let bot = Arc::clone(&bot);
                async move {
                    let Ok(mut value) = event.deserialize_as::<Value>() else {
                        return;
                    };
                    let sender = value["sender"].as_str().unwrap_or_default().to_owned();
                    if encryption.is_none() || sender == bot.user_id.as_str() {
                        return;
                    }
                    value["room_id"] = Value::String(room.room_id().to_string());
                    // matrix-sdk awaits handlers inside its sync loop: a
                    // command handled here would hold up the next sync (and
                    // every reply it waits for), so it runs on its own.
                    tokio::spawn(async move {
                        bot.on_message(room.room_id(), &sender, &value, true).await;
                        // Only a permitted sender's message was kept.
                        if super::permission_of(&bot.config.permissions, &sender).is_some()
                            && let Some(event_id) = value["event_id"].as_str()
                        {
                            bot.inbox_done(event_id).await;
                        }
                    });
                }
            },
        );
        tokio::spawn(sync_loop(device.client.clone()));
    }

    /// An encrypted message from a transaction (live, or kept in the inbox
    /// when the doctor stopped): the device decrypts it with the keys in its
    /// crypto store and it goes the way a synced one goes. Commands
    /// answered before are skipped there. `Err` says why it could not.
    pub(super) async fn decrypt_and_handle(&self, event: &Value) -> Result<(), String> {
        let event_id = event["event_id"].as_str().unwrap_or_default();
        let device = self.device.as_ref().ok_or("the bot has no device")?;
        let room_id = event["room_id"]
            .as_str()
            .and_then(|r| RoomId::parse(r).ok())
            .ok_or("it names no room")?;
        let room = device
            .client
            .get_room(&room_id)
            .ok_or_else(|| format!("the device does not know the room {room_id}"))?;
        let raw = serde_json::value::to_raw_value(event).map_err(|e| e.to_string())?;
        let decrypted = room
            .decrypt_event(&Raw::from_json(raw), None)
            .await
            .map_err(|err| format!("{event_id} cannot be decrypted: {err}"))?;
        let mut value = decrypted
            .raw()
            .deserialize_as::<Value>()
            .map_err(|e| e.to_string())?;
        let sender = value["sender"].as_str().unwrap_or_default().to_owned();
        value["room_id"] = Value::String(room_id.to_string());
        self.on_message(&room_id, &sender, &value, true).await;
        Ok(())
    }

    /// The device's view of `room`, waiting a little for one just joined
    /// (the join comes to the device by its own sync).
    async fn device_room(&self, room: &RoomId) -> Option<Room> {
        let device = self.device.as_ref()?;
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        loop {
            if let Some(found) = device.client.get_room(room)
                && found.state() == RoomState::Joined
            {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sends an event of `kind` encrypted; its event id, or `None` when the
    /// bot has no device, the room is unknown to it, or sending failed.
    pub(super) async fn post_encrypted(
        &self,
        room: &RoomId,
        kind: &str,
        content: &Value,
    ) -> Option<OwnedEventId> {
        let found = self.device_room(room).await?;
        match found.send_raw(kind, content.clone()).await {
            Ok(sent) => Some(sent.response.event_id),
            Err(err) => {
                tracing::warn!(%room, kind, "could not send encrypted: {err}");
                None
            }
        }
    }

    /// Downloads and decrypts the encrypted file of a message's `content`,
    /// decrypting as it arrives: refused when the media repository says it
    /// is over `limit`, or once it passes `limit` (the size the message
    /// announces is the sender's word, not trusted).
    pub(super) async fn download_encrypted(
        &self,
        content: &Value,
        limit: usize,
    ) -> Result<Vec<u8>, String> {
        let file: EncryptedFile = content
            .get("file")
            .cloned()
            .ok_or("the message has no encrypted file")
            .and_then(|f| {
                serde_json::from_value(f).map_err(|_| "the message's file is not valid")
            })?;
        let mut download = self
            .as_bot()
            .open_download(file.url.as_str(), limit)
            .await?;
        decrypt_capped(&mut download, file, limit).await
    }

    /// Sends a file as an encrypted attachment, in reply to `in_reply_to`
    /// when given.
    pub(super) async fn send_file_encrypted(
        &self,
        room: &RoomId,
        name: &str,
        bytes: Vec<u8>,
        in_reply_to: Option<&str>,
    ) -> Result<(), String> {
        let found = self
            .device_room(room)
            .await
            .ok_or_else(|| "the bot's device does not know this room yet".to_owned())?;
        let mut config = AttachmentConfig::new();
        if let Some(Ok(event_id)) = in_reply_to.map(EventId::parse) {
            config.reply = Some(ReplyTo {
                event_id,
                enforce_thread: EnforceThread::MaybeThreaded,
                add_mentions: AddMentions::No,
            });
        }
        let zip: mime::Mime = "application/zip".parse().map_err(|e| format!("{e}"))?;
        found
            .send_attachment(name, &zip, bytes, config)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The ciphertext the decryptor reads: each chunk as it arrives.
struct Feed<'a>(&'a Mutex<VecDeque<u8>>);

impl Read for Feed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .read(buf)
    }
}

/// Decrypts the attachment `file` as `source` brings its ciphertext,
/// holding at most `limit` bytes of plain text and a chunk; refused past
/// `limit`, or when the whole does not match the file's hash.
async fn decrypt_capped(
    source: &mut impl Chunks,
    file: EncryptedFile,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let ciphertext = Mutex::new(VecDeque::new());
    let mut feed = Feed(&ciphertext);
    let mut decryptor = AttachmentDecryptor::new(&mut feed, file.into())
        .map_err(|e| format!("the file cannot be decrypted: {e}"))?;
    let plain = read_capped(source, limit, |chunk, plain| {
        ciphertext
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(chunk);
        let start = plain.len();
        plain.resize(start + chunk.len(), 0);
        decryptor
            .read_exact(&mut plain[start..])
            .map_err(|e| format!("the file cannot be decrypted: {e}"))
    })
    .await?;
    // Read past the end: the decryptor then checks the hash of the whole.
    decryptor
        .read(&mut [0u8; 1])
        .map_err(|_| "the file does not match its hash: it was changed or cut short".to_owned())?;
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::body::Bytes;
    use matrix_sdk_crypto::AttachmentEncryptor;

    const CHUNK: usize = 64 * 1024;

    /// The message's `file` for ciphertext encrypted with `info`.
    fn encrypted_file(info: matrix_sdk_crypto::MediaEncryptionInfo) -> EncryptedFile {
        let mut file = serde_json::to_value(info).unwrap();
        file["url"] = "mxc://doctor.test/file".into();
        serde_json::from_value(file).unwrap()
    }

    /// Encrypts `size` bytes of `x` (one bit changed when `tamper`) and
    /// streams the ciphertext a chunk at a time through the decryption
    /// under `limit`; the outcome and how many ciphertext bytes were read.
    async fn round_trip(size: u64, limit: usize, tamper: bool) -> (Result<Vec<u8>, String>, usize) {
        let mut plain = std::io::repeat(b'x').take(size);
        let mut encryptor = AttachmentEncryptor::new(&mut plain);
        let mut ciphertext = Vec::new();
        encryptor.read_to_end(&mut ciphertext).unwrap();
        let info = encryptor.finish();
        if tamper {
            ciphertext[0] ^= 1;
        }
        let mut replay = Replay {
            ciphertext: Bytes::from(ciphertext),
            handed_out: 0,
        };
        let outcome = decrypt_capped(&mut replay, encrypted_file(info), limit).await;
        (outcome, replay.handed_out)
    }

    /// Ciphertext handed out a chunk at a time.
    struct Replay {
        ciphertext: Bytes,
        handed_out: usize,
    }

    impl Chunks for Replay {
        async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
            let rest = self.ciphertext.len() - self.handed_out;
            if rest == 0 {
                return Ok(None);
            }
            let chunk = self
                .ciphertext
                .slice(self.handed_out..self.handed_out + rest.min(CHUNK));
            self.handed_out += chunk.len();
            Ok(Some(chunk))
        }
    }

    #[tokio::test]
    async fn a_file_under_the_cap_decrypts() {
        let (outcome, _) = round_trip(200_000, 1024 * 1024, false).await;
        assert_eq!(outcome.unwrap(), vec![b'x'; 200_000]);
    }

    #[tokio::test]
    async fn thirty_mib_are_refused_after_reading_the_cap_and_a_chunk() {
        let limit = 20 * 1024 * 1024;
        let (outcome, read) = round_trip(30 * 1024 * 1024, limit, false).await;
        assert_eq!(outcome.unwrap_err(), "the file is larger than 20 MiB");
        assert!(read <= limit + CHUNK, "{read} bytes read");
    }

    #[tokio::test]
    async fn a_changed_file_is_refused() {
        let (outcome, _) = round_trip(100_000, 1024 * 1024, true).await;
        assert!(outcome.unwrap_err().contains("does not match its hash"));
    }
}
