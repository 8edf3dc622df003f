"""Alerts end to end against real PostgreSQL and local HTTP receivers: each channel kind gets the
right body exactly once per condition, retries back off on the injected clock, failures give up
without leaking tokens, and a hanging channel never holds up dispatch."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from api.deps import Deps
from engine.alerts.delivery import AlertDeliverer, DeliveryOptions
from engine.alerts.evaluator import AlertEvaluator
from engine.alerts.runtime import AlertOptions, AlertRuntime
from engine.infra.clock import FakeClock
from engine.infra.scaled_clock import ScaledClock
from engine.store.alert_models import ChannelIn, RuleIn
from engine.store.alerts import AlertStore
from tests.alert_support import Receiver, receiver
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_service,
    make_user,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

UTC = timezone.utc
WEBHOOK_SECRET = "whsec-0123456789abcdef"
DING_SECRET = "SECd1n9t4lk-5ecret-000111"
TOKEN = "t0ken-in-the-url-77aa99bb"


class Sources:
    def __init__(self, leader: bool = True, dropped: int | None = 0):
        self.leader = leader
        self.dropped = dropped
        self.epoch = 7

    def is_leader(self) -> bool:
        return self.leader

    def events_dropped(self) -> int | None:
        return self.dropped

    def leader_epoch(self) -> int | None:
        return self.epoch if self.leader else None


def _parts(deps: Deps, clock: Any, sources: Sources | None = None,
           options: DeliveryOptions | None = None) -> tuple[AlertEvaluator, AlertDeliverer]:
    return (AlertEvaluator(deps.pool, clock, sources or Sources()),
            AlertDeliverer(deps.pool, clock, deps.box, deps.settings.tz, options or DeliveryOptions()))


async def _channel(deps: Deps, rec: Receiver, kind: str) -> uuid.UUID:
    path, secret = {"webhook": ("/hook", WEBHOOK_SECRET),
                    "wecom": (f"/cgi-bin/webhook/send?key={TOKEN}", None),
                    "dingtalk": (f"/robot/send?access_token={TOKEN}", DING_SECRET),
                    "slack": (f"/services/T000/B000/{TOKEN}", None)}[kind]
    ch = await AlertStore(deps.pool, deps.box).create_channel(
        ChannelIn(name=f"{kind}-{uuid.uuid4().hex[:6]}", kind=kind, url=rec.url + path, secret=secret))  # type: ignore[arg-type]
    return ch.id


async def _rule(deps: Deps, kind: str, channels: list[uuid.UUID], threshold: int | None = None) -> uuid.UUID:
    rule = await AlertStore(deps.pool, deps.box).create_rule(
        RuleIn(name=f"{kind}-{uuid.uuid4().hex[:6]}", kind=kind, threshold=threshold, channel_ids=channels))  # type: ignore[arg-type]
    return rule.id


async def _freeze(deps: Deps, service: uuid.UUID, frozen: bool) -> None:
    await deps.pool.execute("UPDATE services SET abnormal_frozen = $2, abnormal_reason = $3 WHERE id = $1", service,
                            frozen, "10 consecutive failures" if frozen else None)


async def _deliveries(deps: Deps) -> list[Any]:
    return await deps.pool.fetch("SELECT * FROM alert_deliveries ORDER BY next_attempt_at")


@pytest.mark.parametrize("kind", ["webhook", "wecom", "dingtalk", "slack"])
async def test_each_channel_gets_the_right_body_once_per_condition(deps: Deps, clock: FakeClock, kind: str) -> None:
    async with receiver() as rec:
        channel = await _channel(deps, rec, kind)
        await _rule(deps, "service_frozen", [channel])
        service = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1",
                                     name="el-fast-1")
        evaluator, deliverer = _parts(deps, clock)
        try:
            await _freeze(deps, service, True)
            for _ in range(3):  # evaluated again and again while it lasts: one alert, one post
                await evaluator.evaluate()
                await deliverer.deliver_due()
            assert len(rec.requests) == 1
            req = rec.requests[0]
            _check_shape(kind, req, clock.now())
            assert "el-fast-1" in req.raw.decode() and "10 consecutive failures" in req.raw.decode()
            [d] = await _deliveries(deps)
            assert (d["state"], d["attempts"], d["delivered_at"]) == ("delivered", 1, clock.now())

            # Cleared when unfrozen; frozen again later is a new condition: one more post.
            await _freeze(deps, service, False)
            await evaluator.evaluate()
            assert await deps.pool.fetchval("SELECT cleared_at FROM alerts") == clock.now()
            await deliverer.deliver_due()
            assert len(rec.requests) == 1
            clock.advance(60)
            await _freeze(deps, service, True)
            await evaluator.evaluate()
            await evaluator.evaluate()
            await deliverer.deliver_due()
            assert len(rec.requests) == 2
            assert await deps.pool.fetchval("SELECT count(*) FROM alerts") == 2
        finally:
            await deliverer.close()


def _check_shape(kind: str, req: Any, now: datetime) -> None:
    body = req.json
    if kind == "webhook":
        assert req.path == "/hook"
        assert set(body) == {"alert_id", "rule", "kind", "subject", "message", "data", "opened_at"}
        assert body["kind"] == "service_frozen" and body["subject"].startswith("service:")
        ts = req.headers["X-EDM-Timestamp"]
        mac = hmac.new(WEBHOOK_SECRET.encode(), ts.encode() + b"." + req.raw, hashlib.sha256).hexdigest()
        assert req.headers["X-EDM-Signature"] == f"sha256={mac}"
        assert req.headers["X-EDM-Alert-Id"] == body["alert_id"]
    elif kind == "wecom":
        assert req.path == "/cgi-bin/webhook/send" and req.query == {"key": TOKEN}
        assert set(body) == {"msgtype", "markdown"} and body["msgtype"] == "markdown"
        assert set(body["markdown"]) == {"content"}
        assert body["markdown"]["content"].startswith("### [EDM] Service frozen\n")
    elif kind == "dingtalk":
        assert req.path == "/robot/send" and req.query["access_token"] == TOKEN
        ms = req.query["timestamp"]
        assert ms == str(int(now.timestamp() * 1000))
        mac = hmac.new(DING_SECRET.encode(), f"{ms}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
        assert req.query["sign"] == base64.b64encode(mac).decode()  # aiohttp already URL-decoded it
        assert set(body) == {"msgtype", "markdown"} and set(body["markdown"]) == {"title", "text"}
        assert body["markdown"]["title"] == "[EDM] Service frozen"
    else:
        assert req.path == f"/services/T000/B000/{TOKEN}"
        assert set(body) == {"text"} and body["text"].startswith("[EDM] Service frozen: service el-fast-1")
    assert req.headers["Content-Type"].startswith("application/json")


async def test_failed_posts_back_off_on_the_clock_then_deliver(deps: Deps, clock: FakeClock) -> None:
    async with receiver() as rec:
        rec.script = [(502, "bad gateway"), (200, '{"errcode":45009,"errmsg":"api freq out of limit"}')]
        channel = await _channel(deps, rec, "wecom")
        await _rule(deps, "service_quota_exhausted", [channel])
        service = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1")
        await deps.pool.execute("UPDATE services SET used_today = 1000, remaining_today = 0 WHERE id = $1", service)
        evaluator, deliverer = _parts(deps, clock, options=DeliveryOptions(backoff_initial=5))
        try:
            await evaluator.evaluate()
            assert await deliverer.deliver_due() == 1
            [d] = await _deliveries(deps)
            assert (d["state"], d["attempts"], d["last_error"]) == ("pending", 1, "HTTP 502")
            assert d["next_attempt_at"] == clock.now() + timedelta(seconds=5)
            assert await deliverer.deliver_due() == 0  # not due yet
            clock.advance(5)
            assert await deliverer.deliver_due() == 1
            [d] = await _deliveries(deps)
            assert (d["attempts"], d["last_error"]) == (2, "errcode 45009: api freq out of limit")
            assert d["next_attempt_at"] == clock.now() + timedelta(seconds=10)  # doubled
            clock.advance(9.9)
            assert await deliverer.deliver_due() == 0
            clock.advance(0.1)
            assert await deliverer.deliver_due() == 1
            [d] = await _deliveries(deps)
            assert (d["state"], d["attempts"], d["last_error"]) == ("delivered", 3, None)
            assert len(rec.requests) == 3 and rec.requests[0].raw == rec.requests[2].raw
        finally:
            await deliverer.close()


async def test_gives_up_after_max_attempts_without_leaking_the_token(deps: Deps, clock: FakeClock,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    async with receiver() as rec:
        channel = await _channel(deps, rec, "slack")
    # The receiver is gone: connections are refused.
    await _rule(deps, "service_frozen", [channel])
    service = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1")
    await _freeze(deps, service, True)
    evaluator, deliverer = _parts(deps, clock, options=DeliveryOptions(max_attempts=2, backoff_initial=1))
    caplog.set_level(logging.DEBUG)
    try:
        await evaluator.evaluate()
        await deliverer.deliver_due()
        clock.advance(1)
        await deliverer.deliver_due()
        clock.advance(3600)
        assert await deliverer.deliver_due() == 0
    finally:
        await deliverer.close()
    [d] = await _deliveries(deps)
    assert (d["state"], d["attempts"]) == ("failed", 2)
    assert d["last_error"] in ("ClientConnectorError", "ClientOSError")
    assert TOKEN not in caplog.text and TOKEN not in d["last_error"]
    assert "giving up" in caplog.text


async def test_paused_campaign_user_quota_leadership_and_event_stream_rules(deps: Deps, clock: FakeClock) -> None:
    async with receiver() as rec:
        channel = await _channel(deps, rec, "webhook")
        paused_rule = await _rule(deps, "campaign_paused", [channel], threshold=30)
        await _rule(deps, "user_quota_low", [channel], threshold=100)
        await _rule(deps, "leadership_changed", [channel])
        await _rule(deps, "event_stream_dropping", [channel], threshold=3)
        user = await make_user(deps.pool, quota=150)
        campaign = await make_campaign(deps.pool, user, planned=60)  # 90 left: below 100
        await deps.pool.execute("UPDATE campaigns SET status = 'paused', pause_reason = 'NO_AVAILABLE_SERVICE' "
                                "WHERE id = $1", campaign)
        await deps.pool.execute("INSERT INTO campaign_events (campaign_id, kind, created_at) VALUES ($1, 'paused', $2)",
                                campaign, clock.now())
        sources = Sources(leader=False, dropped=10)
        evaluator, deliverer = _parts(deps, clock, sources)
        try:
            assert (await evaluator.evaluate()).opened == []  # a standby evaluates nothing
            sources.leader = True
            await evaluator.evaluate()
            kinds = [r["kind"] for r in await deps.pool.fetch("SELECT kind FROM alerts ORDER BY kind")]
            # Leadership taken now; the user is low; the campaign is paused for 0 min (< 30); the
            # publisher's count is the baseline.
            assert kinds == ["leadership_changed", "user_quota_low"]
            assert await deps.pool.fetchval(
                "SELECT cleared_at = opened_at FROM alerts WHERE kind = 'leadership_changed'")
            assert await deps.pool.fetchval(
                "SELECT data->>'epoch' FROM alerts WHERE kind = 'leadership_changed'") == "7"
            clock.advance(30 * 60)
            sources.dropped = 13
            await evaluator.evaluate()
            await evaluator.evaluate()  # 0 new drops: the stream condition clears
            rows = {r["kind"]: r for r in await deps.pool.fetch("SELECT * FROM alerts")}
            assert rows["campaign_paused"]["subject"] == f"campaign:{campaign}"
            assert rows["campaign_paused"]["data"]["reason"] == "NO_AVAILABLE_SERVICE"
            assert rows["event_stream_dropping"]["cleared_at"] == clock.now()
            await deliverer.deliver_due()
            got = sorted(r.json["kind"] for r in rec.requests)
            assert got == ["campaign_paused", "event_stream_dropping", "leadership_changed", "user_quota_low"]
            # Leadership: one alert per lease epoch, however often evaluated.
            sources.epoch = 8
            await evaluator.evaluate()
            await evaluator.evaluate()
            epochs = [r["e"] for r in await deps.pool.fetch(
                "SELECT data->>'epoch' AS e FROM alerts WHERE kind = 'leadership_changed' ORDER BY opened_at, e")]
            assert epochs == ["7", "8"]
            # A disabled rule stops watching: its open alert clears.
            await deps.pool.execute("UPDATE alert_rules SET enabled = false WHERE id = $1", paused_rule)
            await evaluator.evaluate()
            assert await deps.pool.fetchval("SELECT cleared_at FROM alerts WHERE kind = 'campaign_paused'") is not None
        finally:
            await deliverer.close()


async def test_a_hanging_channel_never_holds_up_dispatch(deps: Deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(datetime(2026, 11, 23, 4, 0, tzinfo=UTC), factor=50)
    async with fake_esp() as (url, esp), receiver() as rec:
        rec.hang = 60  # never answers within the test
        channel = await _channel(deps, rec, "webhook")
        await _rule(deps, "service_quota_used", [channel], threshold=1)
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=20,
                                                         daily_quota=100)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        alerts = AlertRuntime(pool, clock, deps.box, settings.tz, Sources(),
                              AlertOptions(evaluate_every=0.05, delivery=DeliveryOptions(timeout=120)))
        alerts.start()
        try:
            async with running(engine):
                await wait_status(pool, campaign, "completed", timeout=60)

                # The rule reads the services' counters, which the engine writes behind (at the
                # latest when the campaign completes): the alert follows shortly.
                async def alerted() -> bool:
                    return len(rec.requests) >= 1
                await eventually(alerted, timeout=10, what="the alert")
            # The alert went out and its receiver is still holding the request.
            assert len(rec.requests) == 1 and rec.requests[0].json["kind"] == "service_quota_used"
            [d] = await _deliveries(deps)
            assert (d["state"], d["attempts"]) == ("pending", 0)
        finally:
            await alerts.stop()
        assert len(esp.log.entries()) == 20
        await check_invariants(pool, esp, settings)
