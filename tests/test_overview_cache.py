"""The overview snapshot is shared between clients of one scope for its TTL, and rebuilt after."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from engine.live.overview import Overview, OverviewCache, Totals


def _snapshot(n: int) -> Overview:
    from datetime import datetime, timezone
    return Overview(now=datetime(2026, 1, 1, tzinfo=timezone.utc), business_tz="UTC", services=[], campaigns=[],
                    users=[], totals=Totals(n, 0, 0, 0, 0, 0, 0))


class Builds:
    def __init__(self) -> None:
        self.count = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def build(self) -> Overview:
        self.count += 1
        await self.gate.wait()
        return _snapshot(self.count)


async def test_one_build_per_scope_within_the_ttl_then_a_fresh_one() -> None:
    t = [100.0]
    cache, builds = OverviewCache(1.0, monotonic=lambda: t[0]), Builds()
    admin, alice = None, uuid.uuid4()
    first = await cache.get(admin, builds.build)
    assert (await cache.get(admin, builds.build)) is first and builds.count == 1
    # Another scope is another snapshot: a user never sees the admin's.
    mine = await cache.get(alice, builds.build)
    assert mine is not first and builds.count == 2
    t[0] += 1.0
    # Expired: the call starts the rebuild and answers with the previous snapshot meanwhile.
    assert (await cache.get(admin, builds.build)) is first
    await asyncio.sleep(0)
    fresh = await cache.get(admin, builds.build)
    assert fresh is not first and fresh.totals.services == 3 and builds.count == 3


async def test_while_a_rebuild_runs_clients_get_the_previous_snapshot_until_it_is_too_old() -> None:
    t = [100.0]
    cache, builds = OverviewCache(1.0, monotonic=lambda: t[0], stale_for=3.0), Builds()
    first = await cache.get(None, builds.build)
    builds.gate.clear()  # the next build hangs (a slow database)
    t[0] += 1.5
    assert (await cache.get(None, builds.build)) is first
    await asyncio.sleep(0)
    t[0] += 1.0
    # Still one build at a time: the running one is not joined by another.
    assert (await cache.get(None, builds.build)) is first and builds.count == 2
    t[0] += 1.0  # the previous snapshot is now 3.5 s old: callers wait for the build
    waiting = asyncio.create_task(cache.get(None, builds.build))
    await asyncio.sleep(0)
    assert not waiting.done()
    builds.gate.set()
    assert (await waiting).totals.services == 2 and builds.count == 2


async def test_a_build_hung_past_stale_for_no_longer_blocks_a_new_one() -> None:
    t = [100.0]
    cache, builds = OverviewCache(1.0, monotonic=lambda: t[0], stale_for=3.0), Builds()
    builds.gate.clear()
    hung = asyncio.create_task(cache.get(None, builds.build))
    await asyncio.sleep(0)
    t[0] += 3.0
    second = asyncio.create_task(cache.get(None, builds.build))
    for _ in range(3):  # the caller's step, then its build's
        await asyncio.sleep(0)
    assert builds.count == 2
    builds.gate.set()
    await asyncio.gather(hung, second)


async def test_concurrent_misses_share_one_build() -> None:
    cache, builds = OverviewCache(1.0, monotonic=lambda: 5.0), Builds()
    builds.gate.clear()
    waiting = [asyncio.create_task(cache.get(None, builds.build)) for _ in range(20)]
    await asyncio.sleep(0)
    builds.gate.set()
    results = await asyncio.gather(*waiting)
    assert builds.count == 1 and all(r is results[0] for r in results)


async def test_a_failed_build_is_not_cached() -> None:
    cache = OverviewCache(1.0, monotonic=lambda: 5.0)

    async def broken() -> Overview:
        raise ConnectionError("database gone")

    with pytest.raises(ConnectionError):
        await cache.get(None, broken)
    builds = Builds()
    assert (await cache.get(None, builds.build)).totals.services == 1


async def test_zero_ttl_builds_every_time() -> None:
    cache, builds = OverviewCache(0, monotonic=lambda: 5.0), Builds()
    await cache.get(None, builds.build)
    await cache.get(None, builds.build)
    assert builds.count == 2
