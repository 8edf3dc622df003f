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


# A character str.strip() keeps, spelled out: Python's `\s` (and strip) also takes \x1c-\x1f and
# \x85, ECMAScript's `\s` takes \ufeff, so `\S` in the document meant another thing than in here.
NOT_SPACE = r"[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
