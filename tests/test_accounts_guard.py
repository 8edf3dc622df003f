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
