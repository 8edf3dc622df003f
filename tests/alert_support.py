"""A local HTTP receiver standing in for webhook endpoints and chat robots: it records every
request (path, query, headers, JSON body) and answers from a script of replies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

from aiohttp import web


@dataclass
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # Replies to give, in order (status, body); when used up, `default` is given.
    script: list[tuple[int, str]] = field(default_factory=list)
    default: tuple[int, str] = (200, '{"errcode":0,"errmsg":"ok"}')
    hang: float = 0.0  # seconds to wait before answering (cut short when the receiver closes)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.path, dict(request.query), dict(request.headers), await request.read()))
        if self.hang:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.hang)
        status, body = self.script.pop(0) if self.script else self.default
        return web.Response(status=status, text=body, content_type="application/json")


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    rec = Receiver("")
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.url = f"http://127.0.0.1:{port}"
    try:
        yield rec
    finally:
        rec.released.set()
        await runner.cleanup()
