"""What each alert channel receives: the exact HTTP request (URL, headers, JSON body).

Pure functions, so the shapes and signatures are unit-tested without a network:
- `webhook`: our own JSON document, signed `X-EDM-Signature: sha256=<hex HMAC-SHA256 of
  "<X-EDM-Timestamp>.<body>">` with the channel's secret (the timestamp makes replays evident);
- `wecom`: WeCom (企业微信) group robot, `{"msgtype": "markdown", "markdown": {"content"}}`;
- `dingtalk`: DingTalk robot, `{"msgtype": "markdown", "markdown": {"title", "text"}}`; with a
  secret (加签), `&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256 of "<ms>\\n<secret>">`;
- `slack`: Slack-compatible incoming webhook (also Mattermost, Rocket.Chat), `{"text"}`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

ChannelKind = Literal["webhook", "wecom", "dingtalk", "slack"]
CHANNEL_KINDS: tuple[str, ...] = get_args(ChannelKind)

TITLES = {
    "service_frozen": "Service frozen",
    "service_quota_used": "Service quota running out",
    "service_quota_exhausted": "Service quota exhausted",
    "campaign_paused": "Campaign paused",
    "user_quota_low": "User quota low",
    "leadership_changed": "Engine leadership changed",
    "event_stream_dropping": "Event stream dropping events",
    "test": "Test alert",
}


@dataclass(frozen=True)
class AlertNotice:
    """One alert as channels show it."""

    alert_id: str
    rule: str
    kind: str
    subject: str
    message: str
    data: dict[str, Any]
    opened_at: datetime


@dataclass(frozen=True)
class OutgoingRequest:
    url: str
    headers: dict[str, str]
    body: bytes


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def webhook_document(n: AlertNotice) -> dict[str, Any]:
    return {"alert_id": n.alert_id, "rule": n.rule, "kind": n.kind, "subject": n.subject, "message": n.message,
            "data": n.data, "opened_at": n.opened_at.isoformat()}


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_sign(secret: str, timestamp_ms: str) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(key=secret, msg="<ms>\\n<secret>")), URL-encoded."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(mac).decode())


def _title(n: AlertNotice) -> str:
    return f"[EDM] {TITLES.get(n.kind, n.kind)}"


def _when(n: AlertNotice, tz: ZoneInfo) -> str:
    return n.opened_at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def markdown_text(n: AlertNotice, tz: ZoneInfo) -> str:
    return f"### {_title(n)}\n{n.message}\n> rule: {n.rule}\n> since: {_when(n, tz)}"


def plain_text(n: AlertNotice, tz: ZoneInfo) -> str:
    return f"{_title(n)}: {n.message} (rule {n.rule}, since {_when(n, tz)})"


def build_request(kind: str, url: str, secret: str | None, n: AlertNotice, tz: ZoneInfo,
                  now: datetime) -> OutgoingRequest:
    """The request that tells channel `kind` at `url` about `n`, as of `now` (signatures)."""
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "webhook":
        body = _json(webhook_document(n))
        ts = str(int(now.timestamp()))
        headers |= {"X-EDM-Timestamp": ts, "X-EDM-Alert-Id": n.alert_id}
        if secret:
            headers["X-EDM-Signature"] = webhook_signature(secret, ts, body)
        return OutgoingRequest(url, headers, body)
    if kind == "wecom":
        return OutgoingRequest(url, headers, _json({"msgtype": "markdown",
                                                    "markdown": {"content": markdown_text(n, tz)}}))
    if kind == "dingtalk":
        if secret:
            ms = str(int(now.timestamp() * 1000))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={ms}&sign={dingtalk_sign(secret, ms)}"
        return OutgoingRequest(url, headers, _json({"msgtype": "markdown",
                                                    "markdown": {"title": _title(n), "text": markdown_text(n, tz)}}))
    if kind == "slack":
        return OutgoingRequest(url, headers, _json({"text": plain_text(n, tz)}))
    raise ValueError(f"unknown channel kind {kind!r}")


def reply_error(kind: str, status: int, body: bytes) -> str | None:
    """Why a channel's reply is a failure (None = delivered). Robots answer 200 with an errcode."""
    if not 200 <= status < 300:
        return f"HTTP {status}"
    if kind in ("wecom", "dingtalk"):
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return "robot reply is not JSON"
        code = doc.get("errcode", 0) if isinstance(doc, dict) else None
        if code != 0:
            return f"errcode {code}: {str(doc.get('errmsg', ''))[:200] if isinstance(doc, dict) else ''}"
    return None
