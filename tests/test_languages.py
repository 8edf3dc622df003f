"""Errors and pause messages speak the client's language; codes stay the same."""

from __future__ import annotations

import uuid

from api.i18n import requested
from tests.campaign_factory import make_contacts, make_sender_and_template
from tests.conftest import Api


def test_accept_language_picks_by_q_value() -> None:
    assert requested("") is None and requested("fr, de;q=0.5") is None and requested("*") is None
    assert requested("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert requested("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert requested("fr, zh-Hans;q=0.3, en;q=0.2") == "zh"
    assert requested("zh;q=0, en") == "en"


async def test_errors_in_chinese_or_english_with_the_same_code(admin: Api) -> None:
    zh = {"Accept-Language": "zh-CN,zh;q=0.9"}
    err = await admin.err("POST", "/tags", 400, "VALIDATION_ERROR", field="name", json={"name": ""}, headers=zh)
    assert err["message"].startswith("请求参数不合法") and "name" in err["message"]
    err = await admin.as_(None).err("GET", "/me", 401, "UNAUTHORIZED", headers=zh)
    assert err["message"] == "未登录或登录已失效（字段：Authorization）"
    me = await admin.ok("GET", "/me")
    err = await admin.err("PATCH", f"/users/{me['id']}", 409, "LAST_ADMIN", json={"role": "user"}, headers=zh)
    assert "最后一个" in err["message"]
    en = await admin.err("PATCH", f"/users/{me['id']}", 409, "LAST_ADMIN", json={"role": "user"},
                         headers={"Accept-Language": "en-GB"})
    assert "last" in en["message"]


async def test_pause_messages_follow_the_language(admin: Api, deps) -> None:
    user, api = await admin.new_user("pauser", quota=5)
    await make_contacts(deps.pool, user["id"], ["a@example.com"])
    sender_id, template_id = await make_sender_and_template(api)
    made = await api.ok("POST", "/campaigns", json={"name": "c", "sender_id": sender_id, "template_ids": [template_id]})
    await deps.pool.execute("UPDATE campaigns SET status = 'paused', pause_reason = 'NO_USER_QUOTA' WHERE id = $1",
                            uuid.UUID(made["id"]))
    path = f"/campaigns/{made['id']}/progress"
    assert (await api.ok("GET", path))["pause_message"] == "当前没有发信额度"  # no header: as before
    english = await api.ok("GET", path, headers={"Accept-Language": "en"})
    assert english["pause_message"] == "No sending quota left" and english["pause_reason"] == "NO_USER_QUOTA"
    detail = await api.ok("GET", f"/campaigns/{made['id']}", headers={"Accept-Language": "en-US"})
    assert detail["progress"]["pause_message"] == "No sending quota left"
    chinese = await api.ok("GET", path, headers={"Accept-Language": "zh-CN"})
    assert chinese["pause_message"] == "当前没有发信额度"
