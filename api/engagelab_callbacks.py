"""EngageLab's email status callbacks and events, verified and turned into `Feedback`.

What EngageLab documents (Email WebHook): every POST carries `X-WebHook-Timestamp`,
`X-WebHook-AppKey` ("email") and `X-WebHook-Signature` = hex HMAC-SHA256 of the timestamp keyed
with the secret configured for the callback URL. Status callbacks carry
`status.message_status` (target, sent, delivered, invalid, soft_bounce); behaviour events carry
`response.event` (open, click, unsubscribe, report). `custom_args` echoes what the engine sent
(`subtask_id`, `campaign_id`); `message_id` / `status_data.email_id` is the provider's id.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

import orjson

from engine.domain.errors import Unauthorized, ValidationError
from engine.store.feedback import Feedback, Kind

SIGNATURE = "X-WebHook-Signature"
TIMESTAMP = "X-WebHook-Timestamp"
MAX_ITEMS = 1000

STATUS_KINDS: dict[str, Kind] = {"delivered": "delivered", "invalid": "hard_bounce", "soft_bounce": "soft_bounce"}
EVENT_KINDS: dict[str, Kind] = {"open": "open", "click": "click", "unsubscribe": "unsubscribe",
                                "report": "complaint"}


def signature(secret: str, timestamp: str) -> str:
    return hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).hexdigest()


def verify(headers: Mapping[str, str], secret: str, now: datetime, tolerance: int) -> None:
    """Raise UNAUTHORIZED (details.reason) unless the post is signed with `secret` and fresh."""
    ts, sig = headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")
    if not ts or not sig:
        raise Unauthorized("the webhook is not signed", field=SIGNATURE, details={"reason": "unsigned"})
    if not hmac.compare_digest(sig.strip().lower(), signature(secret, ts.strip())):
        raise Unauthorized("bad webhook signature", field=SIGNATURE, details={"reason": "bad_signature"})
    try:
        seconds = float(ts)
    except ValueError:
        raise Unauthorized("bad webhook timestamp", field=TIMESTAMP, details={"reason": "bad_timestamp"}) from None
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    if abs(now.timestamp() - seconds) > tolerance:
        raise Unauthorized("webhook timestamp outside the accepted window (replay?)", field=TIMESTAMP,
                           details={"reason": "stale"})


def parse(body: bytes, service_id: uuid.UUID, now: datetime) -> tuple[list[Feedback], int]:
    """(events to record, callbacks ignored such as `target`/`sent`); VALIDATION_ERROR when malformed."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationError("the webhook body is not JSON", field="body") from None
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_ITEMS or not all(isinstance(x, dict) for x in items):
        raise ValidationError(f"expected a JSON object or an array of 1-{MAX_ITEMS} objects", field="body")
    out: list[Feedback] = []
    ignored = 0
    for item in items:
        f = _one(item, service_id, now)
        if f is None:
            ignored += 1
        else:
            out.append(f)
    return out, ignored


def _one(item: dict[str, Any], service_id: uuid.UUID, now: datetime) -> Feedback | None:
    status, response = _obj(item.get("status")), _obj(item.get("response"))
    detail: dict[str, Any] = {}
    kind: Kind | None = None
    if status:
        kind = STATUS_KINDS.get(str(status.get("message_status", "")))
        detail = _obj(status.get("status_data"))
    elif response:
        kind = EVENT_KINDS.get(str(response.get("event", "")))
        detail = _obj(response.get("response_data"))
    if kind is None:
        return None
    args = _obj(item.get("custom_args"))
    subtask_id = _uuid(args.get("subtask_id"))
    message_id = item.get("message_id") or detail.get("email_id")
    itime = item.get("itime")
    occurred = _when(itime, now)
    url = str(detail.get("url", ""))[:2000]
    key = "|".join(["engagelab", str(service_id), str(subtask_id or message_id), kind, str(itime), url])
    keep = {k: v for k, v in detail.items() if k in ("sub_stat", "message", "url", "ip", "user_agent")}
    return Feedback(kind=kind, dedupe_key=hashlib.sha256(key.encode()).hexdigest(), occurred_at=occurred,
                    subtask_id=subtask_id, message_id=str(message_id)[:300] if message_id else None, data=keep)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _when(itime: Any, now: datetime) -> datetime:
    try:
        seconds = float(itime)
    except (TypeError, ValueError):
        return now
    return datetime.fromtimestamp(seconds / 1000 if seconds > 1e11 else seconds, timezone.utc)
