"""An engine stopped right after it was started leaves nothing running: no task of its term keeps
retrying on the pool the caller then closes, and nothing is logged after stop() returned."""

from __future__ import annotations

import asyncio
import logging

from engine.infra.clock import FakeClock
from tests.engine_support import eventually, new_engine


def _engine_tasks() -> list[asyncio.Task]:  # type: ignore[type-arg]
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("engine") and not t.done()]


async def _stopped_clean(engine, caplog) -> None:  # type: ignore[no-untyped-def]
    stopped_at = len(caplog.records)
    assert engine.is_stopped
    await asyncio.sleep(0.3)  # anything left over would be retrying (back-off 0.1 s) by now
    left = _engine_tasks()
    for t in left:  # so a failure does not hang the pool's close at teardown
        t.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    assert [t.get_name() for t in left] == []
    assert [r.getMessage() for r in caplog.records[stopped_at:]] == []


async def test_a_stop_landing_while_the_term_loads_starts_no_task(deps, caplog) -> None:
    """The term is leading but has not started its tasks when stop() begins; the load finishes
    while stop() is still shutting down (held here at the loader's close). The term must not
    start its tasks then: nothing would stop them, and they would retry on a closed pool."""
    engine, _ = new_engine(deps.settings, deps.pool, FakeClock(), deps.box)
    caplog.set_level(logging.WARNING)
    loaded = asyncio.Event()
    load_all, close = engine.loader.load_all, engine.loader.close
    gate = asyncio.Event()

    async def slow_load() -> None:
        await gate.wait()
        await load_all()
        loaded.set()

    async def close_after_load() -> None:
        gate.set()
        await loaded.wait()
        await asyncio.sleep(0.05)  # the term goes on from its load meanwhile
        await close()

    engine.loader.load_all = slow_load  # type: ignore[method-assign]
    engine.loader.close = close_after_load  # type: ignore[method-assign]
    await engine.start()

    async def leading() -> bool:
        return engine.role == "leader"
    await eventually(leading, what="the engine to lead")
    await engine.stop()
    await _stopped_clean(engine, caplog)
    await engine.providers.close()  # type: ignore[attr-defined]
