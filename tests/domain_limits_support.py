"""Support for the domain-limit tests: recipients at chosen domains, groups by direct SQL, and the
invariant checks judged from the fake ESP's request log (who was asked for what) joined with the
subtasks' attempt times on the engine's injected clock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable

import asyncpg

from edm.fake_esp import FakeEsp
from engine.domain.domain_limits import business_day

MINUTE = timedelta(minutes=1)


async def make_recipients(pool: asyncpg.Pool, user_id: uuid.UUID, domain: str, n: int, prefix: str = "r") -> None:
    emails = [f"{prefix}{i:04d}-{uuid.uuid4().hex[:6]}@{domain}" for i in range(n)]
    await pool.execute("INSERT INTO contacts (user_id, email, name, fields) "
                       "SELECT $1, e, split_part(e, '@', 1), '{\"city\": \"Paris\"}' FROM unnest($2::text[]) AS e",
                       user_id, emails)


async def make_group(pool: asyncpg.Pool, name: str, domains: list[str], *, per_minute: int | None = None,
                     per_day: int | None = None, per_service: bool = False) -> uuid.UUID:
    async with pool.acquire() as conn, conn.transaction():
        gid = await conn.fetchval("INSERT INTO domain_groups (name, per_minute, per_day, per_service) "
                                  "VALUES ($1, $2, $3, $4) RETURNING id", name, per_minute, per_day, per_service)
        await conn.execute("INSERT INTO domain_group_domains (domain, group_id, position) "
                           "SELECT d, $1, p FROM unnest($2::text[]) WITH ORDINALITY AS x(d, p)", gid, domains)
    return gid  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Request:
    domain: str
    service_id: uuid.UUID
    user_id: uuid.UUID
    at: datetime


async def requests_made(pool: asyncpg.Pool, esp: FakeEsp) -> list[Request]:
    """Every request the fake ESP counted (not the throttled ones: the provider refused those),
    with its recipient domain as the ESP saw it and its start on the engine's clock."""
    rows = {str(r["id"]): r for r in await pool.fetch(
        "SELECT s.id, s.service_id, s.attempted_at, c.user_id FROM subtasks s JOIN campaigns c ON c.id = s.campaign_id "
        "WHERE s.attempted_at IS NOT NULL")}
    out = []
    for e in esp.log.entries():
        if e.outcome == "throttled":
            continue
        r = rows[e.request_id]
        assert e.to, "a request without a recipient"
        out.append(Request(e.to[0].rpartition("@")[2].lower(), r["service_id"], r["user_id"], r["attempted_at"]))
    return sorted(out, key=lambda q: q.at)


def most_in_a_minute(times: Iterable[datetime]) -> int:
    """The most requests in any 60 s window [t, t + 60 s)."""
    ts = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ts):
        while j < len(ts) and ts[j] < t + MINUTE:
            j += 1
        best = max(best, j - i)
    return best


def per_day(times: Iterable[datetime], tz) -> dict[datetime, int]:  # type: ignore[no-untyped-def]
    days: dict[datetime, int] = defaultdict(int)
    for t in times:
        days[business_day(t, tz)[0]] += 1
    return dict(days)


def check_group(requests: list[Request], domains: set[str], tz, *, per_minute: int | None,  # type: ignore[no-untyped-def]
                per_day_limit: int | None, per_service: bool) -> None:
    """No 60 s window over `per_minute` and no business day over `per_day_limit` for the group's
    domains: across all services, or for each service on its own."""
    mine = [r for r in requests if r.domain in domains]
    keys: dict[uuid.UUID | None, list[datetime]] = defaultdict(list)
    for r in mine:
        keys[r.service_id if per_service else None].append(r.at)
    for key, times in keys.items():
        if per_minute is not None:
            assert most_in_a_minute(times) <= per_minute, f"{sorted(domains)} over {per_minute}/min ({key})"
        if per_day_limit is not None:
            days = per_day(times, tz)
            assert max(days.values()) <= per_day_limit, f"{sorted(domains)} over {per_day_limit}/day: {days}"
