"""The feedback stores as the API builds them from its dependencies."""

from __future__ import annotations

from api.deps import Deps
from engine.domain.reputation import GuardPolicy
from engine.live.events import EventSink, EventWriter, LogSink
from engine.store.feedback import FeedbackPolicy, FeedbackStore
from engine.store.suppression import SuppressionStore


def event_writer(d: Deps) -> EventWriter:
    sink: EventSink = d.publisher if d.publisher is not None else LogSink()  # type: ignore[assignment]
    return EventWriter(sink)


def feedback_store(d: Deps) -> FeedbackStore:
    s = d.settings
    policy = FeedbackPolicy(s.soft_bounce_limit, GuardPolicy(
        window=s.guard_window, min_sends=s.guard_min_sends, complaint_rate=s.guard_complaint_rate,
        hard_bounce_rate=s.guard_hard_bounce_rate))
    return FeedbackStore(d.pool, event_writer(d), policy)


def suppression_store(d: Deps) -> SuppressionStore:
    return SuppressionStore(d.pool, event_writer(d))


def link_key(d: Deps) -> bytes:
    """The key recipient links are signed with (the engine derives the same one)."""
    return d.box.derive("recipient-links")


async def after_feedback(d: Deps, refunded_users: set, frozen: list) -> None:  # type: ignore[type-arg]
    """Tell the engine what feedback changed: refunds (quota) and services the guard froze."""
    now = d.clock.now()
    writer = event_writer(d)
    for service_id, name, reason in frozen:
        writer.service(service_id, "frozen", reason, now, {"guard": True})
        writer.alert(service_id, "service_frozen", f"{name}: {reason}", now)
    if d.engine is None:
        return
    for service_id, _, reason in frozen:
        await d.engine.guard_frozen(service_id, reason)
    for user_id in refunded_users:
        await d.engine.quota_changed(user_id)
