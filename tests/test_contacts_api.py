"""Contacts over the real API: CRUD, list filters, validation, isolation and bulk import."""

from __future__ import annotations

import orjson

from tests.conftest import Api

JSONL = {"Content-Type": "application/x-ndjson"}
CSV = {"Content-Type": "text/csv"}


async def _counts(deps) -> tuple[int, int, int]:
    row = await deps.pool.fetchrow(
        "SELECT (SELECT count(*) FROM contacts) AS c, (SELECT count(*) FROM tags) AS t,"
        " (SELECT count(*) FROM contact_tags) AS l")
    return row["c"], row["t"], row["l"]


def _lines(*rows: object) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in rows) + b"\n"


async def _by_email(api: Api, email: str) -> dict:
    found = (await api.ok("GET", f"/contacts?q={email}"))["items"]
    assert len(found) == 1, found
    return found[0]


async def test_contact_lifecycle(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    await alice.ok("POST", "/tags", json={"name": "VIP"})
    created = await alice.ok("POST", "/contacts", json={
        "email": "Ann@Example.com", "name": "Ann", "fields": {"company": "Acme", "seats": 3, "paid": True, "x": None},
        "tags": ["vip", "new", "NEW"]})
    # The existing tag keeps its spelling; the missing one is created once.
    assert created["tags"] == ["new", "VIP"]
    assert created["fields"] == {"company": "Acme", "seats": 3, "paid": True, "x": None}
    assert created["email"] == "Ann@Example.com" and created["name"] == "Ann"
    assert (await alice.ok("GET", f"/contacts/{created['id']}")) == created

    patched = await alice.ok("PATCH", f"/contacts/{created['id']}",
                             json={"name": "Ann B", "fields": {"company": "Beta"}, "tags": ["vip", "gold"]})
    assert patched["name"] == "Ann B" and patched["fields"] == {"company": "Beta"}
    assert patched["tags"] == ["gold", "VIP"] and patched["email"] == "Ann@Example.com"
    unchanged = await alice.ok("PATCH", f"/contacts/{created['id']}", json={"email": "ann@new.example.com"})
    assert unchanged["name"] == "Ann B" and unchanged["tags"] == ["gold", "VIP"]

    # A contact without name, fields or tags gets empty ones.
    bare = await alice.ok("POST", "/contacts", json={"email": "bare@example.com"})
    assert (bare["name"], bare["fields"], bare["tags"]) == ("", {}, [])

    assert await alice.ok("DELETE", f"/contacts/{created['id']}") == {"id": created["id"], "deleted": True}
    await alice.err("GET", f"/contacts/{created['id']}", 404, "NOT_FOUND", field="id")
    await alice.err("DELETE", f"/contacts/{created['id']}", 404, "NOT_FOUND")
    assert await deps.pool.fetchval("SELECT count(*) FROM contact_tags") == 0
    assert (await alice.ok("GET", "/tags"))["total"] == 3  # tags outlive their contacts


async def test_list_paging_and_filters(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    for i in range(7):
        tags = ["even"] if i % 2 == 0 else ["odd"]
        await alice.ok("POST", "/contacts", json={"email": f"user{i}@example.com", "name": f"Person {i}", "tags": tags})
    await alice.ok("POST", "/contacts", json={"email": "zed@other.org", "name": "Zed 100%"})

    first = await alice.ok("GET", "/contacts?limit=3")
    second = await alice.ok("GET", "/contacts?limit=3&offset=3")
    rest = await alice.ok("GET", "/contacts?limit=3&offset=6")
    emails = [c["email"] for p in (first, second, rest) for c in p["items"]]
    assert emails == [f"user{i}@example.com" for i in range(7)] + ["zed@other.org"]
    assert first["total"] == 8 and (first["limit"], first["offset"]) == (3, 0)

    even = await alice.ok("GET", "/contacts?tag=EVEN")
    assert [c["email"] for c in even["items"]] == [f"user{i}@example.com" for i in (0, 2, 4, 6)]
    assert even["total"] == 4 and all(c["tags"] == ["even"] for c in even["items"])
    odd_page = await alice.ok("GET", "/contacts?tag=odd&limit=2&offset=2")
    assert [c["email"] for c in odd_page["items"]] == ["user5@example.com"] and odd_page["total"] == 3
    assert (await alice.ok("GET", "/contacts?tag=nope"))["total"] == 0

    by_name = await alice.ok("GET", "/contacts?q=person%203")
    assert [c["email"] for c in by_name["items"]] == ["user3@example.com"]
    assert (await alice.ok("GET", "/contacts?q=OTHER.org"))["total"] == 1
    # `%` is a literal character, not a wildcard.
    assert [c["email"] for c in (await alice.ok("GET", "/contacts?q=0%25"))["items"]] == ["zed@other.org"]
    both = await alice.ok("GET", "/contacts?tag=even&q=user4")
    assert [c["email"] for c in both["items"]] == ["user4@example.com"]


async def test_contact_validation_writes_nothing(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    existing = await alice.ok("POST", "/contacts", json={"email": "taken@example.com", "tags": ["t"]})
    before = await _counts(deps)
    bad = [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.co\n"}, "email"),
        ({"name": "x"}, "email"),
        ({"email": "a@example.com", "name": "x" * 201}, "name"),
        ({"email": "a@example.com", "fields": {"nested": {"a": 1}}}, "fields[...]"),
        ({"email": "a@example.com", "fields": {"list": [1]}}, "fields[...]"),
        ({"email": "a@example.com", "fields": ["a"]}, "fields"),
        ({"email": "a@example.com", "fields": {"1st": "x"}}, "fields.1st"),
        ({"email": "a@example.com", "fields": {"Email": "x"}}, "fields.Email"),
        ({"email": "a@example.com", "tags": ["fine", "bad,tag"]}, "tags[1]"),
        ({"email": "a@example.com", "tags": "vip"}, "tags"),
        ({"email": "a@example.com", "phone": "1"}, "phone"),
    ]
    for payload, field in bad:
        await alice.err("POST", "/contacts", 400, "VALIDATION_ERROR", field=field, json=payload)
    await alice.err("POST", "/contacts", 409, "CONFLICT", field="email",
                    json={"email": "TAKEN@example.com", "tags": ["brand-new"]})
    other = await alice.ok("POST", "/contacts", json={"email": "other@example.com"})
    before = (before[0] + 1, before[1], before[2])
    await alice.err("PATCH", f"/contacts/{other['id']}", 409, "CONFLICT", field="email",
                    json={"email": "Taken@Example.com", "tags": ["brand-new"]})
    await alice.err("PATCH", f"/contacts/{other['id']}", 400, "VALIDATION_ERROR", field="name", json={"name": 5})
    await alice.err("PATCH", f"/contacts/{existing['id']}", 400, "VALIDATION_ERROR", field="fields.tags",
                    json={"fields": {"tags": "x"}})
    await alice.err("GET", "/contacts/nope", 400, "VALIDATION_ERROR", field="id")
    await alice.err("GET", "/contacts?limit=5000", 400, "VALIDATION_ERROR", field="limit")
    await alice.err("GET", "/contacts?tag=a,b", 400, "VALIDATION_ERROR", field="tag")
    await alice.err("GET", "/contacts?colour=red", 400, "VALIDATION_ERROR", field="colour")
    assert await _counts(deps) == before
    assert (await alice.ok("GET", f"/contacts/{other['id']}"))["tags"] == []


async def test_other_users_contacts_are_not_found(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    contact = await alice.ok("POST", "/contacts", json={"email": "ann@example.com", "tags": ["vip"]})
    path = f"/contacts/{contact['id']}"
    await bob.err("GET", path, 404, "NOT_FOUND")
    await bob.err("PATCH", path, 404, "NOT_FOUND", json={"name": "stolen"})
    await bob.err("DELETE", path, 404, "NOT_FOUND")
    assert (await bob.ok("GET", "/contacts"))["total"] == 0
    assert (await bob.ok("GET", "/contacts?tag=vip"))["total"] == 0
    # Emails are unique per user only, and Bob's tags are his own.
    mine = await bob.ok("POST", "/contacts", json={"email": "ANN@example.com", "tags": ["VIP"]})
    assert mine["tags"] == ["VIP"]
    assert await alice.ok("GET", path) == contact


async def test_import_jsonl_mixed_rows(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    body = _lines(
        {"email": "a@example.com", "name": "A", "fields": {"plan": "pro"}, "tags": ["vip"]},
        {"email": "bad-email", "name": "X", "tags": ["never-created"]},
        b"{not json",
        b"",  # blank lines are skipped but still count for line numbers
        {"email": "b@example.com", "fields": {"nested": {"no": 1}}},
        {"email": "c@example.com", "tags": ["new", "VIP"]},
        {"email": "d@example.com", "phone": "123"},
        [1, 2],
        {"email": "A@example.com", "name": "A2", "fields": {"seats": 5}},  # same email: last one wins
    )
    result = await alice.ok("POST", "/contacts/import?tags=imported", data=body, headers=JSONL)
    assert (result["rows"], result["imported"], result["updated"], result["rejected"], result["duplicates"]) == \
        (8, 2, 0, 5, 1)
    assert [(e["row"], e["field"], e["code"]) for e in result["errors"]] == [
        (2, "email", "VALIDATION_ERROR"),
        (3, None, "MALFORMED_ROW"),
        (5, "fields", "VALIDATION_ERROR"),
        (7, "phone", "VALIDATION_ERROR"),
        (8, None, "MALFORMED_ROW"),
    ]
    assert result["errors_truncated"] is False
    a = await _by_email(alice, "a@example.com")
    assert (a["email"], a["name"], a["fields"], a["tags"]) == ("A@example.com", "A2", {"seats": 5}, ["imported"])
    c = await _by_email(alice, "c@example.com")
    assert c["tags"] == ["imported", "new", "VIP"] and c["name"] == ""
    tags = {t["name"]: t["contact_count"] for t in (await alice.ok("GET", "/tags"))["items"]}
    assert tags == {"imported": 2, "new": 1, "VIP": 1}  # nothing from rejected rows
    assert await _counts(deps) == (2, 3, 4)


async def test_import_upserts_existing_contacts(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    old = await alice.ok("POST", "/contacts", json={
        "email": "ann@example.com", "name": "Ann", "fields": {"plan": "free", "city": "Paris"}, "tags": ["old"]})
    body = _lines({"email": "ANN@example.com", "fields": {"plan": "pro", "seats": 2}, "tags": ["new"]},
                  {"email": "bob@example.com", "name": "Bob"})
    result = await alice.ok("POST", "/contacts/import", data=body, headers={"Content-Type": "application/jsonl"})
    assert (result["imported"], result["updated"], result["rejected"]) == (1, 1, 0)
    ann = await alice.ok("GET", f"/contacts/{old['id']}")
    # No name in the row keeps the stored one; fields merge; tags are added.
    assert ann["email"] == "ann@example.com" and ann["name"] == "Ann"
    assert ann["fields"] == {"plan": "pro", "city": "Paris", "seats": 2}
    assert ann["tags"] == ["new", "old"]
    assert result["unchanged"] == 0
    again = await alice.ok("POST", "/contacts/import", data=_lines({"email": "ann@example.com", "name": "Anne"}),
                           headers=JSONL)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 1, 0)
    anne = await alice.ok("GET", f"/contacts/{old['id']}")
    assert anne["name"] == "Anne"
    # Nothing to change in name or fields: the contact row is left alone, yet tags are added.
    same = await alice.ok("POST", "/contacts/import?tags=again", data=_lines(
        {"email": "ann@example.com", "name": "Anne", "fields": {"plan": "pro"}}), headers=JSONL)
    assert (same["imported"], same["updated"], same["unchanged"]) == (0, 1, 1)
    after = await alice.ok("GET", f"/contacts/{old['id']}")
    assert after["tags"] == ["again", "new", "old"]
    assert (after["name"], after["fields"], after["updated_at"]) == (anne["name"], anne["fields"], anne["updated_at"])
    assert (await alice.ok("GET", "/contacts"))["total"] == 2


async def test_import_csv_mixed_rows(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    await alice.ok("POST", "/contacts", json={"email": "kept@example.com", "name": "Kept", "fields": {"city": "Rome"}})
    csv_text = (
        "\ufeffEmail,Name,Tags,city,plan,\n"
        "ann@example.com,Ann,vip;beta,Paris,pro,\n"
        "not-an-email,Bad,vip,,,\n"
        "bob@example.com,\"Bob, Jr.\",vip|gamma, Berlin ,,\n"
        "\n"
        "\"multi@example.com\",\"Two\nLines\",,,,\n"
        "kept@example.com,,delta,,basic\n"
        "too@example.com,Too,,,,,extra-cell\n"
        ",No Email,,,,\n"
        "tag@example.com,Tag,bad tag ;ok,,,\n"
    )
    result = await alice.ok("POST", "/contacts/import?tags=csv", data=csv_text.encode(), headers=CSV)
    assert (result["rows"], result["imported"], result["updated"], result["rejected"]) == (8, 3, 1, 4)
    assert [(e["row"], e["field"], e["code"]) for e in result["errors"]] == [
        (3, "email", "VALIDATION_ERROR"),
        (6, "name", "VALIDATION_ERROR"),  # a control character (newline) in a name
        (9, None, "MALFORMED_ROW"),
        (10, "email", "VALIDATION_ERROR"),
    ]
    ann = await _by_email(alice, "ann@example.com")
    assert ann["name"] == "Ann" and ann["fields"] == {"city": "Paris", "plan": "pro"}
    assert ann["tags"] == ["beta", "csv", "vip"]
    bob = await _by_email(alice, "bob@example.com")
    assert bob["name"] == "Bob, Jr." and bob["fields"] == {"city": "Berlin"} and bob["tags"] == ["csv", "gamma", "vip"]
    kept = await _by_email(alice, "kept@example.com")
    # Blank cells leave stored values alone.
    assert kept["name"] == "Kept" and kept["fields"] == {"city": "Rome", "plan": "basic"}
    assert kept["tags"] == ["csv", "delta"]
    # "bad tag " is trimmed to a valid name, so that row is accepted.
    assert (await _by_email(alice, "tag@example.com"))["tags"] == ["bad tag", "csv", "ok"]
    assert await deps.pool.fetchval("SELECT count(*) FROM contacts") == 4


async def test_import_of_only_bad_rows_writes_nothing(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    await alice.ok("POST", "/contacts", json={"email": "x@example.com", "tags": ["t"]})
    before = await _counts(deps)
    jsonl = _lines({"email": "nope", "tags": ["fresh"]}, {"email": "ok@example.com", "tags": ["a;b"]}, b"[]")
    result = await alice.ok("POST", "/contacts/import?tags=extra", data=jsonl, headers=JSONL)
    assert (result["rows"], result["imported"], result["updated"], result["rejected"]) == (3, 0, 0, 3)
    csv_body = b"email,name,tags\nnope,A,fresh\nx@example.com," + b"n" * 201 + b",fresh\n"
    result = await alice.ok("POST", "/contacts/import?tags=extra", data=csv_body, headers=CSV)
    assert (result["rows"], result["imported"], result["updated"], result["rejected"]) == (2, 0, 0, 2)
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(2, "email"), (3, "name")]
    assert await _counts(deps) == before


async def test_import_request_errors(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    before = await _counts(deps)
    good = _lines({"email": "a@example.com"})
    await alice.err("POST", "/contacts/import", 415, "UNSUPPORTED_MEDIA_TYPE", field="Content-Type", data=good,
                    headers={"Content-Type": "application/xml"})
    await alice.err("POST", "/contacts/import", 415, "UNSUPPORTED_MEDIA_TYPE", field="Content-Type", json=[])
    await alice.err("POST", "/contacts/import", 400, "VALIDATION_ERROR", field="body", data=b"  \n", headers=JSONL)
    await alice.err("POST", "/contacts/import?tags=ok,bad;tag", 400, "VALIDATION_ERROR", field="tags", data=good,
                    headers=JSONL)
    await alice.err("POST", "/contacts/import?unknown=1", 400, "VALIDATION_ERROR", field="unknown", data=good,
                    headers=JSONL)
    for header in (b"name,tags\n", b"email,Email\n", b"email,first name\n", b"email,tags,1x\n"):
        await alice.err("POST", "/contacts/import", 400, "VALIDATION_ERROR", field="header",
                        data=header + b"a@example.com,x\n", headers=CSV)
    await alice.err("POST", "/contacts/import", 400, "VALIDATION_ERROR", field="body",
                    data=b"email\n\xff\xfe@example.com\n", headers=CSV)
    await alice.as_(None).err("POST", "/contacts/import", 401, "UNAUTHORIZED", data=good, headers=JSONL)
    assert await _counts(deps) == before


async def test_import_error_list_is_capped(admin: Api, deps) -> None:
    _, alice = await admin.new_user("alice")
    rows = [{"email": f"bad{i}"} for i in range(1500)] + [{"email": "good@example.com"}]
    result = await alice.ok("POST", "/contacts/import", data=_lines(*rows), headers=JSONL)
    assert (result["rejected"], result["imported"], len(result["errors"])) == (1500, 1, 1000)
    assert result["errors_truncated"] is True and result["errors"][-1]["row"] == 1000


async def test_imports_are_per_user(admin: Api) -> None:
    _, alice = await admin.new_user("alice")
    _, bob = await admin.new_user("bob")
    await alice.ok("POST", "/contacts", json={"email": "ann@example.com", "name": "Alice's Ann", "tags": ["vip"]})
    result = await bob.ok("POST", "/contacts/import", data=_lines({"email": "ann@example.com", "name": "Bob's Ann",
                                                                   "tags": ["vip"]}), headers=JSONL)
    assert (result["imported"], result["updated"]) == (1, 0)
    assert (await _by_email(alice, "ann@example.com"))["name"] == "Alice's Ann"
    assert (await _by_email(bob, "ann@example.com"))["name"] == "Bob's Ann"
    assert [t["contact_count"] for t in (await alice.ok("GET", "/tags"))["items"]] == [1]
