"""Send windows: set through the API, and enforced by the engine on a fake clock — no request
outside the window (judged from the requests' start times and the fake ESP's count), a visible
OUTSIDE_SEND_WINDOW pause that clears by itself."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta, timezone

from api.deps import Deps
from engine.domain.send_window import SendWindow
from engine.infra.clock import FakeClock
from tests.conftest import Api
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    new_engine,
    quiet,
    request_count,
    requests_answered,
    running,
    seed_campaign,
    wait_status,
)

UTC = timezone.utc
MON_0859_30 = datetime(2026, 11, 23, 0, 59, 30, tzinfo=UTC)  # 08:59:30 Beijing, a Monday
MON_0900 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


async def test_send_window_api(admin: Api, deps: Deps, clock: FakeClock) -> None:
    user, api = await admin.new_user(quota=5)
    uid = uuid.UUID(user["id"])
    await make_contacts(deps.pool, uid, 2)
    campaign = await make_campaign(deps.pool, uid, planned=2, scheduled_at=datetime(2027, 1, 1, tzinfo=UTC))
    path = f"/campaigns/{campaign}/send-window"
    assert await api.ok("GET", path) == {"campaign_id": str(campaign), "send_window": None, "open_now": True,
                                         "next_change": None}
    # Now is Monday 12:00 Beijing: inside 09:00-18:00 on workdays.
    got = await api.ok("PUT", path, json={"start": "09:00", "end": "18:00", "days": [5, 1, 2, 3, 4, 1]})
    assert got["send_window"] == {"start": "09:00", "end": "18:00", "days": [1, 2, 3, 4, 5], "tz": "Asia/Shanghai"}
    assert got["open_now"] is True and got["next_change"] == "2026-11-23T10:00:00Z"
    weekend = await api.ok("PUT", path, json={"start": "10:00", "end": "16:00", "days": [6, 7], "tz": "Europe/Paris"})
    assert weekend["open_now"] is False and weekend["next_change"] == "2026-11-28T09:00:00Z"
    # 400: the document refuses the body; 422: schema-valid, but no JSON Schema states the rule
    # (start before end, a zone that exists).
    for body, status, field in (({"start": "18:00", "end": "09:00"}, 422, "end"),
                                ({"start": "09:00", "end": "09:00"}, 422, "end"),
                                ({"start": "09:00", "end": "18:00", "days": [8]}, 400, "days[0]"),
                                ({"start": "09:00", "end": "18:00", "days": []}, 400, "days"),
                                ({"start": "9:00", "end": "18:00"}, 400, "start"),
                                ({"start": "09:00", "end": "18:00", "tz": "Mars/Olympus"}, 422, "tz"),
                                ({"start": "09:00", "end": "18:00", "hours": 3}, 400, "hours")):
        code = "VALIDATION_ERROR" if status == 400 else "UNPROCESSABLE"
        await api.err("PUT", path, status, code, field, json=body)
    assert (await api.ok("GET", path))["send_window"]["tz"] == "Europe/Paris"  # nothing written
    _, stranger = await admin.new_user()
    await stranger.err("PUT", path, 404, "NOT_FOUND", "id", json={"start": "09:00", "end": "18:00"})
    assert (await api.ok("DELETE", path))["send_window"] is None
    await deps.pool.execute("UPDATE campaigns SET status = 'cancelled' WHERE id = $1", campaign)
    await api.err("PUT", path, 409, "INVALID_STATE", "status", json={"start": "09:00", "end": "18:00"})


async def test_no_request_outside_the_window(deps: Deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = FakeClock(MON_0859_30)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=12,
                                                         send_interval=10)
        window = {"start": "09:00", "end": "09:01"}
        await pool.execute("UPDATE campaigns SET send_window = $2 WHERE id = $1", campaign, window)
        engine, _ = new_engine(settings, pool, clock, deps.box)

        async def requests(n: int) -> None:
            async def check() -> bool:
                return await requests_answered(pool, n)  # started, not just bound: the clock moves next
            await eventually(check, what=f"{n} requests")

        async with running(engine):
            await wait_status(pool, campaign, "paused", "OUTSIDE_SEND_WINDOW")
            clock.advance(20)  # 08:59:50: still closed
            await quiet(pool, engine)
            assert await request_count(pool) == 0
            done = 0
            for opens in (MON_0900, MON_0900 + timedelta(days=1)):
                clock.set(opens)
                # Open for 60 s at one request per 10 s: 6 requests, the 6th at 09:00:50.
                for n in range(done + 1, done + 7):
                    await requests(n)
                    clock.advance(10)
                done += 6
                # 09:01:00: the service is free again exactly when the window closes.
                await quiet(pool, engine)
                if done < 12:
                    await wait_status(pool, campaign, "paused", "OUTSIDE_SEND_WINDOW")
                    clock.advance(3600)
                    await quiet(pool, engine)
                assert await request_count(pool) == done
            await wait_status(pool, campaign, "completed")
        w = SendWindow(time(9, 0), time(9, 1), settings.tz)
        times = [r["attempted_at"] for r in await pool.fetch("SELECT attempted_at FROM subtasks")]
        assert len(times) == 12 and all(w.is_open(t) for t in times), sorted(times)
        assert len(esp.log.entries()) == 12
        kinds = [r["kind"] for r in await pool.fetch(
            "SELECT kind FROM campaign_events WHERE campaign_id = $1 AND kind IN ('paused', 'resumed') ORDER BY id",
            campaign)]
        assert kinds == ["paused", "resumed", "paused", "resumed"]
        await check_invariants(pool, esp, settings)
