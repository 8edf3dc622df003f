"""Feedback in, piece by piece: the webhook's signature and replay window, the per-service
secret, the generic bounce endpoint, the suppression API and the rules behind them."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import orjson

from api.engagelab_callbacks import signature
from engine.domain.recipient_token import sign, verify
from engine.domain.reputation import GuardPolicy, verdict
from tests.conftest import Api
from tests.engine_support import make_campaign, make_contacts, make_service

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
ROOT = Path(__file__).resolve().parent.parent


async def _sent_subtask(deps, admin: Api, *, pending: int = 0) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID, str, Api]:
    """A user, a service with a webhook secret, and a running campaign with one sent subtask
    (plus `pending` never-attempted ones)."""
    pool = deps.pool
    user, api = await admin.new_user(quota=10)
    uid = uuid.UUID(user["id"])
    service = await make_service(pool, deps.box, deps.settings, deps.clock.now(), base_url="http://127.0.0.1:9")
    emails = await make_contacts(pool, uid, 1 + pending)
    campaign = await make_campaign(pool, uid, planned=1 + pending)
    await pool.execute("UPDATE campaigns SET status = 'running', total = $2, sent_count = 1, started_at = now() "
                       "WHERE id = $1", campaign, 1 + pending)
    await pool.execute("""INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id,
                                                attempted_at, message_id)
                          SELECT $1, n, e, (SELECT template_id FROM campaign_templates WHERE campaign_id = $1),
                                 CASE WHEN n = 1 THEN 'sent' ELSE 'pending' END,
                                 CASE WHEN n = 1 THEN $3::uuid END, CASE WHEN n = 1 THEN now() END,
                                 CASE WHEN n = 1 THEN 'mid-1' END
                          FROM unnest($2::text[]) WITH ORDINALITY AS u(e, n)""", campaign, emails, service)
    subtask = await pool.fetchval("SELECT id FROM subtasks WHERE campaign_id = $1 AND seq = 1", campaign)
    return service, campaign, subtask, emails[0], api


def _callback(subtask: uuid.UUID, status: str = "invalid", itime: int = 1) -> bytes:
    return orjson.dumps({"server": "email", "message_id": "mid-1", "itime": itime,
                         "custom_args": {"subtask_id": str(subtask)},
                         "status": {"message_status": status, "status_data": {"email_id": "mid-1"}}})


async def _post(client, service: uuid.UUID, body: bytes, secret: str | None, ts: int | None = None,
                sig: str | None = None):
    ts_s = str(ts if ts is not None else int(NOW.timestamp()))
    headers = {"Content-Type": "application/json", "X-WebHook-AppKey": "email"}
    if secret is not None:
        headers |= {"X-WebHook-Timestamp": ts_s, "X-WebHook-Signature": sig or signature(secret, ts_s)}
    resp = await client.post(f"/api/v1/webhooks/engagelab/{service}", data=body, headers=headers)
    return resp.status, await resp.json()


async def test_webhook_signature_replay_and_secret(admin: Api, deps) -> None:
    pool, client = deps.pool, admin.client
    service, campaign, subtask, email, _ = await _sent_subtask(deps, admin)
    body = _callback(subtask)
    # No secret yet: nothing is accepted.
    status, _ = await _post(client, service, body, "whatever")
    assert status == 401
    revealed = await admin.ok("POST", f"/services/{service}/webhook-secret")
    secret = revealed["secret"]
    assert revealed["url"].endswith(f"/api/v1/webhooks/engagelab/{service}")
    # Shown once: never in the service's view or its status log.
    for path in (f"/services/{service}", f"/services/{service}/status-log"):
        resp = await client.get("/api/v1" + path, headers={"Authorization": f"Bearer {admin.token}"})
        assert secret not in await resp.text()
    # Forged, unsigned, stale: 401 with a reason, nothing stored.
    for kwargs, reason in (({"secret": "whsec_wrong"}, "bad_signature"), ({"secret": None}, "unsigned"),
                           ({"secret": secret, "ts": int(NOW.timestamp()) - 3600}, "stale")):
        status, answer = await _post(client, service, body, **kwargs)
        assert status == 401 and answer["error"]["code"] == "UNAUTHORIZED", answer
        assert answer["error"]["details"]["reason"] == reason
    assert await pool.fetchval("SELECT count(*) FROM delivery_events") == 0
    # Malformed body, well signed: 400 naming the field.
    status, answer = await _post(client, service, b"[1, 2]", secret)
    assert status == 400 and answer["error"]["details"]["field"] == "body"
    # The genuine callback: stored, the address suppressed for its owner.
    status, answer = await _post(client, service, body, secret)
    assert status == 200 and answer["data"] == {"stored": 1, "duplicates": 0, "unmatched": 0, "ignored": 0}
    # Replayed (same event, freshly signed): acknowledged, not stored twice.
    status, answer = await _post(client, service, body, secret)
    assert answer["data"]["duplicates"] == 1
    assert await pool.fetchval("SELECT count(*) FROM delivery_events") == 1
    assert await pool.fetchval("SELECT outcome FROM subtasks WHERE id = $1", subtask) == "hard_bounce"
    assert await pool.fetchval("SELECT reason FROM suppressions WHERE email = $1", email.lower()) == "hard_bounce"
    # Another service's URL does not match this subtask; `target`/`sent` statuses are ignored.
    other = await make_service(pool, deps.box, deps.settings, NOW, base_url="http://127.0.0.1:9")
    other_secret = (await admin.ok("POST", f"/services/{other}/webhook-secret"))["secret"]
    _, answer = await _post(client, other, _callback(subtask, "delivered", 2), other_secret)
    assert answer["data"]["unmatched"] == 1
    _, answer = await _post(client, service, _callback(subtask, "sent", 3), secret)
    assert answer["data"]["ignored"] == 1
    # Rotation: the old secret stops working at once.
    await admin.ok("POST", f"/services/{service}/webhook-secret")
    status, _ = await _post(client, service, _callback(subtask, "delivered", 4), secret)
    assert status == 401


async def test_suppressed_before_sending_is_cancelled_and_refunded(admin: Api, deps) -> None:
    pool = deps.pool
    _, campaign, _, _, api = await _sent_subtask(deps, admin, pending=2)
    pending = await pool.fetch("SELECT email FROM subtasks WHERE campaign_id = $1 AND status = 'pending'", campaign)
    balance = await pool.fetchval("SELECT quota_remaining FROM users u JOIN campaigns c ON c.user_id = u.id "
                                  "WHERE c.id = $1", campaign)
    # A hard bounce reported by address for a recipient not yet sent (e.g. from an earlier mailing).
    out = await api.ok("POST", "/bounces", json={"email": pending[0]["email"], "kind": "hard",
                                                 "campaign_id": str(campaign)})
    assert out["suppressed"] is True
    row = await pool.fetchrow("SELECT status, error FROM subtasks WHERE campaign_id = $1 AND email = $2",
                              campaign, pending[0]["email"])
    assert row["status"] == "cancelled" and row["error"].startswith("SUPPRESSED")
    assert await pool.fetchval("SELECT cancelled_count FROM campaigns WHERE id = $1", campaign) == 1
    assert await pool.fetchval("SELECT quota_remaining FROM users u JOIN campaigns c ON c.user_id = u.id "
                               "WHERE c.id = $1", campaign) == balance + 1
    # Soft bounces suppress only after three in a row (no campaign: the caller's own list).
    for n in range(3):
        out = await api.ok("POST", "/bounces", json={"email": "Soft@Example.org", "kind": "soft"})
        assert out["suppressed"] is (n == 2)
    await api.err("POST", "/bounces", 400, "VALIDATION_ERROR", field="kind", json={"email": "a@b.c", "kind": "x"})
    await api.err("POST", "/bounces", 404, "NOT_FOUND", field="email",
                  json={"email": "nobody@x.org", "kind": "hard", "campaign_id": str(campaign)})


async def test_suppression_api(admin: Api, deps) -> None:
    _, api = await admin.new_user()
    added = await api.ok("POST", "/suppressions", json={"email": " Bob@Example.COM ", "reason": "asked"})
    assert added == {"email": "bob@example.com", "added": True}
    again = await api.ok("POST", "/suppressions", json={"email": "bob@example.com", "reason": "asked"})
    assert again["added"] is False
    await api.err("POST", "/suppressions", 400, "VALIDATION_ERROR", field="email",
                  json={"email": "not an address", "reason": "x"})
    await api.err("POST", "/suppressions", 400, "VALIDATION_ERROR", field="reason", json={"email": "a@b.co"})
    status, body = await api.call("POST", "/suppressions/import", data=b"email,name\nann@x.org,Ann\nBOB@example.com,B\n",
                                  headers={"Content-Type": "text/csv"})
    assert status == 200 and body["data"] == {"added": 1, "already_listed": 1}, body
    await api.err("POST", "/suppressions/import", 400, "VALIDATION_ERROR", field="body",
                  data=b"email\nok@x.org\nbroken\n", headers={"Content-Type": "text/csv"})
    assert (await api.ok("GET", "/suppressions?q=ann"))["total"] == 1  # the bad import wrote nothing
    page = await api.ok("GET", "/suppressions?limit=1")
    assert page["total"] == 2 and len(page["items"]) == 1
    resp = await api.client.get("/api/v1/suppressions/export", headers={"Authorization": f"Bearer {api.token}"})
    lines = (await resp.text()).splitlines()
    assert resp.content_type == "text/csv" and lines[0] == "email,reason,source,created_at"
    assert [line.split(",")[:2] for line in lines[1:]] == [["ann@x.org", "import"], ["bob@example.com", "manual"]]
    await api.err("POST", "/suppressions/remove", 404, "NOT_FOUND", field="email",
                  json={"email": "zed@x.org", "reason": "mistake"})
    await api.ok("POST", "/suppressions/remove", json={"email": "ann@x.org", "reason": "mistake"})
    assert await deps.pool.fetchval("SELECT reason FROM suppression_log WHERE action = 'removed'") == "mistake"
    # The admin-wide list is for admins; admins see users' lists too.
    await api.err("GET", "/suppressions?scope=global", 403, "FORBIDDEN")
    await admin.ok("POST", "/suppressions?scope=global", json={"email": "spamtrap@x.org", "reason": "trap"})
    assert (await admin.ok("GET", "/suppressions?scope=global"))["total"] == 1
    assert (await api.ok("GET", "/suppressions"))["total"] == 1


def test_recipient_tokens_cannot_be_forged_or_repurposed() -> None:
    key, other = b"k" * 32, b"o" * 32
    sid = uuid.uuid4()
    token = sign(key, "u", sid)
    assert verify(key, "u", token) == sid
    assert verify(other, "u", token) is None
    assert verify(key, "o", token) is None  # an open token is not an unsubscribe token
    assert verify(key, "u", token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert verify(key, "u", "garbage") is None and verify(key, "u", "x.u.y") is None
    click = sign(key, "c", sid, "https://a.example/")
    assert verify(key, "c", click, "https://a.example/") == sid
    assert verify(key, "c", click, "https://evil.example/") is None


def test_reputation_verdict() -> None:
    p = GuardPolicy(min_sends=100)
    assert verdict(p, 99, 50, 50) is None  # too few sends to judge
    assert verdict(p, 1000, 50, 3) is None  # exactly at the thresholds
    assert "hard bounce rate" in (verdict(p, 1000, 51, 0) or "")
    assert "complaint rate" in (verdict(p, 1000, 0, 4) or "")


def test_signature_is_hmac_sha256_of_the_timestamp() -> None:
    import hashlib
    import hmac
    ts = str(int(time.time()))
    assert signature("s", ts) == hmac.new(b"s", ts.encode(), hashlib.sha256).hexdigest()


async def test_suppression_finds_the_pending_subtask_in_a_fanned_out_campaign(admin: Api, deps) -> None:
    """Pins the binary search over seq to fan-out's numbering (lower(email) order)."""
    import random

    from engine.dispatch.fanout import start_campaign
    from engine.live.events import EventWriter, LogSink

    pool = deps.pool
    user, api = await admin.new_user(quota=200)
    uid = uuid.UUID(user["id"])
    rng = random.Random(5)
    emails = [f"{rng.choice(['', 'Z', 'a', 'M'])}{rng.randrange(10**6):06d}.{i}@Ex{i % 3}.org" for i in range(150)]
    rng.shuffle(emails)
    await pool.execute("INSERT INTO contacts (user_id, email) SELECT $1, unnest($2::text[])", uid, emails)
    campaign = await make_campaign(pool, uid, planned=150)
    assert (await start_campaign(pool, EventWriter(LogSink()), campaign, NOW)).status == "running"
    by_seq = sorted(emails, key=str.lower)
    targets = [by_seq[0], by_seq[-1], by_seq[74], by_seq[75], by_seq[1]]
    for email in targets + ["stranger@nowhere.org"]:
        await api.ok("POST", "/suppressions", json={"email": email.upper(), "reason": "test"})
    cancelled = {r["email"] for r in await pool.fetch(
        "SELECT email FROM subtasks WHERE campaign_id = $1 AND status = 'cancelled'", campaign)}
    assert cancelled == set(targets)
    assert await pool.fetchval("SELECT cancelled_count FROM campaigns WHERE id = $1", campaign) == len(targets)


def _event(subtask: uuid.UUID, event: str, itime: int) -> bytes:
    return orjson.dumps({"server": "email", "message_id": "mid-1", "itime": itime,
                         "custom_args": {"subtask_id": str(subtask)},
                         "response": {"event": event, "response_data": {"email_id": "mid-1"}}})


async def test_the_funnel_counts_recipients_once_across_concurrent_callbacks(admin: Api, deps) -> None:
    # One recipient opens eight times and clicks twice; the callbacks arrive at once, each in its own
    # post (its own transaction), some of them replayed. Every distinct event is stored; the
    # funnel (counters kept with the events) counts the recipient once per kind, as a recount does.
    pool, client = deps.pool, admin.client
    service, campaign, subtask, _, api = await _sent_subtask(deps, admin)
    secret = (await admin.ok("POST", f"/services/{service}/webhook-secret"))["secret"]
    bodies = ([_callback(subtask, "delivered", 1)] + [_event(subtask, "open", 10 + k) for k in range(8)]
              + [_event(subtask, "click", 20 + k) for k in range(2)])
    answers = await asyncio.gather(*(_post(client, service, b, secret) for b in bodies + bodies[:4]))
    assert all(status == 200 for status, _ in answers), answers
    assert sum(a["data"]["stored"] for _, a in answers) == len(bodies)
    assert sum(a["data"]["duplicates"] for _, a in answers) == 4
    funnel = await api.ok("GET", f"/campaigns/{campaign}/funnel")
    assert (funnel["sent"], funnel["delivered"], funnel["opened"], funnel["clicked"]) == (1, 1, 1, 1), funnel
    assert funnel["rates"]["opened"] == 1.0
    recount = {r["kind"]: r["n"] for r in await pool.fetch(
        "SELECT kind, count(DISTINCT subtask_id)::int AS n FROM delivery_events WHERE campaign_id = $1 GROUP BY kind",
        campaign)}
    assert recount == {"delivered": 1, "open": 1, "click": 1}
    # Migration 0013 fills the counters from the events an existing install already has.
    migration = (ROOT / "sql" / "migrations" / "0013_campaign_funnels.sql").read_text()
    await pool.execute("DELETE FROM campaign_funnels; DELETE FROM delivery_firsts")
    await pool.execute(migration[migration.index("INSERT INTO delivery_firsts"):])
    assert await api.ok("GET", f"/campaigns/{campaign}/funnel") == funnel
