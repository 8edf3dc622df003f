"""GET /monitor/overview: states, counters, rates and the admin/user scopes, from rows set in the database."""

from __future__ import annotations

import uuid
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
    # Alice: 6 sends in the minute before this one, 4 three minutes back, 3 eleven minutes ago
    # (out of the window). The clock is at 04:00:00: the current minute has nothing yet.
    await add_attempts(pool, c["a_run"], s["ready"], NOW - timedelta(seconds=30), 6)
    await add_attempts(pool, c["a_run"], s["ready"], NOW - timedelta(seconds=150), 4, first_seq=100)
    await add_attempts(pool, c["a_run"], s["interval"], NOW - timedelta(minutes=11), 3, first_seq=200)
    # Bob: 1 send in the previous minute, one still in flight (not a send until it settles).
    await add_attempts(pool, c["b_run"], s["frozen"], NOW - timedelta(seconds=20), 1)
    await add_attempts(pool, c["b_run"], s["frozen"], NOW - timedelta(seconds=10), 1, status="sending", first_seq=1)
    return {"alice": alice, "alice_api": alice_api, "bob": bob, "bob_api": bob_api, "s": s, "c": c, "pool": pool}


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
        # Oldest first, the current minute last.
        "sends_per_minute": [0, 0, 0, 0, 0, 0, 4, 0, 6, 0]}
    assert services["b-interval"]["interval_remaining"] == 7.0
    # 02:30 Beijing has passed today (it is 12:00 there): the next one is tomorrow's, 18:30 UTC today.
    assert (services["b-interval"]["reset_time"], services["b-interval"]["next_reset_at"]) == (
        "02:30", "2026-11-23T18:30:00Z")
    assert services["b-interval"]["sends_per_minute"] == [0] * 10
    assert services["c-frozen"]["abnormal_reason"] == "10 consecutive failures"
    assert services["c-frozen"]["consecutive_failures"] == 10
    assert services["c-frozen"]["sends_per_minute"][-2:] == [1, 0]
    assert services["f-throttled"]["interval_remaining"] == 30.0
    assert data["totals"] == {"services": 6, "ready": 1, "frozen": 1, "exhausted": 1, "running_campaigns": 2,
                              "sent_last_minute": 7, "pending": 50 + 15 + 500 + 8}


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
        # 10 settled in the last five minute buckets, which cover 4 minutes at hh:mm:00 → 2.5 a
        # minute → 50 pending take 20 minutes.
        "rate_per_minute": 2.5, "eta_seconds": 1200.0, "scheduled_at": None,
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
                              "quota_remaining": 500, "running_campaigns": 1, "share_recent": round(10 / 11, 4)}
    assert (users["bob"]["quota_remaining"], users["bob"]["share_recent"]) == (7, round(1 / 11, 4))


async def test_user_overview_is_scoped_to_the_user(world: dict) -> None:
    alice: Api = world["alice_api"]
    data = await alice.ok("GET", "/monitor/overview")
    assert [s["name"] for s in data["services"]] == ["a-ready", "b-interval"]
    assert [c["name"] for c in data["campaigns"]] == ["alice running", "alice paused", "alice scheduled"]
    assert {c["owner"] for c in data["campaigns"]} == {"alice"}
    assert [u["username"] for u in data["users"]] == ["alice"]
    assert data["users"][0]["share_recent"] == round(10 / 11, 4)
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


async def test_throughput_reads_the_minute_counters_not_subtasks(deps) -> None:
    # The overview's throughput comes from the per-minute counters the engine writes behind: its
    # query never touches subtasks, however many there are.
    from engine.infra.queries import Q

    plan = "\n".join(r[0] for r in await deps.pool.fetch("EXPLAIN " + Q["monitor.recent"], NOW))
    assert "send_minutes" in plan and "subtasks" not in plan, plan
    plan = "\n".join(r[0] for r in await deps.pool.fetch("EXPLAIN " + Q["campaign_actions.progress"],
                                                        uuid.uuid4(), NOW, NOW, uuid.uuid4()))
    # Progress: the in-flight count walks the partial index of sending rows, never every subtask.
    assert "Seq Scan on subtasks" not in plan and "subtasks_in_flight" in plan, plan


async def test_the_last_minute_counts_the_share_of_the_previous_bucket_still_within_60_s(
        admin: Api, world: dict, clock) -> None:
    clock.advance(45)  # 04:00:45: 45 s of this minute, 15 s of the previous one (alice's 6, bob's 1)
    await add_attempts(world["pool"], world["c"]["a_run"], world["s"]["ready"], NOW + timedelta(seconds=20), 4,
                       first_seq=300)
    data = await admin.ok("GET", "/monitor/overview")
    assert data["totals"]["sent_last_minute"] == 4 + round(6 * 0.25) + round(1 * 0.25)


async def test_overview_and_progress_route_agree_on_rate_and_pause_message(admin: Api, world: dict) -> None:
    """One read model: the dashboard's overview and GET /campaigns/{id}/progress show one rate."""
    campaigns = by_name((await admin.ok("GET", "/monitor/overview"))["campaigns"])
    for name in ("alice running", "bob running", "alice paused"):
        progress = await admin.ok("GET", f"/campaigns/{campaigns[name]['id']}/progress")
        assert progress["rate_per_minute"] == campaigns[name]["rate_per_minute"], name
        assert progress["pause_message"] == campaigns[name]["pause_message"], name
    assert campaigns["alice running"]["rate_per_minute"] == 2.5


async def test_overview_lists_are_cut_to_limit_and_say_how_many_there_are(admin: Api, world: dict) -> None:
    data = await admin.ok("GET", "/monitor/overview?limit=2")
    assert [s["name"] for s in data["services"]] == ["a-ready", "b-interval"]
    assert [c["name"] for c in data["campaigns"]] == ["bob running", "alice running"]
    assert (data["services_total"], data["campaigns_total"], data["users_total"]) == (6, 5, 2)
    # The totals are the whole scope's, not the page's.
    assert data["totals"]["services"] == 6 and data["totals"]["pending"] == 50 + 15 + 500 + 8


async def test_overview_pages_through_services_campaigns_and_users_with_filters(admin: Api, world: dict) -> None:
    page = await admin.ok("GET", "/monitor/services?limit=4&offset=4")
    assert ([s["name"] for s in page["items"]], page["total"], page["limit"], page["offset"]) == (
        ["e-exhausted", "f-throttled"], 6, 4, 4)
    assert page["items"][1]["state"] == "throttled"  # whole service views, as in the overview
    frozen = await admin.ok("GET", "/monitor/services?state=frozen")
    assert ([s["name"] for s in frozen["items"]], frozen["total"]) == (["c-frozen"], 1)
    assert [s["name"] for s in (await admin.ok("GET", "/monitor/services?q=READY"))["items"]] == ["a-ready"]
    running = await admin.ok("GET", "/monitor/campaigns?status=running")
    assert [c["name"] for c in running["items"]] == ["bob running", "alice running"]
    # `q` matches the campaign's name or its owner.
    assert (await admin.ok("GET", "/monitor/campaigns?q=alice&limit=2&offset=1"))["items"][0]["name"] == "alice paused"
    assert (await admin.ok("GET", "/monitor/campaigns?q=alice"))["total"] == 3  # not "alice old": finished long ago
    assert [c["name"] for c in (await admin.ok("GET", "/monitor/campaigns?q=done"))["items"]] == ["bob done"]
    users = await admin.ok("GET", "/monitor/users?q=BO")
    assert ([u["username"] for u in users["items"]], users["total"]) == (["bob"], 1)
    assert (await admin.ok("GET", "/monitor/users?offset=5"))["items"] == []


async def test_a_user_pages_only_their_own_scope(world: dict) -> None:
    alice: Api = world["alice_api"]
    assert [s["name"] for s in (await alice.ok("GET", "/monitor/services"))["items"]] == ["a-ready", "b-interval"]
    page = await alice.ok("GET", "/monitor/campaigns?q=bob")
    assert (page["items"], page["total"]) == ([], 0)
    assert [u["username"] for u in (await alice.ok("GET", "/monitor/users"))["items"]] == ["alice"]


@pytest.mark.parametrize("path,field", [
    ("/monitor/overview?limit=0", "limit"),
    ("/monitor/overview?limit=1001", "limit"),
    ("/monitor/overview?offset=3", "offset"),
    ("/monitor/services?state=sleeping", "state"),
    ("/monitor/services?offset=-1", "offset"),
    ("/monitor/campaigns?status=lost", "status"),
    ("/monitor/campaigns?q=", "q"),
    ("/monitor/users?limit=abc", "limit"),
])
async def test_bad_paging_or_filters_are_400_with_the_field(admin: Api, path: str, field: str) -> None:
    await admin.err("GET", path, 400, "VALIDATION_ERROR", field)


async def test_the_openapi_document_states_the_paging_parameters(admin: Api) -> None:
    doc = await (await admin.client.get("/api/v1/openapi.json")).json()
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/monitor/services"]["get"]["parameters"]}
    assert params["limit"]["maximum"] == 1000 and params["offset"]["minimum"] == 0
    assert set(params["state"]["anyOf"][0]["enum"]) == {"ready", "interval", "frozen", "disabled", "exhausted",
                                                        "throttled"}
