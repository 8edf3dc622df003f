"""The alert store (admin API): channels, rules and the list of alerts with their delivery state.

A channel's URL and secret are sealed together (robot URLs carry their access token); only the
masked view leaves the database, except through `open_channel` for the one who sends.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

import asyncpg
import msgspec

from engine.domain.alert_rules import effective_threshold, threshold_error
from engine.domain.errors import Conflict, EdmError, NotFound, Unprocessable, ValidationError
from engine.infra.queries import Q
from engine.infra.secret_box import SecretBox
from engine.store.alert_models import (
    WEBHOOK_SECRET_MIN,
    Alert,
    Channel,
    ChannelIn,
    ChannelPatch,
    Delivery,
    Rule,
    RuleIn,
    RulePatch,
    channel_hint,
)
from engine.store.rows import Page

log = logging.getLogger("edm.alerts")


def channel_of(row: Mapping[str, Any]) -> Channel:
    hint = dict(row["config_hint"])
    return Channel(row["id"], row["name"], row["kind"], hint.get("url", ""), hint.get("secret"), row["enabled"],
                   row["created_at"], row["updated_at"])


def rule_of(row: Mapping[str, Any]) -> Rule:
    return Rule(row["id"], row["name"], row["kind"], effective_threshold(row["kind"], row["threshold"]),
                list(row["channel_ids"]), row["enabled"], row["created_at"], row["updated_at"])


# On create the kind is in the body and the document states these rules per kind (400); on a
# PATCH the kind is the stored one, which no schema of the body can know (422 UNPROCESSABLE).
def _check_secret(kind: str, secret: str | None, error: type[EdmError] = ValidationError) -> None:
    if kind == "webhook" and (secret is None or len(secret) < WEBHOOK_SECRET_MIN):
        raise error(f"a webhook channel needs a secret of at least {WEBHOOK_SECRET_MIN} characters "
                    "(it signs every delivery)", field="secret")
    if kind in ("wecom", "slack") and secret is not None:
        raise error(f"a {kind} channel takes no secret (its token is part of the URL)", field="secret")


def _check_threshold(kind: str, threshold: int | None, error: type[EdmError] = ValidationError) -> None:
    problem = threshold_error(kind, threshold)
    if problem is not None:
        raise error(problem, field="threshold")


@dataclass
class AlertStore:
    pool: asyncpg.Pool
    box: SecretBox

    # -- channels ----------------------------------------------------------------------------------

    async def create_channel(self, body: ChannelIn) -> Channel:
        _check_secret(body.kind, body.secret)
        async with self.pool.acquire() as conn, conn.transaction():
            await self._channel_name_free(conn, body.name, None)
            try:
                row = await conn.fetchrow(Q["alerts.channel_insert"], body.name, body.kind,
                                          self.box.seal({"url": body.url, "secret": body.secret}),
                                          channel_hint(body.url, body.secret), body.enabled)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a channel named {body.name!r} already exists", field="name") from None
        log.info("alert_channel_created id=%s kind=%s", row["id"], body.kind)
        return channel_of(row)

    async def get_channel(self, channel_id: uuid.UUID) -> Channel:
        row = await self.pool.fetchrow(Q["alerts.channel_get"], channel_id)
        if row is None:
            raise NotFound("channel not found", field="id")
        return channel_of(row)

    async def list_channels(self, limit: int, offset: int) -> Page[Channel]:
        rows = await self.pool.fetch(Q["alerts.channel_list"], limit, offset)
        return Page([channel_of(r) for r in rows], int(rows[0]["total"]) if rows else 0, limit, offset)

    async def open_channel(self, channel_id: uuid.UUID) -> tuple[Channel, str, str | None]:
        """The channel with its plain URL and secret (for a test send only)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(Q["alerts.channel_sealed"], channel_id)
        if row is None:
            raise NotFound("channel not found", field="id")
        config = self.box.open(row["config"])
        return await self.get_channel(channel_id), config["url"], config.get("secret")

    async def update_channel(self, channel_id: uuid.UUID, patch: ChannelPatch) -> Channel:
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(Q["alerts.channel_sealed"], channel_id)
            if old is None:
                raise NotFound("channel not found", field="id")
            config = self.box.open(old["config"])
            url = config["url"] if patch.url is msgspec.UNSET else patch.url
            secret = config.get("secret") if patch.secret is msgspec.UNSET else patch.secret
            name = old["name"] if patch.name is msgspec.UNSET else patch.name
            enabled = old["enabled"] if patch.enabled is msgspec.UNSET else patch.enabled
            _check_secret(old["kind"], secret, Unprocessable)
            if name != old["name"]:
                await self._channel_name_free(conn, name, channel_id)
            try:
                row = await conn.fetchrow(Q["alerts.channel_update"], channel_id, name,
                                          self.box.seal({"url": url, "secret": secret}), channel_hint(url, secret),
                                          enabled)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a channel named {name!r} already exists", field="name") from None
        log.info("alert_channel_updated id=%s", channel_id)
        return channel_of(row)

    async def delete_channel(self, channel_id: uuid.UUID) -> None:
        if await self.pool.fetchval(Q["alerts.channel_delete"], channel_id) is None:
            raise NotFound("channel not found", field="id")
        log.info("alert_channel_deleted id=%s", channel_id)

    @staticmethod
    async def _channel_name_free(conn: asyncpg.Connection, name: str, exclude: uuid.UUID | None) -> None:
        if await conn.fetchrow(Q["alerts.channel_name_taken"], name, exclude):
            raise Conflict(f"a channel named {name!r} already exists", field="name")

    # -- rules -------------------------------------------------------------------------------------

    async def create_rule(self, body: RuleIn) -> Rule:
        _check_threshold(body.kind, body.threshold)
        async with self.pool.acquire() as conn, conn.transaction():
            await self._rule_name_free(conn, body.name, None)
            await self._channels_known(conn, body.channel_ids)
            try:
                rule_id = await conn.fetchval(Q["alerts.rule_insert"], body.name, body.kind, body.threshold,
                                              body.enabled)
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a rule named {body.name!r} already exists", field="name") from None
            await conn.execute(Q["alerts.rule_add_channels"], rule_id, body.channel_ids)
            row = await conn.fetchrow(Q["alerts.rule_get"], rule_id)
        log.info("alert_rule_created id=%s kind=%s", rule_id, body.kind)
        return rule_of(row)

    async def get_rule(self, rule_id: uuid.UUID) -> Rule:
        row = await self.pool.fetchrow(Q["alerts.rule_get"], rule_id)
        if row is None:
            raise NotFound("rule not found", field="id")
        return rule_of(row)

    async def list_rules(self, limit: int, offset: int) -> Page[Rule]:
        rows = await self.pool.fetch(Q["alerts.rule_list"], limit, offset)
        return Page([rule_of(r) for r in rows], int(rows[0]["total"]) if rows else 0, limit, offset)

    async def update_rule(self, rule_id: uuid.UUID, patch: RulePatch) -> Rule:
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(Q["alerts.rule_lock"], rule_id)
            if old is None:
                raise NotFound("rule not found", field="id")
            name = old["name"] if patch.name is msgspec.UNSET else patch.name
            threshold = old["threshold"] if patch.threshold is msgspec.UNSET else patch.threshold
            enabled = old["enabled"] if patch.enabled is msgspec.UNSET else patch.enabled
            _check_threshold(old["kind"], threshold, Unprocessable)
            if name != old["name"]:
                await self._rule_name_free(conn, name, rule_id)
            await conn.execute(Q["alerts.rule_update"], rule_id, name, threshold, enabled)
            if patch.channel_ids is not msgspec.UNSET:
                await self._channels_known(conn, patch.channel_ids)
                await conn.execute(Q["alerts.rule_clear_channels"], rule_id)
                await conn.execute(Q["alerts.rule_add_channels"], rule_id, patch.channel_ids)
            row = await conn.fetchrow(Q["alerts.rule_get"], rule_id)
        log.info("alert_rule_updated id=%s", rule_id)
        return rule_of(row)

    async def delete_rule(self, rule_id: uuid.UUID) -> None:
        if await self.pool.fetchval(Q["alerts.rule_delete"], rule_id) is None:
            raise NotFound("rule not found", field="id")
        log.info("alert_rule_deleted id=%s", rule_id)

    @staticmethod
    async def _rule_name_free(conn: asyncpg.Connection, name: str, exclude: uuid.UUID | None) -> None:
        if await conn.fetchrow(Q["alerts.rule_name_taken"], name, exclude):
            raise Conflict(f"a rule named {name!r} already exists", field="name")

    @staticmethod
    async def _channels_known(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
        known = {r["id"] for r in await conn.fetch(Q["alerts.channels_known"], ids)}
        for i, cid in enumerate(ids):
            if cid not in known:
                raise NotFound(f"no alert channel {cid}", field=f"channel_ids[{i}]")

    # -- alerts ------------------------------------------------------------------------------------

    async def list_alerts(self, state: str, limit: int, offset: int) -> Page[Alert]:
        rows = await self.pool.fetch(Q["alerts.alert_list"], state, limit, offset)
        items = [Alert(r["id"], r["rule_id"], r["rule"], r["kind"], r["subject"], r["message"], dict(r["data"]),
                       r["opened_at"], r["cleared_at"],
                       [msgspec.convert(d, Delivery) for d in r["deliveries"]]) for r in rows]
        return Page(items, int(rows[0]["total"]) if rows else 0, limit, offset)
