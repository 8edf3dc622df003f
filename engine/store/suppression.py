"""The suppression list: addresses never mailed again, per user or admin-wide (user_id None).

Adding an address also cancels its never-attempted subtasks in the owner's active campaigns
and refunds them, in the same transaction: a suppressed address is not sent, even mid-campaign.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from engine.domain.errors import NotFound, ValidationError
from engine.domain.quota_units import cancel_refund
from engine.infra.queries import Q
from engine.live.events import CampaignEvent, EventWriter
from engine.store import quota_ledger
from engine.store.rows import Page, page_of

Reason = Literal["hard_bounce", "soft_bounce", "complaint", "unsubscribe", "manual", "import"]
MAX_IMPORT = 1_000_000


class Suppression(msgspec.Struct):
    id: int
    user_id: uuid.UUID | None
    email: str
    reason: str
    source: str
    campaign_id: uuid.UUID | None
    created_at: datetime


def _address(email: str, field: str = "email") -> str:
    email = email.strip().lower()
    if not (3 <= len(email) <= 254) or "@" not in email or any(ch.isspace() for ch in email):
        raise ValidationError(f"not an email address: {email[:60]!r}", field=field)
    return email


async def suppress(conn: asyncpg.Connection, events: EventWriter, user_id: uuid.UUID | None, email: str,
                   reason: Reason, now: datetime, *, source: str = "", campaign_id: uuid.UUID | None = None,
                   operator_id: uuid.UUID | None = None) -> tuple[bool, set[uuid.UUID]]:
    """Suppress one address (inside a transaction): (newly added, owners whose quota got refunds)."""
    email = email.strip().lower()
    if await conn.fetchval(Q["suppression.add"], user_id, email, reason, source, campaign_id, operator_id,
                           now) is None:
        return False, set()  # already suppressed: nothing more to do
    await conn.execute(Q["suppression.log_many"], user_id, [email], "added", reason, operator_id, now)
    return True, await _cancel_pending(conn, events, user_id, email, reason, now)


async def _cancel_pending(conn: asyncpg.Connection, events: EventWriter, user_id: uuid.UUID | None, email: str,
                          reason: str, now: datetime) -> set[uuid.UUID]:
    refunded: set[uuid.UUID] = set()
    evs = []
    for r in await conn.fetch(Q["suppression.cancel_pending"], user_id, email, now, reason):
        c = await conn.fetchrow(Q["engine.lock_campaign"], r["campaign_id"])
        await conn.execute(Q["suppression.count_cancelled"], c["id"], r["n"])
        # Released, not only taken off `reserved`: a later cancel then sees no false shortfall.
        units = cancel_refund(r["n"], c["total"], c["reserved"], c["released"])
        if units:
            await conn.execute(Q["engine.release_units"], c["id"], units)
            await quota_ledger.apply(conn, c["user_id"], units, "refund", campaign_id=c["id"],
                                     reason=f"recipient suppressed ({reason})")
            refunded.add(c["user_id"])
        evs.append(CampaignEvent(c["id"], "suppressed", f"{email} suppressed ({reason}) before sending",
                                 {"cancelled": r["n"], "refunded": units}))
    await events.write(conn, evs, now)
    return refunded


class SuppressionStore:
    """What the suppression API reads and writes; `owner` None is the admin-wide list."""

    def __init__(self, pool: asyncpg.Pool, events: EventWriter):
        self.pool = pool
        self.events = events

    async def list(self, owner: uuid.UUID | None, search: str | None, limit: int, offset: int) -> Page[Suppression]:
        rows = await self.pool.fetch(Q["suppression.list"], owner, search, limit, offset)
        return page_of(Suppression, rows, limit, offset)

    async def count(self, owner: uuid.UUID) -> int:
        return int(await self.pool.fetchval(Q["suppression.count_for_user"], owner))

    async def add(self, owner: uuid.UUID | None, email: str, reason: str, operator_id: uuid.UUID,
                  now: datetime) -> tuple[bool, set[uuid.UUID]]:
        """(added, owners refunded); an address already on the list is not an error."""
        email = _address(email)
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(Q["suppression.add"], owner, email, "manual", reason, None, operator_id,
                                   now) is None:
                return False, set()
            await conn.execute(Q["suppression.log_many"], owner, [email], "added", reason, operator_id, now)
            return True, await _cancel_pending(conn, self.events, owner, email, "manual", now)

    async def remove(self, owner: uuid.UUID | None, email: str, reason: str, operator_id: uuid.UUID,
                     now: datetime) -> None:
        email = _address(email)
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(Q["suppression.remove"], owner, email) is None:
                raise NotFound("address not on the suppression list", field="email")
            await conn.execute(Q["suppression.log_many"], owner, [email], "removed", reason, operator_id, now)

    async def import_csv(self, owner: uuid.UUID | None, data: bytes, operator_id: uuid.UUID,
                         now: datetime) -> tuple[int, int, set[uuid.UUID]]:
        """CSV with an `email` column (or one column of addresses): (added, already listed, refunded)."""
        emails = parse_csv(data)
        refunded: set[uuid.UUID] = set()
        async with self.pool.acquire() as conn, conn.transaction():
            added = [r["email"] for r in await conn.fetch(Q["suppression.add_many"], owner, emails, "csv import",
                                                          operator_id, now)]
            await conn.execute(Q["suppression.log_many"], owner, added, "added", "csv import", operator_id, now)
            for email in added:
                refunded |= await _cancel_pending(conn, self.events, owner, email, "import", now)
        return len(added), len(emails) - len(added), refunded

    async def export_csv(self, owner: uuid.UUID | None) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["email", "reason", "source", "created_at"])
        for r in await self.pool.fetch(Q["suppression.export"], owner):
            w.writerow([r["email"], r["reason"], r["source"], r["created_at"].isoformat()])
        return out.getvalue()


def parse_csv(data: bytes) -> list[str]:
    """Distinct addresses of a CSV body; a bad row is a VALIDATION_ERROR naming its line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError("the CSV is not UTF-8", field="body") from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    col, start = (header.index("email"), 1) if "email" in header else (0, 0)
    seen: dict[str, None] = {}
    for n, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if col >= len(row):
            raise ValidationError(f"line {n}: no email column", field="body", details={"line": n})
        try:
            seen[_address(row[col])] = None
        except ValidationError as exc:
            raise ValidationError(f"line {n}: {exc.message}", field="body", details={"line": n}) from exc
        if len(seen) > MAX_IMPORT:
            raise ValidationError(f"more than {MAX_IMPORT} addresses", field="body")
    return list(seen)
