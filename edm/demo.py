"""`edm demo`: the product tour on embedded servers, with a fake ESP and demo data."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from typing import Any

import aiohttp
import orjson

from api.deps import Deps
from engine.domain.errors import Conflict
from engine.infra.config import Settings
from engine.store.accounts import create_user

log = logging.getLogger("edm.demo")

ADMIN = ("admin", "admin-demo-pass")
USERS = [  # username, password, quota
    ("alice", "alice-demo-pass", 20_000),
    ("bob", "bob-demo-pass", 5_000),
    ("carol", "carol-demo-pass", 1_000),
]
# name, interval s, daily quota, reset time, fake ESP api_user
SERVICES = [
    ("el-fast-1", 1, 6_000, "02:00", "demo-fast-1"),
    ("el-fast-2", 1, 6_000, "03:30", "demo-fast-2"),
    ("el-steady", 2, 3_000, "00:00", "demo-steady"),
    ("el-slow", 5, 1_000, "06:00", "demo-slow"),
    ("el-small", 2, 40, "02:00", "demo-small"),
    ("el-broken", 3, 1_000, "02:00", "demo-broken"),  # the fake ESP fails every request it gets
]
MAPPING = {
    "alice": ["el-fast-1", "el-fast-2", "el-steady", "el-broken"],
    "bob": ["el-steady", "el-slow", "el-fast-2"],
    "carol": ["el-small"],
}
FAILING_API_USERS = ["demo-broken"]
# Recipients' behaviour per fake ESP account (shares of sends); el-steady's list is dirty enough
# for the reputation guard to freeze it once it has enough sends to judge.
FEEDBACK = {"default": {"hard_bounce_rate": 0.01, "soft_bounce_rate": 0.01, "complaint_rate": 0.001,
                        "open_rate": 0.3, "click_rate": 0.05, "unsubscribe_rate": 0.01, "delay_ms": 500},
            "demo-steady": {"hard_bounce_rate": 0.1, "unsubscribe_rate": 0.02, "delay_ms": 500}}


class DemoApi:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str = ""):
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
                   content_type: str = "") -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if content_type:
            headers["Content-Type"] = content_type
        async with self.session.request(method, self.base + path, json=json, data=data, headers=headers) as resp:
            body = orjson.loads(await resp.read())
        if not body.get("success"):
            raise RuntimeError(f"{method} {path}: {body.get('error')}")
        return body["data"]

    async def login(self, username: str, password: str) -> "DemoApi":
        data = await DemoApi(self.session, self.base).call("POST", "/auth/login", json={"username": username, "password": password})
        return DemoApi(self.session, self.base, data["token"])


def _contacts(user: str, count: int, tags: list[str]) -> bytes:
    rng = random.Random(user)
    lines = []
    for i in range(count):
        lines.append(orjson.dumps({
            "email": f"{user}.contact{i:05d}@example.test",
            "name": f"Contact {i}",
            "tags": [rng.choice(tags)] if tags else [],
            "fields": {"city": rng.choice(["Shanghai", "Beijing", "Shenzhen", "Hangzhou"])},
        }))
    return b"\n".join(lines)


async def point_services_at(admin: DemoApi, esp_base: str) -> list[str]:
    """Point the demo's services at the fake ESP this run started; returns the names it moved.

    The demo data outlives a run (it is kept in `.edm/`); a later run may start its fake ESP on
    another port, and services left on the old one would freeze and fail every recipient.
    """
    names = {name for name, *_ in SERVICES}
    moved = []
    page = await admin.call("GET", "/services?limit=1000")
    for svc in page["items"]:
        if svc["name"] in names and svc["base_url"] != esp_base:
            await admin.call("PATCH", f"/services/{svc['id']}", json={"base_url": esp_base})
            moved.append(svc["name"])
    return moved


async def seed(d: Deps, base: str, esp_base: str) -> bool:
    """Create the demo data once; return False when it was already there (its services are then
    pointed at `esp_base`)."""
    try:
        await create_user(d.pool, d.passwords, ADMIN[0], "admin@example.test", ADMIN[1], role="admin")
    except Conflict:
        async with aiohttp.ClientSession() as session:
            moved = await point_services_at(await DemoApi(session, base).login(*ADMIN), esp_base)
        if moved:
            log.info("demo_services_repointed services=%s base_url=%s", ",".join(sorted(moved)), esp_base)
        return False
    async with aiohttp.ClientSession() as session:
        admin = await DemoApi(session, base).login(*ADMIN)
        users: dict[str, DemoApi] = {}
        user_ids: dict[str, str] = {}
        for name, password, quota in USERS:
            created = await admin.call("POST", "/users", json={"username": name, "email": f"{name}@example.test",
                                                                "password": password, "quota": quota})
            user_ids[name] = created["id"]
            users[name] = await admin.login(name, password)
        service_ids: dict[str, str] = {}
        for name, interval, daily, reset, api_user in SERVICES:
            svc = await admin.call("POST", "/services", json={
                "name": name, "provider": "engagelab", "domain": f"{name}.mail.example.test",
                "credentials": {"api_user": api_user, "api_key": f"demo-key-{api_user}-0123456789abcdef"},
                "base_url": esp_base, "daily_quota": daily, "reset_time": reset, "send_interval": interval,
            })
            service_ids[name] = svc["id"]
        for user, names in MAPPING.items():
            await admin.call("PUT", f"/users/{user_ids[user]}/services",
                             json={"service_ids": [service_ids[n] for n in names]})
        plans = {"alice": (10_000, 0), "bob": (600, 60), "carol": (200, 0)}
        for user, api in users.items():
            count, delay = plans[user]
            await api.call("POST", "/contacts/import", data=_contacts(user, count, ["vip", "newsletter"]),
                           content_type="application/x-ndjson")
            sender = await api.call("POST", "/senders", json={"name": f"{user}-news"})
            template = await api.call("POST", "/templates", json={
                "name": f"{user}'s welcome", "subject": "Hello {{name}} from " + user,
                "html_body": "<p>Hi {{name}}, greetings from {{city}}.</p>",
                "text_body": "Hi {{name}}, greetings from {{city}}.",
            })
            scheduled = None
            if delay:
                from datetime import timedelta
                scheduled = (d.clock.now() + timedelta(seconds=delay)).isoformat()
            await api.call("POST", "/campaigns", json={
                "name": f"{user}'s campaign ({count} contacts)", "sender_id": sender["id"],
                "template_ids": [template["id"]], "include_tags": [], "exclude_tags": [],
                "scheduled_at": scheduled,
            })
    return True


async def wire_feedback(base: str, esp: Any) -> None:
    """Rotate every service's webhook secret (each run: secrets are shown once) and have the fake
    ESP post its bounces, complaints, opens, clicks and unsubscribes back to the engine."""
    from edm.fake_esp import FAKE_ESP, ConfigUpdate
    from edm.fake_esp.webhooks import Feedback

    hooks: dict[str, Feedback] = {}
    async with aiohttp.ClientSession() as session:
        admin = await DemoApi(session, base).login(*ADMIN)
        page = await admin.call("GET", "/services?limit=1000")
        api_users = {name: api_user for name, *_, api_user in SERVICES}
        for svc in page["items"]:
            api_user = api_users.get(svc["name"])
            if api_user is None or api_user in FAILING_API_USERS:
                continue
            secret = await admin.call("POST", f"/services/{svc['id']}/webhook-secret")
            rates = FEEDBACK.get(api_user, FEEDBACK["default"])
            hooks[api_user] = Feedback(url=secret["url"], secret=secret["secret"], **rates)  # type: ignore[arg-type]
    esp.app[FAKE_ESP].update(ConfigUpdate(webhooks=hooks))


async def run_dashboard(api: str, username: str, password: str) -> None:
    """The dashboard in the foreground, in its own process so drawing never stalls the engine."""
    env = {**os.environ, "EDM_PASSWORD": password}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tui", "--api", api, "--username", username,
                                                env=env)
    await proc.wait()


def run_demo(settings: Settings, *, open_dashboard: bool = True) -> int:
    from edm.logging_setup import setup_logging
    from edm.serve import run_serve, until_signalled

    if open_dashboard:
        # The terminal belongs to the dashboard: the server's log lines go to a file instead.
        settings.data_path.mkdir(parents=True, exist_ok=True)
        log_file = settings.data_path / "edm.log"
        setup_logging(settings.log_level, log_file)
        print(f"server log: {log_file}", flush=True)

    esp_port = settings.fake_esp_port
    esp_base = f"http://127.0.0.1:{esp_port}"

    async def then(d: Deps) -> None:
        from edm.fake_esp import FakeEspConfig, Knobs
        from edm.fake_esp import serve as serve_fake_esp

        config = FakeEspConfig(users={u: Knobs(fail_all=True) for u in FAILING_API_USERS})
        esp = await serve_fake_esp("127.0.0.1", esp_port, config)
        base = f"http://{settings.host}:{settings.port}/api/v1"
        try:
            created = await seed(d, base, esp_base)
            print(("seeded demo data" if created else "demo data already present (delete .edm/ to start over)"), flush=True)
            await wire_feedback(base, esp)
            print("the fake ESP posts signed delivery callbacks back (bounces, complaints, unsubscribes)", flush=True)
            print(f"fake ESP on {esp_base} (request log: {esp_base}/_fake/log)")
            print("logins: " + ", ".join(f"{u}/{p}" for u, p in [ADMIN] + [(u, p) for u, p, _ in USERS]), flush=True)
            if open_dashboard:
                await run_dashboard(f"http://{settings.host}:{settings.port}", *ADMIN)
            else:
                await until_signalled()
        finally:
            await esp.cleanup()

    return run_serve(settings, then)
