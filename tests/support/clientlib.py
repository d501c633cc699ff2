"""What the test clients (chat_client.py, e2e_client.py) share."""
import asyncio
import time


async def bot_joined(client, room_id, bot, seconds=30):
    """Waits until the bot is a member of room_id; whether it joined in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        members = await client.joined_members(room_id)
        if bot in [m.user_id for m in getattr(members, "members", [])]:
            return True
        await asyncio.sleep(0.3)
    return False
