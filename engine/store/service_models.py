"""Sending services as the API takes and shows them (never with a whole secret)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal, NewType

import msgspec
from msgspec import UNSET, UnsetType

from engine.domain.quota_day import HHMM
from engine.domain.types import NOT_SPACE
from engine.store.service_credentials import Provider

ServiceId = NewType("ServiceId", uuid.UUID)
StatusKind = Literal["created", "updated", "enabled", "disabled", "frozen", "unfrozen", "throttled", "reset",
                     "manual_adjust", "probe_failed"]

# Every pattern ends in `$(?!\n)`: Python's `$` alone also accepts a trailing newline.
# No leading or trailing blanks and no control characters, so "Main" and "Main " cannot both exist.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100,
                                   pattern=r"^[^\s\x00-\x1f](?:[^\x00-\x1f]*[^\s\x00-\x1f])?$(?!\n)")]
# A DNS hostname with at least two labels: the from-address is `sender@domain`.
Domain = Annotated[str, msgspec.Meta(
    max_length=253,
    pattern=r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$(?!\n)")]
# An IPv6 literal in its hexadecimal forms (a loose `[0-9a-f:.]+` let `[0]` through, which no
# URL parser takes).
_H = "[0-9A-Fa-f]{1,4}"
_IPV6 = (f"(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,7}}:|(?:{_H}:){{1,6}}:{_H}|(?:{_H}:){{1,5}}(?::{_H}){{1,2}}"
         f"|(?:{_H}:){{1,4}}(?::{_H}){{1,3}}|(?:{_H}:){{1,3}}(?::{_H}){{1,4}}|(?:{_H}:){{1,2}}(?::{_H}){{1,5}}"
         f"|{_H}:(?::{_H}){{1,6}}|:(?:(?::{_H}){{1,7}}|:))")
_PORT = "(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
BaseUrl = Annotated[str, msgspec.Meta(
    max_length=2048,
    # The path: NOT_SPACE, not \S (Python's \s also holds \x1c-\x1f and \x85, the document's does not).
    pattern=rf"^https?://(\[{_IPV6}\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:{_PORT})?(/{NOT_SPACE}*)?$(?!\n)")]
DailyQuota = Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
ResetTime = Annotated[str, msgspec.Meta(pattern=HHMM)]
SendInterval = Annotated[int, msgspec.Meta(gt=0, le=86_400)]
# Consecutive provider failures that freeze the service abnormally; null = the engine's default (10).
FreezeAfter = Annotated[int, msgspec.Meta(ge=1, le=1000)]
RampQuota = Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
# Seconds a freeze by the engine (failures in a row, reputation guard) lasts before it lifts itself
# (after a credentials probe with probe_before_unfreeze); null = until an administrator unfreezes it.
UnfreezeAfter = Annotated[int, msgspec.Meta(ge=10, le=604_800)]


class Warmup(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A warm-up ramp: `schedule` (the quota of day 1, 2, …) or `start` times `factor` per day."""

    schedule: Annotated[list[RampQuota], msgspec.Meta(min_length=1, max_length=365)] | None = None
    start: RampQuota | None = None
    factor: Annotated[float, msgspec.Meta(gt=1, le=10)] | None = None


# What Ramp.problem checks, stated: a schedule *or* start and factor (null counts as absent), or
# no ramp (null). That a schedule never goes down no JSON Schema states: a 422 UNPROCESSABLE.
_WARMUP_ONE_OF = {"oneOf": [
    {"type": "null"},
    {"type": "object", "required": ["schedule"],
     "properties": {"schedule": {"type": "array"}, "start": {"type": "null"}, "factor": {"type": "null"}}},
    {"type": "object", "required": ["start", "factor"],
     "properties": {"schedule": {"type": "null"}, "start": {"type": "integer"}, "factor": {"type": "number"}}},
]}
WarmupOrNone = Annotated[Warmup | None, msgspec.Meta(extra_json_schema=_WARMUP_ONE_OF)]
# Seconds the provider has to answer one request, once it has its connection.
RequestTimeout = Annotated[int, msgspec.Meta(ge=1, le=300)]
DEFAULT_REQUEST_TIMEOUT = 30
# Checked against the provider's shape by engine.store.service_credentials; errors name the key.
CredentialsIn = Annotated[dict[str, Any], msgspec.Meta(
    description='engagelab: {api_user, api_key}; smtp: {host, port, username, password, '
                'tls: "starttls"|"tls"|"none"}')]


def _credential_schemas() -> dict[str, dict[str, Any]]:
    from engine.store.service_credentials import EngageLabCredentials, SmtpCredentials

    (el, smtp), defs = msgspec.json.schema_components([EngageLabCredentials, SmtpCredentials])
    return {"engagelab": defs["EngageLabCredentials"], "smtp": defs["SmtpCredentials"]}


_CREDENTIALS = _credential_schemas()
# The document states what parse_credentials checks: the credentials' shape follows the provider.
PER_PROVIDER = {"oneOf": [{"properties": {"provider": {"const": p}, "credentials": s}, "required": ["provider"]}
                          for p, s in _CREDENTIALS.items()]}
ANY_PROVIDER = {"properties": {"credentials": {"oneOf": list(_CREDENTIALS.values())}}}


class ServiceIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    provider: Provider
    domain: Domain
    credentials: CredentialsIn
    daily_quota: DailyQuota
    reset_time: ResetTime
    send_interval: SendInterval
    base_url: BaseUrl | None = None
    enabled: bool = True
    freeze_after: FreezeAfter | None = None
    # Day 1 is the current quota day (today's quota is the ramp's first).
    warmup: WarmupOrNone = None
    request_timeout: RequestTimeout = DEFAULT_REQUEST_TIMEOUT
    unfreeze_after: UnfreezeAfter | None = None
    probe_before_unfreeze: bool = False


class ServicePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Any subset of the fields; credentials are replaced whole; `base_url: null` clears it."""

    name: Name | UnsetType = UNSET
    provider: Provider | UnsetType = UNSET
    domain: Domain | UnsetType = UNSET
    credentials: CredentialsIn | UnsetType = UNSET
    daily_quota: DailyQuota | UnsetType = UNSET
    reset_time: ResetTime | UnsetType = UNSET
    send_interval: SendInterval | UnsetType = UNSET
    base_url: BaseUrl | None | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    freeze_after: FreezeAfter | None | UnsetType = UNSET
    # A new ramp (or null: none) takes effect at the next reset; its day 1 is that quota day.
    warmup: WarmupOrNone | UnsetType = UNSET
    request_timeout: RequestTimeout | UnsetType = UNSET
    # Applies to the next freeze; a freeze in force comes due this many seconds after the change
    # (null: it lasts until an administrator unfreezes it).
    unfreeze_after: UnfreezeAfter | None | UnsetType = UNSET
    probe_before_unfreeze: bool | UnsetType = UNSET


class Service(msgspec.Struct):
    id: uuid.UUID
    name: str
    provider: str
    domain: str
    # The masked view: plain fields whole, secrets as `63b8…b868`.
    credentials: dict[str, Any]
    base_url: str | None
    daily_quota: int
    reset_time: str
    send_interval: int
    request_timeout: int
    enabled: bool
    used_today: int
    remaining_today: int
    quota_day_start: datetime
    # The first reset after quota_day_start; in the past only while a reset is overdue.
    next_reset_at: datetime
    last_request_at: datetime | None
    consecutive_failures: int
    abnormal_frozen: bool
    abnormal_reason: str | None
    throttled_until: datetime | None
    # Failures in a row that freeze it; null = the engine's default (10).
    freeze_after: int | None
    warmup: dict[str, Any] | None
    # The ramp's day 1 (business calendar); the current quota day's ramp day and quota
    # (null without a ramp, before it starts, or once it has reached the full quota).
    warmup_started: date | None
    warmup_day: int | None
    warmup_quota: int | None
    # Timed unfreeze of an engine freeze: seconds (null = an administrator unfreezes it), whether
    # a credentials probe must pass first, and when the freeze in force comes due (null if none).
    unfreeze_after: int | None
    probe_before_unfreeze: bool
    frozen_until: datetime | None
    created_at: datetime
    updated_at: datetime


class StatusEntry(msgspec.Struct):
    id: int
    service_id: uuid.UUID
    kind: str
    message: str
    data: dict[str, Any]
    operator_id: uuid.UUID | None
    created_at: datetime


class ServiceBrief(msgspec.Struct):
    """A service as a mapped user sees it: name and state, nothing about credentials."""

    id: uuid.UUID
    name: str
    domain: str
    enabled: bool
    abnormal_frozen: bool
    daily_quota: int
    used_today: int
    remaining_today: int
    next_reset_at: datetime


class UserServices(msgspec.Struct):
    user_id: uuid.UUID
    service_ids: list[uuid.UUID]
    services: list[ServiceBrief]
    # None until an administrator first sets the user's mapping.
    updated_at: datetime | None


ServiceInBody = Annotated[ServiceIn, msgspec.Meta(extra_json_schema=PER_PROVIDER)]
# A patch may change the provider and credentials together, or the credentials alone (checked
# against the stored provider, which the document cannot know).
ServicePatchBody = Annotated[ServicePatch, msgspec.Meta(extra_json_schema={
    "if": {"required": ["provider"]}, "then": PER_PROVIDER, "else": ANY_PROVIDER})]
