"""Senders over the real API: name rules, system-wide uniqueness, ownership, SENDER_IN_USE."""

from __future__ import annotations

import pytest

from tests.campaign_factory import make_contacts, uid
from tests.conftest import Api


async def _count(deps) -> int:
    return int(await deps.pool.fetchval("SELECT count(*) FROM senders"))


async def test_create_list_get_delete(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    created = await alice.ok("POST", "/senders", json={"name": "News.Letter_1"})
    assert created["name"] == "News.Letter_1" and set(created) == {"id", "name", "created_at"}
    await alice.ok("POST", "/senders", json={"name": "a"})
    listed = await alice.ok("GET", "/senders?limit=1")
    assert listed["total"] == 2 and [s["name"] for s in listed["items"]] == ["a"]
    assert (await alice.ok("GET", "/senders?offset=1"))["items"][0]["id"] == created["id"]
    assert (await alice.ok("GET", f"/senders/{created['id']}"))["name"] == "News.Letter_1"
    assert await alice.ok("DELETE", f"/senders/{created['id']}") == {"id": created["id"], "deleted": True}
    await alice.err("GET", f"/senders/{created['id']}", 404, "NOT_FOUND", field="id")
    assert (await alice.ok("GET", "/senders"))["total"] == 1


@pytest.mark.parametrize("name", ["a", "A-Z_0-9", "a.b.c", "-x-", "_", "x" * 64, "ends_", "0"])
async def test_valid_names(admin: Api, name: str) -> None:
    _, u = await admin.new_user()
    assert (await u.ok("POST", "/senders", json={"name": name}))["name"] == name


@pytest.mark.parametrize("name", ["", "x" * 65, ".a", "a.", "a..b", "a b", "ä", "a@b", "a/b", ".", "..", " a"])
async def test_invalid_names_are_400_and_write_nothing(admin: Api, deps, name: str) -> None:
    _, u = await admin.new_user()
    await u.err("POST", "/senders", 400, "VALIDATION_ERROR", field="name", json={"name": name})
    assert await _count(deps) == 0


async def test_body_errors(admin: Api, deps) -> None:
    _, u = await admin.new_user()
    await u.err("POST", "/senders", 400, "VALIDATION_ERROR", field="name", json={})
    await u.err("POST", "/senders", 400, "VALIDATION_ERROR", field="name", json={"name": 5})
    await u.err("POST", "/senders", 400, "VALIDATION_ERROR", field="extra", json={"name": "ok", "extra": 1})
    await u.err("GET", "/senders/not-a-uuid", 400, "VALIDATION_ERROR", field="id")
    assert await _count(deps) == 0


async def test_names_are_unique_system_wide_case_insensitively(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    await alice.ok("POST", "/senders", json={"name": "Promo"})
    await alice.err("POST", "/senders", 409, "CONFLICT", field="name", json={"name": "promo"})
    err = await bob.err("POST", "/senders", 409, "CONFLICT", field="name", json={"name": "PROMO"})
    # The answer never tells bob who holds the name.
    assert "alice" not in str(err).lower()
    assert await _count(deps) == 1


async def test_other_users_sender_is_404(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    s = await alice.ok("POST", "/senders", json={"name": "alice-news"})
    await bob.err("GET", f"/senders/{s['id']}", 404, "NOT_FOUND")
    await bob.err("DELETE", f"/senders/{s['id']}", 404, "NOT_FOUND")
    assert (await bob.ok("GET", "/senders"))["total"] == 0
    assert await _count(deps) == 1


async def test_sender_in_use_by_active_campaign(admin: Api, deps) -> None:
    user, alice = await admin.new_user("alice", quota=10)
    await make_contacts(deps.pool, user["id"], ["x@example.com"])
    s = await alice.ok("POST", "/senders", json={"name": "busy"})
    t = await alice.ok("POST", "/templates", json={"name": "t", "subject": "s", "text_body": "b"})
    c = await alice.ok("POST", "/campaigns", json={"name": "c", "sender_id": s["id"], "template_ids": [t["id"]]})
    for status in ("pending", "running", "paused"):
        await deps.pool.execute(
            "UPDATE campaigns SET status = $2, pause_reason = CASE WHEN $2 = 'paused' THEN 'USER' END WHERE id = $1",
            uid(c["id"]), status)
        await alice.err("DELETE", f"/senders/{s['id']}", 409, "SENDER_IN_USE", field="id")
        assert await _count(deps) == 1
    # A finished campaign keeps the sender's name after the sender goes.
    await deps.pool.execute("UPDATE campaigns SET status = 'completed', pause_reason = NULL WHERE id = $1",
                            uid(c["id"]))
    await alice.ok("DELETE", f"/senders/{s['id']}")
    got = await alice.ok("GET", f"/campaigns/{c['id']}")
    assert got["sender_id"] is None and got["sender_name"] == "busy"


async def test_cancelled_campaign_frees_the_sender(admin: Api, deps) -> None:
    user, alice = await admin.new_user("alice", quota=10)
    await make_contacts(deps.pool, user["id"], ["x@example.com"])
    s = await alice.ok("POST", "/senders", json={"name": "once"})
    t = await alice.ok("POST", "/templates", json={"name": "t", "subject": "s", "text_body": "b"})
    c = await alice.ok("POST", "/campaigns", json={"name": "c", "sender_id": s["id"], "template_ids": [t["id"]]})
    await alice.err("DELETE", f"/senders/{s['id']}", 409, "SENDER_IN_USE")
    await alice.ok("POST", f"/campaigns/{c['id']}/cancel")
    await alice.ok("DELETE", f"/senders/{s['id']}")
    # The freed name can be taken again, by anyone.
    _, bob = await admin.new_user("bob")
    await bob.ok("POST", "/senders", json={"name": "ONCE"})
