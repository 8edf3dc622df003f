"""Crash safety (invariant 9): an engine killed mid-campaign leaves `sending` rows; the next one
fails them once as "outcome unknown", resumes the rest, and every invariant still holds. A
standby takes over when the active engine dies."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from edm.fake_esp import FakeEspConfig, Knobs
from engine.dispatch.recovery import UNKNOWN_OUTCOME
from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


async def _sending(pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'"))


async def test_kill_mid_campaign_then_restart(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    # Slow answers: requests are in flight (rows `sending`) when the engine dies.
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=150))) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=40, services=3)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        await engine.start()

        async def in_flight() -> bool:
            return len(esp.log.entries()) >= 8 and await _sending(pool) > 0
        await eventually(in_flight, what="requests in flight")
        await engine.abort()  # no clean stop: nothing settled, buffers lost, lock connection gone
        left_sending = await _sending(pool)
        assert left_sending > 0
        # The last requests as the subtasks record them (the services rows' counters are written
        # behind, and recovery recounts them from here).
        last = dict(await pool.fetch("SELECT service_id, max(attempted_at) FROM subtasks "
                                     "WHERE service_id IS NOT NULL GROUP BY service_id"))
        engine2, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine2):
            assert engine2.recovery is not None and engine2.recovery.failed_unknown == left_sending
            # Interval freezes survive the restart: restored from the last requests, not reset.
            for sid, at in last.items():
                s = engine2.state.services[sid]
                assert s.last_request_at is not None and s.last_request_at >= at
            await wait_status(pool, campaign, "completed", timeout=30)
        await engine.providers.close()
        assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE error = $1", UNKNOWN_OUTCOME) == left_sending
        await check_invariants(pool, esp, settings)
    row = await pool.fetchrow("SELECT sent_count, failed_count FROM campaigns")
    assert row["sent_count"] + row["failed_count"] == 40 and row["failed_count"] == left_sending


async def test_standby_takes_over_when_the_active_engine_dies(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=20)
        active, _ = new_engine(settings, pool, clock, deps.box)
        standby, _ = new_engine(settings, pool, clock, deps.box)
        await active.start()
        await active.wait_leader(10)
        await standby.start()
        await eventually(_role(standby, "standby"), what="the standby")

        async def some_sent() -> bool:
            return len(esp.log.entries()) >= 5
        await eventually(some_sent, what="some requests")
        assert standby.role == "standby" and not standby.leader.is_set()
        await active.abort()
        await standby.wait_leader(10)
        async with running_already(standby):
            await wait_status(pool, campaign, "completed")
        await active.providers.close()
        await check_invariants(pool, esp, settings)


def _role(engine, role):
    async def check() -> bool:
        return engine.role == role
    return check


class running_already:
    """Stop an engine that was started elsewhere when the block ends."""

    def __init__(self, engine):
        self.engine = engine

    async def __aenter__(self):
        return self.engine

    async def __aexit__(self, *exc):
        await self.engine.stop()
        await self.engine.providers.close()


async def test_commands_given_to_a_standby_reach_the_leader(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=4,
                                                         send_interval=3600)
        leader, _ = new_engine(settings, pool, clock, deps.box)
        standby, _ = new_engine(settings, pool, clock, deps.box)
        async with running(leader):
            await standby.start()
            await eventually(_role(standby, "standby"), what="the standby")
            await wait_status(pool, campaign, "running")
            await standby.pause_campaign(campaign, user)

            async def paused_in_leader() -> bool:
                c = leader.state.campaigns.get(campaign)
                return c is not None and c.pause_reason == "USER"
            await eventually(paused_in_leader, what="the leader to see the pause")
            await pool.execute("UPDATE services SET send_interval = 1 WHERE id = $1", service)
            await standby.services_changed(service)

            async def interval_seen() -> bool:
                return leader.state.services[service].send_interval == 1
            await eventually(interval_seen, what="the leader to see the new interval")
            await standby.resume_campaign(campaign, user)
            await wait_status(pool, campaign, "completed")
            await standby.stop()
            await standby.providers.close()
        await check_invariants(pool, esp, settings)


async def test_a_leader_whose_lease_was_taken_binds_nothing_and_steps_down(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=30, services=2)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            async def some_sent() -> bool:
                return len(esp.log.entries()) >= 3
            await eventually(some_sent, what="some requests")
            # Another engine takes the lease (as after a pause longer than the lease): a new epoch.
            await pool.execute("UPDATE engine_leader SET epoch = epoch + 1, holder = 'elsewhere', "
                               "since = now(), expires_at = now() + interval '1 hour'")
            await eventually(_role(engine, "standby"), what="the old leader to step down")
            frozen_at = len(esp.log.entries())
            assert await _sending(pool) == 0  # its in-flight requests settled on the way out
            await asyncio.sleep(1.0)
            assert len(esp.log.entries()) == frozen_at  # a standby binds nothing
            # The other engine goes away: this one takes over again (a new epoch) and finishes.
            await pool.execute("UPDATE engine_leader SET expires_at = now()")
            await engine.wait_leader(10)
            await wait_status(pool, campaign, "completed")
            assert engine.terms == 2 and engine.lease.epoch == 3
        await check_invariants(pool, esp, settings)


async def test_a_bind_under_a_stale_epoch_is_refused(deps) -> None:
    from engine.dispatch.dispatch_queries import DispatchQueries
    from engine.dispatch.lease import Lease, LeaseLost
    from engine.live.events import EventWriter, MemorySink

    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    user = await make_user(pool, quota=1)
    service = await make_service(pool, deps.box, settings, clock.now(), base_url="http://127.0.0.1:9")
    await make_contacts(pool, user, 1)
    campaign = await make_campaign(pool, user, planned=1)
    from engine.dispatch.fanout import start_campaign
    await start_campaign(pool, EventWriter(MemorySink()), campaign, clock.now())
    sid = await pool.fetchval("SELECT id FROM subtasks")
    old = Lease(pool, "old", seconds=30, renew_every=1)
    assert await old.try_acquire()
    await pool.execute("UPDATE engine_leader SET expires_at = now()")
    assert await Lease(pool, "new", seconds=30, renew_every=1).try_acquire()
    # The old leader still believes its lease holds (it was paused): the database refuses.
    queries = DispatchQueries(pool, EventWriter(MemorySink()), old)
    try:
        await queries.bind([sid], [service], ["a@b.c"], [clock.now()])
    except LeaseLost:
        pass
    else:
        raise AssertionError("a stale epoch bound a subtask")
    assert await pool.fetchval("SELECT status FROM subtasks") == "pending"
    assert await pool.fetchval("SELECT used_today FROM services") == 0


async def test_sigkill_of_an_engine_process_then_restart(deps, database_url) -> None:
    pool, settings = deps.pool, deps.settings
    anchor = time.time()
    clock = ScaledClock(START, factor=50, wall_anchor=anchor)
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=150))) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=40, services=3)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.engine_proc", "--db", database_url, "--data-dir", settings.data_dir,
            "--start", START.isoformat(), "--anchor", str(anchor), "--factor", "50",
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"leader"

            async def in_flight() -> bool:
                return len(esp.log.entries()) >= 8 and await _sending(pool) > 0
            await eventually(in_flight, what="requests in flight in the engine process")
            proc.kill()  # SIGKILL: no handler, no flush, no unlock
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        left_sending = await _sending(pool)
        assert left_sending > 0
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=30)
        assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE error = $1", UNKNOWN_OUTCOME) == left_sending
        await check_invariants(pool, esp, settings)


async def test_sigkill_before_a_counters_write_behind_then_recount(deps, database_url) -> None:
    """The services' counters are written behind: an engine killed before writing them leaves the
    rows behind the requests it made, and the next engine's recovery recounts them (used today,
    remaining, last request) from the subtasks before it dispatches."""
    pool, settings = deps.pool, deps.settings
    anchor = time.time()
    clock = ScaledClock(START, factor=50, wall_anchor=anchor)
    async with fake_esp() as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=60, services=3)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.engine_proc", "--db", database_url, "--data-dir", settings.data_dir,
            "--start", START.isoformat(), "--anchor", str(anchor), "--factor", "50", "--counters-every", "3600",
            cwd=str(ROOT), stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.strip() == b"leader"

            async def some_sent() -> bool:
                return len(esp.log.entries()) >= 15
            await eventually(some_sent, what="requests from the engine process")
            proc.kill()  # SIGKILL before any write-behind of the counters
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        requested = await pool.fetchval("SELECT count(*) FROM subtasks WHERE attempted_at IS NOT NULL")
        row = await pool.fetchrow("SELECT sum(used_today) AS used, sum(remaining_today) AS remaining, "
                                  "count(last_request_at) AS dated FROM services")
        assert requested >= 15 and row["used"] == 0 and row["dated"] == 0, (requested, dict(row))
        quota = await pool.fetchval("SELECT sum(daily_quota) FROM services")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            assert engine.recovery is not None and engine.recovery.services_fixed == 3
            await wait_status(pool, campaign, "completed", timeout=30)
        row = await pool.fetchrow("SELECT sum(used_today) AS used, sum(remaining_today) AS remaining, "
                                  "count(last_request_at) AS dated FROM services")
        assert (row["used"], row["remaining"], row["dated"]) == (60, quota - 60, 3)
        await check_invariants(pool, esp, settings)


async def test_a_leader_that_cannot_renew_stops_binding_before_its_lease_ends(deps) -> None:
    from engine.dispatch.lease import Lease

    lease = Lease(deps.pool, "alone", seconds=1.2, renew_every=0.3)
    assert await lease.try_acquire() and lease.held()
    # No renewal (the keeper is not running: as if the database were unreachable). Counted from
    # before the acquiring statement was sent, so it ends before the row's own expiry.
    await asyncio.sleep(lease.seconds - lease.margin + 0.05)
    assert not lease.held()
    try:
        await asyncio.wait_for(lease.wait_held(), 0.3)
    except asyncio.TimeoutError:
        pass  # a bind waits for a renewal that does not come
    else:
        raise AssertionError("wait_held returned without a renewal")
