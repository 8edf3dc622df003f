"""Feedback in: EngageLab's signed callbacks (one URL per service), the generic bounce endpoint
for SMTP services' DSNs, and the per-service webhook secret (shown once, rotatable)."""

from __future__ import annotations

import secrets
import uuid
from typing import Annotated, Literal

import msgspec

from api import engagelab_callbacks
from api.feedback_deps import after_feedback, feedback_store
from api.routing import Call, Routes
from engine.domain.errors import NotFound, Unauthorized
from engine.infra.queries import Q
from engine.store.campaigns import Actor, ensure_visible
from engine.store.feedback import Feedback

routes = Routes()


class WebhookAck(msgspec.Struct):
    stored: int
    duplicates: int
    unmatched: int
    ignored: int


class WebhookSecret(msgspec.Struct):
    service_id: uuid.UUID
    # Shown once: configure it, with the URL, in EngageLab's webhook settings.
    secret: str
    url: str


class BounceIn(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254, pattern="@")]
    kind: Literal["hard", "soft", "complaint"]
    campaign_id: uuid.UUID | None = None


class BounceOut(msgspec.Struct):
    recorded: bool
    matched_subtask: bool
    suppressed: bool


def _url(call: Call, service_id: uuid.UUID) -> str:
    return f"{call.deps.settings.public_base}/api/v1/webhooks/engagelab/{service_id}"


@routes.route("POST", "/services/{id}/webhook-secret", summary="Create or rotate a service's webhook secret "
              "(shown once)", access="admin", response=WebhookSecret, tag="feedback")
async def rotate_secret(call: Call) -> WebhookSecret:
    service_id = call.id()
    secret = "whsec_" + secrets.token_hex(24)
    d = call.deps
    if await d.pool.fetchval(Q["feedback.set_webhook_secret"], service_id, d.box.seal({"secret": secret}),
                             call.me.id, d.clock.now()) is None:
        raise NotFound("service not found", field="id")
    return WebhookSecret(service_id, secret, _url(call, service_id))


@routes.route("POST", "/webhooks/engagelab/{id}", summary="EngageLab email status callbacks and events "
              "(signed with the service's webhook secret)", access="public", raw_body="application/json",
              response=WebhookAck, tag="feedback")
async def engagelab_webhook(call: Call) -> WebhookAck:
    d = call.deps
    service_id = call.id()
    sealed = await d.pool.fetchval(Q["feedback.webhook_secret"], service_id)
    if sealed is None:
        # Unknown service and a service without a secret look the same from outside.
        raise Unauthorized("no webhook is configured for this URL", field="id", details={"reason": "unknown"})
    now = d.clock.now()
    engagelab_callbacks.verify(call.request.headers, d.box.open(sealed)["secret"], now,
                               d.settings.webhook_tolerance)
    items, ignored = engagelab_callbacks.parse(await call.request.read(), service_id, now)
    rec = await feedback_store(d).record(items, "engagelab", now, service_id=service_id)
    await after_feedback(d, rec.refunded_users, rec.frozen)
    return WebhookAck(rec.stored, rec.duplicates, rec.unmatched, ignored)


@routes.route("POST", "/bounces", summary="Report a bounce or complaint (e.g. from a DSN mailbox reader)",
              body=BounceIn, response=BounceOut, tag="feedback")
async def report_bounce(call: Call) -> BounceOut:
    d = call.deps
    b: BounceIn = call.body
    kind = {"hard": "hard_bounce", "soft": "soft_bounce", "complaint": "complaint"}[b.kind]
    now = d.clock.now()
    store = feedback_store(d)
    if b.campaign_id is not None:
        await ensure_visible(d.pool, Actor(call.me.id, call.me.is_admin), b.campaign_id)
        f = Feedback(kind=kind, occurred_at=now,  # type: ignore[arg-type]
                     dedupe_key=f"bounce|{b.campaign_id}|{b.email.lower()}|{kind}|{uuid.uuid4()}")
        rec = await store.record_for_campaign(b.campaign_id, b.email, f, "bounce_api", now)
        if rec.unmatched:
            raise NotFound("the campaign has no recipient with this address", field="email")
    else:
        rec = await store.suppress_owner(call.me.id, b.email, kind, "bounce_api", now)  # type: ignore[arg-type]
    await after_feedback(d, rec.refunded_users, rec.frozen)
    return BounceOut(recorded=True, matched_subtask=b.campaign_id is not None, suppressed=bool(rec.suppressed))
