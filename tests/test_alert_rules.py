"""Alert rules and channel formats as pure functions: which subjects fire, de-duplication, and the
exact request each channel kind receives (bodies and signatures)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote_plus, urlsplit
from zoneinfo import ZoneInfo

import pytest

from engine.domain.alert_formats import AlertNotice, build_request, reply_error
from engine.domain.alert_rules import (
    PausedCampaign,
    ServiceFacts,
    Snapshot,
    UserFacts,
    firing,
    reconcile,
    threshold_error,
)
from engine.store.alert_models import mask_url

UTC = timezone.utc
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")


def svc(name: str, **kw: object) -> ServiceFacts:
    base: dict = dict(id=uuid.uuid4(), name=name, enabled=True, abnormal_frozen=False, abnormal_reason=None,
                      daily_quota=100, used_today=0, remaining_today=100)
    base.update(kw)
    return ServiceFacts(**base)


def test_service_rules_fire_per_service() -> None:
    frozen = svc("frozen", abnormal_frozen=True, abnormal_reason="10 consecutive failures")
    busy = svc("busy", used_today=80, remaining_today=20)
    almost = svc("almost", used_today=79, remaining_today=21)
    empty = svc("empty", used_today=100, remaining_today=0)
    off = svc("off", enabled=False, used_today=100, remaining_today=0)
    snap = Snapshot(NOW, [frozen, busy, almost, empty, off])
    assert set(firing("service_frozen", None, snap)) == {f"service:{frozen.id}"}
    assert "10 consecutive failures" in firing("service_frozen", None, snap)[f"service:{frozen.id}"].message
    # ≥ 80 % used: 80 of 100 fires, 79 does not; a disabled service is not watched.
    assert set(firing("service_quota_used", 80, snap)) == {f"service:{busy.id}", f"service:{empty.id}"}
    assert set(firing("service_quota_used", None, snap)) == {f"service:{busy.id}", f"service:{empty.id}"}
    assert set(firing("service_quota_exhausted", None, snap)) == {f"service:{empty.id}"}


def test_campaign_paused_longer_than_n_minutes() -> None:
    old = PausedCampaign(uuid.uuid4(), "old", uuid.uuid4(), "NO_USER_QUOTA", NOW - timedelta(minutes=30))
    new = PausedCampaign(uuid.uuid4(), "new", uuid.uuid4(), "SERVICE_QUOTA_EXHAUSTED",
                         NOW - timedelta(minutes=29, seconds=59))
    got = firing("campaign_paused", 30, Snapshot(NOW, paused=[old, new]))
    assert set(got) == {f"campaign:{old.id}"}
    assert got[f"campaign:{old.id}"].data["reason"] == "NO_USER_QUOTA"


def test_user_quota_below_n() -> None:
    low, ok = UserFacts(uuid.uuid4(), "low", 99), UserFacts(uuid.uuid4(), "ok", 100)
    assert set(firing("user_quota_low", 100, Snapshot(NOW, users=[low, ok]))) == {f"user:{low.id}"}


def test_event_stream_dropping() -> None:
    assert firing("event_stream_dropping", 5, Snapshot(NOW, events_dropped=4)) == {}
    assert set(firing("event_stream_dropping", 5, Snapshot(NOW, events_dropped=5))) == {"event_stream"}
    assert firing("event_stream_dropping", None, Snapshot(NOW, events_dropped=None)) == {}


def test_reconcile_opens_once_and_clears_when_the_condition_goes() -> None:
    a, b = svc("a", abnormal_frozen=True, abnormal_reason="x"), svc("b", abnormal_frozen=True, abnormal_reason="y")
    now_firing = firing("service_frozen", None, Snapshot(NOW, [a, b]))
    to_open, to_clear = reconcile(set(), now_firing)
    assert {c.subject for c in to_open} == set(now_firing) and not to_clear
    # Evaluated again with both still frozen: nothing new.
    assert reconcile(set(now_firing), now_firing) == ([], set())
    # b unfrozen: b clears, a stays open and is not opened again.
    still = firing("service_frozen", None, Snapshot(NOW, [a]))
    assert reconcile(set(now_firing), still) == ([], {f"service:{b.id}"})


@pytest.mark.parametrize("kind, threshold, ok", [
    ("service_quota_used", 0, False), ("service_quota_used", 101, False), ("service_quota_used", 100, True),
    ("service_frozen", 5, False), ("service_frozen", None, True), ("campaign_paused", 0, True),
    ("user_quota_low", 0, False), ("event_stream_dropping", None, True)])
def test_thresholds(kind: str, threshold: int | None, ok: bool) -> None:
    assert (threshold_error(kind, threshold) is None) is ok


NOTICE = AlertNotice("a1b2", "frozen services", "service_frozen", "service:s1", "service el-1 is frozen: 10 failures",
                     {"service": "el-1"}, NOW)


def test_webhook_body_and_hmac_signature() -> None:
    req = build_request("webhook", "http://h/hook", "s" * 16, NOTICE, SH, NOW + timedelta(seconds=3))
    doc = json.loads(req.body)
    assert doc == {"alert_id": "a1b2", "rule": "frozen services", "kind": "service_frozen", "subject": "service:s1",
                   "message": "service el-1 is frozen: 10 failures", "data": {"service": "el-1"},
                   "opened_at": "2026-11-23T04:00:00+00:00"}
    ts = req.headers["X-EDM-Timestamp"]
    assert ts == str(int((NOW + timedelta(seconds=3)).timestamp()))
    expected = hmac.new(b"s" * 16, ts.encode() + b"." + req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-EDM-Signature"] == f"sha256={expected}"
    assert req.headers["X-EDM-Alert-Id"] == "a1b2"


def test_wecom_markdown_body() -> None:
    req = build_request("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K", None, NOTICE, SH, NOW)
    assert req.url.endswith("?key=K")
    doc = json.loads(req.body)
    assert list(doc) == ["markdown", "msgtype"] and doc["msgtype"] == "markdown"
    assert doc["markdown"]["content"] == ("### [EDM] Service frozen\nservice el-1 is frozen: 10 failures\n"
                                          "> rule: frozen services\n> since: 2026-11-23 12:00:00 CST")


def test_dingtalk_signed_url_and_body() -> None:
    secret = "SEC0123456789abcdef"
    req = build_request("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=T", secret, NOTICE, SH, NOW)
    q = parse_qs(urlsplit(req.url).query)
    ms = q["timestamp"][0]
    assert ms == str(int(NOW.timestamp() * 1000)) and q["access_token"] == ["T"]
    mac = hmac.new(secret.encode(), f"{ms}\n{secret}".encode(), hashlib.sha256).digest()
    assert unquote_plus(urlsplit(req.url).query.split("sign=")[1]) == base64.b64encode(mac).decode()
    doc = json.loads(req.body)
    assert doc["msgtype"] == "markdown" and doc["markdown"]["title"] == "[EDM] Service frozen"
    assert doc["markdown"]["text"].startswith("### [EDM] Service frozen\nservice el-1 is frozen")
    # Without a secret the URL is left as given.
    assert build_request("dingtalk", "https://x/robot/send?access_token=T", None, NOTICE, SH, NOW).url.endswith("=T")


def test_slack_text_body() -> None:
    doc = json.loads(build_request("slack", "https://hooks.slack.com/services/A/B/C", None, NOTICE, SH, NOW).body)
    assert doc == {"text": "[EDM] Service frozen: service el-1 is frozen: 10 failures "
                           "(rule frozen services, since 2026-11-23 12:00:00 CST)"}


def test_replies() -> None:
    assert reply_error("slack", 200, b"ok") is None
    assert reply_error("webhook", 502, b"") == "HTTP 502"
    assert reply_error("wecom", 200, b'{"errcode":0,"errmsg":"ok"}') is None
    assert reply_error("wecom", 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}') == \
        "errcode 45009: api freq out of limit"
    assert reply_error("dingtalk", 200, b"<html>") == "robot reply is not JSON"


def test_masked_urls_never_show_the_token() -> None:
    key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    assert mask_url(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={key}") == \
        "https://qyapi.weixin.qq.com/…5aaa"
    assert mask_url("http://127.0.0.1:8080/h") == "http://127.0.0.1:8080/…"
    assert "secret" not in mask_url("https://user:secret@example.com/hooks/abcdefghijklmnop")
