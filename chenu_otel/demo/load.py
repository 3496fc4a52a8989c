"""Drive the demo with a mix of requests and websocket messages, with a progress bar.

    python -m chenu_otel.demo.load --base-url http://127.0.0.1:8000 --requests 500

The mix: create threads, post messages (agent runs), read threads (cache hits and misses), the
flaky endpoint, unmatched paths, and websocket round trips. Prints a summary by status code.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from urllib.parse import urlsplit

import httpx
from tqdm import tqdm  # type: ignore[import-untyped]
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


async def websocket_round_trips(base_url: str, path: str, messages: int) -> int:
    """Open a websocket to `path`, send `messages` texts and read each echo back."""
    url = urlsplit(base_url)
    scheme = "wss" if url.scheme == "https" else "ws"
    done = 0
    async with connect(f"{scheme}://{url.netloc}{path}", open_timeout=10) as ws:
        for i in range(messages):
            await ws.send(f"hello {i}")
            await ws.recv()
            done += 1
    return done


async def _one_request(
    client: httpx.AsyncClient, base_url: str, rng: random.Random, threads: list[int]
) -> str:
    """Send one request of the mix; returns the label it is counted under."""
    headers = {"X-User-ID": f"user-{rng.randrange(1000)}"}
    roll = rng.random()
    if roll < 0.1 or not threads:
        r = await client.post("/threads", json={"title": "demo"}, headers=headers)
        if r.status_code == 201:
            threads.append(r.json()["id"])
    elif roll < 0.35:
        r = await client.post(
            f"/threads/{rng.choice(threads)}/messages",
            json={"content": f"question {rng.random()}"},
            headers=headers,
        )
    elif roll < 0.75:
        r = await client.get(f"/threads/{rng.choice(threads)}", headers=headers)
    elif roll < 0.85:
        r = await client.get("/flaky", headers=headers)
    elif roll < 0.9:
        r = await client.get(f"/no/such/{rng.randrange(10**9)}", headers=headers)
    else:
        n = await websocket_round_trips(base_url, f"/ws/threads/{rng.choice(threads)}", 3)
        return f"ws:{n}msgs"
    return str(r.status_code)


async def run(base_url: str, total: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    results: Counter[str] = Counter()
    threads: list[int] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        for _ in tqdm(range(total), desc="requests", unit="req"):
            try:
                results[await _one_request(client, base_url, rng, threads)] += 1
            except (httpx.TransportError, OSError, WebSocketException) as exc:
                # A server may close a keep-alive connection after a 500: count it, go on.
                results[f"error:{type(exc).__name__}"] += 1
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
