"""Templates over the real API: CRUD, save-time checks, the sandbox, preview, TEMPLATE_IN_USE."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.campaign_factory import make_contacts, uid
from tests.conftest import Api

BODY = {"name": "Welcome", "subject": "Hi {{ name }}", "html_body": "<p>Hello {{ name }} from {{ city }}</p>",
        "text_body": "Hello {{ name }}"}


async def _count(deps) -> int:
    return int(await deps.pool.fetchval("SELECT count(*) FROM templates"))


async def test_crud(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    t = await alice.ok("POST", "/templates", json=BODY)
    assert {k: t[k] for k in BODY} == BODY and t["created_at"] == t["updated_at"]
    await alice.ok("POST", "/templates", json={"name": "Text only", "subject": "s", "text_body": "plain"})
    listed = await alice.ok("GET", "/templates")
    assert listed["total"] == 2 and [x["name"] for x in listed["items"]] == ["Welcome", "Text only"]
    assert "html_body" not in listed["items"][0]  # the list is a summary
    assert (await alice.ok("GET", f"/templates/{t['id']}"))["html_body"] == BODY["html_body"]
    patched = await alice.ok("PATCH", f"/templates/{t['id']}", json={"subject": "Hello {{ name }}!"})
    assert patched["subject"] == "Hello {{ name }}!" and patched["html_body"] == BODY["html_body"]
    assert datetime.fromisoformat(patched["updated_at"]) > datetime.fromisoformat(t["updated_at"])
    again = await alice.ok("PATCH", f"/templates/{t['id']}", json={"name": "Renamed"})
    assert datetime.fromisoformat(again["updated_at"]) > datetime.fromisoformat(patched["updated_at"])
    assert await alice.ok("DELETE", f"/templates/{t['id']}") == {"id": t["id"], "deleted": True}
    await alice.err("GET", f"/templates/{t['id']}", 404, "NOT_FOUND", field="id")


@pytest.mark.parametrize(("payload", "field"), [
    ({"subject": "s", "text_body": "b"}, "name"),
    ({"name": "", "subject": "s", "text_body": "b"}, "name"),
    ({"name": "   ", "subject": "s", "text_body": "b"}, "name"),
    ({"name": "n" * 201, "subject": "s", "text_body": "b"}, "name"),
    ({"name": "n", "text_body": "b"}, "subject"),
    ({"name": "n", "subject": "", "text_body": "b"}, "subject"),
    ({"name": "n", "subject": "  ", "text_body": "b"}, "subject"),
    ({"name": "n", "subject": "two\nlines", "text_body": "b"}, "subject"),
    ({"name": "n", "subject": "s" * 999, "text_body": "b"}, "subject"),
    ({"name": "n", "subject": "s"}, "html_body"),
    ({"name": "n", "subject": "s", "html_body": " ", "text_body": "\n"}, "html_body"),
    ({"name": "n", "subject": "s", "text_body": 3}, "text_body"),
    ({"name": "n", "subject": "s", "text_body": "b", "body": "x"}, "body"),
])
async def test_validation_is_400_and_writes_nothing(admin: Api, deps, payload: dict, field: str) -> None:
    _, u = await admin.new_user()
    await u.err("POST", "/templates", 400, "VALIDATION_ERROR", field=field, json=payload)
    assert await _count(deps) == 0


@pytest.mark.parametrize("part", ["subject", "html_body", "text_body"])
async def test_syntax_error_is_422_with_field_and_line(admin: Api, deps, part: str) -> None:
    _, u = await admin.new_user()
    payload = {"name": "n", "subject": "s", "html_body": "h", "text_body": "t"}
    payload[part] = "fine\n{% if name %}no end" if part != "subject" else "Hi {{ name "
    err = await u.err("POST", "/templates", 422, "TEMPLATE_ERROR", field=part, json=payload)
    assert err["details"]["line"] == (1 if part == "subject" else 2) and "line" in err["message"]
    assert await _count(deps) == 0


@pytest.mark.parametrize("source", ["{{ ''.__class__.__mro__[1].__subclasses__() }}",
                                    "{{ name | attr('__class__') }}",
                                    "{% set k = '__glob' ~ 'als__' %}{{ cycler.__init__[k] }}",
                                    "{{ 'x' * 100000000 }}",
                                    # Work, not size: 10^8 iterations held the event loop for seconds.
                                    "{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}"
                                    "{% endfor %}",
                                    "{% macro f(n) %}{% if n < 30 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}"
                                    "{% endmacro %}{{ f(0) }}"])
async def test_sandbox_escapes_are_template_errors(admin: Api, deps, source: str) -> None:
    _, u = await admin.new_user()
    await u.err("POST", "/templates", 422, "TEMPLATE_ERROR", field="html_body",
                json={"name": "n", "subject": "s", "html_body": source})
    assert await _count(deps) == 0


async def test_patch_revalidates_and_changes_nothing_on_error(admin: Api) -> None:
    _, u = await admin.new_user()
    t = await u.ok("POST", "/templates", json=BODY)
    await u.err("PATCH", f"/templates/{t['id']}", 422, "TEMPLATE_ERROR", field="text_body",
                json={"text_body": "{% for %}"})
    await u.err("PATCH", f"/templates/{t['id']}", 400, "VALIDATION_ERROR", field="html_body",
                json={"html_body": "", "text_body": ""})
    # One blank body is fine alone; with the other blank as stored, it conflicts.
    await u.ok("PATCH", f"/templates/{t['id']}", json={"html_body": ""})
    await u.err("PATCH", f"/templates/{t['id']}", 409, "CONFLICT", field="html_body", json={"text_body": " "})
    t = await u.ok("PATCH", f"/templates/{t['id']}", json={"html_body": BODY["html_body"]})
    await u.err("PATCH", f"/templates/{t['id']}", 400, "VALIDATION_ERROR", field="nope", json={"nope": 1})
    await u.err("PATCH", f"/templates/{t['id']}", 400, "VALIDATION_ERROR", field="subject", json={"subject": None})
    assert await u.ok("GET", f"/templates/{t['id']}") == t
    # Emptying one body is fine while the other has content.
    assert (await u.ok("PATCH", f"/templates/{t['id']}", json={"text_body": ""}))["text_body"] == ""


async def test_preview_inline_and_contact(admin: Api, deps) -> None:
    user, u = await admin.new_user("alice")
    t = await u.ok("POST", "/templates", json=BODY)
    r = await u.ok("POST", f"/templates/{t['id']}/preview",
                   json={"email": "tom@example.com", "name": "<Tom>", "fields": {"city": "Paris & Co"}})
    assert r == {"subject": "Hi <Tom>", "html": "<p>Hello &lt;Tom&gt; from Paris &amp; Co</p>", "text": "Hello <Tom>"}
    # Missing variables render empty.
    assert (await u.ok("POST", f"/templates/{t['id']}/preview", json={}))["html"] == "<p>Hello  from </p>"
    [cid] = await make_contacts(deps.pool, user["id"], ["zoe@example.com"], fields={"city": "Oslo"})
    r = await u.ok("POST", f"/templates/{t['id']}/preview", json={"contact_id": cid})
    assert r["subject"] == "Hi zoe" and r["html"] == "<p>Hello zoe from Oslo</p>"
    await u.err("POST", f"/templates/{t['id']}/preview", 400, "VALIDATION_ERROR", field="contact_id",
                json={"contact_id": cid, "name": "x"})
    await u.err("POST", f"/templates/{t['id']}/preview", 400, "VALIDATION_ERROR", field="contact_id",
                json={"contact_id": "nope"})


async def test_preview_render_error_is_422(admin: Api) -> None:
    _, u = await admin.new_user()
    t = await u.ok("POST", "/templates", json={"name": "n", "subject": "You have {{ points + 1 }} points",
                                               "text_body": "x"})
    await u.err("POST", f"/templates/{t['id']}/preview", 422, "TEMPLATE_ERROR", field="subject", json={})
    r = await u.ok("POST", f"/templates/{t['id']}/preview", json={"fields": {"points": 4}})
    assert r["subject"] == "You have 5 points"


async def test_other_users_template_and_contact_are_404(admin: Api, deps) -> None:
    alice_user, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    t = await alice.ok("POST", "/templates", json=BODY)
    mine = await bob.ok("POST", "/templates", json=BODY)
    [alice_contact] = await make_contacts(deps.pool, alice_user["id"], ["a@example.com"])
    await bob.err("GET", f"/templates/{t['id']}", 404, "NOT_FOUND")
    await bob.err("PATCH", f"/templates/{t['id']}", 404, "NOT_FOUND", json={"name": "mine now"})
    await bob.err("DELETE", f"/templates/{t['id']}", 404, "NOT_FOUND")
    await bob.err("POST", f"/templates/{t['id']}/preview", 404, "NOT_FOUND", json={})
    await bob.err("POST", f"/templates/{mine['id']}/preview", 404, "NOT_FOUND", field="contact_id",
                  json={"contact_id": alice_contact})
    assert (await bob.ok("GET", "/templates"))["total"] == 1
    assert await alice.ok("GET", f"/templates/{t['id']}") == t


async def test_template_in_use(admin: Api, deps) -> None:
    user, u = await admin.new_user("alice", quota=5)
    await make_contacts(deps.pool, user["id"], ["x@example.com"])
    s = await u.ok("POST", "/senders", json={"name": "news"})
    t = await u.ok("POST", "/templates", json=BODY)
    c = await u.ok("POST", "/campaigns", json={"name": "c", "sender_id": s["id"], "template_ids": [t["id"]]})
    for status in ("pending", "running"):
        await deps.pool.execute("UPDATE campaigns SET status = $2 WHERE id = $1", uid(c["id"]), status)
        await u.err("DELETE", f"/templates/{t['id']}", 409, "TEMPLATE_IN_USE", field="id")
        assert await _count(deps) == 1
    # A finished campaign does not hold its templates.
    await deps.pool.execute("UPDATE campaigns SET status = 'completed' WHERE id = $1", uid(c["id"]))
    await u.ok("DELETE", f"/templates/{t['id']}")
    got = await u.ok("GET", f"/campaigns/{c['id']}")
    assert got["status"] == "completed" and got["templates"] == []
