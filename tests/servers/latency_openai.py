"""An OpenAI-compatible Chat Completions server with a latency spread, for the scale benchmark.

`POST /v1/chat/completions` answers after a delay drawn per prompt (a hash of the body, so a
rerun sees the same spread) uniformly from [min_s, max_s], with the exact `chat.completion`
body OpenAI sends; `GET /stats` gives the number of completions requested. aiohttp on one event
loop, run as its own process (`python tests/servers/latency_openai.py --port 0`): its CPU is not
the client's, and a thousand requests in flight cost it no threads. Prints `READY <port>`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servers.loopback import chat_completion  # noqa: E402


def make_app(min_s: float, max_s: float) -> web.Application:
    state = {"requests": 0, "in_flight": 0, "peak_in_flight": 0}

    async def completions(request: web.Request) -> web.Response:
        raw = await request.read()
        state["requests"] += 1
        state["in_flight"] += 1
        state["peak_in_flight"] = max(state["peak_in_flight"], state["in_flight"])
        try:
            body = json.loads(raw)
            fraction = int.from_bytes(hashlib.sha256(raw).digest()[:4], "big") / 2**32
            await asyncio.sleep(min_s + (max_s - min_s) * fraction)
            prompt = body["messages"][-1]["content"]
            content = f"answer to {prompt[:40]}"
            payload = chat_completion(
                f"chatcmpl-{state['requests']}",
                body.get("model", "fake"),
                content,
                len(prompt.split()),
                len(content.split()),
            )
            return web.json_response(payload)
        finally:
            state["in_flight"] -= 1

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(state)

    app = web.Application(client_max_size=1 << 20)
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/stats", stats)
    return app


async def serve(port: int, min_s: float, max_s: float) -> None:
    runner = web.AppRunner(make_app(min_s, max_s), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # the free port picked for port 0
    print(f"READY {bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--min-s", type=float, default=0.2)
    parser.add_argument("--max-s", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.min_s, args.max_s))


if __name__ == "__main__":
    main()
