"""Deleting services and users: refused while in use, otherwise archived (history kept)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import asyncpg
import msgspec

from engine.domain.errors import InvalidState, NotFound, ServiceInUse, UserHasCampaigns
from engine.infra.queries import Q
from engine.store.accounts import guard_last_admin
from engine.store.services import write_status

log = logging.getLogger("edm.archive")


class Archived(msgspec.Struct):
    id: uuid.UUID
    archived_at: datetime


async def archive_service(pool: asyncpg.Pool, service_id: uuid.UUID, operator_id: uuid.UUID,
                          now: datetime) -> Archived:
    """Archive: disabled, unmapped from every user, hidden from lists; logs and subtasks keep it."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["archive.lock_service"], service_id)
        if row is None or row["archived_at"] is not None:
            raise NotFound("service not found", field="id")
        busy = [str(r["id"]) for r in await conn.fetch(Q["archive.service_users_campaigns"], service_id)]
        if busy:
            raise ServiceInUse(f"{len(busy)} running or paused campaign(s) may still send through this service; "
                               "cancel them, or unmap the service from their owners first",
                               field="id", details={"campaigns": busy})
        await conn.execute(Q["archive.archive_service"], service_id, now)
        await conn.execute(Q["archive.unmap_service"], service_id)
        if row["enabled"]:
            await write_status(conn, service_id, "disabled", "service disabled (archived)", {}, operator_id)
        await write_status(conn, service_id, "updated", "service archived", {"archived": True}, operator_id)
    log.info("service_archived id=%s operator=%s", service_id, operator_id)
    return Archived(service_id, now)


async def restore_service(pool: asyncpg.Pool, service_id: uuid.UUID, operator_id: uuid.UUID) -> None:
    """Back in the lists, still disabled and unmapped: the admin enables and maps it again."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["archive.lock_service"], service_id)
        if row is None:
            raise NotFound("service not found", field="id")
        if row["archived_at"] is None:
            raise InvalidState("the service is not archived", field="id")
        await conn.execute(Q["archive.restore_service"], service_id)
        await write_status(conn, service_id, "updated", "service restored", {"archived": False}, operator_id)
    log.info("service_restored id=%s operator=%s", service_id, operator_id)


async def archive_user(pool: asyncpg.Pool, user_id: uuid.UUID, operator_id: uuid.UUID, now: datetime) -> Archived:
    """Archive: disabled for good, every token revoked, hidden from lists; ledger and campaigns kept."""
    if user_id == operator_id:
        raise InvalidState("administrators cannot delete their own account", field="id")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(Q["archive.lock_user"], user_id)
        if row is None or row["archived_at"] is not None:
            raise NotFound("user not found", field="id")
        if row["role"] == "admin":
            await guard_last_admin(conn, user_id, "id")
        open_campaigns = [str(r["id"]) for r in await conn.fetch(Q["archive.unfinished_campaigns"], user_id)]
        if open_campaigns:
            raise UserHasCampaigns(f"the user has {len(open_campaigns)} pending, running or paused campaign(s); "
                                   "cancel them first", field="id", details={"campaigns": open_campaigns})
        await conn.execute(Q["archive.archive_user"], user_id, now)
        await conn.execute(Q["archive.revoke_user_tokens"], user_id, now)
    log.info("user_archived id=%s operator=%s", user_id, operator_id)
    return Archived(user_id, now)
