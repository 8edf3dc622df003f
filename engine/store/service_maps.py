"""The user ↔ services mapping: one record per user, replaced whole and idempotently."""

from __future__ import annotations

import logging
import uuid
from typing import Sequence
from zoneinfo import ZoneInfo

import asyncpg

from engine.domain.errors import NotFound, ValidationError
from engine.domain.quota_day import next_reset
from engine.infra.queries import Q
from engine.store.service_models import ServiceBrief, UserServices

log = logging.getLogger("edm.services")


async def replace_services(pool: asyncpg.Pool, tz: ZoneInfo, user_id: uuid.UUID, service_ids: Sequence[uuid.UUID],
                           operator_id: uuid.UUID | None) -> UserServices:
    """Make `service_ids` (duplicates collapsed) the user's whole set, in one transaction."""
    wanted = list(dict.fromkeys(service_ids))
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(Q["user_services.user_exists"], user_id) is None:
            raise NotFound("user not found", field="id")
        unknown = [str(r["id"]) for r in await conn.fetch(Q["user_services.unknown_services"], wanted)]
        if unknown:
            # Like the campaigns' references: what does not exist is a 404, naming the field.
            raise NotFound(f"unknown service ids: {', '.join(unknown)}", field="service_ids",
                           details={"unknown": unknown})
        await conn.execute(Q["user_services.upsert_map"], user_id, operator_id)
        await conn.execute(Q["user_services.delete_items"], user_id, wanted)
        await conn.execute(Q["user_services.insert_items"], user_id, wanted)
        mapping = await _read(conn, tz, user_id)
    log.info("user_services_replaced user=%s services=%d operator=%s", user_id, len(wanted), operator_id)
    return mapping


async def get_services(pool: asyncpg.Pool, tz: ZoneInfo, user_id: uuid.UUID) -> UserServices:
    """The user's mapping; an empty one when none was ever set."""
    async with pool.acquire() as conn:
        if await conn.fetchval(Q["user_services.user_exists"], user_id) is None:
            raise NotFound("user not found", field="id")
        return await _read(conn, tz, user_id)


async def _read(conn: asyncpg.Connection, tz: ZoneInfo, user_id: uuid.UUID) -> UserServices:
    head = await conn.fetchrow(Q["user_services.get_map"], user_id)
    rows = await conn.fetch(Q["user_services.services_of"], user_id)
    services = [
        ServiceBrief(r["id"], r["name"], r["domain"], r["enabled"], r["abnormal_frozen"], r["daily_quota"],
                     r["used_today"], r["remaining_today"], next_reset(r["reset_time"], tz, r["quota_day_start"]))
        for r in rows
    ]
    return UserServices(user_id, [s.id for s in services], services, head["updated_at"] if head else None)
