"""Domain groups and the engine-wide per-minute cap (admin writes, any user reads), with their
current usage counted from subtasks by the same rule the engine rebuilds its counts with."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Mapping

import asyncpg
import msgspec

from engine.domain.errors import Conflict, NotFound, Unprocessable, ValidationError
from engine.domain.domain_limits import business_day
from engine.infra.queries import Q
from engine.store.domain_group_models import (
    DomainGroup,
    DomainGroupIn,
    DomainGroupPatch,
    SendRateLimit,
    ServiceUsage,
)
from engine.store.rows import Page

log = logging.getLogger("edm.domain_groups")

# (service, domain) -> (last minute, today)
Usage = dict[tuple[uuid.UUID, str], tuple[int, int]]


def domains_of(pattern: str) -> list[str]:
    """`163.com|126.COM|163.com` -> ["163.com", "126.com"]: lower-cased, repeats once, in order."""
    return list(dict.fromkeys(d.strip().lower() for d in pattern.split("|")))


def _check_limits(per_minute: int | None, per_day: int | None, error: type[ValidationError | Unprocessable]) -> None:
    if per_minute is None and per_day is None:
        raise error("a domain group needs per_minute, per_day or both", field="per_minute")


@dataclass
class DomainGroupStore:
    pool: asyncpg.Pool
    tz: tzinfo
    # EDM_SEND_RATE_LIMIT: the cap when no administrator has set one.
    default_rate_limit: int = 0

    async def create(self, body: DomainGroupIn, now: datetime) -> DomainGroup:
        _check_limits(body.per_minute, body.per_day, ValidationError)
        domains = domains_of(body.pattern)
        async with self.pool.acquire() as conn, conn.transaction():
            await self._name_free(conn, body.name, None)
            await self._domains_free(conn, domains, None)
            try:
                gid = await conn.fetchval(Q["domain_limits.group_insert"], body.name, body.per_minute, body.per_day,
                                          body.per_service)
                await conn.execute(Q["domain_limits.group_add_domains"], gid, domains)
            except asyncpg.UniqueViolationError as exc:
                raise self._conflict(exc, body.name) from None
        log.info("domain_group_created id=%s domains=%d", gid, len(domains))
        return await self.get(gid, now)

    async def update(self, group_id: uuid.UUID, patch: DomainGroupPatch, now: datetime) -> DomainGroup:
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(Q["domain_limits.group_lock"], group_id)
            if old is None:
                raise NotFound("domain group not found", field="id")
            name = old["name"] if patch.name is msgspec.UNSET else patch.name
            per_minute = old["per_minute"] if patch.per_minute is msgspec.UNSET else patch.per_minute
            per_day = old["per_day"] if patch.per_day is msgspec.UNSET else patch.per_day
            per_service = old["per_service"] if patch.per_service is msgspec.UNSET else patch.per_service
            # Which limit remains depends on the stored row: no schema of the body can state it.
            _check_limits(per_minute, per_day, Unprocessable)
            if name != old["name"]:
                await self._name_free(conn, name, group_id)
            try:
                await conn.execute(Q["domain_limits.group_update"], group_id, name, per_minute, per_day, per_service)
                if patch.pattern is not msgspec.UNSET:
                    domains = domains_of(patch.pattern)
                    await self._domains_free(conn, domains, group_id)
                    await conn.execute(Q["domain_limits.group_clear_domains"], group_id)
                    await conn.execute(Q["domain_limits.group_add_domains"], group_id, domains)
            except asyncpg.UniqueViolationError as exc:
                raise self._conflict(exc, name) from None
        log.info("domain_group_updated id=%s", group_id)
        return await self.get(group_id, now)

    async def delete(self, group_id: uuid.UUID) -> None:
        if await self.pool.fetchval(Q["domain_limits.group_delete"], group_id) is None:
            raise NotFound("domain group not found", field="id")
        log.info("domain_group_deleted id=%s", group_id)

    async def get(self, group_id: uuid.UUID, now: datetime) -> DomainGroup:
        row = await self.pool.fetchrow(Q["domain_limits.group_get"], group_id)
        if row is None:
            raise NotFound("domain group not found", field="id")
        return _group_of(row, await self._usage(now))

    async def page(self, limit: int, offset: int, now: datetime) -> Page[DomainGroup]:
        rows = await self.pool.fetch(Q["domain_limits.group_list"], limit, offset)
        usage = await self._usage(now) if rows else {}
        return Page([_group_of(r, usage) for r in rows], int(rows[0]["total"]) if rows else 0, limit, offset)

    # -- the engine-wide cap ---------------------------------------------------------------------------

    async def rate_limit(self, now: datetime) -> SendRateLimit:
        stored = await self.pool.fetchval(Q["domain_limits.rate_limit_get"])
        used = sum(m for m, _ in (await self._usage(now)).values())
        if stored is None:
            return SendRateLimit(self.default_rate_limit, "setting", used)
        return SendRateLimit(stored, "admin", used)

    async def set_rate_limit(self, per_minute: int | None, now: datetime) -> SendRateLimit:
        await self.pool.execute(Q["domain_limits.rate_limit_set"], per_minute)
        log.info("send_rate_limit_set per_minute=%s", per_minute)
        return await self.rate_limit(now)

    # -- helpers ---------------------------------------------------------------------------------------

    async def _usage(self, now: datetime) -> Usage:
        day_start, _ = business_day(now, self.tz)
        rows = await self.pool.fetch(Q["domain_limits.usage"], day_start, now - timedelta(minutes=1))
        return {(r["service_id"], r["domain"]): (r["minute"], r["day"]) for r in rows}

    @staticmethod
    async def _name_free(conn: asyncpg.Connection, name: str, exclude: uuid.UUID | None) -> None:
        if await conn.fetchrow(Q["domain_limits.group_name_taken"], name, exclude):
            raise Conflict(f"a domain group named {name!r} already exists", field="name")

    @staticmethod
    async def _domains_free(conn: asyncpg.Connection, domains: list[str], exclude: uuid.UUID | None) -> None:
        # Serialises group writes: two groups claiming one domain at once cannot both pass the check.
        await conn.execute("LOCK TABLE domain_group_domains IN SHARE ROW EXCLUSIVE MODE")
        taken = await conn.fetch(Q["domain_limits.domains_taken"], domains, exclude)
        if taken:
            held = ", ".join(f"{r['domain']} ({r['name']})" for r in taken)
            raise Conflict(f"already in another domain group: {held}", field="pattern",
                           details={"domains": [r["domain"] for r in taken]})

    @staticmethod
    def _conflict(exc: asyncpg.UniqueViolationError, name: str) -> Conflict:
        if "name" in (exc.constraint_name or ""):
            return Conflict(f"a domain group named {name!r} already exists", field="name")
        return Conflict("a domain of the pattern is already in another domain group", field="pattern")


def _group_of(row: Mapping[str, Any], usage: Usage) -> DomainGroup:
    domains = set(row["domains"])
    per_service: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for (sid, domain), (minute, day) in usage.items():
        if domain in domains:
            per_service[sid][0] += minute
            per_service[sid][1] += day
    services = [ServiceUsage(sid, m, d) for sid, (m, d) in sorted(per_service.items(), key=lambda kv: str(kv[0]))]
    if row["per_service"]:
        minute = max((s.last_minute for s in services), default=0)
        day = max((s.today for s in services), default=0)
        at_limit = any(_at(row, s.last_minute, s.today) for s in services)
    else:
        minute, day = sum(s.last_minute for s in services), sum(s.today for s in services)
        at_limit = _at(row, minute, day)
    return DomainGroup(row["id"], row["name"], "|".join(row["domains"]), list(row["domains"]), row["per_minute"],
                       row["per_day"], row["per_service"], minute, day, services if row["per_service"] else [],
                       at_limit, row["created_at"], row["updated_at"])


def _at(row: Mapping[str, Any], minute: int, day: int) -> bool:
    return (row["per_minute"] is not None and minute >= row["per_minute"]) or \
        (row["per_day"] is not None and day >= row["per_day"])
