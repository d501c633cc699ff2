"""The demo's admin in Matrix (matrix-nio): logs in as @admin:doctor.test
(password pw-admin), opens a direct chat with the bot, sends `check` and
prints the bot's answer as the admin's client shows it.

    python demo-chat.py HOMESERVER BOT
"""
import asyncio
import sys
import time

from nio import AsyncClient, RoomCreateResponse, RoomPreset, RoomVisibility

HOMESERVER, BOT = sys.argv[1:3]


async def next_from_bot(client, room_id, seconds, after=None):
    """The next message of the bot in room_id (a reply to `after` if given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = await client.sync(timeout=1000)
        room = response.rooms.join.get(room_id) if hasattr(response, "rooms") else None
        for event in room.timeline.events if room else []:
            source = event.source
            content = source.get("content", {})
            replied = content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            if source.get("sender") == BOT and source.get("type") == "m.room.message" and (after is None or replied == after):
                return content.get("body", "")
    return None


async def main():
    admin = AsyncClient(HOMESERVER, "@admin:doctor.test")
    await admin.login("pw-admin")
    await admin.sync(timeout=0)
    created = await admin.room_create(visibility=RoomVisibility.private, preset=RoomPreset.private_chat, is_direct=True, invite=[BOT])
    assert isinstance(created, RoomCreateResponse), created
    room = created.room_id
    print(f"bot: {await next_from_bot(admin, room, 30)}")
    print("admin: check")
    sent = await admin.room_send(room, "m.room.message", {"msgtype": "m.text", "body": "check"})
    answer = await next_from_bot(admin, room, 60, after=sent.event_id)
    await admin.close()
    if answer is None:
        sys.exit("the bot did not answer within a minute")
    print("bot: " + answer.replace("\n", "\n     "))


asyncio.run(main())
