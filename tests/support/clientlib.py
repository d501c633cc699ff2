"""What the test clients (chat_client.py, trust_client.py, e2e_client.py) share."""
import asyncio
import time

from nio import AsyncClient


async def login(homeserver, name):
    """A client logged in as @name (password "pw-<name>"), synced once."""
    client = AsyncClient(homeserver, f"@{name}:doctor.test")
    await client.login(f"pw-{name}")
    await client.sync(timeout=0)
    return client


async def wait_for(client, predicate, seconds=60):
    """Syncs until an event in any joined room satisfies predicate(room_id, source)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = await client.sync(timeout=1000)
        rooms = response.rooms.join.items() if hasattr(response, "rooms") else []
        for room_id, room in rooms:
            for event in room.timeline.events:
                if predicate(room_id, event.source):
                    return event.source
    return None


async def bot_joined(client, room_id, bot, seconds=30):
    """Waits until the bot is a member of room_id; whether it joined in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        members = await client.joined_members(room_id)
        if bot in [m.user_id for m in getattr(members, "members", [])]:
            return True
        await asyncio.sleep(0.3)
    return False
