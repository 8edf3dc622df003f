"""The dashboard against the real API in-process (real PostgreSQL and Redis): login, the panels
from rows in the database, actions that change rows, error envelopes, user scope and live events."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.conftest import Api
from tests.live_support import add_campaign, add_service, flushed, map_services
from tests.tui_support import RecordingEngine, column_texts, notes, wait_for
from tui.app import Dashboard
from tui.client import ApiClient
from tui.screens.confirm import ConfirmScreen
from tui.screens.login import LoginScreen
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.status import StatusBar


def url(client) -> str:
    return str(client.make_url(""))


def table(app: Dashboard, name: str) -> KeyedTable:
    return app.query_one(f"#{name}-table", KeyedTable)


async def select(pilot, app: Dashboard, panel: str, key: object) -> None:
    await pilot.press({"services": "1", "campaigns": "2"}[panel])
    t = table(app, panel)
    t.move_cursor(row=t._keys.index(str(key)))
    await pilot.pause()


async def world(admin: Api, deps, clock) -> dict:
    now = clock.now()
    alice, alice_api = await admin.new_user("alice", quota=300)
    s_ready = await add_service(deps.pool, "ready-one", now, used_today=250, remaining_today=750)
    s_frozen = await add_service(deps.pool, "frozen-one", now, abnormal_frozen=True, consecutive_failures=10,
                                 abnormal_reason="10 consecutive failures")
    await map_services(deps.pool, alice["id"], s_ready)
    c_run = await add_campaign(deps.pool, alice["id"], "alice running", created_at=now - timedelta(hours=1),
                               total=100, sent_count=40, started_at=now - timedelta(minutes=10))
    c_pending = await add_campaign(deps.pool, alice["id"], "alice later", created_at=now - timedelta(minutes=5),
                                   status="pending", planned=10, scheduled_at=now + timedelta(hours=1))
    return {"alice": alice, "alice_api": alice_api, "ready": s_ready, "frozen": s_frozen, "run": c_run,
            "pending": c_pending}


async def test_login_then_every_panel_from_the_database(admin: Api, client, deps, clock) -> None:
    w = await world(admin, deps, clock)
    app = Dashboard(ApiClient(url(client)), clock=lambda: 0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, LoginScreen)
        await pilot.press(*"root", "enter", *"admin-password", "enter")
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
        services = table(app, "services")
        assert column_texts(services, "name") == ["frozen-one", "ready-one"]
        assert column_texts(services, "state") == ["FROZEN (abnormal)", "ready"]
        assert column_texts(services, "used")[1].strip().startswith("250/1000")
        await pilot.press("2")
        campaigns = table(app, "campaigns")
        assert column_texts(campaigns, "name") == ["alice running", "alice later"]
        assert column_texts(campaigns, "status") == ["running", "pending at 13:00"]  # 05:00Z in Asia/Shanghai
        await pilot.press("3")
        assert column_texts(table(app, "users"), "username") == ["alice"]
        assert "12:00:00 root" in app.query_one(StatusBar).render().plain


async def test_service_toggle_writes_through_the_api(admin: Api, client, deps, clock) -> None:
    w = await world(admin, deps, clock)
    token = admin.token
    app = Dashboard(ApiClient(url(client), token), clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
        await select(pilot, app, "services", w["ready"])
        await pilot.press("e")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: column_texts(table(app, "services"), "state")[1] == "disabled")
        assert await deps.pool.fetchval("SELECT enabled FROM services WHERE id = $1", w["ready"]) is False
        await pilot.press("e")
        await wait_for(pilot, lambda: column_texts(table(app, "services"), "state")[1] == "ready")
        assert await deps.pool.fetchval("SELECT enabled FROM services WHERE id = $1", w["ready"]) is True


async def test_cancel_a_pending_campaign(admin: Api, client, deps, clock) -> None:
    w = await world(admin, deps, clock)
    app = Dashboard(ApiClient(url(client), admin.token), clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
        await select(pilot, app, "campaigns", w["pending"])
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: "Cancelled alice later" in notes(app))
        assert await deps.pool.fetchval("SELECT status FROM campaigns WHERE id = $1", w["pending"]) == "cancelled"


async def test_engine_actions_and_error_envelopes(admin: Api, client, deps, clock) -> None:
    w = await world(admin, deps, clock)
    app = Dashboard(ApiClient(url(client), admin.token), clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
        await select(pilot, app, "campaigns", w["run"])
        await pilot.press("p")  # no engine in this process: the API says so, the dashboard shows it
        await wait_for(pilot, lambda: any(n.startswith("SERVICE_UNAVAILABLE: ") for n in notes(app)))
        deps.engine = engine = RecordingEngine()
        await pilot.press("p")
        await wait_for(pilot, lambda: ("pause_campaign", str(w["run"])) in engine.calls)
        await select(pilot, app, "services", w["frozen"])
        await pilot.press("u")
        await wait_for(pilot, lambda: ("unfreeze", str(w["frozen"])) in engine.calls)
        await pilot.press("z", "y")
        await wait_for(pilot, lambda: ("reset_now", str(w["frozen"])) in engine.calls)
        await select(pilot, app, "campaigns", uuid.UUID(str(w["run"])))
        await pilot.press("r")
        await wait_for(pilot, lambda: ("resume_campaign", str(w["run"])) in engine.calls)


async def test_a_user_sees_own_scope_only(admin: Api, client, deps, clock) -> None:
    w = await world(admin, deps, clock)
    bob, _ = await admin.new_user("bob", quota=5)
    await add_campaign(deps.pool, bob["id"], "bob running", created_at=clock.now() - timedelta(hours=1), total=5)
    app = Dashboard(ApiClient(url(client), w["alice_api"].token), clock=lambda: 0.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
        assert column_texts(table(app, "services"), "name") == ["ready-one"]
        assert [c.name for c in app.snapshot.campaigns] == ["alice running", "alice later"]
        assert "alice quota 300" in app.query_one(StatusBar).render().plain
        assert app.check_action("service", ("unfreeze",)) is False
        await pilot.press("3")
        assert app.query_one("#tabs").active == "services"


async def test_live_events_from_the_stream(admin: Api, client, deps, clock) -> None:
    from engine.live.event_stream import RedisStreamPublisher

    app = Dashboard(ApiClient(url(client), admin.token), clock=lambda: 0.0)
    publisher = RedisStreamPublisher(deps.redis, clock=clock)
    publisher.start()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.snapshot is not None, timeout=10)
            await wait_for(pilot, lambda: "live" in app.events_state.render().plain, timeout=10)
            publisher.publish({"kind": "service.frozen", "service_id": str(uuid.uuid4()),
                               "message": "edge-7 frozen after 10 failures"})
            await flushed(publisher)
            await pilot.press("4")
            await wait_for(pilot, lambda: table(app, "events").row_count == 1, timeout=10)
            assert column_texts(table(app, "events"), "message") == ["edge-7 frozen after 10 failures"]
            assert column_texts(table(app, "events"), "at") == ["12:00:00"]
    finally:
        await publisher.stop()
