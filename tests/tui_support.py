"""Test support for the dashboard: deterministic contract-shaped data, a fixture API in a thread,
and helpers to drive the app with the Pilot."""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from aiohttp import web

from tests.tui_feedback_support import add_feedback_routes

ADMIN_TOKEN, USER_TOKEN = "tok-admin", "tok-alice"
ADMIN = {"id": "00000000-0000-0000-0000-0000000000a0", "username": "root", "email": "root@example.com",
         "role": "admin", "enabled": True, "quota_remaining": 0}
CAROL = {"id": "00000000-0000-0000-0000-0000000000c0", "username": "carol"}
ALICE = {"id": "00000000-0000-0000-0000-0000000000a1", "username": "alice", "email": "alice@example.com",
         "role": "user", "enabled": True, "quota_remaining": 4200}


def _svc(n: int, name: str, state: str, **kw: Any) -> dict[str, Any]:
    base = {"id": f"00000000-0000-0000-0000-00000000005{n}", "name": name, "provider": "engagelab",
            "enabled": True, "state": state, "interval_remaining": 0.0, "send_interval": 5,
            "used_today": 0, "remaining_today": 2000, "daily_quota": 2000, "reset_time": "08:00",
            "next_reset_at": "2026-11-24T00:00:00Z", "consecutive_failures": 0, "abnormal_reason": None,
            "sends_per_minute": [0] * 10}
    return base | kw


def _camp(n: int, name: str, owner: dict[str, Any], status: str, **kw: Any) -> dict[str, Any]:
    base = {"id": f"00000000-0000-0000-0000-00000000c0{n}", "name": name, "owner": owner["username"],
            "owner_id": owner["id"], "status": status, "pause_reason": None, "pause_message": None,
            "total": 0, "sent": 0, "failed": 0, "pending": 0, "cancelled": 0, "progress": 0.0,
            "rate_per_minute": 0.0, "eta_seconds": None, "scheduled_at": None,
            "created_at": "2026-11-23T04:00:00Z"}
    return base | kw


def sample_overview() -> dict[str, Any]:
    """Every state the panels draw, at a fixed instant."""
    bob = {"id": "00000000-0000-0000-0000-0000000000b0", "username": "bob"}
    services = [
        _svc(1, "fast-lane", "ready", used_today=812, remaining_today=19188, daily_quota=20000, send_interval=2,
             sends_per_minute=[10, 12, 15, 18, 20, 22, 25, 28, 30, 29]),
        _svc(2, "slow-lane", "interval", interval_remaining=3.2, send_interval=10, used_today=120,
             remaining_today=380, daily_quota=500, sends_per_minute=[6, 6, 6, 5, 6, 6, 6, 6, 6, 6]),
        _svc(3, "flaky", "frozen", consecutive_failures=5, abnormal_reason="5 failures in a row: HTTP 500",
             used_today=40, remaining_today=960, daily_quota=1000, sends_per_minute=[3, 4, 2, 0, 0, 0, 0, 0, 0, 0]),
        _svc(4, "tiny-quota", "exhausted", used_today=100, remaining_today=0, daily_quota=100,
             reset_time="08:00", sends_per_minute=[0, 0, 10, 20, 30, 40, 0, 0, 0, 0]),
        _svc(5, "smtp-relay", "disabled", provider="smtp", enabled=False, used_today=0, remaining_today=5000,
             daily_quota=5000),
        _svc(6, "big-pipe", "throttled", interval_remaining=12.0, used_today=9500, remaining_today=500,
             daily_quota=10000, sends_per_minute=[50, 60, 70, 80, 90, 100, 110, 120, 60, 0]),
    ]
    campaigns = [
        _camp(1, "Black Friday 10k", ALICE, "running", total=10000,
              sent=4500, failed=12, pending=5488, progress=0.4512, rate_per_minute=380.0, eta_seconds=866.0),
        _camp(2, "Newsletter", bob, "paused", pause_reason="SERVICE_QUOTA_EXHAUSTED",
              pause_message="every service mapped to bob is out of quota until 08:00", total=800, sent=300,
              pending=500, progress=0.375),
        _camp(3, "Scheduled promo", ALICE, "pending", total=200, pending=200, scheduled_at="2026-11-23T05:01:00Z"),
        _camp(4, "Welcome series", bob, "completed", total=50, sent=49, failed=1, progress=1.0),
        _camp(5, "Broken template", ALICE, "failed", total=10, failed=10, progress=1.0),
        # carol's only service (slow-lane) has 380 left today: the rate alone would promise 3 minutes.
        _camp(6, "Spring sale", CAROL, "running", total=1000, sent=100, pending=900, progress=0.1,
              rate_per_minute=300.0, eta_seconds=180.0),
        _camp(7, "Old promo", bob, "cancelled", total=100, sent=40, cancelled=60, progress=1.0),
    ]
    users = [
        {"id": ALICE["id"], "username": "alice", "quota_remaining": 4200, "running_campaigns": 1, "share_recent": 0.72},
        {"id": bob["id"], "username": "bob", "quota_remaining": 0, "running_campaigns": 0, "share_recent": 0.28},
        {"id": CAROL["id"], "username": "carol", "quota_remaining": 150000,
         "running_campaigns": 1, "share_recent": 0.0},
    ]
    totals = {"services": 6, "ready": 1, "frozen": 1, "exhausted": 1, "running_campaigns": 2,
              "sent_last_minute": 436, "pending": 6188}
    return {"now": "2026-11-23T05:00:00Z", "business_tz": "Asia/Shanghai", "services": services,
            "campaigns": campaigns, "users": users, "totals": totals}


def svc_id(n: int) -> str:
    return f"00000000-0000-0000-0000-00000000005{n}"


def sample_mappings() -> dict[str, list[str]]:
    """Which services each user may send through: alice two roomy ones, bob and carol one each."""
    return {ALICE["id"]: [svc_id(1), svc_id(2)], "00000000-0000-0000-0000-0000000000b0": [svc_id(4)],
            CAROL["id"]: [svc_id(2)]}


def sample_events() -> list[dict[str, Any]]:
    def ev(i: int, kind: str, message: str, **kw: Any) -> dict[str, Any]:
        return {"id": f"1763874000000-{i}", "kind": kind, "at": f"2026-11-23T04:59:{i:02d}Z", "user_id": None,
                "campaign_id": None, "service_id": None, "message": message, "data": {}} | kw
    return [
        ev(1, "campaign.started", "Black Friday 10k started (10000 recipients)"),
        ev(2, "service.interval_started", "slow-lane waits 10 s"),
        ev(3, "service.frozen", "flaky frozen: 5 failures in a row: HTTP 500"),
        ev(4, "campaign.paused", "Newsletter paused: SERVICE_QUOTA_EXHAUSTED",
           user_id="00000000-0000-0000-0000-0000000000b0", data={"campaign": "Newsletter"}),
        ev(5, "service.quota_used", "tiny-quota used its daily quota"),
        ev(6, "campaign.progress", "Black Friday 10k: 4500/10000 sent"),
    ]


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "message": "ok", "timestamp": "2026-11-23T05:00:00.000Z", "requestId": "t"}


def failure(status: int, code: str, message: str) -> web.Response:
    body = {"success": False, "error": {"code": code, "message": message, "details": {}},
            "timestamp": "2026-11-23T05:00:00.000Z", "requestId": "t"}
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


CLOSING = web.AppKey("closing", asyncio.Event)


@dataclass
class FixtureState:
    """What the fixture API serves, and what it was asked to do."""

    overview: dict[str, Any] = field(default_factory=sample_overview)
    events: list[dict[str, Any]] = field(default_factory=sample_events)
    calls: list[tuple[str, str]] = field(default_factory=list)
    refuse: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # path -> (status, code, message)
    down: bool = False  # answer 503 to the overview, as a restarting proxy would
    overview_hits: int = 0
    last_event_ids: list[str | None] = field(default_factory=list)
    mappings: dict[str, list[str]] = field(default_factory=sample_mappings)
    reads: list[str] = field(default_factory=list)  # drill-down GETs
    bodies: list[tuple[str, str, Any]] = field(default_factory=list)  # writes with their JSON bodies


def fixture_app(state: FixtureState) -> web.Application:
    """A tiny stand-in for the API that speaks the live contract."""
    tokens = {ADMIN_TOKEN: ADMIN, USER_TOKEN: ALICE}
    passwords = {"root": ("admin-password", ADMIN_TOKEN), "alice": ("password-123", USER_TOKEN)}

    def who(request: web.Request) -> dict[str, Any] | None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return tokens.get(token)

    def ok(data: Any) -> web.Response:
        return web.Response(body=orjson.dumps(envelope(data)), content_type="application/json")

    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        expected = passwords.get(body.get("username"))
        if not expected or expected[0] != body.get("password"):
            return failure(401, "INVALID_CREDENTIALS", "wrong username or password, or the account is disabled")
        return ok({"token": expected[1], "token_type": "Bearer", "expires_in": 3600})

    async def me(request: web.Request) -> web.Response:
        user = who(request)
        return ok(user) if user else failure(401, "UNAUTHORIZED", "missing or invalid token")

    async def overview(request: web.Request) -> web.Response:
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        state.overview_hits += 1
        if state.down:
            return web.Response(status=503, text="upstream restarting")
        data = scoped(user)
        limit = int(request.query.get("limit", "100"))
        for name in ("services", "campaigns", "users"):
            data[f"{name}_total"] = len(data[name])
            data[name] = data[name][:limit]
        return ok(data)

    def scoped(user: dict[str, Any]) -> dict[str, Any]:
        data = dict(state.overview)
        if user["role"] != "admin":
            data["campaigns"] = [c for c in data["campaigns"] if c["owner_id"] == user["id"]]
            data["users"] = [u for u in data["users"] if u["id"] == user["id"]]
        return data

    async def overview_page(request: web.Request) -> web.Response:
        """GET /monitor/{services,campaigns,users}: a page of the overview's list."""
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        state.reads.append(request.path_qs.removeprefix("/api/v1"))
        items = scoped(user)[request.match_info["list"]]
        limit, offset = int(request.query.get("limit", "50")), int(request.query.get("offset", "0"))
        return ok({"items": items[offset:offset + limit], "total": len(items), "limit": limit, "offset": offset})

    async def events(request: web.Request) -> web.StreamResponse:
        if not who(request):
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        state.last_event_ids.append(request.headers.get("Last-Event-ID"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seen = request.headers.get("Last-Event-ID")
        start = next((i + 1 for i, e in enumerate(state.events) if e["id"] == seen), 0)
        for e in state.events[start:]:
            await resp.write(f"id: {e['id']}\nevent: {e['kind']}\ndata: ".encode() + orjson.dumps(e) + b"\n\n")
        await resp.write(b": ping\n\n")
        await request.app[CLOSING].wait()  # hold the stream open, as the real one does
        return resp

    async def action(request: web.Request) -> web.Response:
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        path = request.path.removeprefix("/api/v1")
        if path.startswith("/services") and user["role"] != "admin":
            return failure(403, "FORBIDDEN", "administrators only")
        state.calls.append((request.method, path))
        if path in state.refuse:
            return failure(*state.refuse[path])
        return ok({})

    async def write(request: web.Request) -> web.Response:
        """Admin writes: recorded with their bodies; `refuse` answers as the real validators would."""
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        if user["role"] != "admin":
            return failure(403, "FORBIDDEN", "administrators only")
        path = request.path.removeprefix("/api/v1")
        body = await request.json()
        state.bodies.append((request.method, path, body))
        if path in state.refuse:
            return failure(*state.refuse[path])
        if "reason" in body and not body["reason"]:  # as the API's validators word it
            return failure(400, "VALIDATION_ERROR", "reason: Expected `str` of length >= 1")
        if path.endswith("/services"):
            state.mappings[request.match_info["id"]] = body["service_ids"]
        return ok({})

    async def mapping(request: web.Request) -> web.Response:
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        uid = request.match_info.get("id", user["id"])
        if uid != user["id"] and user["role"] != "admin":
            return failure(403, "FORBIDDEN", "administrators only")
        ids = state.mappings.get(uid, [])
        names = {s["id"]: s["name"] for s in state.overview["services"]}
        return ok({"user_id": uid, "service_ids": ids, "services": [{"id": i, "name": names.get(i, i)} for i in ids],
                   "updated_at": None})

    def page(items: list[Any]) -> web.Response:
        return ok({"items": items, "total": len(items), "limit": 50, "offset": 0})

    async def read(request: web.Request) -> web.Response:
        """The drill-down reads, with small canned answers."""
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        path = request.path.removeprefix("/api/v1")
        state.reads.append(path)
        ident = request.match_info["id"]
        if path.startswith(("/services", "/users")) and user["role"] != "admin":
            return failure(403, "FORBIDDEN", "administrators only")
        if path.endswith("/events"):
            return page([{"kind": "campaign.paused", "message": "paused by root", "created_at": "2026-11-23T04:30:00Z",
                          "data": {}},
                         {"kind": "campaign.started", "message": "started with 10000 recipients",
                          "created_at": "2026-11-23T04:01:00Z", "data": {}}])
        if path.endswith("/subtasks"):
            return page([{"email": "gone@example.net", "status": "failed", "seq": 17, "service_id": svc_id(1),
                          "attempted_at": "2026-11-23T04:20:00Z", "error": "550 mailbox unavailable"}])
        if path.endswith("/status-log"):
            return page([{"kind": "frozen", "message": "5 failures in a row: HTTP 500",
                          "created_at": "2026-11-23T04:40:00Z"}])
        if path.endswith("/quota-log"):
            return page([{"delta": 5000, "balance_after": 5000, "kind": "admin_adjust", "reason": "welcome",
                          "created_at": "2026-11-22T02:00:00Z"},
                         {"delta": -800, "balance_after": 4200, "kind": "reserve", "reason": "campaign saved",
                          "created_at": "2026-11-23T03:00:00Z"}])
        service = next(s for s in state.overview["services"] if s["id"] == ident)
        return ok({"id": ident, "name": service["name"], "provider": service["provider"], "domain": "mail.example.com",
                   "credentials": {"api_user": "edm", "api_key": "63b8…b868"}, "base_url": None,
                   "last_request_at": "2026-11-23T04:59:58Z", "throttled_until": None,
                   # slow-lane is on day 4 of a warm-up ramp
                   "warmup_day": 4 if ident == svc_id(2) else None, "warmup_quota": 500 if ident == svc_id(2) else None})

    async def open_streams(app: web.Application) -> None:
        app[CLOSING] = asyncio.Event()

    async def close_streams(app: web.Application) -> None:
        app[CLOSING].set()

    app = web.Application()
    app.on_startup.append(open_streams)
    app.on_shutdown.append(close_streams)
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_get("/api/v1/me", me)
    app.router.add_get("/api/v1/monitor/overview", overview)
    app.router.add_get("/api/v1/monitor/{list:services|campaigns|users}", overview_page)
    app.router.add_get("/api/v1/events", events)
    app.router.add_post("/api/v1/campaigns/{id}/{verb}", action)
    app.router.add_post("/api/v1/services/{id}/{verb}", action)
    app.router.add_post("/api/v1/users/{id}/quota", write)
    app.router.add_put("/api/v1/users/{id}/services", write)
    app.router.add_put("/api/v1/services/{id}/remaining", write)
    app.router.add_get("/api/v1/users/{id}/services", mapping)
    app.router.add_get("/api/v1/me/services", mapping)
    for path in ("/campaigns/{id}/events", "/campaigns/{id}/subtasks", "/services/{id}", "/services/{id}/status-log",
                 "/users/{id}/quota-log"):
        app.router.add_get("/api/v1" + path, read)
    add_feedback_routes(app, who, state.reads, ok, failure)
    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    """Runs an aiohttp app on its own loop in a thread, so sync tests (snap_compare) can use it too."""

    def __init__(self, make_app: Callable[[], web.Application], port: int | None = None):
        self.make_app, self.port = make_app, port or free_port()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        # A fresh Application each time: a restarted API is a new process with the same data.
        self._runner = web.AppRunner(self.make_app(), shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def resume(self) -> None:
        """Listen again on the same port after `stop()` (an API restart)."""
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def wait_for(pilot: Any, predicate: Any, timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds (data arrives over real HTTP)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def notes(app: Any) -> list[str]:
    """Notification texts shown so far, as 'TITLE: message' (or the message alone)."""
    return [f"{n.title}: {n.message}" if n.title else n.message for n in app._notifications]


def cell_text(table: Any, row_key: str, column: str) -> str:
    value = table.get_cell(row_key, column)
    return value.plain if hasattr(value, "plain") else str(value)


def column_texts(table: Any, column: str) -> list[str]:
    return [cell_text(table, key, column) for key in table._keys]


class RecordingEngine:
    """Stands in for the running engine's command surface on `deps.engine`; records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        async def record(target: Any = None, *args: Any, **kw: Any) -> None:
            self.calls.append((name, str(target)))
        return record
