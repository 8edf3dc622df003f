"""The user ↔ services mapping over the real API: replace whole, idempotent, one record per user."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api
from tests.service_factory import ENGAGELAB_KEY, EngineRecorder, make_service

MISSING = "00000000-0000-0000-0000-000000000000"


async def map_rows(deps: Any, user_id: str) -> tuple[int, set[str]]:
    uid = uuid.UUID(user_id)
    maps = await deps.pool.fetchval("SELECT count(*) FROM user_service_maps WHERE user_id = $1", uid)
    items = await deps.pool.fetch("SELECT service_id FROM user_service_map_items WHERE user_id = $1", uid)
    return maps, {str(r["service_id"]) for r in items}


async def test_replace_get_and_own_view(admin: Api, deps: Any) -> None:
    a = await make_service(admin, name="Alpha")
    b = await make_service(admin, name="Bravo")
    c = await make_service(admin, name="Charlie")
    user, as_user = await admin.new_user("alice")
    root = await deps.pool.fetchval("SELECT id FROM users WHERE username = 'root'")

    got = await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [b["id"], a["id"], b["id"]]})
    assert got["user_id"] == user["id"] and got["updated_at"] is not None
    assert got["service_ids"] == [a["id"], b["id"]]  # duplicates collapsed, ordered by name
    assert [s["name"] for s in got["services"]] == ["Alpha", "Bravo"]
    assert got["services"][0] == {
        "id": a["id"], "name": "Alpha", "domain": a["domain"], "enabled": True, "abnormal_frozen": False,
        "daily_quota": a["daily_quota"], "used_today": 0, "remaining_today": a["remaining_today"],
        "next_reset_at": a["next_reset_at"],
    }
    assert await admin.ok("GET", f"/users/{user['id']}/services") == got
    mine = await as_user.ok("GET", "/me/services")
    assert mine == got and "credentials" not in str(mine) and ENGAGELAB_KEY not in str(mine)

    # Replacing again with another set: still one record, now exactly the new set.
    again = await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [c["id"], b["id"]]})
    assert again["service_ids"] == [b["id"], c["id"]]
    assert await map_rows(deps, user["id"]) == (1, {b["id"], c["id"]})
    # Idempotent: the same call twice leaves the same state.
    twice = await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [c["id"], b["id"]]})
    assert twice["service_ids"] == again["service_ids"]
    assert await map_rows(deps, user["id"]) == (1, {b["id"], c["id"]})
    assert await deps.pool.fetchval("SELECT updated_by FROM user_service_maps") == root

    # The empty set is a valid mapping: the record stays, with no services.
    empty = await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": []})
    assert empty["service_ids"] == [] and empty["services"] == [] and empty["updated_at"] is not None
    assert await map_rows(deps, user["id"]) == (1, set())


async def test_service_state_shows_through_the_mapping(admin: Api) -> None:
    svc = await make_service(admin)
    user, as_user = await admin.new_user("bob")
    await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [svc["id"]]})
    await admin.ok("POST", f"/services/{svc['id']}/disable")
    await admin.ok("PUT", f"/services/{svc['id']}/remaining", json={"remaining": 9, "reason": "test"})
    (seen,) = (await as_user.ok("GET", "/me/services"))["services"]
    assert seen["enabled"] is False and seen["remaining_today"] == 9


async def test_user_without_mapping_has_an_empty_one(admin: Api, deps: Any) -> None:
    user, as_user = await admin.new_user("carol")
    got = await admin.ok("GET", f"/users/{user['id']}/services")
    assert got == {"user_id": user["id"], "service_ids": [], "services": [], "updated_at": None}
    assert (await as_user.ok("GET", "/me/services"))["services"] == []
    assert await map_rows(deps, user["id"]) == (0, set())


async def test_validation_writes_nothing(admin: Api, deps: Any) -> None:
    svc = await make_service(admin)
    user, _ = await admin.new_user("dave")
    path = f"/users/{user['id']}/services"
    await admin.ok("PUT", path, json={"service_ids": [svc["id"]]})
    before = await deps.pool.fetchval("SELECT updated_at FROM user_service_maps")

    error = await admin.err("PUT", path, 404, "NOT_FOUND", field="service_ids",
                            json={"service_ids": [svc["id"], MISSING]})
    assert error["details"]["unknown"] == [MISSING] and MISSING in error["message"]
    await admin.err("PUT", path, 400, "VALIDATION_ERROR", field="service_ids[1]",
                    json={"service_ids": [svc["id"], "not-a-uuid"]})
    await admin.err("PUT", path, 400, "VALIDATION_ERROR", field="service_ids", json={"service_ids": svc["id"]})
    await admin.err("PUT", path, 400, "VALIDATION_ERROR", field="service_ids", json={})
    await admin.err("PUT", path, 400, "VALIDATION_ERROR", field="extra", json={"service_ids": [], "extra": 1})
    await admin.err("PUT", path, 400, "VALIDATION_ERROR", field="body", data=b"",
                    headers={"Content-Type": "application/json"})
    await admin.err("PUT", f"/users/{MISSING}/services", 404, "NOT_FOUND", json={"service_ids": [svc["id"]]})
    await admin.err("GET", f"/users/{MISSING}/services", 404, "NOT_FOUND")
    await admin.err("PUT", "/users/nope/services", 400, "VALIDATION_ERROR", field="id", json={"service_ids": []})

    assert await map_rows(deps, user["id"]) == (1, {svc["id"]})
    assert await deps.pool.fetchval("SELECT updated_at FROM user_service_maps") == before
    assert await deps.pool.fetchval("SELECT count(*) FROM user_service_maps") == 1


async def test_users_are_forbidden_on_mapping_routes(admin: Api, deps: Any) -> None:
    svc = await make_service(admin)
    user, as_user = await admin.new_user("erin")
    await as_user.err("PUT", f"/users/{user['id']}/services", 403, "FORBIDDEN", json={"service_ids": [svc["id"]]})
    await as_user.err("GET", f"/users/{user['id']}/services", 403, "FORBIDDEN")
    await as_user.as_(None).err("GET", "/me/services", 401, "UNAUTHORIZED")
    assert await map_rows(deps, user["id"]) == (0, set())


async def test_engine_is_told_about_mapping_changes(admin: Api, deps: Any) -> None:
    svc = await make_service(admin)
    user, _ = await admin.new_user("frank")
    engine = EngineRecorder()
    deps.engine = engine
    await admin.ok("PUT", f"/users/{user['id']}/services", json={"service_ids": [svc["id"]]})
    await admin.err("PUT", f"/users/{user['id']}/services", 404, "NOT_FOUND", json={"service_ids": [MISSING]})
    assert engine.calls == [("mapping_changed", uuid.UUID(user["id"]))]
