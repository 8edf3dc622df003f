"""Campaign rows as typed structs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

from engine.domain.types import CampaignStatus

ACTIVE: tuple[CampaignStatus, ...] = ("pending", "running", "paused")


class Campaign(msgspec.Struct):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    sender_id: uuid.UUID | None
    sender_name: str
    status: str
    pause_reason: str | None
    failure_reason: str | None
    scheduled_at: datetime | None
    reserved: int
    planned: int
    total: int
    sent_count: int
    failed_count: int
    cancelled_count: int
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TemplateRef(msgspec.Struct):
    id: uuid.UUID
    name: str
    position: int


class TagRef(msgspec.Struct):
    id: uuid.UUID
    name: str


class CampaignDetail(Campaign):
    templates: list[TemplateRef]
    include_tags: list[TagRef]
    exclude_tags: list[TagRef]


class CampaignEvent(msgspec.Struct):
    id: int
    campaign_id: uuid.UUID
    kind: str
    message: str
    data: dict[str, Any]
    created_at: datetime


class Subtask(msgspec.Struct):
    id: uuid.UUID
    seq: int
    email: str
    template_id: uuid.UUID
    status: str
    service_id: uuid.UUID | None
    from_address: str | None
    attempted_at: datetime | None
    settled_at: datetime | None
    message_id: str | None
    error: str | None
