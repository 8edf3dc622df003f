"""Ids and states shared by every layer: `NewType` ids over UUIDs, `Literal` statuses."""

from __future__ import annotations

import uuid
from typing import Literal, NewType

UserId = NewType("UserId", uuid.UUID)
CampaignId = NewType("CampaignId", uuid.UUID)
ServiceId = NewType("ServiceId", uuid.UUID)
SubtaskId = NewType("SubtaskId", uuid.UUID)

Role = Literal["admin", "user"]
CampaignStatus = Literal["pending", "running", "paused", "completed", "failed", "cancelled"]
SubtaskStatus = Literal["pending", "sending", "sent", "failed", "cancelled"]
# Campaigns whose subtasks may still be sent.
ACTIVE_STATUSES: frozenset[str] = frozenset({"running", "paused"})
FINISHED_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
