"""Sending limits as the dashboard reads them: domain groups with their usage, and the engine-wide
per-minute cap (GET /domain-groups, GET /engine/send-rate-limit)."""

from __future__ import annotations

import msgspec


class GroupServiceUsage(msgspec.Struct, frozen=True):
    service_id: str
    last_minute: int
    today: int


class DomainGroupRow(msgspec.Struct, frozen=True):
    id: str
    name: str
    pattern: str
    per_minute: int | None
    per_day: int | None
    per_service: bool
    used_last_minute: int
    used_today: int
    at_limit: bool
    services: list[GroupServiceUsage] = msgspec.field(default_factory=list)


class SendRateLimitRow(msgspec.Struct, frozen=True):
    per_minute: int
    source: str
    used_last_minute: int
