"""Input the validators used to let through to PostgreSQL or accept silently."""

from __future__ import annotations

from tests.campaign_factory import make_contacts, make_sender_and_template
from tests.conftest import Api


async def test_nul_characters_anywhere_are_a_validation_error(admin: Api, deps) -> None:
    user, api = await admin.new_user("nul", quota=10)
    await api.err("POST", "/tags", 400, "VALIDATION_ERROR", field="name", json={"name": "a\x00b"})
    await api.err("POST", "/contacts", 400, "VALIDATION_ERROR", field="fields.city",
                  json={"email": "x@example.com", "fields": {"city": "Pa\x00ris"}})
    await api.err("POST", "/contacts", 400, "VALIDATION_ERROR", field="fields[...]",
                  json={"email": "x@example.com", "fields": {"ci\x00ty": "Paris"}})
    await api.err("POST", "/templates", 400, "VALIDATION_ERROR", field="subject",
                  json={"name": "t", "subject": "Hi\x00", "html": "<p>x</p>"})
    await api.err("GET", "/contacts?q=%00", 400, "VALIDATION_ERROR", field="q")
    assert await deps.pool.fetchval("SELECT count(*) FROM tags") == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM contacts") == 0


async def test_scheduled_at_must_stay_within_years_1_to_9999_in_utc(admin: Api, deps) -> None:
    user, api = await admin.new_user("when", quota=10)
    await make_contacts(deps.pool, user["id"], ["a@example.com"])
    sender_id, template_id = await make_sender_and_template(api)
    body = {"name": "c", "sender_id": sender_id, "template_ids": [template_id]}
    for when in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"):
        await api.err("POST", "/campaigns", 400, "VALIDATION_ERROR", field="scheduled_at",
                      json={**body, "scheduled_at": when})
    assert await deps.pool.fetchval("SELECT count(*) FROM campaigns") == 0
    made = await api.ok("POST", "/campaigns", json={**body, "scheduled_at": "2027-01-01T00:00:00+08:00"})
    await api.err("PATCH", f"/campaigns/{made['id']}", 400, "VALIDATION_ERROR", field="scheduled_at",
                  json={"scheduled_at": "0001-01-01T00:30:00+01:00"})


async def test_json_routes_want_json_and_refuse_duplicate_keys(admin: Api, deps) -> None:
    _, api = await admin.new_user("media")
    headers = {"Authorization": f"Bearer {api.token}"}
    for extra in ({"Content-Type": "text/plain"}, {}):
        resp = await api.client.post("/api/v1/tags", data=b'{"name": "vip"}', headers={**headers, **extra})
        body = await resp.json()
        assert resp.status == 415 and body["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE", body
        assert body["error"]["details"]["field"] == "Content-Type"
    resp = await api.client.post("/api/v1/tags", data=b'{"name": "vip", "name": "other"}',
                                 headers={**headers, "Content-Type": "application/json"})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "VALIDATION_ERROR", body
    assert await deps.pool.fetchval("SELECT count(*) FROM tags") == 0
    # A charset parameter is still JSON.
    resp = await api.client.post("/api/v1/tags", data=b'{"name": "vip"}',
                                 headers={**headers, "Content-Type": "application/json; charset=utf-8"})
    assert resp.status == 201


async def test_every_405_names_the_allowed_methods(admin: Api) -> None:
    resp = await admin.client.request("TRACE", "/api/v1/tags", headers={"Authorization": f"Bearer {admin.token}"})
    body = await resp.json()
    assert resp.status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert set(resp.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


async def test_a_fixed_path_with_a_missing_method_is_405_not_an_id(admin: Api) -> None:
    status, body = await admin.call("PATCH", "/contacts/import", json={"name": "x"})
    assert status == 405 and body["error"]["code"] == "METHOD_NOT_ALLOWED", body


async def test_integral_numbers_are_integers_as_json_schema_says(admin: Api) -> None:
    user, _ = await admin.new_user("numbers")
    entry = await admin.ok("POST", f"/users/{user['id']}/quota", json={"delta": 5.0, "reason": "r"})
    assert entry["delta"] == 5 and entry["balance_after"] == 5
    await admin.err("POST", f"/users/{user['id']}/quota", 400, "VALIDATION_ERROR", field="delta",
                    json={"delta": 5.5, "reason": "r"})
    await admin.err("POST", f"/users/{user['id']}/quota", 400, "VALIDATION_ERROR", field="body",
                    data=b'{"delta": NaN, "reason": "r"}', headers={"Content-Type": "application/json"})


async def test_the_openapi_document_states_the_validators_rules(anon: Api) -> None:
    import re

    doc = await (await anon.client.get("/api/v1/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    sender = re.compile(schemas["SenderCreate"]["properties"]["name"]["pattern"])
    assert sender.search("news.letter") and not any(sender.search(n) for n in (".a", "a.", "a..b", "a b", "a\n"))
    keys = re.compile(schemas["ContactIn"]["properties"]["fields"]["propertyNames"]["pattern"])
    assert keys.search("company") and keys.search("公司") and not any(keys.search(k) for k in ("1x", "Email", "a-b"))
    assert schemas["CampaignCreate"]["properties"]["template_ids"]["uniqueItems"] is True
    ops = doc["paths"]
    create_template = ops["/api/v1/templates"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    ref, rule = create_template["allOf"]
    assert ref == {"$ref": "#/components/schemas/TemplateCreate"}
    assert {tuple(b["required"]) for b in rule["anyOf"]} == {("html_body",), ("text_body",)}
    create_service = ops["/api/v1/services"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    providers = {b["properties"]["provider"]["const"]: b["properties"]["credentials"]
                 for b in create_service["allOf"][1]["oneOf"]}
    assert set(providers["smtp"]["required"]) >= {"host", "port"} and providers["smtp"]["properties"]["port"]["type"] == "integer"
    assert set(providers["engagelab"]["required"]) == {"api_user", "api_key"}
    assert "text/event-stream" in ops["/api/v1/events"]["get"]["responses"]["200"]["content"]
    # A ramp is a schedule or start+factor (or null); nested, so no `$ref` with siblings anywhere.
    warmup = schemas["ServiceIn"]["properties"]["warmup"]["oneOf"]
    assert [b.get("required") for b in warmup] == [None, ["schedule"], ["start", "factor"]]

    def refs_with_siblings(node: object) -> int:
        if isinstance(node, dict):
            return int("$ref" in node and len(node) > 1) + sum(refs_with_siblings(v) for v in node.values())
        return sum(refs_with_siblings(v) for v in node) if isinstance(node, list) else 0

    assert refs_with_siblings(doc) == 0
    channel = ops["/api/v1/alerts/channels"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    webhook, no_secret, _ = channel["allOf"][1]["oneOf"]
    assert webhook["properties"]["secret"]["minLength"] == 16 and no_secret["properties"]["secret"] == {"type": "null"}
    rule = ops["/api/v1/alerts/rules"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    kinds = {b["properties"]["kind"]["const"]: b["properties"]["threshold"] for b in rule["allOf"][1]["oneOf"]}
    assert kinds["service_frozen"] == {"type": "null"} and kinds["service_quota_used"]["anyOf"][0]["maximum"] == 100


async def test_base_urls_that_no_url_parser_takes_are_refused(admin: Api, deps) -> None:
    from tests.service_factory import engagelab_payload

    for url in ("http://[0]:1/", "http://[12345::1]/", "http://127.0.0.1:65536", "http://h:0"):
        await admin.err("POST", "/services", 400, "VALIDATION_ERROR", field="base_url",
                        json=engagelab_payload(base_url=url))
    assert await deps.pool.fetchval("SELECT count(*) FROM services") == 0
    await admin.ok("POST", "/services", json=engagelab_payload(base_url="http://[::1]:8080/esp"))


async def test_templates_that_reach_for_other_templates_or_recurse_are_refused(admin: Api, deps) -> None:
    _, api = await admin.new_user("tpl")
    bodies = [
        "{% include 'other.html' %}",
        "{% import 'macros.html' as m %}{{ m.x() }}",
        "{% from 'macros.html' import x %}",
        "{% extends 'base.html' %}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
    ]
    for html in bodies:
        await api.err("POST", "/templates", 422, "TEMPLATE_ERROR", field="html_body",
                      json={"name": "t", "subject": "s", "html_body": html})
    assert await deps.pool.fetchval("SELECT count(*) FROM templates") == 0
    await api.ok("POST", "/templates", json={"name": "t", "subject": "s", "html_body":
                 "{% macro b(x) %}<b>{{ x }}</b>{% endmacro %}{% macro two() %}{{ b(1) }}{{ b(2) }}{% endmacro %}{{ two() }}"})


async def test_an_over_long_request_line_answers_the_json_envelope(deps) -> None:
    import asyncio

    from aiohttp.test_utils import TestServer

    from api.app import init_app
    from api.http_server import EnvelopeAppRunner

    class Server(TestServer):
        async def _make_runner(self, **kwargs):  # type: ignore[no-untyped-def]
            return EnvelopeAppRunner(self.app, **kwargs)

    async with Server(init_app(deps)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /api/v1/tags?q=" + b"x" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"application/json" in head, raw[:300]
    import json

    payload = json.loads(body)
    assert payload["success"] is False and payload["error"]["code"] == "MALFORMED_REQUEST"
