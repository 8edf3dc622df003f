"""Fault run (`make faults`): local congestion is never the provider's failure.

Many services at a 1 s interval against the fake ESP in another process, through one shared
pool of 100 connections whose wait is cut short (2 s): far more requests are due than the pool
can carry. Before the fix the pool wait counted as the provider's connect timeout and most
subtasks failed for good as TIMEOUT while the provider saw a fraction of them; then a request
that never got a connection went back to pending (tens of thousands of binds given back at 6,000
services). Now a request is bound only while the pool has a free connection: at the end every
subtask is sent once with one bind each, nothing failed, and the counters equal recounts.

EDM_FAULTS_SERVICES sets the number of services (default 1,000; the issue's run had 6,000).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from typing import Any, AsyncIterator

import aiohttp
import pytest

from engine.infra.clock import SystemClock
from engine.providers import EngageLabTransport, ProviderFactory
from tests.engine_support import check_invariants, eventually, new_engine, running, seed_campaign

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

SERVICES = int(os.environ.get("EDM_FAULTS_SERVICES", "1000"))
PER_SERVICE = 2


@pytest.fixture
async def esp_process() -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edm.fake_esp", "--port", "0", "--latency-ms", "300",
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    url = line.rsplit(" ", 1)[-1].strip()
    try:
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def _esp_log(url: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url + "/_fake/log") as resp:
        return await resp.json()  # type: ignore[no-any-return]


async def test_a_congested_pool_sends_everything_later_and_fails_nothing(deps, esp_process: str) -> None:
    pool, settings = deps.pool, deps.settings
    clock = SystemClock()
    n = SERVICES * PER_SERVICE
    user, services, campaign = await seed_campaign(deps, clock.now(), base_url=esp_process, contacts=n,
                                                   services=SERVICES, send_interval=1)
    transport = EngageLabTransport(pool_limit=100, pool_wait=2.0)
    engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport),
                           claim_batch=200)
    started = time.monotonic()
    async with running(engine):
        async def done() -> bool:
            return await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign) == "completed"
        await eventually(done, timeout=600, what="the campaign to complete")
        bound = engine.dispatcher.requests
    elapsed = time.monotonic() - started
    row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns WHERE id = $1", campaign)
    log = await _esp_log(esp_process)
    outcomes = Counter(e["outcome"] for e in log)
    print(f"\ncongestion: {SERVICES} services, {n} subtasks in {elapsed:.1f} s; {bound} binds "
          f"({bound - n} went back to pending unsent); provider saw {len(log)} requests {dict(outcomes)}; "
          f"sent {row['sent_count']}, failed {row['failed_count']}")
    assert (row["sent_count"], row["failed_count"]) == (n, 0)
    assert bound == n and transport.queued == 0, "a request was bound without a free connection"
    assert len(log) == n and len({e["request_id"] for e in log}) == n
    await check_invariants(pool, None, settings)
