"""`edm serve`: the engine and the control API in one uvloop process."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from typing import Any, AsyncIterator, Callable, Coroutine

import uvloop
from aiohttp import web

from api.app import init_app
from api.deps import Deps
from api.http_server import EnvelopeAppRunner
from edm.runtime import Urls, open_deps, resolve_urls
from engine.dispatch.leader import Engine
from engine.domain.errors import ConfigError
from engine.infra.config import Settings

log = logging.getLogger("edm.serve")


@contextlib.asynccontextmanager
async def running_api(d: Deps, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    runner = EnvelopeAppRunner(init_app(d), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use (set EDM_PORT)", field="EDM_PORT") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", field="EDM_HOST") from None
    log.info("api_listening url=http://%s:%s/api/v1", host, port)
    try:
        yield runner
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def running_product(settings: Settings, urls: Urls) -> AsyncIterator[tuple[Deps, Engine]]:
    """Open the stores, start the API and the engine; stop all on exit.

    The API listens first: a port in use fails the command before the engine takes the lease
    (the engine reaches the API's handlers through `d.engine` once it runs).
    """
    from edm.wiring import running_engine

    async with open_deps(settings, urls) as d, running_api(d, settings.host, settings.port), \
            running_engine(d) as engine:
        yield d, engine


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run_serve(settings: Settings, then: Callable[[Deps], Coroutine[Any, Any, None]] | None = None) -> int:
    urls = resolve_urls(settings)

    async def main() -> int:
        async with running_product(settings, urls) as (d, engine_runtime):
            print(f"EDM control API on http://{settings.host}:{settings.port}/api/v1  (Ctrl-C stops)", flush=True)
            work: asyncio.Task[None] = asyncio.create_task(then(d) if then else until_signalled(), name="foreground")
            # Shielded: stopping to wait must not cancel the engine itself (stop() does that).
            engine = asyncio.ensure_future(asyncio.shield(engine_runtime.wait()))
            done, _ = await asyncio.wait({work, engine}, return_when=asyncio.FIRST_COMPLETED)
            if engine in done:
                # The engine stopped by itself: say so loudly and stop the whole process.
                work.cancel()
                log.critical("engine_stopped error=%r", engine.exception())
                return 1
            engine.cancel()
            work.result()
            return 0

    return uvloop.run(main())
