"""Writes a realistic bridge + Synapse log of SIZE_MB megabytes to PATH:
mautrix-python lines, mautrix-go zerolog JSON lines and Synapse lines with
varying ids and timings, and one known error line every ~50,000 lines."""
import random
import sys

path, size_mb = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
templates = [
    "[2026-11-22 10:{m:02d}:{s:02d},{ms:03d}] [DEBUG@mau.as.api.bot] req #{n} (/v3/sync) completed in {t}.{d}ms with status 200",
    "[2026-11-22 10:{m:02d}:{s:02d},{ms:03d}] [DEBUG@mau.as] Received transaction {n} with {d} events",
    "[2026-11-22 10:{m:02d}:{s:02d},{ms:03d}] [INFO@mau.portal.{n}] Handling Telegram message {t}{d} in chat {n}",
    '{{"level":"debug","time":"2026-11-22T10:{m:02d}:{s:02d}.{ms:03d}Z","req_id":{n},"method":"PUT","path":"/_matrix/client/v3/rooms/!r{n}:example.com/send/m.room.message/{t}","status":200,"duration":{d},"message":"Request completed"}}',
    '{{"level":"info","time":"2026-11-22T10:{m:02d}:{s:02d}.{ms:03d}Z","portal_id":"{n}","message":"Bridged message from WhatsApp","event_id":"$ev{t}{d}"}}',
    "2026-11-22 10:{m:02d}:{s:02d},{ms:03d} - synapse.access.http.8008 - 465 - INFO - PUT-{n} - 127.0.0.1 - 8008 - {{@telegram_{t}:example.com}} Processed request: 0.{d}sec/0.000sec (0.001sec, 0.000sec) (0.000sec/0.002sec/4) 2B 200 \"PUT /_matrix/client/v3/rooms/!r{n}:example.com/send/m.room.message/m{t} HTTP/1.1\" \"mautrix-python/0.20\" [0 dbevts]",
    "2026-11-22 10:{m:02d}:{s:02d},{ms:03d} - synapse.storage.txn - 1017 - DEBUG - sentinel - [TXN START] {{persist_events-{n}}}",
]
known = [
    "[2026-11-22 10:51:00,564] [ERROR@mau.mx] mautrix.errors.request.MUnknownToken: Invalid access token passed.",
    '{"level":"error","error":"M_EXCLUSIVE (HTTP 400): Invalid user localpart for this application service.","message":"Failed to register ghost"}',
    "2026-11-22 10:49:48,678 - synapse.appservice.api - 430 - WARNING - as-sender-0 - push_bulk to http://localhost:29317 threw exception(ConnectionRefusedError) Connection refused",
    "2026-11-22 10:49:48,687 - synapse.appservice.scheduler - 509 - INFO - as-sender-0 - Scheduling retries on telegram in 2.000000s",
]
# A block of ~1 MB, varied; the file is that block with fresh numbers per copy.
def block(seed):
    r = random.Random(seed)
    lines = []
    for i in range(8000):
        t = templates[r.randrange(len(templates))]
        lines.append(t.format(m=r.randrange(60), s=r.randrange(60), ms=r.randrange(1000), n=r.randrange(10**6), t=r.randrange(10**9), d=r.randrange(1000)))
        if seed % 6 == 0 and i == 4000:
            lines.append(known[seed // 6 % len(known)])
    return ("\n".join(lines) + "\n").encode()

written, seed, target = 0, 0, size_mb * 1024 * 1024
blocks = [block(s) for s in range(24)]
with open(path, "wb") as f:
    while written < target:
        data = blocks[seed % len(blocks)]
        f.write(data)
        written += len(data)
        seed += 1
print(f"wrote {written / 1048576:.0f} MiB to {path}")
