"""Tags over the real API: per-user names, contact counts, rename, delete, isolation."""

from __future__ import annotations

import uuid

from tests.conftest import Api


async def _count(deps, sql: str, *args) -> int:
    return int(await deps.pool.fetchval(sql, *args))


async def test_tag_lifecycle_with_counts(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    vip = await alice.ok("POST", "/tags", json={"name": "VIP"})
    assert vip["name"] == "VIP" and vip["contact_count"] == 0
    await alice.ok("POST", "/tags", json={"name": "beta"})
    await alice.ok("POST", "/contacts", json={"email": "a@example.com", "tags": ["vip", "gamma"]})
    await alice.ok("POST", "/contacts", json={"email": "b@example.com", "tags": ["VIP"]})

    listed = await alice.ok("GET", "/tags")
    assert [(t["name"], t["contact_count"]) for t in listed["items"]] == [("beta", 0), ("gamma", 1), ("VIP", 2)]
    assert listed["total"] == 3
    page = await alice.ok("GET", "/tags?limit=1&offset=1")
    assert [t["name"] for t in page["items"]] == ["gamma"] and page["total"] == 3

    got = await alice.ok("GET", f"/tags/{vip['id']}")
    assert got["contact_count"] == 2
    renamed = await alice.ok("PATCH", f"/tags/{vip['id']}", json={"name": "Gold"})
    assert renamed == {**got, "name": "Gold"}
    # Changing only the case of its own name is not a conflict with itself.
    assert (await alice.ok("PATCH", f"/tags/{vip['id']}", json={"name": "GOLD"}))["name"] == "GOLD"
    contact = (await alice.ok("GET", "/contacts?q=a@"))["items"][0]
    assert contact["tags"] == ["gamma", "GOLD"]

    deleted = await alice.ok("DELETE", f"/tags/{vip['id']}")
    assert deleted == {"id": vip["id"], "deleted": True}
    await alice.err("GET", f"/tags/{vip['id']}", 404, "NOT_FOUND", field="id")
    assert (await alice.ok("GET", "/contacts?q=a@"))["items"][0]["tags"] == ["gamma"]
    # The links went with the tag; the contacts stayed.
    assert await _count(deps, "SELECT count(*) FROM contact_tags WHERE tag_id = $1", uuid.UUID(vip["id"])) == 0
    assert (await alice.ok("GET", "/contacts"))["total"] == 2


async def test_tag_validation_writes_nothing(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    tag = await alice.ok("POST", "/tags", json={"name": "News"})
    await alice.ok("POST", "/tags", json={"name": "Other"})
    before = await _count(deps, "SELECT count(*) FROM tags")
    for payload in ({"name": ""}, {"name": "x" * 65}, {"name": "a,b"}, {"name": "a;b"}, {"name": " pad"},
                    {"name": "line\nbreak"}, {"name": 5}, {}):
        await alice.err("POST", "/tags", 400, "VALIDATION_ERROR", field="name", json=payload)
    await alice.err("POST", "/tags", 400, "VALIDATION_ERROR", field="colour", json={"name": "x", "colour": "red"})
    await alice.err("POST", "/tags", 409, "CONFLICT", field="name", json={"name": "news"})
    await alice.err("PATCH", f"/tags/{tag['id']}", 409, "CONFLICT", field="name", json={"name": "OTHER"})
    await alice.err("PATCH", f"/tags/{tag['id']}", 400, "VALIDATION_ERROR", field="name", json={"name": ""})
    await alice.err("GET", "/tags/not-a-uuid", 400, "VALIDATION_ERROR", field="id")
    await alice.err("GET", "/tags?limit=0", 400, "VALIDATION_ERROR", field="limit")
    assert await _count(deps, "SELECT count(*) FROM tags") == before
    assert (await alice.ok("GET", f"/tags/{tag['id']}"))["name"] == "News"
    # 64 characters is still a name.
    assert (await alice.ok("POST", "/tags", json={"name": "y" * 64}))["name"] == "y" * 64


async def test_other_users_tags_are_not_found(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    tag = await alice.ok("POST", "/tags", json={"name": "vip"})
    await bob.err("GET", f"/tags/{tag['id']}", 404, "NOT_FOUND")
    await bob.err("PATCH", f"/tags/{tag['id']}", 404, "NOT_FOUND", json={"name": "mine"})
    await bob.err("DELETE", f"/tags/{tag['id']}", 404, "NOT_FOUND")
    assert (await bob.ok("GET", "/tags"))["total"] == 0
    # Names are unique per user only.
    assert (await bob.ok("POST", "/tags", json={"name": "VIP"}))["name"] == "VIP"
    assert (await alice.ok("GET", f"/tags/{tag['id']}"))["name"] == "vip"


async def test_tag_selected_by_a_campaign_cannot_be_deleted(admin: Api, deps) -> None:
    me, alice = await admin.new_user("alice")
    tag = await alice.ok("POST", "/tags", json={"name": "vip"})
    user_id, tag_id = uuid.UUID(me["id"]), uuid.UUID(tag["id"])
    async with deps.pool.acquire() as conn:
        sender = await conn.fetchval("INSERT INTO senders (user_id, name) VALUES ($1, 'news') RETURNING id", user_id)
        campaign = await conn.fetchval(
            "INSERT INTO campaigns (user_id, name, sender_id, sender_name) VALUES ($1, 'c', $2, 'news') RETURNING id",
            user_id, sender)
        await conn.execute("INSERT INTO campaign_tags (campaign_id, tag_id, mode) VALUES ($1, $2, 'include')",
                           campaign, tag_id)
    await alice.err("DELETE", f"/tags/{tag['id']}", 409, "CONFLICT", field="id")
    assert await _count(deps, "SELECT count(*) FROM tags WHERE id = $1", tag_id) == 1
