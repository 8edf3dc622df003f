"""The last administrator stays, people change their own password, secrets show little."""

from __future__ import annotations

import uuid

from tests.conftest import Api


async def test_the_last_admin_cannot_be_demoted_or_disabled(admin: Api, deps) -> None:
    me = await admin.ok("GET", "/me")
    path = f"/users/{me['id']}"
    err = await admin.err("PATCH", path, 409, "LAST_ADMIN", field="role", json={"role": "user"})
    assert "last" in err["message"]
    second, as_second = await admin.new_user("second-admin", role="admin")
    # Two admins: one may demote the other, then the survivor is the last one again.
    assert (await admin.ok("PATCH", f"/users/{second['id']}", json={"role": "user"}))["role"] == "user"
    await admin.err("PATCH", path, 409, "LAST_ADMIN", field="role", json={"role": "user"})
    third, as_third = await admin.new_user("third-admin", role="admin")
    await as_third.ok("PATCH", path, json={"enabled": False})
    # root is disabled: third is the only enabled admin and cannot be removed by anyone.
    await as_third.err("PATCH", f"/users/{third['id']}", 409, "LAST_ADMIN", field="role", json={"role": "user"})
    row = await deps.pool.fetchrow("SELECT role, enabled FROM users WHERE id = $1", uuid.UUID(third["id"]))
    assert tuple(row) == ("admin", True)


def test_masks_show_at_most_four_characters_of_long_secrets() -> None:
    from engine.infra.secret_box import mask

    assert mask("63b8f00dSECRETapikeyZZ9b868") == "…b868"
    assert mask("exactly-16-chars") == "…hars"
    for short in ("", "p", "fifteen-chars!!", "twelve-chars"):
        assert mask(short) == "••••"


async def test_credentials_with_control_characters_are_refused(admin: Api, deps) -> None:
    from tests.service_factory import engagelab_payload, smtp_payload

    for bad in ("key\x00tail-long-enough", "key\nX-Injected: 1", "tab\there", "del\x7f"):
        await admin.err("POST", "/services", 400, "VALIDATION_ERROR", field="credentials.api_key",
                        json=engagelab_payload(credentials={"api_user": "u", "api_key": bad}))
    smtp = smtp_payload()
    smtp["credentials"]["password"] = "pass\r\nword-1234567"
    await admin.err("POST", "/services", 400, "VALIDATION_ERROR", field="credentials.password", json=smtp)
    smtp["credentials"]["password"], smtp["credentials"]["username"] = "fine", "us\x1ber"
    await admin.err("POST", "/services", 400, "VALIDATION_ERROR", field="credentials.username", json=smtp)
    assert await deps.pool.fetchval("SELECT count(*) FROM services") == 0


async def test_users_change_their_own_password(admin: Api) -> None:
    _, phone = await admin.new_user("gina")
    laptop = await admin.as_(None).login("gina", "password-123")
    await phone.err("POST", "/me/password", 401, "INVALID_CREDENTIALS", field="old_password",
                    json={"old_password": "wrong-one", "new_password": "brand-new-pass"})
    await phone.err("POST", "/me/password", 400, "VALIDATION_ERROR", field="new_password",
                    json={"old_password": "password-123", "new_password": "short"})
    await laptop.ok("GET", "/me")  # refusals changed nothing
    fresh = await phone.ok("POST", "/me/password",
                           json={"old_password": "password-123", "new_password": "brand-new-pass"})
    # The other sessions' tokens die; the caller carries on with the token it got back.
    await laptop.err("GET", "/me", 401, "UNAUTHORIZED")
    await phone.err("GET", "/me", 401, "UNAUTHORIZED")
    assert (await phone.as_(fresh["token"]).ok("GET", "/me"))["username"] == "gina"
    await admin.as_(None).login("gina", "brand-new-pass")
    await admin.as_(None).err("POST", "/auth/login", 401, "INVALID_CREDENTIALS",
                              json={"username": "gina", "password": "password-123"})


async def test_argon2_runs_off_the_event_loop() -> None:
    import threading

    from engine.infra.passwords import Passwords

    seen: list[str] = []

    class Watched(Passwords):
        def hash(self, password: str) -> str:
            seen.append(threading.current_thread().name)
            return super().hash(password)

        def verify(self, stored_hash: str | None, password: str) -> bool:
            seen.append(threading.current_thread().name)
            return super().verify(stored_hash, password)

    p = Watched(time_cost=1, memory_cost=1024)
    stored = await p.hash_async("a-password")
    assert await p.verify_async(stored, "a-password") and not await p.verify_async(stored, "other")
    assert seen and threading.main_thread().name not in seen
