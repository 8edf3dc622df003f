"""The sending-service store: create, edit, enable, hand-set quota, and the status log.

Every state change writes a service_status_log row in the same transaction as the change.
Credentials are sealed before they reach the database and only their masked view leaves it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import asyncpg
import msgspec

from engine.domain.errors import Conflict, NotFound, Unprocessable, ValidationError
from engine.domain.quota_day import (
    QuotaDay,
    format_hhmm,
    next_reset,
    parse_hhmm,
    quota_day,
)
from engine.domain.warmup import Ramp, ramp_day, ramp_finished, ramp_quota
from engine.infra.clock import Clock
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox
from engine.store.rows import Page
from engine.store.service_credentials import masked, parse_credentials, seal
from engine.store.service_models import (
    Service,
    Warmup,
    ServiceIn,
    ServicePatch,
    StatusEntry,
    StatusKind,
)

log = logging.getLogger("edm.services")


def open_credentials(box: SecretBox, row: Mapping[str, Any]) -> dict[str, Any]:
    """The plain credentials of a services row (for the engine's provider adapters only)."""
    return box.open(row["credentials"])


def current_quota_day(reset_time: time, tz: ZoneInfo, clock: Clock) -> QuotaDay:
    """The quota day a service with this reset time is in right now."""
    return quota_day(reset_time, tz, clock.now())


def service_of(row: Mapping[str, Any], tz: ZoneInfo) -> Service:
    """A services row (without the sealed token) as the API shows it."""
    return Service(
        id=row["id"], name=row["name"], provider=row["provider"], domain=row["domain"],
        credentials=dict(row["credentials_hint"]), base_url=row["base_url"], daily_quota=row["daily_quota"],
        reset_time=format_hhmm(row["reset_time"]), send_interval=row["send_interval"],
        request_timeout=row["request_timeout"], enabled=row["enabled"],
        used_today=row["used_today"], remaining_today=row["remaining_today"],
        quota_day_start=row["quota_day_start"],
        next_reset_at=next_reset(row["reset_time"], tz, row["quota_day_start"]),
        last_request_at=row["last_request_at"], consecutive_failures=row["consecutive_failures"],
        abnormal_frozen=row["abnormal_frozen"], abnormal_reason=row["abnormal_reason"],
        throttled_until=row["throttled_until"], freeze_after=row["freeze_after"],
        unfreeze_after=row["unfreeze_after"], probe_before_unfreeze=row["probe_before_unfreeze"],
        frozen_until=row["frozen_until"] if row["abnormal_frozen"] else None,
        warmup=dict(row["warmup"]) if row["warmup"] else None, warmup_started=row["warmup_started"],
        **_ramp_view(row, tz), created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _ramp_view(row: Mapping[str, Any], tz: ZoneInfo) -> dict[str, int | None]:
    ramp, started = Ramp.from_json(row["warmup"]), row["warmup_started"]
    today = row["quota_day_start"].astimezone(tz).date()
    if ramp is None or started is None or today < started:
        return {"warmup_day": None, "warmup_quota": None}
    day = ramp_day(started, today)
    if ramp_finished(row["daily_quota"], ramp, day):
        return {"warmup_day": None, "warmup_quota": None}
    return {"warmup_day": day, "warmup_quota": ramp_quota(row["daily_quota"], ramp, day)}


def _ramp_of(body: Warmup | None) -> tuple[Ramp | None, dict[str, Any] | None]:
    """The ramp and its JSON form; a ramp that makes no sense is a VALIDATION_ERROR on `warmup`."""
    if body is None:
        return None, None
    doc = msgspec.to_builtins(body)
    ramp = Ramp.from_json(doc)
    # `{}` is no ramp to Ramp.from_json, but the document (and null) says how to give none.
    problem = ramp.problem() if ramp else Ramp().problem()
    if problem is not None:
        # Schedule or start+factor the document states (400); a schedule going down it cannot (422).
        error = Unprocessable if "goes down" in problem else ValidationError
        raise error(f"warmup: {problem}", field="warmup")
    return ramp, doc


async def write_status(conn: asyncpg.Connection, service_id: uuid.UUID, kind: StatusKind, message: str = "",
                       data: dict[str, Any] | None = None, operator_id: uuid.UUID | None = None) -> None:
    """One status-log row; call inside the transaction that made the change."""
    await conn.execute(Q["services.log_status"], service_id, kind, message, data or {}, operator_id)


def _not_found() -> NotFound:
    return NotFound("service not found", field="id")


@dataclass
class ServiceStore:
    pool: asyncpg.Pool
    box: SecretBox
    clock: Clock
    tz: ZoneInfo

    async def create(self, body: ServiceIn, operator_id: uuid.UUID | None) -> Service:
        creds = parse_credentials(body.provider, body.credentials)
        view = masked(creds)
        reset = parse_hhmm(body.reset_time)
        day = current_quota_day(reset, self.tz, self.clock)
        ramp, ramp_doc = _ramp_of(body.warmup)
        started = day.start.astimezone(self.tz).date() if ramp is not None else None
        first_quota = ramp_quota(body.daily_quota, ramp, 1) if ramp is not None else None
        async with self.pool.acquire() as conn, conn.transaction():
            await self._check_name(conn, body.name, None)
            try:
                row = await conn.fetchrow(
                    Q["services.insert"], body.name, body.provider, body.domain.lower(), seal(self.box, creds),
                    view, body.base_url, body.daily_quota, reset, body.send_interval, body.enabled, day.start,
                    body.freeze_after, ramp_doc, started, first_quota, body.request_timeout, body.unfreeze_after,
                    body.probe_before_unfreeze)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a service named {body.name!r} already exists", field="name") from None
            await write_status(conn, row["id"], "created", f"service {body.name!r} created", {
                "name": body.name, "provider": body.provider, "domain": row["domain"], "credentials": view,
                "base_url": body.base_url, "daily_quota": body.daily_quota, "reset_time": body.reset_time,
                "send_interval": body.send_interval, "enabled": body.enabled, "freeze_after": body.freeze_after,
                "warmup": ramp_doc, "request_timeout": body.request_timeout,
                "unfreeze_after": body.unfreeze_after, "probe_before_unfreeze": body.probe_before_unfreeze,
            }, operator_id)
        log.info("service_created id=%s name=%s provider=%s operator=%s", row["id"], body.name, body.provider,
                 operator_id)
        return service_of(row, self.tz)

    async def get(self, service_id: uuid.UUID) -> Service:
        row = await self.pool.fetchrow(Q["services.get"], service_id)
        if row is None:
            raise _not_found()
        return service_of(row, self.tz)

    async def list(self, limit: int, offset: int, archived: bool = False) -> Page[Service]:
        """The live services, or (archived=True) the archived ones."""
        rows = await self.pool.fetch(Q["services.list"], limit, offset, archived)
        total = int(rows[0]["total"]) if rows else 0
        return Page([service_of(r, self.tz) for r in rows], total, limit, offset)

    async def update(self, service_id: uuid.UUID, patch: ServicePatch,
                     operator_id: uuid.UUID | None) -> tuple[Service, bool]:
        """Apply the fields given; returns the service and whether anything changed."""
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(Q["services.lock"], service_id)
            if old is None:
                raise _not_found()
            new = _merged(old, patch)
            if patch.warmup is not msgspec.UNSET:
                _, new["warmup"] = _ramp_of(patch.warmup)
                # It starts with the next quota day (today's quota stays as it is).
                new["warmup_started"] = None if new["warmup"] is None else \
                    next_reset(new["reset_time"], self.tz, self.clock.now()).astimezone(self.tz).date()
            sealed = hint = None
            if patch.credentials is not msgspec.UNSET:
                creds = _credentials_for(new["provider"], patch.credentials, patch.provider is msgspec.UNSET)
                if msgspec.structs.asdict(creds) != open_credentials(self.box, old):
                    sealed, hint = seal(self.box, creds), masked(creds)
            elif new["provider"] != old["provider"]:
                # Well-formed, but not with what is stored: a conflict, not a malformed request.
                raise Conflict("credentials are required when the provider changes", field="credentials")
            changes = {k: {"old": _shown(old[k]), "new": _shown(v)} for k, v in new.items() if v != old[k]}
            if hint is not None:
                changes["credentials"] = {"old": dict(old["credentials_hint"]), "new": hint}
            if not changes:
                return service_of(await conn.fetchrow(Q["services.get"], service_id), self.tz), False
            if "name" in changes:
                await self._check_name(conn, new["name"], service_id)
            day_start = None
            if "reset_time" in changes:
                day_start = current_quota_day(new["reset_time"], self.tz, self.clock).start
            try:
                row = await conn.fetchrow(
                    Q["services.update"], service_id, new["name"], new["provider"], sealed, hint, new["domain"],
                    new["base_url"], new["daily_quota"], new["reset_time"], new["send_interval"], new["enabled"],
                    day_start, new["freeze_after"], new["warmup"], new["warmup_started"], new["request_timeout"],
                    new["unfreeze_after"], new["probe_before_unfreeze"], self.clock.now())
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a service named {new['name']!r} already exists", field="name") from None
            if row["quota_day_start"] != old["quota_day_start"]:
                # The day now starts later: count it the way start-up reconciliation does, so a
                # restart never changes what is left of it.
                await conn.execute(Q["recovery.reconcile_services"], service_id)
                row = await conn.fetchrow(Q["services.get"], service_id)
            for live in ("remaining_today", "quota_day_start"):
                if row[live] != old[live]:
                    changes[live] = {"old": _shown(old[live]), "new": _shown(row[live])}
            await write_status(conn, service_id, "updated", _update_message(changes), {"changes": changes},
                               operator_id)
            if "enabled" in changes:
                kind: StatusKind = "enabled" if new["enabled"] else "disabled"
                await write_status(conn, service_id, kind, f"service {kind}", {}, operator_id)
        log.info("service_updated id=%s fields=%s operator=%s", service_id, ",".join(sorted(changes)), operator_id)
        return service_of(row, self.tz), True

    async def set_enabled(self, service_id: uuid.UUID, enabled: bool,
                          operator_id: uuid.UUID | None) -> tuple[Service, bool]:
        """Enable or disable; a call that changes nothing writes nothing."""
        kind: StatusKind = "enabled" if enabled else "disabled"
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["services.set_enabled"], service_id, enabled)
            if row is None:
                current = await conn.fetchrow(Q["services.get"], service_id)
                if current is None:
                    raise _not_found()
                return service_of(current, self.tz), False
            await write_status(conn, service_id, kind, f"service {kind}", {}, operator_id)
        log.info("service_%s id=%s operator=%s", kind, service_id, operator_id)
        return service_of(row, self.tz), True

    async def set_remaining(self, service_id: uuid.UUID, remaining: int, reason: str,
                            operator_id: uuid.UUID | None) -> Service:
        """Set today's remaining quota by hand, logged with the old and new values."""
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(Q["services.lock"], service_id)
            if old is None:
                raise _not_found()
            row = await conn.fetchrow(Q["services.set_remaining"], service_id, remaining)
            await write_status(conn, service_id, "manual_adjust",
                               f"remaining today set by hand {old['remaining_today']} → {remaining}: {reason}",
                               {"old": old["remaining_today"], "new": remaining, "reason": reason,
                                "operator_id": str(operator_id) if operator_id else None}, operator_id)
        log.info("service_remaining_set id=%s old=%s new=%s operator=%s", service_id, old["remaining_today"],
                 remaining, operator_id)
        return service_of(row, self.tz)

    async def probe_target(self, service_id: uuid.UUID) -> tuple[str, dict[str, Any], str | None]:
        """(provider, plain credentials, base URL) for a credentials probe; nothing else sees them."""
        row = await self.pool.fetchrow(Q["services.probe_target"], service_id)
        if row is None:
            raise _not_found()
        return row["provider"], open_credentials(self.box, row), row["base_url"]

    async def status_log(self, service_id: uuid.UUID, limit: int, offset: int) -> Page[StatusEntry]:
        """The service's status log, newest first."""
        async with self.pool.acquire() as conn:
            if await conn.fetchval(Q["services.exists"], service_id) is None:
                raise _not_found()
            rows = await conn.fetch(Q["services.status_log"], service_id, limit, offset)
        total = int(rows[0]["total"]) if rows else 0
        items = [StatusEntry(r["id"], r["service_id"], r["kind"], r["message"], dict(r["data"]), r["operator_id"],
                             r["created_at"]) for r in rows]
        return Page(items, total, limit, offset)

    @staticmethod
    async def _check_name(conn: asyncpg.Connection, name: str, exclude: uuid.UUID | None) -> None:
        if await conn.fetchrow(Q["services.name_taken"], name, exclude):
            raise Conflict(f"a service named {name!r} already exists", field="name")


def _credentials_for(provider: str, raw: Mapping[str, Any], provider_kept: bool) -> Any:
    """Credentials checked against the (stored or new) provider. Credentials of another
    provider's shape sent without `provider` conflict with the stored provider (409)."""
    try:
        return parse_credentials(provider, raw)
    except ValidationError:
        if provider_kept and any(_fits(other, raw) for other in ("engagelab", "smtp") if other != provider):
            raise Conflict(f"these credentials are for another provider than this service's ({provider}); "
                           "send provider with them", field="credentials") from None
        raise


def _fits(provider: str, raw: Mapping[str, Any]) -> bool:
    try:
        parse_credentials(provider, raw)
    except ValidationError:
        return False
    return True


_EDITABLE = ("name", "provider", "domain", "base_url", "daily_quota", "reset_time", "send_interval", "enabled",
             "freeze_after", "warmup", "warmup_started", "request_timeout", "unfreeze_after",
             "probe_before_unfreeze")


def _merged(old: Mapping[str, Any], patch: ServicePatch) -> dict[str, Any]:
    """The editable columns after the patch, in their database types."""
    new = {k: old[k] for k in _EDITABLE}
    for k in _EDITABLE:
        if k in ("warmup", "warmup_started"):
            continue  # a ramp is checked and dated by update()
        value = getattr(patch, k)
        if value is not msgspec.UNSET:
            new[k] = value
    if isinstance(new["reset_time"], str):
        new["reset_time"] = parse_hhmm(new["reset_time"])
    new["domain"] = new["domain"].lower()
    return new


def _shown(value: Any) -> Any:
    """A column value as the status log stores it (JSON)."""
    if isinstance(value, time):
        return format_hhmm(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _update_message(changes: dict[str, dict[str, Any]]) -> str:
    parts = []
    for k, c in changes.items():
        # Credentials are named only: even their masked views stay in `data`.
        parts.append(k if k == "credentials" else f"{k} {c['old']} → {c['new']}")
    text = "updated: " + ", ".join(parts)
    if "reset_time" in changes:
        text += " (no reset now; the next one follows the new time)"
    return text
