"""Saving, editing and cancelling pending campaigns, with their quota reservation.

A pending campaign holds `reserved` quota units: its planned recipient count at the last save.
Every save recounts the recipients and moves the reservation through the quota ledger in the
same transaction as the campaign row, so a failed save changes nothing and concurrent saves
can never overdraw the user. Starting, pausing and dispatching belong to the engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

import asyncpg

from engine.domain.errors import InvalidState, NotFound, ValidationError
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.store import quota_ledger
from engine.store.campaign_models import (
    Campaign,
    CampaignDetail,
    CampaignEvent,
    Subtask,
    TagRef,
    TemplateRef,
)
from engine.store.rows import Page, page_of, row_struct

EDITABLE = frozenset({"name", "sender_id", "template_ids", "include_tags", "exclude_tags", "scheduled_at"})


@dataclass(frozen=True)
class Plan:
    """What a campaign asks for; `scheduled_at` None means now."""

    name: str
    sender_id: uuid.UUID
    template_ids: list[uuid.UUID]
    include_tags: list[uuid.UUID]
    exclude_tags: list[uuid.UUID]
    scheduled_at: datetime | None


@dataclass(frozen=True)
class Actor:
    """Who acts: administrators reach every campaign, users only their own."""

    id: uuid.UUID
    is_admin: bool


@dataclass(frozen=True)
class CancelOutcome:
    """A pending campaign is cancelled here; a running or paused one needs the engine."""

    owner_id: uuid.UUID
    status: str
    refunded: int
    needs_engine: bool


def _check_plan(plan: Plan) -> None:
    if not plan.name.strip():
        raise ValidationError("name must not be blank", field="name")
    if len(set(plan.template_ids)) != len(plan.template_ids):
        raise ValidationError("template_ids must be distinct", field="template_ids")
    for field in ("include_tags", "exclude_tags"):
        ids = getattr(plan, field)
        if len(set(ids)) != len(ids):
            raise ValidationError(f"{field} must be distinct", field=field)
    if set(plan.include_tags) & set(plan.exclude_tags):
        raise ValidationError("a tag cannot be both included and excluded", field="exclude_tags")


async def _lock_references(conn: asyncpg.Connection, owner_id: uuid.UUID, plan: Plan) -> str:
    """Check the sender, templates and tags are the owner's and hold them; return the sender's name."""
    sender = await conn.fetchrow(Q["campaigns.lock_sender"], plan.sender_id, owner_id)
    if sender is None:
        raise NotFound("sender not found", field="sender_id")
    found = await conn.fetch(Q["campaigns.lock_templates"], plan.template_ids, owner_id)
    if len(found) != len(plan.template_ids):
        raise NotFound("template not found", field="template_ids")
    for field in ("include_tags", "exclude_tags"):
        ids = getattr(plan, field)
        if ids and len(await conn.fetch(Q["campaigns.lock_tags"], ids, owner_id)) != len(ids):
            raise NotFound("tag not found", field=field)
    return str(sender["name"])


async def count_recipients(conn: asyncpg.Connection | asyncpg.Pool, owner_id: uuid.UUID,
                           include_tags: list[uuid.UUID], exclude_tags: list[uuid.UUID]) -> int:
    """Contacts with any include tag (all when none) and no exclude tag, one per address."""
    return int(await conn.fetchval(Q["campaigns.count_recipients"], owner_id, include_tags, exclude_tags))


async def _planned(conn: asyncpg.Connection, owner_id: uuid.UUID, plan: Plan) -> int:
    planned = await count_recipients(conn, owner_id, plan.include_tags, plan.exclude_tags)
    if planned == 0:
        raise ValidationError("no recipients: no contact matches these tags", field="include_tags")
    return planned


async def _write_links(conn: asyncpg.Connection, campaign_id: uuid.UUID, plan: Plan) -> None:
    await conn.execute(Q["campaigns.insert_templates"], campaign_id, plan.template_ids)
    await conn.execute(Q["campaigns.insert_tags"], campaign_id, plan.include_tags, plan.exclude_tags)


async def _event(conn: asyncpg.Connection, campaign_id: uuid.UUID, kind: str, message: str,
                 data: dict[str, Any]) -> None:
    await conn.execute(Q["campaigns.insert_event"], campaign_id, kind, message, data)


def _operator(actor: Actor, owner_id: uuid.UUID) -> uuid.UUID | None:
    """The ledger names an operator only when someone else (an administrator) acted."""
    return None if actor.id == owner_id else actor.id


async def _detail(conn: asyncpg.Connection, row: Any) -> CampaignDetail:
    base = row_struct(Campaign, row)
    templates = [row_struct(TemplateRef, r) for r in await conn.fetch(Q["campaigns.templates_of"], base.id)]
    tags = await conn.fetch(Q["campaigns.tags_of"], base.id)
    include = [TagRef(t["id"], t["name"]) for t in tags if t["mode"] == "include"]
    exclude = [TagRef(t["id"], t["name"]) for t in tags if t["mode"] == "exclude"]
    return CampaignDetail(**{f: getattr(base, f) for f in base.__struct_fields__},
                          templates=templates, include_tags=include, exclude_tags=exclude)


async def create(pool: asyncpg.Pool, clock: Clock, owner_id: uuid.UUID, plan: Plan) -> CampaignDetail:
    """Save a pending campaign and reserve its planned recipients; all or nothing."""
    _check_plan(plan)
    campaign_id = uuid.uuid4()
    scheduled_at = plan.scheduled_at or clock.now()
    async with pool.acquire() as conn, conn.transaction():
        sender_name = await _lock_references(conn, owner_id, plan)
        planned = await _planned(conn, owner_id, plan)
        await quota_ledger.apply(conn, owner_id, -planned, "reserve", campaign_id=campaign_id,
                                 reason="campaign saved")
        await conn.execute(Q["campaigns.insert"], campaign_id, owner_id, plan.name, plan.sender_id, sender_name,
                           scheduled_at, planned)
        await _write_links(conn, campaign_id, plan)
        await _event(conn, campaign_id, "created", f"campaign saved, {planned} recipients reserved",
                     {"by": str(owner_id), "planned": planned, "scheduled_at": scheduled_at.isoformat()})
        return await _detail(conn, await conn.fetchrow(Q["campaigns.get"], campaign_id, owner_id, False))


async def _current_plan(conn: asyncpg.Connection, row: Any) -> Plan:
    templates = await conn.fetch(Q["campaigns.templates_of"], row["id"])
    tags = await conn.fetch(Q["campaigns.tags_of"], row["id"])
    return Plan(row["name"], row["sender_id"], [t["id"] for t in templates],
                [t["id"] for t in tags if t["mode"] == "include"],
                [t["id"] for t in tags if t["mode"] == "exclude"], row["scheduled_at"])


async def _lock(conn: asyncpg.Connection, campaign_id: uuid.UUID, actor: Actor) -> Any:
    row = await conn.fetchrow(Q["campaigns.lock"], campaign_id, actor.id, actor.is_admin)
    if row is None:
        raise NotFound("campaign not found", field="id")
    return row


async def edit(pool: asyncpg.Pool, clock: Clock, actor: Actor, campaign_id: uuid.UUID,
               changes: Mapping[str, Any]) -> tuple[CampaignDetail, int]:
    """Edit a pending campaign, recount it and move its reservation; return it and the quota delta."""
    unknown = set(changes) - EDITABLE
    assert not unknown, unknown
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock(conn, campaign_id, actor)
        if row["status"] != "pending":
            raise InvalidState(f"campaign is {row['status']}; only a pending campaign can be edited", field="status")
        owner_id = row["user_id"]
        plan = dataclasses.replace(await _current_plan(conn, row), **changes)
        if plan.scheduled_at is None:
            plan = dataclasses.replace(plan, scheduled_at=clock.now())
        _check_plan(plan)
        sender_name = await _lock_references(conn, owner_id, plan)
        planned = await _planned(conn, owner_id, plan)
        # Positive: the balance goes up (excess refunded); negative: more is reserved.
        quota_delta = row["reserved"] - planned
        if quota_delta:
            kind: quota_ledger.Kind = "refund" if quota_delta > 0 else "reserve"
            await quota_ledger.apply(conn, owner_id, quota_delta, kind, campaign_id=campaign_id,
                                     operator_id=_operator(actor, owner_id), reason="campaign edited")
        await conn.execute(Q["campaigns.update_pending"], campaign_id, plan.name, plan.sender_id, sender_name,
                           plan.scheduled_at, planned)
        await conn.execute(Q["campaigns.delete_templates"], campaign_id)
        await conn.execute(Q["campaigns.delete_tags"], campaign_id)
        await _write_links(conn, campaign_id, plan)
        await _event(conn, campaign_id, "edited", f"campaign edited, {planned} recipients reserved",
                     {"by": str(actor.id), "changed": sorted(changes), "planned": planned,
                      "quota_delta": quota_delta})
        detail = await _detail(conn, await conn.fetchrow(Q["campaigns.get"], campaign_id, actor.id, True))
    return detail, quota_delta


async def cancel(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID) -> CancelOutcome:
    """Cancel a pending campaign and refund its whole reservation; report if the engine must act."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _lock(conn, campaign_id, actor)
        owner_id, reserved = row["user_id"], int(row["reserved"])
        match row["status"]:
            case "pending":
                if reserved:
                    await quota_ledger.apply(conn, owner_id, reserved, "refund", campaign_id=campaign_id,
                                             operator_id=_operator(actor, owner_id), reason="campaign cancelled")
                await conn.execute(Q["campaigns.cancel_pending"], campaign_id)
                await _event(conn, campaign_id, "cancelled", f"campaign cancelled, {reserved} refunded",
                             {"by": str(actor.id), "refunded": reserved})
                return CancelOutcome(owner_id, "cancelled", reserved, needs_engine=False)
            case "running" | "paused" as status:
                return CancelOutcome(owner_id, status, 0, needs_engine=True)
            case status:
                raise InvalidState(f"campaign is {status}; it cannot be cancelled", field="status")


async def get(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID) -> CampaignDetail:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(Q["campaigns.get"], campaign_id, actor.id, actor.is_admin)
        if row is None:
            raise NotFound("campaign not found", field="id")
        return await _detail(conn, row)


async def list_campaigns(pool: asyncpg.Pool, owner_id: uuid.UUID | None, status: str | None, limit: int,
                         offset: int) -> Page[Campaign]:
    """One user's campaigns (every user's when `owner_id` is None), newest first."""
    rows = await pool.fetch(Q["campaigns.list"], owner_id, status, limit, offset)
    # The window total is `total_rows`: `total` is the campaign's own subtask counter.
    total = int(rows[0]["total_rows"]) if rows else 0
    return Page([row_struct(Campaign, r) for r in rows], total, limit, offset)


async def events(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID, limit: int,
                 offset: int) -> Page[CampaignEvent]:
    """A campaign's event log, newest first."""
    # The visibility check and the page side by side (one round trip of waiting, not two);
    # another user's campaign still answers 404 and its page is dropped unread.
    visible, rows = await asyncio.gather(pool.fetchrow(Q["campaign_actions.owned"], campaign_id, actor.id, actor.is_admin),
                                         pool.fetch(Q["campaigns.events"], campaign_id, limit, offset))
    if visible is None:
        raise NotFound("campaign not found", field="id")
    return page_of(CampaignEvent, rows, limit, offset)


async def ensure_visible(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID) -> None:
    """Other users' campaigns answer 404, never 403."""
    if await pool.fetchrow(Q["campaign_actions.owned"], campaign_id, actor.id, actor.is_admin) is None:
        raise NotFound("campaign not found", field="id")


async def subtasks(pool: asyncpg.Pool, actor: Actor, campaign_id: uuid.UUID, status: str | None, limit: int,
                   offset: int) -> Page[Subtask]:
    """A campaign's subtasks by seq, optionally of one status."""
    await ensure_visible(pool, actor, campaign_id)
    return page_of(Subtask, await pool.fetch(Q["campaign_actions.subtasks"], campaign_id, status, limit, offset),
                   limit, offset)
