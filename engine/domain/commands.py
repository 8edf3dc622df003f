"""What the API may ask of the engine: a narrow protocol, so the API never sees the runtime.

The leader applies each command to its hot state and persists it; a process that does not lead
forwards the same command to the leader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class TestSendResult:
    """What a test send did: `sent`, `failed` or `throttled` (not counted), and how."""

    status: str
    to: str
    service_id: uuid.UUID
    from_address: str
    subject: str
    # The one-recipient campaign that records it; its subtask id was the provider request id.
    record_campaign_id: uuid.UUID
    subtask_id: uuid.UUID
    message_id: str | None
    error: str | None
    attempted_at: datetime


class EngineCommands(Protocol):
    async def campaign_saved(self, campaign_id: uuid.UUID) -> None:
        """A campaign was created or edited: start it now if it is due."""

    async def cancel_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> int:
        """Cancel a running or paused campaign; returns the refunded units."""

    async def pause_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> None: ...

    async def resume_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID | None) -> None: ...

    async def campaign_requeued(self, campaign_id: uuid.UUID) -> None:
        """A finished campaign's failed recipients were re-queued (a retry): load it again."""

    async def guard_frozen(self, service_id: uuid.UUID, reason: str) -> None:
        """The reputation guard froze the service abnormally (already written): stop sending."""

    async def campaign_changed(self, campaign_id: uuid.UUID) -> None:
        """A running or paused campaign's settings changed (its send window): reload it."""

    async def services_changed(self, service_id: uuid.UUID) -> None:
        """A service was created or edited (enable, disable, quota, interval, reset time)."""

    async def remaining_set(self, service_id: uuid.UUID, remaining: int) -> None:
        """An administrator set today's remaining quota by hand (the row is written)."""

    async def mapping_changed(self, user_id: uuid.UUID) -> None: ...

    async def domain_limits_changed(self) -> None:
        """Domain groups or the engine-wide per-minute cap changed (written): reload them."""

    async def quota_changed(self, user_id: uuid.UUID) -> None: ...

    async def unfreeze(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> None: ...

    async def reset_now(self, service_id: uuid.UUID, operator_id: uuid.UUID | None) -> None: ...

    async def test_send(self, caller: uuid.UUID, is_admin: bool, service_id: uuid.UUID, to: str, *,
                        campaign_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None,
                        sender: str | None = None) -> TestSendResult:
        """Send one rendered message of a campaign or template to `to` through the service, counted
        like any send (interval, daily quota, the owner's quota)."""
