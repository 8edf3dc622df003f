"""The races found in review (issue 8, item 6), each with its two sides interleaved by hand:
one side is held at a known point (a row lock held by the test, a transaction left open) while
the other runs, then released."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import asyncpg

from engine.dispatch import campaign_control
from engine.dispatch.dispatch_queries import DispatchQueries, SettleBatch
from engine.dispatch.fanout import start_campaign
from engine.dispatch.lease import Lease
from engine.dispatch.recovery import recover
from engine.infra.clock import FakeClock
from engine.infra.queries import Q
from engine.live.events import EventWriter, MemorySink
from engine.store import quota_ledger
from engine.store.service_models import ServicePatch
from engine.store.services import ServiceStore
from tests.engine_support import (
    check_invariants,
    eventually,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
)

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
EVENTS = EventWriter(MemorySink())


async def _running(deps, n: int, quota: int | None = None) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """(user, service, campaign): a running campaign of n subtasks on one service."""
    pool = deps.pool
    user = await make_user(pool, quota=n if quota is None else quota)
    service = await make_service(pool, deps.box, deps.settings, NOW, base_url="http://127.0.0.1:9")
    await map_user(pool, user, [service])
    await make_contacts(pool, user, n)
    campaign = await make_campaign(pool, user, planned=n if quota is None else min(n, quota))
    await start_campaign(pool, EVENTS, campaign, NOW)
    return user, service, campaign


async def _queries(pool: asyncpg.Pool) -> DispatchQueries:
    """The dispatcher's statements under a lease of their own (binds are fenced by its epoch)."""
    lease = Lease(pool, "races", seconds=60, renew_every=10)
    await pool.execute("DELETE FROM engine_leader")
    assert await lease.try_acquire()
    return DispatchQueries(pool, EVENTS, lease)


async def _bind(pool: asyncpg.Pool, service: uuid.UUID, ids: list[uuid.UUID],
                at: datetime = NOW) -> set[uuid.UUID]:
    queries = await _queries(pool)
    return await queries.bind(ids, [service] * len(ids), ["a@b.example"] * len(ids), [at] * len(ids))


async def _waiting_on_locks(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND wait_event_type = 'Lock'"))


async def test_recovery_recounts_a_campaign_cancelled_while_a_send_was_in_flight(deps) -> None:
    pool = deps.pool
    _, service, campaign = await _running(deps, 3)
    first = await pool.fetchval("SELECT id FROM subtasks WHERE campaign_id = $1 AND seq = 1", campaign)
    assert await _bind(pool, service, [first]) == set()
    # Cancelled while that send is in flight; then the engine dies before settling it.
    assert await campaign_control.cancel(pool, EVENTS, campaign, None, NOW) == 2
    report = await recover(pool, EVENTS, NOW)
    assert report.failed_unknown == 1
    row = await pool.fetchrow("SELECT status, failed_count, cancelled_count FROM campaigns WHERE id = $1", campaign)
    assert (row["status"], row["failed_count"], row["cancelled_count"]) == ("cancelled", 1, 2)
    await check_invariants(pool, None, deps.settings)


async def test_bind_refuses_a_pending_subtask_of_a_cancelled_campaign(deps) -> None:
    pool = deps.pool
    _, service, campaign = await _running(deps, 2)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM subtasks WHERE campaign_id = $1 ORDER BY seq", campaign)]
    # What a throttled result settling across a cancel left behind (see the settle test below).
    await pool.execute("UPDATE campaigns SET status = 'cancelled', finished_at = $2 WHERE id = $1", campaign, NOW)
    assert await _bind(pool, service, ids) == set(ids)
    assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'") == 0


async def test_a_throttled_result_settling_across_a_cancel_cancels_the_subtask(deps) -> None:
    pool = deps.pool
    _, service, campaign = await _running(deps, 2)
    first = await pool.fetchval("SELECT id FROM subtasks WHERE campaign_id = $1 AND seq = 1", campaign)
    assert await _bind(pool, service, [first]) == set()
    batch = SettleBatch([first], ["throttled"], [None], ["42901: slow down"], [NOW], [service], [NOW], [True],
                        [campaign])
    queries = await _queries(pool)
    # The cancel is half-way: campaign locked and marked, not yet committed.
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        row = await conn.fetchrow(Q["engine.lock_campaign"], campaign)
        n = await conn.fetchval(Q["engine.cancel_subtasks"], campaign, NOW)
        await conn.execute(Q["engine.cancel_campaign"], campaign, NOW, n,
                           campaign_control.cancel_refund(n, row["total"], row["reserved"], row["released"]))
        settle = asyncio.create_task(queries.settle(batch, [], [], [], NOW))

        async def settled_or_waiting() -> bool:
            return settle.done() or await _waiting_on_locks(pool) > 0
        await eventually(settled_or_waiting, what="the settle to finish or wait for the cancel")
        await tx.commit()
    await settle
    assert await pool.fetchval("SELECT status FROM subtasks WHERE id = $1", first) == "cancelled"
    assert await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'pending'") == 0


async def test_a_row_changed_between_the_settles_probe_and_its_update_comes_back_missed(deps) -> None:
    """The settle updates the row version its probe saw (by ctid). A webhook's outcome written to
    the row meanwhile makes that version stale: the result is not written then, and says so, so
    the engine writes it with its next flush; nothing is counted twice."""
    pool = deps.pool
    _, service, campaign = await _running(deps, 2)
    first = await pool.fetchval("SELECT id FROM subtasks WHERE campaign_id = $1 AND seq = 1", campaign)
    assert await _bind(pool, service, [first]) == set()
    batch = SettleBatch([first], ["sent"], ["m-1"], [None], [NOW], [service], [NOW], [False], [campaign])
    queries = await _queries(pool)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await conn.execute(Q["feedback.set_outcome"], first, "delivered")
        settle = asyncio.create_task(queries.settle(batch, [], [], [], NOW))

        async def waiting() -> bool:
            return await _waiting_on_locks(pool) > 0
        await eventually(waiting, what="the settle to wait for the webhook's row lock")
        await tx.commit()
    rows, _ = await settle
    assert [(r["status"], r["id"]) for r in rows] == [("missed", first)]
    assert await pool.fetchval("SELECT status FROM subtasks WHERE id = $1", first) == "sending"
    rows, _ = await queries.settle(batch, [], [], [], NOW)  # the next flush
    assert [(r["status"], r["n"]) for r in rows] == [("sent", 1)]
    row = await pool.fetchrow("SELECT status, outcome FROM subtasks WHERE id = $1", first)
    assert tuple(row) == ("sent", "delivered")
    assert await pool.fetchval("SELECT sent_count FROM campaigns WHERE id = $1", campaign) == 1


async def _short_campaign(deps) -> tuple[uuid.UUID, uuid.UUID]:
    """(user, campaign): 10 recipients, 4 units reserved, paused NO_USER_QUOTA; then 20 units added."""
    user, _, campaign = await _running(deps, 10, quota=4)
    row = await deps.pool.fetchrow("SELECT status, pause_reason, total, reserved FROM campaigns WHERE id = $1",
                                   campaign)
    assert tuple(row) == ("paused", "NO_USER_QUOTA", 10, 4)
    async with deps.pool.acquire() as conn, conn.transaction():
        await quota_ledger.apply(conn, user, 20, "adjust", reason="top-up")
    return user, campaign


async def _with_user_locked(pool: asyncpg.Pool, user: uuid.UUID, sides: list, waiters: int) -> list:
    """Run `sides` while the user's row is locked, release it once `waiters` wait on locks."""
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user)
        tasks = []
        for side in sides:
            tasks.append(asyncio.create_task(side()))
            n = len(tasks)
            await eventually(lambda: _at_least(pool, n), what=f"{n} sides waiting")
        assert waiters == len(tasks)
        await tx.commit()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _at_least(pool: asyncpg.Pool, n: int) -> bool:
    return await _waiting_on_locks(pool) >= n


async def test_two_concurrent_shortfall_charges_charge_once(deps) -> None:
    pool = deps.pool
    user, campaign = await _short_campaign(deps)

    async def charge() -> list[uuid.UUID]:
        return await campaign_control.charge_shortfalls(pool, EVENTS, user, NOW)
    results = await _with_user_locked(pool, user, [charge, charge], 2)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert await pool.fetchval("SELECT reserved FROM campaigns WHERE id = $1", campaign) == 10
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 14
    await check_invariants(pool, None, deps.settings, all_settled=False)


async def test_a_shortfall_charge_and_a_cancel_neither_deadlock_nor_charge_a_cancelled_campaign(deps) -> None:
    pool = deps.pool
    user, campaign = await _short_campaign(deps)

    async def charge() -> list[uuid.UUID]:
        return await campaign_control.charge_shortfalls(pool, EVENTS, user, NOW)

    async def cancel() -> int:
        return await campaign_control.cancel(pool, EVENTS, campaign, None, NOW)
    results = await _with_user_locked(pool, user, [charge, cancel], 2)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign) == "cancelled"
    # Nothing was sent: whatever was charged, every unit is back.
    assert await pool.fetchval("SELECT quota_remaining FROM users WHERE id = $1", user) == 24
    await check_invariants(pool, None, deps.settings)


async def test_a_reset_time_change_counts_the_day_as_start_up_would(deps) -> None:
    """NOW is 12:00 in Beijing; requests at 11:00 and 11:50; the reset time moves from 02:00 to
    11:30. Live and at start-up, the day then holds one request, not two and then one."""
    pool = deps.pool
    _, service, campaign = await _running(deps, 2)
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM subtasks WHERE campaign_id = $1 ORDER BY seq", campaign)]
    await _bind(pool, service, ids[:1], NOW - timedelta(hours=1))
    await _bind(pool, service, ids[1:], NOW - timedelta(minutes=10))
    store = ServiceStore(pool, deps.box, FakeClock(NOW), deps.settings.tz)
    moved, changed = await store.update(service, ServicePatch(reset_time="11:30"), None)
    assert changed and moved.quota_day_start == NOW - timedelta(minutes=30)
    live = await pool.fetchrow("SELECT used_today, remaining_today FROM services WHERE id = $1", service)
    assert live["used_today"] == 1
    report = await recover(pool, EVENTS, NOW)
    assert report.services_fixed == 0
    assert tuple(await pool.fetchrow("SELECT used_today, remaining_today FROM services WHERE id = $1",
                                     service)) == tuple(live)
