"""Domain groups and the engine-wide per-minute cap as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from engine.store.service_models import Name

# One recipient domain (a hostname of two labels or more, any case: stored lower-cased), and a
# pattern of one or more of them separated by `|`, the seed's form (`163.com|126.com`).
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
# Not held to DNS's 253 characters: a lookahead that states it stalls Schemathesis' generator, and
# an over-long name only matches no recipient (the table's check is the pattern's own bound).
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})+"
Pattern = Annotated[str, msgspec.Meta(
    min_length=3, max_length=4000, pattern=rf"^{_DOMAIN}(?:\|{_DOMAIN})*$(?!\n)",
    description="recipient domains separated by `|` (`163.com|126.com`); case is ignored, repeats count once; "
                "a domain belongs to one group at most (409 CONFLICT, field `pattern`)")]
Limit = Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
RateLimit = Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]

# What DomainGroupStore checks and the document states: a group limits something.
AT_LEAST_ONE_LIMIT = {"anyOf": [
    {"properties": {"per_minute": {"type": "integer"}}, "required": ["per_minute"]},
    {"properties": {"per_day": {"type": "integer"}}, "required": ["per_day"]},
]}


class DomainGroupIn(msgspec.Struct, forbid_unknown_fields=True):
    """At most `per_minute` requests in any 60 s and `per_day` per business day (EDM_BUSINESS_TZ)
    to the group's domains: across all services, or for each service on its own with
    `per_service`. At least one of the two limits is required; null = no limit of that kind."""

    name: Name
    pattern: Pattern
    per_minute: Limit | None = None
    per_day: Limit | None = None
    per_service: bool = False


DomainGroupInBody = Annotated[DomainGroupIn, msgspec.Meta(extra_json_schema=AT_LEAST_ONE_LIMIT)]


class DomainGroupPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Any subset; `pattern` replaces the domains whole; a limit set to null is removed (one
    must remain: else 422 UNPROCESSABLE, field `per_minute`)."""

    name: Name | UnsetType = UNSET
    pattern: Pattern | UnsetType = UNSET
    per_minute: Limit | None | UnsetType = UNSET
    per_day: Limit | None | UnsetType = UNSET
    per_service: bool | UnsetType = UNSET


class ServiceUsage(msgspec.Struct):
    service_id: uuid.UUID
    last_minute: int
    today: int


class DomainGroup(msgspec.Struct):
    id: uuid.UUID
    name: str
    # The domains, lower-cased, in the order given, joined by `|`.
    pattern: str
    domains: list[str]
    per_minute: int | None
    per_day: int | None
    per_service: bool
    # Requests to the group's domains in the last 60 s and in the business day, from subtasks
    # (what the engine counts; throttled and never-made requests do not count). For a per-service
    # group: those of its busiest service, and each service's in `services`.
    used_last_minute: int
    used_today: int
    services: list[ServiceUsage]
    # Is a limit reached right now (the dispatcher skips its recipients until it frees)?
    at_limit: bool
    created_at: datetime
    updated_at: datetime


class RateLimitIn(msgspec.Struct, forbid_unknown_fields=True):
    """`per_minute`: most requests in any 60 s across the engine, 0 = no cap; null = back to the
    EDM_SEND_RATE_LIMIT setting."""

    per_minute: RateLimit | None


class SendRateLimit(msgspec.Struct):
    # The cap in force (0 = none), where it comes from, and the requests of the last 60 s.
    per_minute: int
    source: Literal["setting", "admin"]
    used_last_minute: int
