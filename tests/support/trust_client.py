"""Who gets what, as clients see it (matrix-nio), for tests/chat.rs.

python trust_client.py HOMESERVER BOT REGISTRATION: logs in as @admin and
@admin2 (admins), @user (permission user) and @stranger (none), password
"pw-<name>", runs the conversations below and prints one JSON object: the
bot's replies (raw event content), the rooms, and what each room shows of
the bot (`seen`), by name. REGISTRATION is
the bridge's registration, broken on purpose for the watch's alert.
"""
import asyncio
import functools
import json
import re
import sys
import time

import clientlib
from clientlib import bot_joined, wait_for
from nio import RoomCreateResponse, RoomPreset, RoomVisibility

HOMESERVER, BOT, REGISTRATION = sys.argv[1:4]
login = functools.partial(clientlib.login, HOMESERVER)
PREFIX = "!doctor "
results = {}





async def wait_for_invite(client, seconds=60):
    """Syncs until the client is invited to a room; that room's id."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.invited_rooms:
            return next(iter(client.invited_rooms))
        await client.sync(timeout=1000)
    return None


async def direct_chat(client):
    """A direct chat with the bot as a client opens it, once the bot greeted."""
    response = await client.room_create(visibility=RoomVisibility.private, preset=RoomPreset.trusted_private_chat, is_direct=True, invite=[BOT])
    assert isinstance(response, RoomCreateResponse), response
    room = response.room_id
    assert await bot_joined(client, room, BOT)
    # The bot greets once it joined and knew the room as a management room.
    assert await wait_for(client, lambda r, s: r == room and s.get("sender") == BOT, 30)
    return room


def reply_to(event_id):
    def match(room_id, source):
        relation = source.get("content", {}).get("m.relates_to", {})
        return source.get("sender") == BOT and source.get("type") == "m.room.message" and relation.get("m.in_reply_to", {}).get("event_id") == event_id
    return match


async def command(client, room_id, body, seconds=120):
    """Sends body; the bot's reply to it (its content)."""
    sent = await client.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": body})
    reply = await wait_for(client, reply_to(sent.event_id), seconds)
    return reply["content"] if reply else None


async def bot_events(client, room_id):
    """The bot's events in a room as the client sees them, oldest first."""
    response = await client.room_messages(room_id, limit=100)
    return [e.source for e in reversed(response.chunk) if e.source.get("sender") == BOT]


def break_registration():
    """Points the bridge's registration at a port nothing listens on."""
    with open(REGISTRATION) as f:
        text = f.read()
    broken, replaced = re.subn(r"(?m)^url: .*$", "url: http://127.0.0.1:1", text)
    assert replaced == 1, text
    with open(REGISTRATION, "w") as f:
        f.write(broken)


async def main():
    admin, admin2, user, stranger = [await login(n) for n in ("admin", "admin2", "user", "stranger")]
    results["admin_room"] = await direct_chat(admin)
    results["admin2_room"] = await direct_chat(admin2)
    results["user_room"] = await direct_chat(user)

    # A user may not run the admins' commands; check answers them without log lines.
    for name, body in [("user_watch", "watch off"), ("user_history", "history"), ("user_packet", "packet")]:
        results[name] = await command(user, results["user_room"], body)
    results["user_check"] = await command(user, results["user_room"], "check")
    results["admin_check"] = await command(admin, results["admin_room"], "check")

    # A packet asked for in a room shared with a user and a stranger.
    response = await admin.room_create(visibility=RoomVisibility.private, preset=RoomPreset.private_chat, invite=[BOT, "@user:doctor.test", "@stranger:doctor.test"])
    shared = response.room_id
    results["shared_room"] = shared
    await user.join(shared)
    await stranger.join(shared)
    assert await bot_joined(admin, shared, BOT)
    results["shared_packet"] = await command(admin, shared, PREFIX + "packet shared-note-5150")

    # admin2's management room gains a member who is not an admin; then the
    # watch has something to say (the registration changed under it).
    await admin2.room_invite(results["admin2_room"], "@user:doctor.test")
    await user.join(results["admin2_room"])
    break_registration()
    alert = await wait_for(admin, lambda r, s: r == results["admin_room"] and s.get("sender") == BOT and "registration.url_mismatch" in s.get("content", {}).get("body", ""), 60)
    results["alert"] = alert["content"] if alert else None

    # admin2 asks for a packet in the room that is shared now: it comes in a
    # new direct chat the bot opens.
    results["admin2_packet"] = await command(admin2, results["admin2_room"], PREFIX + "packet")
    direct = await wait_for_invite(admin2)
    results["admin2_direct"] = direct
    if direct:
        await admin2.join(direct)

    # What each room shows of the bot, to whom the test asks about.
    results["seen"] = {
        "user_room": await bot_events(user, results["user_room"]),
        "shared_room": await bot_events(user, shared),
        "admin_room": await bot_events(admin, results["admin_room"]),
        "admin2_room": await bot_events(admin2, results["admin2_room"]),
        "admin2_direct": await bot_events(admin2, direct) if direct else [],
    }
    for client in (admin, admin2, user, stranger):
        await client.close()
    print(json.dumps(results))


asyncio.run(main())
