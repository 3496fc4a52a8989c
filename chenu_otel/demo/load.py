"""Drive the demo with a mix of requests and websocket messages, with a progress bar.

    python -m chenu_otel.demo.load --base-url http://127.0.0.1:8000 --requests 500

The mix: create threads, post messages (agent runs), read threads (cache hits and misses), the
flaky endpoint, unmatched paths, and websocket round trips. Prints a summary by status code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import struct
from collections import Counter
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm  # type: ignore[import-untyped]


async def websocket_round_trips(base_url: str, path: str, messages: int) -> int:
    """Open a websocket (RFC 6455 client over a plain socket) and send `messages` texts."""
    url = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 80)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .encode()
    )  # fmt: skip
    await writer.drain()
    status = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in status.split(b"\r\n", 1)[0]:
        writer.close()
        return 0
    done = 0
    for i in range(messages):
        payload = f"hello {i}".encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[j % 4] for j, b in enumerate(payload))
        writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        await writer.drain()
        header = await reader.readexactly(2)
        length = header[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        await reader.readexactly(length)
        done += 1
    close_mask = os.urandom(4)
    writer.write(bytes([0x88, 0x80]) + close_mask)
    await writer.drain()
    writer.close()
    return done


async def run(base_url: str, total: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    results: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        threads: list[int] = []
        for _ in tqdm(range(total), desc="requests", unit="req"):
            user = f"user-{rng.randrange(1000)}"
            headers = {"X-User-ID": user}
            roll = rng.random()
            if roll < 0.1 or not threads:
                r = await client.post("/threads", json={"title": "demo"}, headers=headers)
                if r.status_code == 201:
                    threads.append(r.json()["id"])
            elif roll < 0.35:
                tid = rng.choice(threads)
                r = await client.post(f"/threads/{tid}/messages",
                                      json={"content": f"question {rng.random()}"},
                                      headers=headers)  # fmt: skip
            elif roll < 0.75:
                r = await client.get(f"/threads/{rng.choice(threads)}", headers=headers)
            elif roll < 0.85:
                r = await client.get("/flaky", headers=headers)
            elif roll < 0.9:
                r = await client.get(f"/no/such/{rng.randrange(10**9)}", headers=headers)
            else:
                tid = rng.choice(threads)
                n = await websocket_round_trips(base_url, f"/ws/threads/{tid}", 3)
                results[f"ws:{n}msgs"] += 1
                continue
            results[str(r.status_code)] += 1
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chenu_otel.demo.load")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = asyncio.run(run(args.base_url, args.requests, args.seed))
    print("summary:", ", ".join(f"{k}={v}" for k, v in sorted(results.items())))


if __name__ == "__main__":
    main()
