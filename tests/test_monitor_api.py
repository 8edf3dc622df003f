"""GET /monitor/overview: states, counters, rates and the admin/user scopes, from rows set in the database."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from engine.live.overview import service_state
from tests.conftest import Api
from tests.live_support import add_attempts, add_campaign, add_service, map_services

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)  # the `clock` fixture's start


@pytest.fixture
async def world(admin: Api, deps, clock) -> dict:
    """Two users, six services in every state, campaigns in every status, recent sends."""
    assert clock.now() == NOW
    pool = deps.pool
    alice, alice_api = await admin.new_user("alice", quota=500)
    bob, bob_api = await admin.new_user("bob", quota=7)
    s = {
        "ready": await add_service(pool, "a-ready", NOW, last_request_at=NOW - timedelta(seconds=100),
                                   used_today=12, remaining_today=988),
        "interval": await add_service(pool, "b-interval", NOW, last_request_at=NOW - timedelta(seconds=3),
                                      reset_time=time(2, 30)),
        "frozen": await add_service(pool, "c-frozen", NOW, abnormal_frozen=True, consecutive_failures=10,
                                    abnormal_reason="10 consecutive failures"),
        "disabled": await add_service(pool, "d-disabled", NOW, enabled=False),
        "exhausted": await add_service(pool, "e-exhausted", NOW, used_today=1000, remaining_today=0),
        "throttled": await add_service(pool, "f-throttled", NOW, last_request_at=NOW - timedelta(seconds=2),
                                       throttled_until=NOW + timedelta(seconds=30)),
    }
    await map_services(pool, alice["id"], s["ready"], s["interval"])
    await map_services(pool, bob["id"], s["frozen"])
    c = {
        "a_run": await add_campaign(pool, alice["id"], "alice running", created_at=NOW - timedelta(hours=1),
                                    total=100, sent_count=40, failed_count=10, started_at=NOW - timedelta(minutes=10)),
        "a_paused": await add_campaign(pool, alice["id"], "alice paused", created_at=NOW - timedelta(minutes=50),
                                       status="paused", pause_reason="NO_USER_QUOTA", total=20, sent_count=5,
                                       started_at=NOW - timedelta(minutes=40)),
        "a_sched": await add_campaign(pool, alice["id"], "alice scheduled", created_at=NOW - timedelta(minutes=5),
                                      status="pending", planned=500, scheduled_at=NOW + timedelta(minutes=1)),
        "a_old": await add_campaign(pool, alice["id"], "alice old", created_at=NOW - timedelta(hours=5),
                                    status="completed", total=3, sent_count=3, finished_at=NOW - timedelta(hours=2)),
        "b_run": await add_campaign(pool, bob["id"], "bob running", created_at=NOW - timedelta(hours=2),
                                    total=10, sent_count=2, started_at=NOW - timedelta(seconds=30)),
        "b_done": await add_campaign(pool, bob["id"], "bob done", created_at=NOW - timedelta(hours=3),
                                     status="completed", total=4, sent_count=3, failed_count=1,
                                     finished_at=NOW - timedelta(minutes=30)),
    }
    # Alice: 6 sends in the last minute, 4 two minutes ago, 3 eleven minutes ago (out of the window).
    await add_attempts(pool, c["a_run"], s["ready"], NOW - timedelta(seconds=30), 6)
    await add_attempts(pool, c["a_run"], s["ready"], NOW - timedelta(seconds=150), 4, first_seq=100)
    await add_attempts(pool, c["a_run"], s["interval"], NOW - timedelta(minutes=11), 3, first_seq=200)
    # Bob: 2 sends in the last minute, one still in flight.
    await add_attempts(pool, c["b_run"], s["frozen"], NOW - timedelta(seconds=20), 1)
    await add_attempts(pool, c["b_run"], s["frozen"], NOW - timedelta(seconds=10), 1, status="sending", first_seq=1)
    return {"alice": alice, "alice_api": alice_api, "bob": bob, "bob_api": bob_api, "s": s, "c": c}


def by_name(items: list[dict]) -> dict[str, dict]:
    return {i["name"]: i for i in items}


async def test_admin_overview_shows_every_service_state_and_throughput(admin: Api, world: dict) -> None:
    data = await admin.ok("GET", "/monitor/overview")
    assert data["now"] == "2026-11-23T04:00:00Z" and data["business_tz"] == "Asia/Shanghai"
    services = by_name(data["services"])
    assert [sv["name"] for sv in data["services"]] == ["a-ready", "b-interval", "c-frozen", "d-disabled",
                                                        "e-exhausted", "f-throttled"]
    assert {n: sv["state"] for n, sv in services.items()} == {
        "a-ready": "ready", "b-interval": "interval", "c-frozen": "frozen", "d-disabled": "disabled",
        "e-exhausted": "exhausted", "f-throttled": "throttled"}
    ready = services["a-ready"]
    assert ready == {
        "id": str(world["s"]["ready"]), "name": "a-ready", "provider": "engagelab", "enabled": True,
        "state": "ready", "interval_remaining": 0.0, "send_interval": 10, "used_today": 12,
        "remaining_today": 988, "daily_quota": 1000, "reset_time": "00:00",
        # Midnight in Beijing is 16:00 UTC.
        "next_reset_at": "2026-11-23T16:00:00Z", "consecutive_failures": 0, "abnormal_reason": None,
        "sends_per_minute": [0, 0, 0, 0, 0, 0, 0, 4, 0, 6]}
    assert services["b-interval"]["interval_remaining"] == 7.0
    # 02:30 Beijing has passed today (it is 12:00 there): the next one is tomorrow's, 18:30 UTC today.
    assert (services["b-interval"]["reset_time"], services["b-interval"]["next_reset_at"]) == (
        "02:30", "2026-11-23T18:30:00Z")
    assert services["b-interval"]["sends_per_minute"] == [0] * 10
    assert services["c-frozen"]["abnormal_reason"] == "10 consecutive failures"
    assert services["c-frozen"]["consecutive_failures"] == 10
    assert services["c-frozen"]["sends_per_minute"][-1] == 2
    assert services["f-throttled"]["interval_remaining"] == 30.0
    assert data["totals"] == {"services": 6, "ready": 1, "frozen": 1, "exhausted": 1, "running_campaigns": 2,
                              "sent_last_minute": 8, "pending": 50 + 15 + 500 + 8}


async def test_admin_overview_campaigns_rates_and_users(admin: Api, world: dict) -> None:
    data = await admin.ok("GET", "/monitor/overview")
    names = [c["name"] for c in data["campaigns"]]
    # Running first (oldest first), then paused, pending, and finished within the hour; older ones are gone.
    assert names == ["bob running", "alice running", "alice paused", "alice scheduled", "bob done"]
    campaigns = by_name(data["campaigns"])
    run = campaigns["alice running"]
    assert run == {
        "id": str(world["c"]["a_run"]), "name": "alice running", "owner": "alice", "owner_id": world["alice"]["id"],
        "status": "running", "pause_reason": None, "pause_message": None, "total": 100, "sent": 40, "failed": 10,
        "pending": 50, "cancelled": 0, "progress": 0.5,
        # 10 settled in the last five minutes → 2 a minute → 50 pending take 25 minutes.
        "rate_per_minute": 2.0, "eta_seconds": 1500.0, "scheduled_at": None,
        "created_at": "2026-11-23T03:00:00Z"}
    # Bob's campaign started 30 s ago: its rate is measured over one minute, not thirty seconds.
    assert (campaigns["bob running"]["rate_per_minute"], campaigns["bob running"]["eta_seconds"]) == (1.0, 480.0)
    paused = campaigns["alice paused"]
    assert (paused["pause_reason"], paused["pause_message"], paused["eta_seconds"]) == (
        "NO_USER_QUOTA", "当前没有发信额度", None)
    sched = campaigns["alice scheduled"]
    assert (sched["status"], sched["total"], sched["pending"], sched["progress"], sched["scheduled_at"]) == (
        "pending", 500, 500, 0.0, "2026-11-23T04:01:00Z")
    assert (campaigns["bob done"]["progress"], campaigns["bob done"]["pending"]) == (1.0, 0)
    users = by_name([{**u, "name": u["username"]} for u in data["users"]])
    assert set(users) == {"alice", "bob"}  # the admin account is not a sending user
    assert users["alice"] == {"id": world["alice"]["id"], "username": "alice", "name": "alice",
                              "quota_remaining": 500, "running_campaigns": 1, "share_recent": round(10 / 12, 4)}
    assert (users["bob"]["quota_remaining"], users["bob"]["share_recent"]) == (7, round(2 / 12, 4))


async def test_user_overview_is_scoped_to_the_user(world: dict) -> None:
    alice: Api = world["alice_api"]
    data = await alice.ok("GET", "/monitor/overview")
    assert [s["name"] for s in data["services"]] == ["a-ready", "b-interval"]
    assert [c["name"] for c in data["campaigns"]] == ["alice running", "alice paused", "alice scheduled"]
    assert {c["owner"] for c in data["campaigns"]} == {"alice"}
    assert [u["username"] for u in data["users"]] == ["alice"]
    assert data["users"][0]["share_recent"] == round(10 / 12, 4)
    assert data["totals"] == {"services": 2, "ready": 1, "frozen": 0, "exhausted": 0, "running_campaigns": 1,
                              "sent_last_minute": 6, "pending": 50 + 15 + 500}

    bob = await world["bob_api"].ok("GET", "/monitor/overview")
    assert [s["name"] for s in bob["services"]] == ["c-frozen"]
    assert [c["name"] for c in bob["campaigns"]] == ["bob running", "bob done"]
    assert [u["username"] for u in bob["users"]] == ["bob"]


async def test_user_without_mapping_or_campaigns_gets_an_empty_overview(admin: Api, world: dict) -> None:
    _, carol = await admin.new_user("carol")
    data = await carol.ok("GET", "/monitor/overview")
    assert (data["services"], data["campaigns"]) == ([], [])
    assert [(u["username"], u["share_recent"], u["running_campaigns"]) for u in data["users"]] == [("carol", 0.0, 0)]
    assert data["totals"]["sent_last_minute"] == 0


async def test_overview_follows_the_clock(admin: Api, world: dict, clock) -> None:
    clock.advance(8)
    services = by_name((await admin.ok("GET", "/monitor/overview"))["services"])
    assert (services["b-interval"]["state"], services["b-interval"]["interval_remaining"]) == ("ready", 0.0)
    assert services["f-throttled"]["state"] == "throttled"
    clock.advance(60 * 10)
    data = await admin.ok("GET", "/monitor/overview")
    assert all(sv["sends_per_minute"] == [0] * 10 for sv in data["services"])
    assert data["totals"]["sent_last_minute"] == 0
    assert by_name(data["campaigns"])["alice running"]["eta_seconds"] is None


async def test_overview_needs_a_token(anon: Api) -> None:
    await anon.err("GET", "/monitor/overview", 401, "UNAUTHORIZED")


def test_service_state_precedence() -> None:
    base = {"enabled": True, "abnormal_frozen": False, "remaining_today": 5, "throttled_until": None,
            "last_request_at": NOW - timedelta(seconds=4), "send_interval": 10}
    assert service_state(base, NOW) == ("interval", 6.0)
    assert service_state({**base, "remaining_today": 0}, NOW) == ("exhausted", 6.0)
    assert service_state({**base, "remaining_today": 0, "abnormal_frozen": True}, NOW)[0] == "frozen"
    assert service_state({**base, "enabled": False, "abnormal_frozen": True}, NOW)[0] == "disabled"
    # An expired throttle is history, not a state.
    assert service_state({**base, "throttled_until": NOW - timedelta(seconds=1)}, NOW) == ("interval", 6.0)
    assert service_state({**base, "last_request_at": None}, NOW) == ("ready", 0.0)


async def test_throughput_query_reads_the_attempt_index(deps) -> None:
    # Tiny test tables make any plan cheap; with sequential scans priced out, the plan shows
    # that the query can walk subtasks_service_attempt rather than the whole subtasks table.
    from engine.infra.queries import Q

    async with deps.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + Q["monitor.recent"], NOW))
    assert "subtasks_service_attempt" in plan, plan


async def test_overview_and_progress_route_agree_on_rate_and_pause_message(admin: Api, world: dict) -> None:
    """One read model: the dashboard's overview and GET /campaigns/{id}/progress show one rate."""
    campaigns = by_name((await admin.ok("GET", "/monitor/overview"))["campaigns"])
    for name in ("alice running", "bob running", "alice paused"):
        progress = await admin.ok("GET", f"/campaigns/{campaigns[name]['id']}/progress")
        assert progress["rate_per_minute"] == campaigns[name]["rate_per_minute"], name
        assert progress["pause_message"] == campaigns[name]["pause_message"], name
    assert campaigns["alice running"]["rate_per_minute"] == 2.0
