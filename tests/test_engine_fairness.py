"""Fairness (invariant 6) with a fake clock stepped one interval at a time, so every tick is exact."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from engine.dispatch.fanout import start_campaign
from engine.infra.clock import FakeClock, SystemClock
from engine.live.events import EventWriter, MemorySink
from tests.engine_support import (
    buffers_ready,
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    quiet,
    request_count,
    running,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


async def test_three_users_on_two_shared_services_stay_within_one_round(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(START)
    async with fake_esp() as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
                    for _ in range(2)]
        # Both services just sent (as the engine counts it after a restart: the recorded bind
        # time plus 1 s for the bind-to-send delay): the first request waits for the first step.
        await pool.execute("UPDATE services SET last_request_at = $1", clock.now() - timedelta(seconds=1))
        users, campaigns = [], []
        writer = EventWriter(MemorySink())
        for _ in range(3):
            user = await make_user(pool, quota=12)
            await map_user(pool, user, services)
            await make_contacts(pool, user, 12)
            campaign = await make_campaign(pool, user, planned=12)
            assert (await start_campaign(pool, writer, campaign, clock.now())).status == "running"
            users.append(user)
            campaigns.append(campaign)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await buffers_ready(engine, campaigns)
            sent: Counter = Counter()
            for tick in range(18):
                clock.advance(1)
                await eventually(lambda: _count_is(pool, 2 * (tick + 1)), what="one request per service")
                await quiet(pool, engine)
                assert await request_count(pool) == 2 * (tick + 1), "each service sends once per interval"
                rows = await pool.fetch("SELECT c.user_id FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id "
                                        "WHERE s.attempted_at = $1", clock.now())
                sent.update(r["user_id"] for r in rows)
                counts = [sent[u] for u in users]
                assert max(counts) - min(counts) <= 1, f"tick {tick}: {counts}"
            for c in campaigns:
                await wait_status(pool, c, "completed")
        await check_invariants(pool, esp, settings)
    assert [sent[u] for u in users] == [12, 12, 12]


async def _count_is(pool, n: int) -> bool:
    return await request_count(pool) >= n


async def test_users_who_become_runnable_together_start_level(deps) -> None:
    """3 services, 3 users whose campaigns fall due at the same moment while the engine runs:
    from the fake ESP's own log (arrival order), no user is ever more than one request ahead."""
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(START)
    due = START + timedelta(seconds=30)
    rounds = 5
    async with fake_esp() as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
                    for _ in range(3)]
        owner: dict[str, uuid.UUID] = {}
        users = []
        for _ in range(3):
            user = await make_user(pool, quota=rounds)
            await map_user(pool, user, services)
            await make_contacts(pool, user, rounds)
            await make_campaign(pool, user, planned=rounds, scheduled_at=due)
            users.append(user)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            clock.set(due)
            for r in range(rounds):
                await eventually(lambda: _count_is(pool, 3 * (r + 1)), what=f"round {r + 1}")
                await quiet(pool, engine)
                clock.advance(1)
            for row in await pool.fetch("SELECT s.id, c.user_id FROM subtasks s "
                                        "JOIN campaigns c ON c.id = s.campaign_id"):
                owner[str(row["id"])] = row["user_id"]
        await check_invariants(pool, esp, settings)
        arrivals = [owner[e.request_id or ""] for e in sorted(esp.log.entries(), key=lambda e: e.seq)]
    assert len(arrivals) == 3 * rounds
    counts: Counter = Counter()
    for k, user in enumerate(arrivals):
        counts[user] += 1
        level = [counts[u] for u in users]
        assert max(level) - min(level) <= 1, f"after {k + 1} requests: {level} ({arrivals[:k + 1]})"


async def test_users_whose_campaigns_are_saved_within_the_same_second_start_level(deps) -> None:
    """Real time: three users save (the engine is told) 0.2 s apart while the engine runs; from the
    fake ESP's arrival order, no user is ever more than one request ahead.

    The saves are the only way in: the due poll (which would start the first campaign alone,
    were it to fall between two saves) is off, and the group gathers for a whole second, so a
    save slowed by a busy machine still falls in it."""
    pool, settings = deps.pool, deps.settings
    clock = SystemClock()
    rounds = 3
    async with fake_esp() as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
                    for _ in range(3)]
        users = []
        for _ in range(3):
            user = await make_user(pool, quota=rounds)
            await map_user(pool, user, services)
            await make_contacts(pool, user, rounds)
            users.append(user)
        engine, _ = new_engine(settings, pool, clock, deps.box, due_poll_seconds=3600, start_gather_seconds=1.0)
        async with running(engine):
            for user in users:
                # Saved through the API as the engine sees it: the row, then the notice.
                campaign = await make_campaign(pool, user, planned=rounds)
                await engine.campaign_saved(campaign)
                await asyncio.sleep(0.2)
            await eventually(lambda: _count_is(pool, 3 * rounds), timeout=30, what="every request")
            await quiet(pool, engine)
            owner = {str(r["id"]): r["user_id"] for r in await pool.fetch(
                "SELECT s.id, c.user_id FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id")}
        await check_invariants(pool, esp, settings)
        arrivals = [owner[e.request_id or ""] for e in sorted(esp.log.entries(), key=lambda e: e.seq)]
    counts: Counter = Counter()
    for k, user in enumerate(arrivals):
        counts[user] += 1
        level = [counts[u] for u in users]
        assert max(level) - min(level) <= 1, f"after {k + 1} requests: {level}"
