"""A real Matrix client (matrix-nio) talking to the bot, for tests/chat.rs.

python chat_client.py HOMESERVER BOT OUT_DIR: logs in as @admin, @user and
@stranger (password "pw-<name>"), runs the conversations below and prints
one JSON object with the bot's replies (raw event content) by step name.
"""
import asyncio
import functools
import json
import sys

import aiohttp
import clientlib
from clientlib import bot_joined, wait_for
from nio import RoomCreateResponse, RoomPreset, RoomVisibility

HOMESERVER, BOT, OUT_DIR = sys.argv[1:4]
login = functools.partial(clientlib.login, HOMESERVER)
results = {}





async def create_room(client, invite, encrypted=False, direct=True):
    initial_state = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}] if encrypted else []
    response = await client.room_create(visibility=RoomVisibility.private, preset=RoomPreset.private_chat, is_direct=direct, invite=invite, initial_state=initial_state)
    assert isinstance(response, RoomCreateResponse), response
    return response.room_id


def reply_to(event_id, msgtype=None):
    def match(room_id, source):
        content = source.get("content", {})
        if msgtype and content.get("msgtype") != msgtype:
            return False
        return source.get("sender") == BOT and content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id
    return match


async def command(client, room_id, body, seconds=90, relates_to=None, msgtype=None):
    content = {"msgtype": "m.text", "body": body}
    if relates_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": relates_to}}
    sent = await client.room_send(room_id, "m.room.message", content)
    reply = await wait_for(client, reply_to(sent.event_id, msgtype), seconds)
    return reply["content"] if reply else None


async def main():
    admin = await login("admin")
    room = await create_room(admin, [BOT])
    results["joined"] = await bot_joined(admin, room, BOT)
    results["room"] = room
    profile = await admin.get_displayname(BOT)
    results["bot_displayname"] = getattr(profile, "displayname", None)
    welcome = await wait_for(admin, lambda r, s: r == room and s.get("sender") == BOT and s.get("type") == "m.room.message", 30)
    results["welcome"] = welcome["content"] if welcome else None
    for name, body in [
        ("help", "help"),
        ("faq", "faq typing receipts"),
        ("explain", "explain M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service."),
        ("check", "check"),
        ("check_one", "check telegram"),
        ("ping", "ping"),
        ("status", "status"),
        ("bridges", "bridges"),
        ("unknown", "frobnicate"),
        ("packet", "packet chat-note-4242"),
    ]:
        # The packet's progress notice replies first; the file is what counts.
        results[name] = await command(admin, room, body, msgtype="m.file" if name == "packet" else None)

    # explain as a reply to a message holding the log line
    log = await admin.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "ForeignTablesFound: The database contains foreign tables (found state_groups_state)"})
    results["explain_reply"] = await command(admin, room, f"> <@admin:doctor.test> ForeignTablesFound\n\nexplain", relates_to=log.event_id)

    # The packet's file, downloaded as a client would (authenticated media).
    if results["packet"] and results["packet"].get("url", "").startswith("mxc://"):
        server, media = results["packet"]["url"][len("mxc://"):].split("/", 1)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{HOMESERVER}/_matrix/client/v1/media/download/{server}/{media}", headers={"Authorization": f"Bearer {admin.access_token}"}) as response:
                path = f"{OUT_DIR}/downloaded.zip"
                with open(path, "wb") as f:
                    f.write(await response.read())
                results["packet_file"] = path

    # A group room: unprefixed text is not a command, prefixed text is.
    user = await login("user")
    group = await create_room(admin, [BOT, "@user:doctor.test"], direct=False)
    await bot_joined(admin, group, BOT)
    await user.join(group)
    await asyncio.sleep(1)
    results["group_unprefixed"] = await command(admin, group, "help", seconds=5)
    results["group_prefixed"] = await command(admin, group, "!doctor help")

    # A plain user may not build packets.
    user_room = await create_room(user, [BOT])
    await bot_joined(user, user_room, BOT)
    results["user_packet"] = await command(user, user_room, "packet")

    # An encrypted room: the bot says it cannot read it.
    secret_room = await create_room(admin, [BOT], encrypted=True)
    await bot_joined(admin, secret_room, BOT)
    notice = await wait_for(admin, lambda r, s: r == secret_room and s.get("sender") == BOT and s.get("type") == "m.room.message", 30)
    results["encrypted_notice"] = notice["content"] if notice else None

    # A stranger's invite is rejected.
    stranger = await login("stranger")
    strange_room = await create_room(stranger, [BOT])
    membership = None
    for _ in range(60):
        state = await stranger.room_get_state_event(strange_room, "m.room.member", BOT)
        membership = getattr(state, "content", {}).get("membership")
        if membership == "leave":
            break
        await asyncio.sleep(0.3)
    results["stranger_membership"] = membership

    for client in (admin, user, stranger):
        await client.close()
    print(json.dumps(results))


asyncio.run(main())
