"""Per-recipient-domain limits and the engine-wide per-minute cap, enforced by the dispatcher and
judged over whole runs from the fake ESP's request log (recipients) and the requests' start
times on the injected clock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import msgspec

from engine.infra.clock import FakeClock
from engine.infra.scaled_clock import ScaledClock
from tests.conftest import Api
from tests.domain_limits_support import (
    check_group,
    make_group,
    make_recipients,
    most_in_a_minute,
    requests_made,
)
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_service,
    make_user,
    map_user,
    new_engine,
    quiet,
    request_count,
    running,
    wait_status,
)

UTC = timezone.utc
NOON_BEIJING = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
NEXT_DAY_BEIJING = datetime(2026, 11, 23, 16, 0, 1, tzinfo=UTC)  # 00:00:01 on the 24th in Beijing


async def _sent_to(pool, user_id: uuid.UUID, like: str) -> int:  # type: ignore[no-untyped-def]
    return int(await pool.fetchval(
        "SELECT count(*) FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id "
        "WHERE c.user_id = $1 AND s.attempted_at IS NOT NULL AND s.email LIKE $2", user_id, like))


async def test_domain_limits_over_a_whole_run(deps) -> None:
    """Two services, two users. User A: ten 163.com recipients at the head of the campaign (163.com:
    2/min per service) then forty example.net ones. User B: only qq.com/foxmail.com recipients
    (4/min, 12/day across services). No group ever goes over a limit; A's campaign is not held up by
    its slow domain; B is served whenever its group has room and the services serve A meanwhile;
    a day whose limit is used up waits without the dispatcher spinning, and the next day goes on."""
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(NOON_BEIJING, factor=20)
    async with fake_esp() as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
                    for _ in range(2)]
        a, b = await make_user(pool, quota=100), await make_user(pool, quota=100)
        for u in (a, b):
            await map_user(pool, u, services)
        await make_recipients(pool, a, "163.com", 10, prefix="a")
        await make_recipients(pool, a, "example.net", 40, prefix="b")
        await make_recipients(pool, b, "qq.com", 20, prefix="q")
        await make_recipients(pool, b, "FoxMail.com", 6, prefix="f")
        await make_group(pool, "qq", ["qq.com", "foxmail.com"], per_minute=4, per_day=12)
        await make_group(pool, "netease", ["163.com"], per_minute=2, per_service=True)
        campaign_a = await make_campaign(pool, a, planned=50)
        campaign_b = await make_campaign(pool, b, planned=26)
        engine, sink = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign_a, "completed", timeout=60)
            first = await pool.fetchval("SELECT min(attempted_at) FROM subtasks")
            last_example = await pool.fetchval("SELECT max(attempted_at) FROM subtasks WHERE email LIKE '%@example.net'")
            # 40 example.net recipients behind 10 slow ones, on 2 services at 1/s: about 25 s, not
            # the 2.5 min the 163.com recipients take at their 4/min.
            assert last_example - first < timedelta(seconds=60), last_example - first

            async def day_used() -> bool:
                return await _sent_to(pool, b, "%") >= 12
            await eventually(day_used, timeout=60, what="B's 12 requests of the day")
            # The rest of B's recipients wait for tomorrow: nothing is sent, nothing spins.
            ticks = engine.dispatcher.ticks
            clock.advance(120)
            await quiet(pool, engine)
            assert await _sent_to(pool, b, "%") == 12
            assert engine.dispatcher.ticks - ticks < 20, engine.dispatcher.ticks - ticks
            # The live stream says why a running campaign sends nothing: B waits for qq, and A, once
            # only its 163.com recipients were left, for netease.
            waits = {e.id: e for e in sink.events if e.kind == "domain_wait"}
            assert waits.keys() == {str(campaign_a), str(campaign_b)}, waits
            assert waits[str(campaign_b)].data["groups"] == ["qq"]
            assert "domain limits: qq" in waits[str(campaign_b)].message
            assert waits[str(campaign_a)].data["groups"] == ["netease"]
            clock.set(NEXT_DAY_BEIJING)

            async def next_day() -> bool:
                return await _sent_to(pool, b, "%") >= 24
            await eventually(next_day, timeout=60, what="B's next 12 requests on the next day")
            await quiet(pool, engine)
        requests = await requests_made(pool, esp)
        assert len(requests) == 50 + 24
        check_group(requests, {"qq.com", "foxmail.com"}, settings.tz, per_minute=4, per_day_limit=12,
                    per_service=False)
        check_group(requests, {"163.com"}, settings.tz, per_minute=2, per_day_limit=None, per_service=True)
        # B had the group's whole minute whenever it had room: 4 in its first minute.
        b_times = [r.at for r in requests if r.user_id == b]
        assert most_in_a_minute(b_times) == 4
        await check_invariants(pool, esp, settings, all_settled=False)
    assert (await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign_b)) == "running"


async def test_fairness_holds_while_one_users_recipients_are_all_blocked(deps) -> None:
    """One service stepped one interval at a time (fake clock). B's recipients are all in a group
    at its day limit: every request goes to A (the service does not idle, B is not charged a turn);
    once B's group has room again, B's next request comes at the next tick."""
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(NOON_BEIJING)
    async with fake_esp() as (url, esp):
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        await pool.execute("UPDATE services SET last_request_at = $1", clock.now() - timedelta(seconds=1))
        a, b = await make_user(pool, quota=50), await make_user(pool, quota=50)
        for u in (a, b):
            await map_user(pool, u, [service])
        await make_recipients(pool, a, "example.net", 10)
        await make_recipients(pool, b, "qq.com", 10)
        group = await make_group(pool, "qq", ["qq.com"], per_minute=2)
        await make_campaign(pool, a, planned=10)
        await make_campaign(pool, b, planned=10)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        order = []
        async with running(engine):
            for n in range(1, 11):
                clock.advance(1)

                async def one_more() -> bool:
                    return await request_count(pool) >= n  # noqa: B023
                await eventually(one_more, what=f"request {n}")
                await quiet(pool, engine)
                row = await pool.fetchrow("SELECT c.user_id FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id "
                                          "WHERE s.attempted_at = $1", clock.now())
                order.append("A" if row["user_id"] == a else "B")
        assert group is not None
        # Turns alternate while B has room (2 in the minute), then A alone: never an idle tick.
        assert order == ["A", "B", "A", "B", "A", "A", "A", "A", "A", "A"], order
        await check_invariants(pool, esp, settings, all_settled=False)


async def test_a_restart_keeps_the_day_count(deps) -> None:
    """A group at 3/day: the first engine sends 3, a new engine on the same database the same day
    sends none (the count is rebuilt from subtasks), and the next day opens 3 more."""
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(NOON_BEIJING)
    async with fake_esp() as (url, esp):
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        user = await make_user(pool, quota=10)
        await map_user(pool, user, [service])
        await make_recipients(pool, user, "qq.com", 8)
        await make_group(pool, "qq", ["qq.com"], per_day=3)
        campaign = await make_campaign(pool, user, planned=8)

        async def claimed(engine) -> None:  # type: ignore[no-untyped-def]
            async def check() -> bool:
                c = engine.state.campaigns.get(campaign)
                return c is not None and c.status == "running" and bool(c.buffer or c.parked_n)
            await eventually(check, what="claimed work (in the buffer, or parked for its domain)")

        async def sends(engine, upto: int) -> None:  # type: ignore[no-untyped-def]
            await claimed(engine)
            for n in range(await request_count(pool) + 1, upto + 1):
                clock.advance(1)

                async def one_more() -> bool:
                    return await request_count(pool) >= n  # noqa: B023
                await eventually(one_more, what=f"request {n}")
                await quiet(pool, engine)

        async def sends_nothing(engine) -> None:  # type: ignore[no-untyped-def]
            before = await request_count(pool)
            for _ in range(5):
                clock.advance(1)
                await asyncio.sleep(0.05)  # a chance to send (which would fail the test), not a timing check
                await quiet(pool, engine)
            assert await request_count(pool) == before

        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await sends(engine, 3)
            await sends_nothing(engine)
        clock.advance(5)  # past the restart slack
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await claimed(engine)
            await sends_nothing(engine)  # the new leader rebuilt the day's count
            clock.set(NEXT_DAY_BEIJING)
            await sends(engine, 6)
            await sends_nothing(engine)
        assert await request_count(pool) == 6
        requests = await requests_made(pool, esp)
        check_group(requests, {"qq.com"}, settings.tz, per_minute=None, per_day_limit=3, per_service=False)


async def test_global_cap_across_a_restart(deps) -> None:
    """EDM_SEND_RATE_LIMIT = 5: three services at 1/s would make 180 a minute; no 60 s window ever
    holds more than 5, also across a leader restart in the middle of a minute, and a capped engine
    waits without spinning."""
    pool = deps.pool
    settings = msgspec.structs.replace(deps.settings, send_rate_limit=5)
    clock = ScaledClock(NOON_BEIJING, factor=20)
    async with fake_esp() as (url, esp):
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
                    for _ in range(3)]
        user = await make_user(pool, quota=20)
        await map_user(pool, user, services)
        await make_recipients(pool, user, "example.net", 20)
        await make_campaign(pool, user, planned=20)

        async def at_least(n: int) -> None:
            async def check() -> bool:
                return await request_count(pool) >= n
            await eventually(check, timeout=60, what=f"{n} requests")

        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await at_least(5)
            ticks = engine.dispatcher.ticks
            clock.advance(20)
            await quiet(pool, engine)
            assert engine.dispatcher.ticks - ticks < 20, engine.dispatcher.ticks - ticks
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await at_least(12)
        times = [r.at for r in await requests_made(pool, esp)]
        assert most_in_a_minute(times) <= 5, sorted(times)
        assert len(times) >= 12


async def test_domain_groups_api(admin: Api, deps) -> None:
    _, user = await admin.new_user()
    group = await admin.ok("POST", "/domain-groups", json={"name": "netease", "pattern": "163.com|126.COM|163.com",
                                                         "per_minute": 30, "per_day": 5000})
    assert (group["pattern"], group["domains"], group["per_minute"], group["per_day"], group["per_service"]) == \
        ("163.com|126.com", ["163.com", "126.com"], 30, 5000, False)
    assert (group["used_last_minute"], group["used_today"], group["at_limit"]) == (0, 0, False)
    # Any user reads (with usage); only admins write.
    listed = await user.ok("GET", "/domain-groups")
    assert [g["name"] for g in listed["items"]] == ["netease"] and listed["total"] == 1
    await user.err("POST", "/domain-groups", 403, "FORBIDDEN", json={"name": "x", "pattern": "x.com", "per_day": 1})
    await user.err("DELETE", f"/domain-groups/{group['id']}", 403, "FORBIDDEN")
    # 409: the name (any case), or a domain another group holds.
    await admin.err("POST", "/domain-groups", 409, "CONFLICT", "name",
                    json={"name": "NetEase", "pattern": "qq.com", "per_day": 1})
    err = await admin.err("POST", "/domain-groups", 409, "CONFLICT", "pattern",
                          json={"name": "mixed", "pattern": "qq.com|126.com", "per_day": 1})
    assert err["details"]["domains"] == ["126.com"]
    for body, field in (({"name": "x", "pattern": "qq.com"}, "per_minute"),
                        ({"name": "x", "pattern": "qq", "per_day": 1}, "pattern"),
                        ({"name": "x", "pattern": "qq.com||a.com", "per_day": 1}, "pattern"),
                        ({"name": "x", "pattern": "qq.com", "per_day": 0}, "per_day"),
                        ({"name": "x", "pattern": "qq.com", "per_day": 1, "limit": 3}, "limit")):
        await admin.err("POST", "/domain-groups", 400, "VALIDATION_ERROR", field, json=body)
    assert (await admin.ok("GET", "/domain-groups"))["total"] == 1  # nothing written
    path = f"/domain-groups/{group['id']}"
    await admin.err("PATCH", path, 422, "UNPROCESSABLE", "per_minute", json={"per_minute": None, "per_day": None})
    patched = await admin.ok("PATCH", path, json={"pattern": "126.com", "per_service": True, "per_minute": None})
    assert (patched["domains"], patched["per_minute"], patched["per_service"]) == (["126.com"], None, True)
    qq = await admin.ok("POST", "/domain-groups", json={"name": "qq", "pattern": "163.com|qq.com", "per_minute": 2})
    await admin.err("PATCH", path, 409, "CONFLICT", "pattern", json={"pattern": "qq.com"})
    assert (await admin.ok("DELETE", path))["deleted"] is True
    await admin.err("GET", path, 404, "NOT_FOUND", "id")
    assert (await admin.ok("GET", f"/domain-groups/{qq['id']}"))["domains"] == ["163.com", "qq.com"]
    # The engine-wide cap: the setting until an admin sets it; null goes back to the setting.
    assert await user.ok("GET", "/engine/send-rate-limit") == {"per_minute": 0, "source": "setting",
                                                             "used_last_minute": 0}
    await user.err("PUT", "/engine/send-rate-limit", 403, "FORBIDDEN", json={"per_minute": 10})
    await admin.err("PUT", "/engine/send-rate-limit", 400, "VALIDATION_ERROR", "per_minute", json={"per_minute": -1})
    assert (await admin.ok("PUT", "/engine/send-rate-limit", json={"per_minute": 600}))["source"] == "admin"
    assert (await admin.ok("PUT", "/engine/send-rate-limit", json={"per_minute": None}))["source"] == "setting"


async def test_changes_reach_the_running_leader(admin: Api, deps) -> None:
    """A group created, changed and deleted through the API, and the cap set, are in the leader's
    gate at once (the command path); a group deleted gives its parked subtasks back."""
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(NOON_BEIJING, factor=20)
    async with fake_esp() as (url, esp):
        service = await make_service(pool, deps.box, settings, clock.now(), base_url=url, send_interval=1)
        user = await make_user(pool, quota=20)
        await map_user(pool, user, [service])
        await make_recipients(pool, user, "qq.com", 6)
        campaign = await make_campaign(pool, user, planned=6)
        await make_group(pool, "qq", ["qq.com"], per_day=2)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            async def two() -> bool:
                return await request_count(pool) >= 2
            await eventually(two, timeout=30, what="2 requests")
            gate = engine.dispatcher.gate
            assert [g.name for g in gate.groups.groups] == ["qq"]
            extra = await admin.ok("POST", "/domain-groups", json={"name": "gmail", "pattern": "gmail.com",
                                                                  "per_minute": 5})
            assert sorted(g.name for g in gate.groups.groups) == ["gmail", "qq"]
            listed = await admin.ok("GET", "/domain-groups")
            qq = next(g for g in listed["items"] if g["name"] == "qq")
            assert (qq["used_today"], qq["at_limit"]) == (2, True)
            await admin.ok("PUT", "/engine/send-rate-limit", json={"per_minute": 100})
            assert gate.rate_limit == 100
            await admin.ok("DELETE", f"/domain-groups/{extra['id']}")
            await admin.ok("DELETE", f"/domain-groups/{qq['id']}")
            assert not gate.on
            await wait_status(pool, campaign, "completed", timeout=30)
        await check_invariants(pool, esp, settings)
