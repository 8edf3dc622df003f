"""Engine test support: factories by direct SQL, a running fake ESP, an engine runner, and the
invariant checks every whole-run test applies."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, NamedTuple

import asyncpg

from edm.fake_esp import FAKE_ESP, FakeEsp, FakeEspConfig, bound_port, serve
from engine.dispatch.leader import Engine, EngineOptions
from engine.domain.quota_day import parse_hhmm, quota_day_start
from engine.infra.clock import Clock
from engine.infra.config import Settings
from engine.infra.secret_box import SecretBox
from engine.live.events import MemorySink
from engine.providers.factory import ProviderFactory
from engine.store import quota_ledger

UTC = timezone.utc


# -- factories (direct SQL) -----------------------------------------------------------------------

async def make_user(pool: asyncpg.Pool, quota: int = 0, name: str | None = None) -> uuid.UUID:
    name = name or f"u{uuid.uuid4().hex[:10]}"
    async with pool.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            "INSERT INTO users (username, email, password_hash, role) VALUES ($1, $2, 'x', 'user') RETURNING id",
            name, f"{name}@example.com")
        if quota:
            await quota_ledger.apply(conn, user_id, quota, "adjust", reason="test quota")
    return user_id  # type: ignore[no-any-return]


async def make_service(pool: asyncpg.Pool, box: SecretBox, settings: Settings, now: datetime, *, base_url: str,
                       api_user: str | None = None, daily_quota: int = 1000, send_interval: int = 1,
                       reset_time: str = "02:00", domain: str = "mail.example.com", provider: str = "engagelab",
                       credentials: dict[str, Any] | None = None, name: str | None = None) -> uuid.UUID:
    name = name or f"svc-{uuid.uuid4().hex[:8]}"
    creds = credentials or {"api_user": api_user or name, "api_key": "key-" + uuid.uuid4().hex}
    start = quota_day_start(parse_hhmm(reset_time), settings.tz, now)
    return await pool.fetchval(  # type: ignore[no-any-return]
        """INSERT INTO services (name, provider, domain, credentials, base_url, daily_quota, reset_time,
                                 send_interval, remaining_today, quota_day_start)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $6, $9) RETURNING id""",
        name, provider, domain, box.seal(creds), base_url, daily_quota, parse_hhmm(reset_time), send_interval, start)


async def map_user(pool: asyncpg.Pool, user_id: uuid.UUID, service_ids: Iterable[uuid.UUID]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO user_service_maps (user_id) VALUES ($1) ON CONFLICT DO NOTHING", user_id)
        await conn.execute("DELETE FROM user_service_map_items WHERE user_id = $1", user_id)
        await conn.execute("INSERT INTO user_service_map_items (user_id, service_id) "
                           "SELECT $1, unnest($2::uuid[])", user_id, list(service_ids))


async def make_contacts(pool: asyncpg.Pool, user_id: uuid.UUID, n: int, prefix: str = "r") -> list[str]:
    emails = [f"{prefix}{i:05d}-{uuid.uuid4().hex[:4]}@example.net" for i in range(n)]
    await pool.execute("INSERT INTO contacts (user_id, email, name, fields) "
                       "SELECT $1, e, split_part(e, '@', 1), '{\"city\": \"Paris\"}' FROM unnest($2::text[]) AS e",
                       user_id, emails)
    return emails


async def make_campaign(pool: asyncpg.Pool, user_id: uuid.UUID, *, planned: int, templates: int = 1,
                        scheduled_at: datetime | None = None, sender: str | None = None,
                        html: str = "<p>Hello {{ name }} from {{ city }}</p>") -> uuid.UUID:
    """A pending campaign with its reservation taken, as a campaign save leaves it."""
    sender = sender or f"news{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        sender_id = await conn.fetchval("INSERT INTO senders (user_id, name) VALUES ($1, $2) RETURNING id",
                                        user_id, sender)
        campaign_id = await conn.fetchval(
            """INSERT INTO campaigns (user_id, name, sender_id, sender_name, scheduled_at, reserved, planned)
               VALUES ($1, 'test campaign', $2, $3, $4, $5::bigint, $5::int) RETURNING id""",
            user_id, sender_id, sender, scheduled_at, planned)
        for k in range(templates):
            tid = await conn.fetchval(
                "INSERT INTO templates (user_id, name, subject, html_body, text_body) "
                "VALUES ($1, $2, $3, $4, 'Hello {{ name }}') RETURNING id",
                user_id, f"t{k}", f"Hi {{{{ name }}}} #{k}", html)
            await conn.execute("INSERT INTO campaign_templates (campaign_id, position, template_id) "
                               "VALUES ($1, $2, $3)", campaign_id, k, tid)
        if planned:
            await quota_ledger.apply(conn, user_id, -planned, "reserve", campaign_id=campaign_id,
                                     reason="campaign saved")
    return campaign_id  # type: ignore[no-any-return]


class Seeded(NamedTuple):
    """What `seed_campaign` made: `user, (service,), campaign = await seed_campaign(...)`."""
    user: uuid.UUID
    services: list[uuid.UUID]
    campaign: uuid.UUID


async def seed_campaign(deps: Any, now: datetime, *, base_url: str, contacts: int, services: int = 1,
                        quota: int | None = None, planned: int | None = None, templates: int = 1,
                        scheduled_at: datetime | None = None, **service: Any) -> Seeded:
    """The setup most engine tests share: a user with `quota` (default: the contacts), `services`
    alike services (`service` are make_service's keywords) mapped to them, `contacts` contacts and
    a pending campaign reserving `planned` (default: the contacts)."""
    pool, settings = deps.pool, deps.settings
    user = await make_user(pool, quota=contacts if quota is None else quota)
    ids = [await make_service(pool, deps.box, settings, now, base_url=base_url, **service) for _ in range(services)]
    await map_user(pool, user, ids)
    await make_contacts(pool, user, contacts)
    campaign = await make_campaign(pool, user, planned=contacts if planned is None else planned,
                                   templates=templates, scheduled_at=scheduled_at)
    return Seeded(user, ids, campaign)


# -- the fake ESP and the engine ------------------------------------------------------------------

@contextlib.asynccontextmanager
async def fake_esp(config: FakeEspConfig | None = None) -> AsyncIterator[tuple[str, FakeEsp]]:
    runner = await serve("127.0.0.1", 0, config)
    try:
        yield f"http://127.0.0.1:{bound_port(runner)}", runner.app[FAKE_ESP]
    finally:
        await runner.cleanup()


def new_engine(settings: Settings, pool: asyncpg.Pool, clock: Clock, box: SecretBox,
               providers: ProviderFactory | None = None, **options: Any) -> tuple[Engine, MemorySink]:
    sink = MemorySink()
    # A short lease: a standby (or the engine after a crash) takes over within about 2.5 s.
    opts = EngineOptions(**{"settle_delay": 0.005, "claim_batch": 50, "lease_seconds": 2.0,
                            "renew_seconds": 0.3, **options})
    return Engine(settings, pool, clock, providers or ProviderFactory(), box, sink, opts), sink


@contextlib.asynccontextmanager
async def running(engine: Engine) -> AsyncIterator[Engine]:
    await engine.start()
    await engine.wait_leader(10)
    try:
        yield engine
    finally:
        await engine.stop()
        await engine.providers.close()  # type: ignore[attr-defined]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll (real time) until `check()` is true; fails the test with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def campaign_status(pool: asyncpg.Pool, campaign_id: uuid.UUID) -> tuple[str, str | None]:
    row = await pool.fetchrow("SELECT status, pause_reason FROM campaigns WHERE id = $1", campaign_id)
    return row["status"], row["pause_reason"]


async def wait_status(pool: asyncpg.Pool, campaign_id: uuid.UUID, status: str, reason: str | None = None,
                      timeout: float = 20.0) -> None:
    async def check() -> bool:
        return await campaign_status(pool, campaign_id) == (status, reason)
    await eventually(check, timeout, f"campaign {campaign_id} to be {status}/{reason}")


# -- invariants -----------------------------------------------------------------------------------

async def check_invariants(pool: asyncpg.Pool, esp: FakeEsp | None, settings: Settings,
                           *, all_settled: bool = True) -> dict[str, Any]:
    """Invariants (1)-(5) from the fake ESP's log and the database (hot and archived subtasks);
    returns a few figures."""
    subtasks = await pool.fetch(
        "SELECT id, campaign_id, status, service_id, attempted_at FROM subtasks_all")
    services = {r["id"]: r for r in await pool.fetch("SELECT * FROM services")}
    by_id = {str(r["id"]): r for r in subtasks}
    # (3) no subtask id requested twice, and every request is a subtask the engine bound.
    if esp is not None:
        # A throttled request was refused by the provider (nothing delivered): the subtask goes
        # back to pending and may be asked for again. Any other request counts as a delivery.
        entries = esp.log.entries()
        # A request refused at the door (a wrong key) delivered nothing either, and carries no id.
        entries = [e for e in entries if e.outcome != "unauthorized"]
        delivered = [e.request_id for e in entries if e.outcome != "throttled"]
        twice = {r for r, n in Counter(delivered).items() if n > 1}
        assert not twice, ("subtasks requested twice: "
                           f"{[(e.request_id, e.outcome) for e in entries if e.request_id in twice][:6]}")
        # A retry's request id carries its attempt (`<subtask id>.<attempt>`): still at most once each.
        requested = [e.request_id for e in entries]
        for rid in requested:
            assert rid is not None and rid.split(".")[0] in by_id, f"unknown request id {rid}"
    # (1) per service, request starts (attempted_at) never closer than its interval.
    times: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for r in subtasks:
        if r["service_id"] is not None:
            times[r["service_id"]].append(r["attempted_at"])
    for sid, ts in times.items():
        ts.sort()
        gap = timedelta(seconds=services[sid]["send_interval"])
        for a, b in zip(ts, ts[1:]):
            assert b - a >= gap, f"two requests to {services[sid]['name']} {b - a} apart (< {gap})"
    # (2) no service over its daily quota in any quota day (a reset by hand opens a new one).
    for sid, ts in times.items():
        s = services[sid]
        manual = [r["at"] for r in await pool.fetch(
            "SELECT (data->>'quota_day_start')::timestamptz AS at FROM service_status_log "
            "WHERE service_id = $1 AND kind = 'reset'", sid)]
        per_day: dict[datetime, int] = defaultdict(int)
        for t in ts:
            day = max([quota_day_start(s["reset_time"], settings.tz, t), *(m for m in manual if m <= t)])
            per_day[day] += 1
        assert max(per_day.values()) <= s["daily_quota"], f"{s['name']} over its daily quota: {dict(per_day)}"
    # (4) every subtask settled.
    if all_settled:
        unsettled = [r for r in subtasks if r["status"] in ("pending", "sending")]
        assert not unsettled, f"{len(unsettled)} subtasks not settled"
    # (5) counters equal values recomputed from subtasks and the ledger.
    bad = await pool.fetch("""
        SELECT c.id FROM campaigns c
        LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE status = 'sent') AS sent,
                                  count(*) FILTER (WHERE status = 'failed') AS failed,
                                  count(*) FILTER (WHERE status = 'cancelled') AS cancelled
                           FROM subtasks_all s WHERE s.campaign_id = c.id) x ON true
        WHERE c.status <> 'pending'
          AND (c.sent_count, c.failed_count, c.cancelled_count) <> (x.sent, x.failed, x.cancelled)""")
    assert not bad, f"campaign counters differ from subtasks: {bad}"
    # ... and the funnel's counters equal the recipients per kind recounted from the events.
    bad = await pool.fetch("""
        SELECT coalesce(f.campaign_id, e.campaign_id) AS campaign_id, coalesce(f.kind, e.kind) AS kind,
               f.recipients, e.recipients AS recounted
        FROM campaign_funnels f
        FULL JOIN (SELECT campaign_id, kind, count(DISTINCT subtask_id)::int AS recipients
                   FROM delivery_events GROUP BY campaign_id, kind) e USING (campaign_id, kind)
        WHERE f.recipients IS DISTINCT FROM e.recipients""")
    assert not bad, f"funnel counters differ from the events: {[dict(r) for r in bad]}"
    bad = await pool.fetch("""
        SELECT v.name, v.used_today,
               (SELECT count(*) FROM subtasks_all s
                 WHERE s.service_id = v.id AND s.attempted_at >= v.quota_day_start) AS n
        FROM services v
        WHERE v.used_today <> (SELECT count(*) FROM subtasks_all s
                               WHERE s.service_id = v.id AND s.attempted_at >= v.quota_day_start)""")
    assert not bad, f"service used_today differs from subtasks: {[dict(r) for r in bad]}"
    bad = await pool.fetch("""
        SELECT u.username FROM users u
        WHERE u.quota_remaining <> (SELECT coalesce(sum(delta), 0) FROM quota_log q WHERE q.user_id = u.id)""")
    assert not bad, f"user quota differs from the ledger: {bad}"
    # A user's quota spent on campaigns equals what those campaigns hold.
    bad = await pool.fetch("""
        SELECT c.id FROM campaigns c
        WHERE c.reserved <> -(SELECT coalesce(sum(delta), 0) FROM quota_log q WHERE q.campaign_id = c.id)""")
    assert not bad, f"campaign reservation differs from its ledger rows: {bad}"
    return {"subtasks": len(subtasks), "requests": len(esp.log.entries()) if esp else None}


async def request_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM subtasks WHERE attempted_at IS NOT NULL"))


async def requests_answered(pool: asyncpg.Pool, n: int) -> bool:
    """At least `n` requests bound and none still on its way: every bound request has started
    (a service's interval runs from its request's real start, which comes after the bind), so a
    test may move a fake clock on without racing the start it is measured from."""
    return await request_count(pool) >= n and \
        await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'") == 0


async def settled_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM subtasks WHERE status IN ('sent', 'failed', 'cancelled')"))


async def buffers_ready(engine: Engine, campaigns: Iterable[uuid.UUID]) -> None:
    """Until every campaign is loaded, running and has claimed work in memory."""
    ids = list(campaigns)

    async def check() -> bool:
        cs = [engine.state.campaigns.get(c) for c in ids]
        return all(c is not None and c.status == "running" and c.buffer for c in cs)
    await eventually(check, what="campaign buffers")


async def quiet(pool: asyncpg.Pool, engine: Engine) -> None:
    """Until nothing is in flight or waiting to be written (FakeClock runs: time is frozen)."""
    async def check() -> bool:
        d = engine.dispatcher
        return not d.sender.open() and len(d.settler.buffer) == 0 and \
            await pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'sending'") == 0
    await eventually(check, what="the engine to go quiet")
    await engine.counters.flush()  # the services' counters, written behind: in the rows now


async def check_quota_recount(pool: asyncpg.Pool) -> None:
    """DESIGN.md section 3, counters are derivable, for runs without retries or shortfalls: a
    started campaign holds one unit per subtask that reached (or may still reach) a provider, and
    has given back (`released`) one per subtask that never will (cancelled, never rendered); a
    user's balance is what was granted minus what their campaigns hold."""
    rows = await pool.fetch("""
        SELECT c.id, c.reserved, c.released,
               count(s.id) FILTER (WHERE s.status IN ('pending', 'sending', 'sent')
                                      OR (s.status = 'failed' AND coalesce(s.error, '') NOT LIKE 'TEMPLATE_ERROR%'))
                   AS held,
               count(s.id) FILTER (WHERE s.status = 'cancelled'
                                      OR (s.status = 'failed' AND s.error LIKE 'TEMPLATE_ERROR%')) AS given_back
        FROM campaigns c LEFT JOIN subtasks s ON s.campaign_id = c.id
        WHERE c.status <> 'pending' GROUP BY c.id""")
    bad = [dict(r) for r in rows if (r["reserved"], r["released"]) != (r["held"], r["given_back"])]
    assert not bad, f"campaign quota differs from its subtasks' recount: {bad}"
    bad = await pool.fetch("""
        SELECT u.username, u.quota_remaining,
               (SELECT coalesce(sum(delta), 0) FROM quota_log q WHERE q.user_id = u.id AND q.kind = 'adjust')
               - (SELECT coalesce(sum(c.reserved), 0) FROM campaigns c WHERE c.user_id = u.id) AS recount
        FROM users u""")
    bad = [dict(r) for r in bad if r["quota_remaining"] != r["recount"]]
    assert not bad, f"user quota differs from the recount: {bad}"
