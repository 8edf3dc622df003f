"""The engine binds no more EngageLab requests than the shared HTTP pool has connections: the
cap holds over whole runs (judged from the fake ESP's log: arrival and answer times), no
request waits in the pool or goes back unsent for want of a connection, the services beyond the
cap wait their turn in due order, and that wait is never a provider timeout."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from edm.fake_esp import FakeEspConfig, Knobs
from engine.domain.quota_day import parse_hhmm, quota_day_start
from engine.infra.clock import SystemClock
from engine.infra.scaled_clock import ScaledClock
from engine.providers import EngageLabTransport, ProviderFactory
from tests.engine_support import (
    check_invariants,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


def most_open_at_once(entries: list[Any]) -> int:
    """Requests the fake ESP held open at the same moment (an answer before an arrival at a tie)."""
    edges = sorted([(e.t, 1) for e in entries] + [(e.answered, -1) for e in entries])
    open_now = most = 0
    for _, step in edges:
        open_now += step
        most = max(most, open_now)
    return most


async def test_requests_in_flight_never_exceed_the_pool_and_every_service_takes_its_turn(deps) -> None:
    # 24 services that could send 240 requests a (real) second through 3 connections that carry 15.
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=10)
    transport = EngageLabTransport(pool_limit=3)
    n_services, per_service = 24, 4
    n = n_services * per_service
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=200))) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=n,
                                                       services=n_services)
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport))
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=60)
            binds = engine.dispatcher.requests
            assert transport.slots.used == 0, "a connection was never given back"
        entries = esp.log.entries()
        assert all(e.answered is not None for e in entries)
        assert most_open_at_once(entries) == 3, "the pool is not the limit: the test proves nothing"
        assert transport.queued == 0, f"{transport.queued} requests waited in the pool for a connection"
        assert binds == n, f"{binds - n} binds went back unsent"
        row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns WHERE id = $1", campaign)
        assert (row["sent_count"], row["failed_count"]) == (n, 0)
        # Parked services go back in due order: the pool's turns go round all of them.
        per_user = Counter(e.api_user for e in entries)
        assert len(per_user) == n_services and max(per_user.values()) - min(per_user.values()) <= 2, per_user
        await check_invariants(pool, esp, settings)


async def test_the_wait_for_a_connection_is_not_the_providers_timeout(deps) -> None:
    # One connection, six services whose provider must answer within 2 s and takes 0.5 s: the
    # sixth request waits 2.5 s for the connection. It waits unbound, in the engine, not in the
    # pool with its clock running: every request is sent, none is a TIMEOUT.
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=1)
    transport = EngageLabTransport(pool_limit=1, pool_wait=0.5, total_timeout=30)
    n = 6
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=500))) as (url, esp):
        user = await make_user(pool, quota=n)
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url) for _ in range(n)]
        await pool.execute("UPDATE services SET request_timeout = 2")
        await map_user(pool, user, services)
        await make_contacts(pool, user, n)
        campaign = await make_campaign(pool, user, planned=n)
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport))
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=60)
            binds = engine.dispatcher.requests
        errors = await pool.fetch("SELECT error FROM subtasks WHERE error IS NOT NULL")
        assert [r["error"] for r in errors] == []
        entries = esp.log.entries()
        assert most_open_at_once(entries) == 1
        assert max(e.t for e in entries) - min(e.t for e in entries) >= 2.0, "no request waited past the timeout"
        assert transport.queued == 0 and binds == n
        row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns WHERE id = $1", campaign)
        assert (row["sent_count"], row["failed_count"]) == (n, 0)
        await check_invariants(pool, esp, settings)


async def test_the_first_requests_of_a_big_tick_leave_before_the_last_are_rendered(deps) -> None:
    # 600 services come due in the same tick. Started all at once, every request of the tick was
    # rendered and handed over before the first one was written (aiohttp writes a request's
    # bytes in a task of its own, queued behind every request task of the tick): the first
    # arrival at the fake ESP came after the last handover. In slices, the first requests are
    # on the wire while later ones are still being rendered.
    # The fake ESP shares the engine's loop: a request is logged a few turns after it was written.
    # Each render costs ~0.1 ms (a loop in the template), so the tick's rendering (~60 ms) spans
    # more slices than that whatever the machine's speed or load: a slice renders at most
    # sender.MAX_SLICE, and a stalled turn only makes the slice it interrupts smaller.
    pool, settings = deps.pool, deps.settings
    clock = SystemClock()  # its monotonic clock is the fake ESP's (time.monotonic)
    n = 600
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=n)
        await pool.execute(
            """INSERT INTO services (name, provider, domain, credentials, base_url, daily_quota, reset_time,
                                     send_interval, remaining_today, quota_day_start)
               SELECT 'svc-' || g, 'engagelab', 'mail.example.com', $1, $2, 1000, '02:00', 1, 1000, $3
               FROM generate_series(1, $4) g""",
            deps.box.seal({"api_user": "many", "api_key": "key-many"}), url,
            quota_day_start(parse_hhmm("02:00"), settings.tz, clock.now()), n)
        await map_user(pool, user, [r["id"] for r in await pool.fetch("SELECT id FROM services")])
        await make_contacts(pool, user, n)
        campaign = await make_campaign(pool, user, planned=n,
                                       html="{% for i in range(30) %}<p>{{ name }} {{ i }}</p>{% endfor %}")
        transport = EngageLabTransport(pool_limit=n)
        # Warm connections, as a running engine has them: the requests do not wait for a connect.
        async def warm() -> None:
            async with transport.session().get(url + "/_fake/stats") as resp:
                await resp.read()
        await asyncio.gather(*(warm() for _ in range(n)))
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport), claim_batch=n)
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=60)
            handed_over = {s.id: s.last_start_mono or 0.0 for s in engine.state.services.values()}
        arrivals = sorted(e.t for e in esp.log.entries())
        assert len(arrivals) == n
        # The requests of one tick share its time (`attempted_at`); the first tick's handovers:
        first_tick = sorted(handed_over[r["service_id"]] for r in await pool.fetch(
            "SELECT service_id FROM subtasks WHERE attempted_at = (SELECT min(attempted_at) FROM subtasks)"))
        assert len(first_tick) >= 100, f"only {len(first_tick)} requests in the first tick"
        assert arrivals[0] < first_tick[-1], (
            f"the first request arrived {1000 * (arrivals[0] - first_tick[-1]):.1f} ms after the last handover "
            f"of its tick ({len(first_tick)} requests)")
        await check_invariants(pool, esp, settings)
