"""The alerts admin API: channels (secrets masked, validated per kind), rules (thresholds per
kind, known channels), the alert list with delivery state, a test send, and admins only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from api.deps import Deps
from engine.alerts.delivery import AlertDeliverer
from engine.alerts.evaluator import AlertEvaluator
from engine.infra.clock import FakeClock
from tests.alert_support import receiver
from tests.conftest import Api
from tests.engine_support import make_service

SECRET = "whsec-AAAAbbbbCCCCdddd-9f3e"
KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def webhook(**over: Any) -> dict[str, Any]:
    body = {"name": f"ops-{uuid.uuid4().hex[:6]}", "kind": "webhook", "url": "https://hooks.example.com/edm/alerts",
            "secret": SECRET}
    body.update(over)
    return body


async def test_channels_crud_with_secrets_masked(admin: Api) -> None:
    ch = await admin.ok("POST", "/alerts/channels", json=webhook(name="ops"))
    assert ch["kind"] == "webhook" and ch["enabled"] is True
    assert ch["url"] == "https://hooks.example.com/…" and ch["secret"] == "…9f3e"
    wecom = await admin.ok("POST", "/alerts/channels", json={
        "name": "wecom", "kind": "wecom", "url": f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"})
    assert wecom["url"] == "https://qyapi.weixin.qq.com/…5aaa" and wecom["secret"] is None
    listed = await admin.ok("GET", "/alerts/channels")
    assert [c["name"] for c in listed["items"]] == ["ops", "wecom"]
    _, raw = await admin.call("GET", "/alerts/channels")
    assert SECRET not in str(raw) and KEY not in str(raw)

    patched = await admin.ok("PATCH", f"/alerts/channels/{ch['id']}", json={"enabled": False, "name": "ops-2"})
    assert (patched["name"], patched["enabled"], patched["secret"]) == ("ops-2", False, "…9f3e")
    # The stored kind (a webhook) needs a secret: a rule no schema of the PATCH body can state, so 422.
    await admin.err("PATCH", f"/alerts/channels/{ch['id']}", 422, "UNPROCESSABLE", "secret", json={"secret": None})
    await admin.err("PATCH", f"/alerts/channels/{ch['id']}", 409, "CONFLICT", "name", json={"name": "WECOM"})
    deleted = await admin.ok("DELETE", f"/alerts/channels/{ch['id']}")
    assert deleted == {"id": ch["id"], "deleted": True}
    await admin.err("GET", f"/alerts/channels/{ch['id']}", 404, "NOT_FOUND", "id")


@pytest.mark.parametrize("body, field", [
    (webhook(secret=None), "secret"),
    (webhook(secret="short"), "secret"),
    (webhook(kind="wecom"), "secret"),
    (webhook(kind="slack"), "secret"),
    (webhook(kind="teams"), "kind"),
    (webhook(url="ftp://x.example.com/h"), "url"),
    (webhook(url="https://x.example.com/h\n"), "url"),
    (webhook(name=""), "name"),
    (webhook(extra=1), "extra"),
])
async def test_bad_channels_answer_4xx_with_the_field_and_write_nothing(admin: Api, deps: Deps, body: dict,
                                                                        field: str) -> None:
    status, reply = await admin.call("POST", "/alerts/channels", json=body)
    assert status == 400 and reply["error"]["details"]["field"] == field, reply
    assert await deps.pool.fetchval("SELECT count(*) FROM alert_channels") == 0


async def test_rules_crud_thresholds_and_channels(admin: Api, deps: Deps) -> None:
    ch = await admin.ok("POST", "/alerts/channels", json=webhook())
    rule = await admin.ok("POST", "/alerts/rules", json={"name": "quota 90", "kind": "service_quota_used",
                                                         "threshold": 90, "channel_ids": [ch["id"]]})
    assert (rule["threshold"], rule["channel_ids"], rule["enabled"]) == (90, [ch["id"]], True)
    default = await admin.ok("POST", "/alerts/rules", json={"name": "paused", "kind": "campaign_paused"})
    assert default["threshold"] == 30 and default["channel_ids"] == []
    missing = str(uuid.uuid4())
    await admin.err("POST", "/alerts/rules", 400, "VALIDATION_ERROR", "threshold",
                    json={"name": "x", "kind": "service_quota_used", "threshold": 150})
    await admin.err("POST", "/alerts/rules", 400, "VALIDATION_ERROR", "threshold",
                    json={"name": "x", "kind": "service_frozen", "threshold": 1})
    await admin.err("POST", "/alerts/rules", 404, "NOT_FOUND", "channel_ids[1]",
                    json={"name": "x", "kind": "service_frozen", "channel_ids": [ch["id"], missing]})
    await admin.err("POST", "/alerts/rules", 400, "VALIDATION_ERROR", "kind", json={"name": "x", "kind": "nope"})
    await admin.err("POST", "/alerts/rules", 409, "CONFLICT", "name", json={"name": "QUOTA 90", "kind": "service_frozen"})
    assert await deps.pool.fetchval("SELECT count(*) FROM alert_rules") == 2

    patched = await admin.ok("PATCH", f"/alerts/rules/{default['id']}",
                             json={"threshold": 5, "channel_ids": [ch["id"]], "enabled": False})
    assert (patched["threshold"], patched["channel_ids"], patched["enabled"]) == (5, [ch["id"]], False)
    again = await admin.ok("PATCH", f"/alerts/rules/{default['id']}", json={"channel_ids": []})
    assert again["channel_ids"] == [] and again["threshold"] == 5
    await admin.err("PATCH", f"/alerts/rules/{default['id']}", 404, "NOT_FOUND", "channel_ids[0]",
                    json={"channel_ids": [missing], "threshold": 6})
    frozen = await admin.ok("POST", "/alerts/rules", json={"name": "frozen", "kind": "service_frozen"})
    await admin.err("PATCH", f"/alerts/rules/{frozen['id']}", 422, "UNPROCESSABLE", "threshold", json={"threshold": 1})
    await admin.ok("DELETE", f"/alerts/rules/{frozen['id']}")
    assert (await admin.ok("GET", f"/alerts/rules/{default['id']}"))["threshold"] == 5  # nothing written
    assert (await admin.ok("GET", "/alerts/rules"))["total"] == 2
    await admin.ok("DELETE", f"/alerts/rules/{rule['id']}")
    await admin.err("DELETE", f"/alerts/rules/{rule['id']}", 404, "NOT_FOUND", "id")


async def test_alert_list_shows_delivery_state(admin: Api, deps: Deps, clock: FakeClock) -> None:
    async with receiver() as rec:
        rec.script = [(500, "")]
        ch = await admin.ok("POST", "/alerts/channels", json=webhook(name="hook", url=rec.url + "/hook"))
        await admin.ok("POST", "/alerts/rules", json={"name": "frozen", "kind": "service_frozen",
                                                      "channel_ids": [ch["id"]]})
        sid = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1",
                                 name="el-1")
        await deps.pool.execute("UPDATE services SET abnormal_frozen = true, abnormal_reason = 'x' WHERE id = $1", sid)

        class Leader:
            def is_leader(self) -> bool:
                return True

            def events_dropped(self) -> int | None:
                return None

            def leader_epoch(self) -> int | None:
                return 1

        await AlertEvaluator(deps.pool, clock, Leader()).evaluate()
        deliverer = AlertDeliverer(deps.pool, clock, deps.box, deps.settings.tz)
        try:
            await deliverer.deliver_due()
        finally:
            await deliverer.close()
    page = await admin.ok("GET", "/alerts?state=open")
    [alert] = page["items"]
    assert (alert["rule"], alert["kind"], alert["subject"]) == ("frozen", "service_frozen", f"service:{sid}")
    [d] = alert["deliveries"]
    assert (d["channel"], d["state"], d["attempts"], d["last_error"]) == ("hook", "pending", 1, "HTTP 500")
    assert d["next_attempt_at"] is not None
    assert (await admin.ok("GET", "/alerts?state=cleared"))["total"] == 0
    await admin.err("GET", "/alerts?state=closed", 400, "VALIDATION_ERROR", "state")


async def test_test_send_posts_once_and_reports(admin: Api) -> None:
    async with receiver() as rec:
        ch = await admin.ok("POST", "/alerts/channels", json={"name": "slack", "kind": "slack",
                                                              "url": rec.url + "/services/T/B/XYZ"})
        assert await admin.ok("POST", f"/alerts/channels/{ch['id']}/test") == {"delivered": True, "error": None}
        assert rec.requests[0].json["text"].startswith("[EDM] Test alert: test message for alert channel slack")
        rec.default = (404, "no_service")
        assert await admin.ok("POST", f"/alerts/channels/{ch['id']}/test") == {"delivered": False,
                                                                                "error": "HTTP 404"}


async def test_alerts_are_for_administrators_only(admin: Api) -> None:
    _, user = await admin.new_user()
    for method, path in (("GET", "/alerts"), ("GET", "/alerts/channels"), ("GET", "/alerts/rules")):
        await user.err(method, path, 403, "FORBIDDEN")
    await user.err("POST", "/alerts/channels", 403, "FORBIDDEN", json=webhook())
