"""A real encrypting client (matrix-nio with libolm) for tests/encrypted_chat.rs.

python e2e_client.py HOMESERVER BOT OUT_DIR STEP [ROOM]

Logs in as @admin (password "pw-admin") with a crypto store in OUT_DIR/nio,
so a second run is the same device. STEP:
  first  creates an encrypted direct chat the way Element does
         (m.room.encryption in the initial state, is_direct), invites the bot,
         and sends help, check and packet;
  again  sends help in ROOM (after the doctor restarted);
  bench  creates the chat, then sends help and check N times each (N=ROOM,
         default 20) and prints the reply latencies in milliseconds;
  crash  creates the chat, has help answered, then sends check and exits
         at once, printing the room and the check's event id;
  replies ROOM EVENT_ID: syncs until the bot replied to EVENT_ID, then a
         few seconds more, and prints how many replies there were.
Prints one JSON object: the bot's decrypted replies by command (content and
whether the event was encrypted), the room, the downloaded packet's path,
and what /keys/query says of the bot's device.
"""
import asyncio
import io
import json
import os
import sys
import time

import aiohttp
from clientlib import bot_joined
from nio import AsyncClient, AsyncClientConfig, RoomCreateResponse, RoomPreset, RoomVisibility
from nio.crypto.attachments import decrypt_attachment

HOMESERVER, BOT, OUT_DIR, STEP = sys.argv[1:5]
ROOM = sys.argv[5] if len(sys.argv) > 5 else None
EVENT_ID = sys.argv[6] if len(sys.argv) > 6 else None
results = {"replies": {}}
LOG_FIXTURE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "../../../shared/fixtures/logs/mautrix-telegram-hs_token_mismatch.log"
)
# Every room event synced so far: a reply can come in with any sync.
seen = []


async def login():
    """The same device on every run in OUT_DIR, as a client that stays logged in."""
    os.makedirs(f"{OUT_DIR}/nio", exist_ok=True)
    config = AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True)
    client = AsyncClient(HOMESERVER, "@admin:doctor.test", store_path=f"{OUT_DIR}/nio", config=config)
    session = f"{OUT_DIR}/nio/session.json"
    if os.path.exists(session):
        with open(session) as f:
            saved = json.load(f)
        client.restore_login("@admin:doctor.test", saved["device_id"], saved["access_token"])
    else:
        await client.login("pw-admin", device_name="test client")
        with open(session, "w") as f:
            json.dump({"device_id": client.device_id, "access_token": client.access_token}, f)
    if client.should_upload_keys:
        await client.keys_upload()
    await sync_events(client, timeout=0, full_state=True)
    return client


async def sync_events(client, timeout=1000, full_state=False):
    """One sync; the room events it brought, decrypted where keys arrived."""
    response = await client.sync(timeout=timeout, full_state=full_state)
    if client.should_query_keys:
        await client.keys_query()
    rooms = getattr(response, "rooms", None)
    if rooms is None:
        return []
    events = [(room_id, event) for room_id, room in rooms.join.items() for event in room.timeline.events]
    seen.extend(events)
    return events


def replied_to(event):
    content = event.source.get("content", {})
    relation = content.get("m.relates_to", {}).get("m.in_reply_to", {})
    return relation.get("event_id")


def decrypted_content(event):
    """The content a user sees: nio keeps the decrypted payload in `source`."""
    return event.source.get("content", {})


def reaction_to(event, event_id):
    """The key of a reaction (m.annotation) to event_id, else None."""
    relation = event.source.get("content", {}).get("m.relates_to", {})
    if relation.get("rel_type") == "m.annotation" and relation.get("event_id") == event_id:
        return relation.get("key")
    return None


async def command(client, room_id, body, seconds=90):
    """Sends a command; the bot's reply, and the reactions it put on the command."""
    return await send_and_wait(client, room_id, {"msgtype": "m.text", "body": body}, seconds)


async def log_file(client, room_id, encrypted, seconds=90):
    """Sends a real bridge log as a file (an encrypted attachment in an encrypted room)."""
    with open(LOG_FIXTURE, "rb") as f:
        data = f.read()
    return await send_file(client, room_id, data, encrypted, len(data), seconds)


async def send_file(client, room_id, data, encrypted, announced, seconds=90):
    """Sends `data` as a log file whose message announces `announced` bytes."""
    upload, keys = await client.upload(
        lambda *_: io.BytesIO(data), content_type="text/plain", filename="bridge.log", encrypt=encrypted, filesize=len(data)
    )
    content = {"msgtype": "m.file", "body": "bridge.log", "info": {"size": announced, "mimetype": "text/plain"}}
    if encrypted:
        content["file"] = {"url": upload.content_uri, **keys}
    else:
        content["url"] = upload.content_uri
    return await send_and_wait(client, room_id, content, seconds)


async def send_and_wait(client, room_id, content, seconds):
    if client.should_query_keys:
        await client.keys_query()
    sent = await client.room_send(room_id, "m.room.message", content, ignore_unverified_devices=True)
    replies, reactions, edits = [], [], []
    started = time.monotonic()
    deadline = started + seconds
    while time.monotonic() < deadline and (not replies or not {"✅", "❌"} & set(reactions)):
        for event_room, event in await sync_events(client):
            if event_room != room_id or event.sender != BOT:
                continue
            key = reaction_to(event, sent.event_id)
            relation = event.source.get("content", {}).get("m.relates_to", {})
            if key:
                reactions.append(key)
            elif relation.get("rel_type") == "m.replace" and relation.get("event_id") in [r["event_id"] for r in replies]:
                edits.append(event.source["content"].get("m.new_content", {}).get("body"))
            elif replied_to(event) == sent.event_id:
                replies.append({
                    "content": decrypted_content(event),
                    "encrypted": bool(getattr(event, "decrypted", False)),
                    "kind": type(event).__name__,
                    "latency_ms": round((time.monotonic() - started) * 1000, 1),
                    "event_id": event.event_id,
                })
    if not replies:
        return None
    # The answer is the last reply (the packet's file comes after its
    # progress notice); the others and the edits ride along.
    reply = replies[-1]
    reply["reactions"] = reactions
    reply["earlier_replies"] = [r["content"].get("body") for r in replies[:-1]]
    reply["edits"] = edits
    return reply


async def download_packet(client, reply):
    """An encrypted attachment: download the ciphertext, decrypt with the event's key."""
    file_info = reply["content"].get("file") if reply else None
    if not file_info:
        return None
    server, media = file_info["url"][len("mxc://"):].split("/", 1)
    url = f"{HOMESERVER}/_matrix/client/v1/media/download/{server}/{media}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {client.access_token}"}) as response:
            ciphertext = await response.read()
    plain = decrypt_attachment(ciphertext, file_info["key"]["k"], file_info["hashes"]["sha256"], file_info["iv"])
    path = f"{OUT_DIR}/encrypted-packet.zip"
    with open(path, "wb") as f:
        f.write(plain)
    results["packet_ciphertext_is_zip"] = ciphertext[:2] == b"PK"
    return path


async def bot_device_keys(client):
    """The bot's devices and whether its self-signing key signed each (cross-signed)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{HOMESERVER}/_matrix/client/v3/keys/query",
            headers={"Authorization": f"Bearer {client.access_token}"},
            json={"device_keys": {BOT: []}},
        ) as response:
            keys = await response.json()
    self_signing = keys.get("self_signing_keys", {}).get(BOT, {}).get("keys", {})
    devices = {}
    for device_id, device in keys.get("device_keys", {}).get(BOT, {}).items():
        signatures = device.get("signatures", {}).get(BOT, {})
        devices[device_id] = any(key_id in signatures for key_id in self_signing)
    return devices


async def encrypted_direct_chat(client):
    """A direct chat with the bot, encrypted from the start, as Element makes it."""
    room = await client.room_create(
        visibility=RoomVisibility.private,
        preset=RoomPreset.trusted_private_chat,
        is_direct=True,
        invite=[BOT],
        initial_state=[
            {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}
        ],
    )
    assert isinstance(room, RoomCreateResponse), room
    results["joined"] = await bot_joined(client, room.room_id, BOT)
    await sync_events(client, timeout=0)
    return room.room_id


async def bench(client, rounds):
    room_id = await encrypted_direct_chat(client)
    await command(client, room_id, "help")  # the first one shares the room keys
    latencies = {"help": [], "check": []}
    for name in ("help", "check"):
        for _ in range(rounds if name == "help" else max(3, rounds // 4)):
            reply = await command(client, room_id, name)
            assert reply and reply["encrypted"], reply
            latencies[name].append(reply["latency_ms"])
    return latencies


async def crash(client):
    room_id = await encrypted_direct_chat(client)
    await command(client, room_id, "help")  # the first one shares the room keys
    sent = await client.room_send(
        room_id, "m.room.message", {"msgtype": "m.text", "body": "check"}, ignore_unverified_devices=True
    )
    return {"room": room_id, "event_id": sent.event_id}


async def replies(client, room_id, event_id, seconds=60, settle=3):
    found, encrypted, kinds = 0, True, []
    deadline = time.monotonic() + seconds
    batch = list(seen)  # what the first sync after logging in brought
    while time.monotonic() < deadline:
        for event_room, event in batch:
            if event_room != room_id or event.sender != BOT:
                continue
            kinds.append(type(event).__name__)
            if replied_to(event) == event_id:
                found += 1
                encrypted = encrypted and bool(getattr(event, "decrypted", False))
                deadline = min(deadline, time.monotonic() + settle)
        batch = await sync_events(client)
    return {"replies": found, "encrypted": encrypted, "bot_events": kinds}


async def main():
    client = await login()
    if STEP in ("crash", "replies"):
        result = await crash(client) if STEP == "crash" else await replies(client, ROOM, EVENT_ID)
        await client.close()
        print(json.dumps(result))
        return
    if STEP == "first":
        room_id = await encrypted_direct_chat(client)
        welcome = None
        deadline = time.monotonic() + 30
        while welcome is None and time.monotonic() < deadline:
            for event_room, event in seen + await sync_events(client):
                if event_room == room_id and event.sender == BOT and "body" in event.source.get("content", {}):
                    welcome = {"content": decrypted_content(event), "encrypted": bool(getattr(event, "decrypted", False))}
        results["replies"]["welcome"] = welcome
        commands = [("help", "help"), ("check", "check"), ("packet", "packet e2e-note-777"), ("unknown", "frobnicate")]
    elif STEP == "bench":
        print(json.dumps(await bench(client, int(ROOM or 20))))
        await client.close()
        return
    else:
        room_id = ROOM
        commands = [("help_again", "help")]
    results["room"] = room_id
    for name, body in commands:
        results["replies"][name] = await command(client, room_id, body)
    if STEP == "first":
        results["replies"]["log_file"] = await log_file(client, room_id, encrypted=True)
        # 25 MiB that say they are 100 bytes: over the bot's 20 MiB cap.
        results["replies"]["big_file"] = await send_file(client, room_id, b"x" * (25 << 20), True, 100)
    if STEP == "first":
        # An unencrypted direct chat still works, unencrypted.
        plain = await client.room_create(
            visibility=RoomVisibility.private, preset=RoomPreset.private_chat, is_direct=True, invite=[BOT]
        )
        await bot_joined(client, plain.room_id, BOT)
        await sync_events(client, timeout=0)
        results["replies"]["plain_help"] = await command(client, plain.room_id, "help")
        results["replies"]["plain_log_file"] = await log_file(client, plain.room_id, encrypted=False)
    if "packet" in results["replies"]:
        results["packet_file"] = await download_packet(client, results["replies"]["packet"])
    results["bot_devices"] = await bot_device_keys(client)
    await client.close()
    print(json.dumps(results))


asyncio.run(main())
