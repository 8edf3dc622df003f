"""Campaigns over the real API: saving with a quota reservation, editing, cancelling, reading."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.campaign_factory import (
    counts,
    make_contacts,
    make_sender_and_template,
    make_tag,
    quota,
    uid,
)
from tests.conftest import Api


async def _setup(admin: Api, deps, quota_units: int = 100, contacts: int = 0,
                 username: str | None = None) -> tuple[dict, Api, str, str]:
    user, api = await admin.new_user(username, quota=quota_units)
    if contacts:
        await make_contacts(deps.pool, user["id"], [f"c{i}@example.com" for i in range(contacts)])
    sender_id, template_id = await make_sender_and_template(api)
    return user, api, sender_id, template_id


def _body(sender_id: str, template_id: str, **extra: Any) -> dict[str, Any]:
    return {"name": "Spring sale", "sender_id": sender_id, "template_ids": [template_id], **extra}


async def _assert_ledger(deps, user_id: str, expected: int) -> None:
    assert await quota(deps.pool, user_id) == (expected, expected)


async def test_save_counts_recipients_by_tags_and_reserves(admin: Api, deps, clock) -> None:
    user, api, sender_id, template_id = await _setup(admin, deps, quota_units=100)
    pool, me = deps.pool, user["id"]
    vip, news, bounced = [await make_tag(pool, me, n) for n in ("vip", "news", "bounced")]
    await make_contacts(pool, me, ["a@example.com", "b@example.com"], tags=[vip])
    await make_contacts(pool, me, ["c@example.com"], tags=[vip, news])    # in two include tags: once
    await make_contacts(pool, me, ["d@example.com"], tags=[news, bounced])  # excluded
    await make_contacts(pool, me, ["e@example.com"])                        # no tag
    t2 = (await api.ok("POST", "/templates", json={"name": "B", "subject": "s", "text_body": "t"}))["id"]
    c = await api.ok("POST", "/campaigns", json=_body(sender_id, template_id, template_ids=[t2, template_id],
                                                      include_tags=[vip, news], exclude_tags=[bounced]))
    assert c["status"] == "pending" and c["planned"] == 3 and c["reserved"] == 3 and c["user_id"] == me
    assert [t["id"] for t in c["templates"]] == [t2, template_id] and [t["position"] for t in c["templates"]] == [0, 1]
    assert {t["name"] for t in c["include_tags"]} == {"vip", "news"} and c["exclude_tags"][0]["id"] == bounced
    # No scheduled time means now, by the injected clock.
    assert datetime.fromisoformat(c["scheduled_at"]) == clock.now()
    await _assert_ledger(deps, me, 97)
    log = await api.ok("GET", "/me/quota-log")
    assert log["items"][0]["kind"] == "reserve" and log["items"][0]["delta"] == -3
    assert log["items"][0]["campaign_id"] == c["id"]
    # No include tag: every contact but the excluded one.
    all_but = await api.ok("POST", "/campaigns", json=_body(sender_id, template_id, exclude_tags=[bounced],
                                                            scheduled_at="2026-12-01T09:00:00+08:00"))
    assert all_but["planned"] == 4 and all_but["scheduled_at"].startswith("2026-12-01T01:00:00")
    await _assert_ledger(deps, me, 93)
    assert await api.ok("GET", f"/campaigns/{c['id']}") == c
    events = await api.ok("GET", f"/campaigns/{c['id']}/events")
    assert [e["kind"] for e in events["items"]] == ["created"] and events["items"][0]["data"]["planned"] == 3


async def test_list_filter_paging_and_admin_all(admin: Api, deps) -> None:
    alice, a_api, s, t = await _setup(admin, deps, contacts=2, username="alice")
    _, b_api, bs, bt = await _setup(admin, deps, contacts=1, username="bob")
    first = await a_api.ok("POST", "/campaigns", json=_body(s, t, name="first"))
    second = await a_api.ok("POST", "/campaigns", json=_body(s, t, name="second"))
    await b_api.ok("POST", "/campaigns", json=_body(bs, bt, name="bob's"))
    await a_api.ok("POST", f"/campaigns/{first['id']}/cancel")
    page = await a_api.ok("GET", "/campaigns?limit=1")
    assert page["total"] == 2 and [c["name"] for c in page["items"]] == ["second"]  # newest first
    assert [c["name"] for c in (await a_api.ok("GET", "/campaigns?offset=1"))["items"]] == ["first"]
    assert [c["id"] for c in (await a_api.ok("GET", "/campaigns?status=pending"))["items"]] == [second["id"]]
    assert (await a_api.ok("GET", "/campaigns?status=cancelled"))["items"][0]["total"] == 0  # subtask counter
    await a_api.err("GET", "/campaigns?status=bogus", 400, "VALIDATION_ERROR", field="status")
    await a_api.err("GET", "/campaigns?all=true", 403, "FORBIDDEN", field="all")
    assert (await admin.ok("GET", "/campaigns?all=true"))["total"] == 3
    assert (await admin.ok("GET", "/campaigns"))["total"] == 0  # the admin's own
    assert (await admin.ok("GET", "/campaigns?all=true&status=pending"))["total"] == 2


def _invalid_cases(s: str, t: str, other: dict[str, str]) -> list[tuple[dict[str, Any], int, str, str]]:
    return [
        ({"sender_id": s, "template_ids": [t]}, 400, "VALIDATION_ERROR", "name"),
        (_body(s, t, name=""), 400, "VALIDATION_ERROR", "name"),
        (_body(s, t, name="   "), 400, "VALIDATION_ERROR", "name"),
        (_body(s, t, name="n" * 201), 400, "VALIDATION_ERROR", "name"),
        (_body(s, t, template_ids=[]), 400, "VALIDATION_ERROR", "template_ids"),
        (_body(s, t, template_ids=[t, t]), 400, "VALIDATION_ERROR", "template_ids"),
        (_body(s, t, template_ids=[str(uuid.uuid4()) for _ in range(21)]), 400, "VALIDATION_ERROR", "template_ids"),
        (_body(s, t, template_ids=["nope"]), 400, "VALIDATION_ERROR", "template_ids[0]"),
        (_body(s, t, template_ids=[str(uuid.uuid4())]), 404, "NOT_FOUND", "template_ids"),
        (_body(s, t, template_ids=[t, other["template"]]), 404, "NOT_FOUND", "template_ids"),
        (_body(str(uuid.uuid4()), t), 404, "NOT_FOUND", "sender_id"),
        (_body(other["sender"], t), 404, "NOT_FOUND", "sender_id"),
        (_body(s, t, include_tags=[other["tag"]]), 404, "NOT_FOUND", "include_tags"),
        (_body(s, t, exclude_tags=[other["tag"]]), 404, "NOT_FOUND", "exclude_tags"),
        (_body(s, t, include_tags=[other["own_tag"], other["own_tag"]]), 400, "VALIDATION_ERROR", "include_tags"),
        (_body(s, t, include_tags=[other["own_tag"]], exclude_tags=[other["own_tag"]]), 400, "VALIDATION_ERROR",
         "exclude_tags"),
        (_body(s, t, include_tags=[other["empty_tag"]]), 400, "VALIDATION_ERROR", "include_tags"),  # no recipients
        (_body(s, t, scheduled_at="2026-12-01T09:00:00"), 400, "VALIDATION_ERROR", "scheduled_at"),  # no zone
        (_body(s, t, scheduled_at="tomorrow"), 400, "VALIDATION_ERROR", "scheduled_at"),
        (_body(s, t, status="running"), 400, "VALIDATION_ERROR", "status"),
    ]


async def test_every_validation_rule_writes_nothing(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=50, contacts=3)
    other_user, other_api, other_s, other_t = await _setup(admin, deps)
    other = {"sender": other_s, "template": other_t, "tag": await make_tag(deps.pool, other_user["id"], "theirs"),
             "own_tag": await make_tag(deps.pool, user["id"], "mine"),
             "empty_tag": await make_tag(deps.pool, user["id"], "empty")}
    before = await counts(deps.pool)
    for payload, status, code, field in _invalid_cases(s, t, other):
        await api.err("POST", "/campaigns", status, code, field=field, json=payload)
        assert await counts(deps.pool) == before, payload
        await _assert_ledger(deps, user["id"], 50)


async def test_no_recipients_and_quota_insufficient(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=2)
    before = await counts(deps.pool)
    err = await api.err("POST", "/campaigns", 400, "VALIDATION_ERROR", field="include_tags", json=_body(s, t))
    assert "no recipients" in err["message"]
    await make_contacts(deps.pool, user["id"], ["a@example.com", "b@example.com", "c@example.com"])
    err = await api.err("POST", "/campaigns", 409, "QUOTA_INSUFFICIENT", json=_body(s, t))
    assert err["details"] == {"needed": 3, "remaining": 2}
    assert await counts(deps.pool) == before
    await _assert_ledger(deps, user["id"], 2)


async def test_concurrent_saves_never_overdraw(admin: Api, deps) -> None:
    per_campaign = 3
    user, api, s, t = await _setup(admin, deps, quota_units=10 * per_campaign, contacts=per_campaign)
    results = await asyncio.gather(*(api.call("POST", "/campaigns", json=_body(s, t, name=f"c{i}"))
                                     for i in range(50)))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 10 and statuses.count(409) == 40
    assert {body["error"]["code"] for status, body in results if status == 409} == {"QUOTA_INSUFFICIENT"}
    await _assert_ledger(deps, user["id"], 0)
    assert await deps.pool.fetchval("SELECT count(*) FROM campaigns") == 10
    assert await deps.pool.fetchval("SELECT sum(reserved) FROM campaigns") == 10 * per_campaign
    assert await deps.pool.fetchval("SELECT count(*) FROM quota_log WHERE kind = 'reserve'") == 10


async def test_edit_moves_the_reservation_up_and_down(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=10)
    pool, me = deps.pool, user["id"]
    small, big = await make_tag(pool, me, "small"), await make_tag(pool, me, "big")
    await make_contacts(pool, me, ["a@example.com"], tags=[small, big])
    await make_contacts(pool, me, [f"b{i}@example.com" for i in range(5)], tags=[big])
    c = await api.ok("POST", "/campaigns", json=_body(s, t, include_tags=[small]))
    assert c["reserved"] == 1
    await _assert_ledger(deps, me, 9)
    up = await api.ok("PATCH", f"/campaigns/{c['id']}", json={"include_tags": [big]})
    assert (up["planned"], up["reserved"], up["include_tags"][0]["id"]) == (6, 6, big)
    await _assert_ledger(deps, me, 4)
    down = await api.ok("PATCH", f"/campaigns/{c['id']}", json={"exclude_tags": [small], "name": "renamed"})
    assert (down["planned"], down["reserved"], down["name"]) == (5, 5, "renamed")
    assert down["include_tags"][0]["id"] == big  # untouched fields stay
    await _assert_ledger(deps, me, 5)
    log = await api.ok("GET", "/me/quota-log")
    assert [(e["kind"], e["delta"]) for e in log["items"][:3]] == [("refund", 1), ("reserve", -5), ("reserve", -1)]
    # Contacts added since the save are counted at the next edit.
    await make_contacts(pool, me, ["late@example.com"], tags=[big])
    assert (await api.ok("PATCH", f"/campaigns/{c['id']}", json={}))["reserved"] == 6
    await _assert_ledger(deps, me, 4)
    events = await api.ok("GET", f"/campaigns/{c['id']}/events?limit=2")
    assert events["total"] == 4 and [e["kind"] for e in events["items"]] == ["edited", "edited"]
    assert events["items"][1]["data"]["changed"] == ["exclude_tags", "name"]
    assert events["items"][1]["data"]["quota_delta"] == 1


async def test_edit_fields_and_failures_change_nothing(admin: Api, deps, clock) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=3, contacts=2)
    c = await api.ok("POST", "/campaigns", json=_body(s, t, scheduled_at="2027-01-01T00:00:00Z"))
    s2 = (await api.ok("POST", "/senders", json={"name": "other-sender"}))["id"]
    t2 = (await api.ok("POST", "/templates", json={"name": "t2", "subject": "s", "text_body": "x"}))["id"]
    edited = await api.ok("PATCH", f"/campaigns/{c['id']}",
                          json={"sender_id": s2, "template_ids": [t2, t], "scheduled_at": None})
    assert edited["sender_id"] == s2 and edited["sender_name"] == "other-sender"
    assert [x["id"] for x in edited["templates"]] == [t2, t]
    assert datetime.fromisoformat(edited["scheduled_at"]) == clock.now()
    # Two more contacts need two more units; one remains.
    await make_contacts(deps.pool, user["id"], ["x@example.com", "y@example.com"])
    before = await counts(deps.pool)
    await api.err("PATCH", f"/campaigns/{c['id']}", 409, "QUOTA_INSUFFICIENT", json={"name": "bigger"})
    for payload, field in [({"template_ids": []}, "template_ids"), ({"name": None}, "name"),
                           ({"sender_id": str(uuid.uuid4())}, "sender_id"), ({"template_ids": [t, t]}, "template_ids"),
                           ({"scheduled_at": "2027-01-01T00:00:00"}, "scheduled_at"), ({"status": "x"}, "status")]:
        status = 404 if field == "sender_id" else 400
        await api.err("PATCH", f"/campaigns/{c['id']}", status, "NOT_FOUND" if status == 404 else "VALIDATION_ERROR",
                      field=field, json=payload)
    assert await counts(deps.pool) == before
    assert await api.ok("GET", f"/campaigns/{c['id']}") == edited
    await _assert_ledger(deps, user["id"], 1)


@pytest.mark.parametrize("status", ["running", "paused", "completed", "failed", "cancelled"])
async def test_only_pending_campaigns_are_edited(admin: Api, deps, status: str) -> None:
    user, api, s, t = await _setup(admin, deps, contacts=1)
    c = await api.ok("POST", "/campaigns", json=_body(s, t))
    await deps.pool.execute(
        "UPDATE campaigns SET status = $2, pause_reason = CASE WHEN $2 = 'paused' THEN 'USER' END, "
        "failure_reason = CASE WHEN $2 = 'failed' THEN 'x' END WHERE id = $1", uid(c["id"]), status)
    await api.err("PATCH", f"/campaigns/{c['id']}", 409, "INVALID_STATE", field="status", json={"name": "x"})
    # Finished campaigns cannot be cancelled; running and paused ones need the engine (none here).
    await api.err("POST", f"/campaigns/{c['id']}/cancel", 409, "INVALID_STATE", field="status")
    await _assert_ledger(deps, user["id"], 99)


async def test_cancel_pending_refunds_everything(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=10, contacts=4)
    c = await api.ok("POST", "/campaigns", json=_body(s, t))
    await _assert_ledger(deps, user["id"], 6)
    cancelled = await api.ok("POST", f"/campaigns/{c['id']}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["reserved"] == 0 and cancelled["finished_at"]
    await _assert_ledger(deps, user["id"], 10)
    log = await api.ok("GET", "/me/quota-log")
    assert (log["items"][0]["kind"], log["items"][0]["delta"], log["items"][0]["campaign_id"]) == ("refund", 4, c["id"])
    await api.err("POST", f"/campaigns/{c['id']}/cancel", 409, "INVALID_STATE")
    await _assert_ledger(deps, user["id"], 10)
    events = await api.ok("GET", f"/campaigns/{c['id']}/events")
    assert [e["kind"] for e in events["items"]] == ["cancelled", "created"]
    assert events["items"][0]["data"]["refunded"] == 4


class FakeEngine:
    """The engine's command surface as the API sees it; records what it was asked."""

    def __init__(self) -> None:
        self.cancelled: list[tuple[uuid.UUID, uuid.UUID]] = []
        self.quota_changes: list[uuid.UUID] = []
        self.saved: list[uuid.UUID] = []

    async def campaign_saved(self, campaign_id: uuid.UUID) -> None:
        self.saved.append(campaign_id)

    async def cancel_campaign(self, campaign_id: uuid.UUID, by_user_id: uuid.UUID) -> None:
        self.cancelled.append((campaign_id, by_user_id))

    async def quota_changed(self, user_id: uuid.UUID) -> None:
        self.quota_changes.append(user_id)


async def test_running_campaign_cancel_goes_to_the_engine(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, contacts=2)
    c = await api.ok("POST", "/campaigns", json=_body(s, t))
    await deps.pool.execute("UPDATE campaigns SET status = 'running' WHERE id = $1", uid(c["id"]))
    engine = FakeEngine()
    deps.engine = engine
    try:
        got = await api.ok("POST", f"/campaigns/{c['id']}/cancel")
        assert got["id"] == c["id"]
        assert engine.cancelled == [(uid(c["id"]), uid(user["id"]))]
        pending = await api.ok("POST", "/campaigns", json=_body(s, t))
        await api.ok("POST", f"/campaigns/{pending['id']}/cancel")
        # Pending ones are cancelled here; the engine only hears that the user's quota moved.
        assert len(engine.cancelled) == 1 and engine.quota_changes == [uid(user["id"])] * 2
    finally:
        deps.engine = None


async def test_save_and_edit_tell_the_engine_only_when_they_succeed(admin: Api, deps) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=10, contacts=2)
    deps.engine = engine = FakeEngine()
    try:
        await api.err("POST", "/campaigns", 400, "VALIDATION_ERROR", field="name", json=_body(s, t, name=""))
        await api.err("POST", "/campaigns", 404, "NOT_FOUND", field="sender_id", json=_body(str(uuid.uuid4()), t))
        assert engine.saved == []
        c = await api.ok("POST", "/campaigns", json=_body(s, t))
        assert engine.saved == [uid(c["id"])]
        await api.err("PATCH", f"/campaigns/{c['id']}", 400, "VALIDATION_ERROR", field="name", json={"name": None})
        await make_contacts(deps.pool, user["id"], [f"x{i}@example.com" for i in range(20)])
        await api.err("PATCH", f"/campaigns/{c['id']}", 409, "QUOTA_INSUFFICIENT", json={"name": "bigger"})
        assert engine.saved == [uid(c["id"])]
        await deps.pool.execute("DELETE FROM contacts WHERE email LIKE 'x%'")
        await api.ok("PATCH", f"/campaigns/{c['id']}", json={"scheduled_at": None})
        assert engine.saved == [uid(c["id"])] * 2
        # Cancelling is not a save: the engine hears about the refund only.
        await api.ok("POST", f"/campaigns/{c['id']}/cancel")
        assert engine.saved == [uid(c["id"])] * 2 and engine.quota_changes[-1] == uid(user["id"])
    finally:
        deps.engine = None


async def test_detail_embeds_live_progress(admin: Api, deps, clock) -> None:
    user, api, s, t = await _setup(admin, deps, quota_units=10, contacts=4)
    c = await api.ok("POST", "/campaigns", json=_body(s, t))
    before_start = {"id": c["id"], "status": "pending", "pause_reason": None, "pause_message": None,
                    "failure_reason": None, "total": 0, "pending": 0, "sending": 0, "sent": 0, "failed": 0,
                    "cancelled": 0, "percent": 0.0, "rate_per_minute": 0.0, "eta_seconds": None,
                    "started_at": None, "finished_at": None}
    assert c["progress"] == before_start
    assert (await api.ok("GET", f"/campaigns/{c['id']}"))["progress"] == before_start
    # As if the engine had fanned it out five minutes ago: one sent 10 s ago, one failed 2 min ago, two left.
    # Counts come from the campaign's counters (no subtask is counted); the rate from the
    # per-minute send counters, as the overview's: 2 in the buckets of the last 4 min + this one
    # so far (4 whole minutes: the clock is at hh:mm:00) → 0.5 a minute.
    cid, now = uid(c["id"]), clock.now()
    await deps.pool.execute(
        "UPDATE campaigns SET status = 'paused', pause_reason = 'NO_USER_QUOTA', total = 4, sent_count = 1,"
        " failed_count = 1, started_at = $2 WHERE id = $1", cid, now - timedelta(minutes=5))
    await deps.pool.execute(
        "INSERT INTO send_minutes (minute, service_id, campaign_id, user_id, sent, failed) VALUES"
        " (date_trunc('minute', $2::timestamptz), $4, $1, $3, 1, 0),"
        " (date_trunc('minute', $5::timestamptz), $4, $1, $3, 0, 1),"
        " (date_trunc('minute', $6::timestamptz), $4, $1, $3, 7, 0)",  # six minutes ago: out of the rate
        cid, now - timedelta(seconds=10), uid(user["id"]), uuid.uuid4(), now - timedelta(minutes=2),
        now - timedelta(minutes=6))
    paused = (await api.ok("GET", f"/campaigns/{c['id']}"))["progress"]
    assert (paused["status"], paused["pause_reason"], paused["pause_message"]) == (
        "paused", "NO_USER_QUOTA", "当前没有发信额度")
    assert (paused["total"], paused["pending"], paused["sent"], paused["failed"]) == (4, 2, 1, 1)
    assert (paused["percent"], paused["rate_per_minute"], paused["eta_seconds"]) == (50.0, 0.5, None)
    await deps.pool.execute("UPDATE campaigns SET status = 'running', pause_reason = NULL WHERE id = $1", cid)
    running = await api.ok("GET", f"/campaigns/{c['id']}")
    # Two left at 0.5 a minute.
    assert running["status"] == running["progress"]["status"] == "running"
    assert running["progress"]["eta_seconds"] == 240.0 and running["progress"]["pause_message"] is None
    # The same numbers as the progress route, and the OpenAPI document says so.
    assert running["progress"] == await api.ok("GET", f"/campaigns/{c['id']}/progress")
    resp = await api.client.get("/api/v1/openapi.json")
    doc = await resp.json()
    detail = doc["paths"]["/api/v1/campaigns/{id}"]["get"]["responses"]["200"]["content"]["application/json"]
    ref = detail["schema"]["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
    schema = doc["components"]["schemas"][ref]
    assert "progress" in schema["required"] and schema["properties"]["progress"]["$ref"].endswith("/Progress")


async def test_other_users_campaign_is_404_and_admin_reaches_it(admin: Api, deps) -> None:
    alice, a_api, s, t = await _setup(admin, deps, quota_units=10, contacts=2, username="alice")
    _, b_api, bs, bt = await _setup(admin, deps, username="bob")
    c = await a_api.ok("POST", "/campaigns", json=_body(s, t))
    await b_api.err("GET", f"/campaigns/{c['id']}", 404, "NOT_FOUND", field="id")
    await b_api.err("PATCH", f"/campaigns/{c['id']}", 404, "NOT_FOUND", json={"name": "mine"})
    await b_api.err("POST", f"/campaigns/{c['id']}/cancel", 404, "NOT_FOUND")
    await b_api.err("GET", f"/campaigns/{c['id']}/events", 404, "NOT_FOUND")
    await b_api.err("GET", f"/campaigns/{uuid.uuid4()}", 404, "NOT_FOUND")
    await b_api.err("GET", "/campaigns/not-a-uuid", 400, "VALIDATION_ERROR", field="id")
    assert (await b_api.ok("GET", "/campaigns"))["total"] == 0
    # The administrator acts on anyone's campaign; the quota moved is the owner's.
    assert (await admin.ok("GET", f"/campaigns/{c['id']}"))["name"] == "Spring sale"
    await make_contacts(deps.pool, alice["id"], ["more@example.com"])
    edited = await admin.ok("PATCH", f"/campaigns/{c['id']}", json={"name": "by admin"})
    assert edited["reserved"] == 3 and edited["user_id"] == alice["id"]
    await _assert_ledger(deps, alice["id"], 7)
    # References must still be the owner's, not the administrator's.
    admin_sender, _ = await make_sender_and_template(admin)
    await admin.err("PATCH", f"/campaigns/{c['id']}", 404, "NOT_FOUND", field="sender_id",
                    json={"sender_id": admin_sender})
    await admin.ok("POST", f"/campaigns/{c['id']}/cancel")
    await _assert_ledger(deps, alice["id"], 10)
    refund = (await a_api.ok("GET", "/me/quota-log"))["items"][0]
    assert refund["kind"] == "refund" and refund["operator_id"] is not None
    assert (await admin.ok("GET", f"/campaigns/{c['id']}/events"))["total"] == 3
