"""Alert channels, rules and alerts as the API takes and shows them (never with a whole secret)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from engine.domain.alert_formats import CHANNEL_KINDS, ChannelKind
from engine.domain.alert_rules import THRESHOLDS, RuleKind
from engine.infra.secret_box import mask
from engine.store.service_models import BaseUrl, Name
from engine.domain.types import NOT_SPACE

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=rf"^{NOT_SPACE}+$(?!\n)")]
Threshold = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]
ChannelIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=20)]
# The generic webhook's HMAC key: long enough to be a key, not a password.
WEBHOOK_SECRET_MIN = 16


class ChannelIn(msgspec.Struct, forbid_unknown_fields=True):
    """`url` as the robot's settings page gives it (its token included); `secret`: the webhook's
    HMAC key (required), DingTalk's 加签 secret (optional); WeCom and Slack take none."""

    name: Name
    kind: ChannelKind
    url: BaseUrl
    secret: Secret | None = None
    enabled: bool = True


# What AlertStore._check_secret checks, stated per kind: a webhook needs a secret of at least
# WEBHOOK_SECRET_MIN characters; WeCom and Slack take none; DingTalk's is optional.
_NO_SECRET = ("wecom", "slack")
CHANNEL_PER_KIND = {"oneOf": [
    {"properties": {"kind": {"const": "webhook"}, "secret": {"type": "string", "minLength": WEBHOOK_SECRET_MIN}},
     "required": ["kind", "secret"]},
    {"properties": {"kind": {"enum": list(_NO_SECRET)}, "secret": {"type": "null"}}, "required": ["kind"]},
    {"properties": {"kind": {"enum": [k for k in CHANNEL_KINDS if k != "webhook" and k not in _NO_SECRET]}},
     "required": ["kind"]},
]}
ChannelInBody = Annotated[ChannelIn, msgspec.Meta(extra_json_schema=CHANNEL_PER_KIND)]


class ChannelPatch(msgspec.Struct, forbid_unknown_fields=True):
    """Any subset; `secret: null` removes it (where the kind allows)."""

    name: Name | UnsetType = UNSET
    url: BaseUrl | UnsetType = UNSET
    secret: Secret | None | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class Channel(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    # Masked: the scheme and host whole, the rest as `…b868`; the secret as `63b8…b868`.
    url: str
    secret: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class RuleIn(msgspec.Struct, forbid_unknown_fields=True):
    """`threshold` per kind (see the README); omitted = the kind's default."""

    name: Name
    kind: RuleKind
    threshold: Threshold | None = None
    channel_ids: ChannelIds = []
    enabled: bool = True


def _threshold_of(spec: tuple[str, int, int, int] | None) -> dict[str, Any]:
    if spec is None:
        return {"type": "null"}
    what, low, high, _ = spec
    return {"anyOf": [{"type": "integer", "minimum": low, "maximum": high, "description": what}, {"type": "null"}]}


# What threshold_error checks, stated per kind: its bounds, or no threshold at all.
RULE_PER_KIND = {"oneOf": [{"properties": {"kind": {"const": k}, "threshold": _threshold_of(spec)},
                            "required": ["kind"]} for k, spec in THRESHOLDS.items()]}
RuleInBody = Annotated[RuleIn, msgspec.Meta(extra_json_schema=RULE_PER_KIND)]


class RulePatch(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | UnsetType = UNSET
    threshold: Threshold | None | UnsetType = UNSET
    channel_ids: ChannelIds | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class Rule(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    # The threshold in force (the kind's default when none was given); null for kinds without one.
    threshold: int | None
    channel_ids: list[uuid.UUID]
    enabled: bool
    created_at: datetime
    updated_at: datetime


DeliveryState = Literal["pending", "delivered", "failed"]


class Delivery(msgspec.Struct):
    channel_id: uuid.UUID
    channel: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


class Alert(msgspec.Struct):
    id: uuid.UUID
    rule_id: uuid.UUID
    rule: str
    kind: str
    subject: str
    message: str
    data: dict[str, Any]
    opened_at: datetime
    cleared_at: datetime | None
    deliveries: list[Delivery]


class AlertQuery(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["open", "cleared", "all"] = "all"
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    offset: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 0


class TestResult(msgspec.Struct):
    delivered: bool
    error: str | None


def mask_url(url: str) -> str:
    """`https://qyapi.weixin.qq.com/…b868`: who is called, never the token in the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    origin = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    rest = url[url.index(parts.netloc) + len(parts.netloc):] if parts.netloc else url
    return origin + ("/…" + rest[-4:] if len(rest) >= 12 else "/…")


def channel_hint(url: str, secret: str | None) -> dict[str, Any]:
    return {"url": mask_url(url), "secret": mask(secret) if secret else None}
