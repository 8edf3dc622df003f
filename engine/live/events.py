"""Engine events: written as campaign_events rows, and published live behind `EventSink`.

Publishing never blocks dispatch: a sink takes an event synchronously and ships it on its own
time (a later Redis Streams sink buffers and writes from its own task).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, Literal, Protocol

import asyncpg
import msgspec

from engine.infra.queries import Q

log = logging.getLogger("edm.engine.events")

Subject = Literal["campaign", "service", "alert"]


class EngineEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One live event: a campaign or service change, or an alert for operators."""

    subject: Subject
    kind: str
    id: str
    message: str = ""
    data: dict[str, Any] = {}
    at: datetime | None = None


class EventSink(Protocol):
    def publish(self, event: EngineEvent) -> None:
        """Take the event without waiting (never awaits the network)."""
        ...


class LogSink:
    """Publishes to the structured log only (no live stream configured)."""

    def publish(self, event: EngineEvent) -> None:
        level = logging.WARNING if event.subject == "alert" else logging.DEBUG if event.kind in CHATTY \
            else logging.INFO
        log.log(level, "engine_event subject=%s kind=%s id=%s message=%s", event.subject, event.kind, event.id,
                event.message)


class MemorySink:
    """Keeps every event in a list (tests, the demo)."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def publish(self, event: EngineEvent) -> None:
        self.events.append(event)

    def kinds(self, subject: Subject | None = None) -> list[str]:
        return [e.kind for e in self.events if subject is None or e.subject == subject]


class CampaignEvent(msgspec.Struct, frozen=True):
    campaign_id: uuid.UUID
    kind: str
    message: str = ""
    data: dict[str, Any] = {}


class Names(Protocol):
    """Where live events find the names they carry (the leader's hot state)."""

    def service_name(self, service_id: uuid.UUID) -> str | None: ...

    def campaign_name(self, campaign_id: uuid.UUID) -> str | None: ...


class NoNames:
    def service_name(self, service_id: uuid.UUID) -> str | None:
        return None

    def campaign_name(self, campaign_id: uuid.UUID) -> str | None:
        return None


# Frequent kinds: the log sink writes them at DEBUG so they do not drown the INFO log.
CHATTY = frozenset({"progress", "interval_started", "quota_used"})


class EventWriter:
    """Writes campaign events (one set-based insert per batch) and publishes them.

    Every live campaign or service event carries the campaign's or service's name (`campaign`,
    `service` in `data`) when the hot state knows it, so readers can label and filter by name.
    """

    def __init__(self, sink: EventSink, names: Names | None = None):
        self.sink = sink
        self.names: Names = names or NoNames()

    async def write(self, conn: asyncpg.Connection | asyncpg.Pool, events: list[CampaignEvent],
                    at: datetime) -> None:
        if not events:
            return
        await conn.execute(Q["engine.events_many"], [e.campaign_id for e in events], [e.kind for e in events],
                           [e.message for e in events], [e.data for e in events], [at] * len(events))
        # Live readers filter by owner: the stream copy carries the campaign's user id (and its name).
        rows = await conn.fetch(Q["engine.campaign_owners"], list({e.campaign_id for e in events}))
        known = {r["id"]: (r["user_id"], r["name"]) for r in rows}
        for e in events:
            owner, name = known.get(e.campaign_id, (None, None))
            self.publish_campaign(e, at, owner, name)

    def publish_campaign(self, e: CampaignEvent, at: datetime, user_id: uuid.UUID | None = None,
                         name: str | None = None) -> None:
        data = {**e.data, "user_id": str(user_id)} if user_id is not None else dict(e.data)
        name = name if name is not None else self.names.campaign_name(e.campaign_id)
        if name is not None:
            data.setdefault("campaign", name)
        self.sink.publish(EngineEvent(subject="campaign", kind=e.kind, id=str(e.campaign_id), message=e.message,
                                      data=data, at=at))

    def service(self, service_id: uuid.UUID, kind: str, message: str, at: datetime,
                data: dict[str, Any] | None = None) -> None:
        data = dict(data or {})
        name = self.names.service_name(service_id)
        if name is not None:
            data.setdefault("service", name)
            if message and not message.startswith(name):
                message = f"{name}: {message}"
        self.sink.publish(EngineEvent(subject="service", kind=kind, id=str(service_id), message=message,
                                      data=data, at=at))

    def alert(self, service_id: uuid.UUID, kind: str, message: str, at: datetime) -> None:
        self.sink.publish(EngineEvent(subject="alert", kind=kind, id=str(service_id), message=message, at=at))
