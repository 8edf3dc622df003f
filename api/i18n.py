"""Messages in English and Simplified Chinese, chosen by `Accept-Language`; codes never change.

Without the header the API speaks as it always did: errors in English, pause messages in the
seeds' Chinese (engine.domain.pause_rules.MESSAGES).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from engine.domain.pause_rules import MESSAGES as PAUSE_ZH

Language = Literal["en", "zh"]

PAUSE_EN: dict[str, str] = {
    "USER": "Paused by hand",
    "NO_USER_QUOTA": "No sending quota left",
    "NO_AVAILABLE_SERVICE": "No sending service is available",
    "SERVICE_QUOTA_EXHAUSTED": "The available sending services have used up today's quota; sending resumes after the reset",
}

ERRORS_ZH: dict[str, str] = {
    "VALIDATION_ERROR": "请求参数不合法",
    "TEMPLATE_ERROR": "模板无法渲染",
    "UNAUTHORIZED": "未登录或登录已失效",
    "INVALID_CREDENTIALS": "用户名或密码错误，或账号已停用",
    "FORBIDDEN": "没有权限执行此操作",
    "NOT_FOUND": "对象不存在",
    "METHOD_NOT_ALLOWED": "不支持此请求方法",
    "CONFLICT": "与现有数据冲突",
    "QUOTA_INSUFFICIENT": "发信额度不足",
    "SENDER_IN_USE": "发件人正被未结束的任务使用",
    "TEMPLATE_IN_USE": "模板正被未结束的任务使用",
    "INVALID_STATE": "当前状态不允许此操作",
    "LAST_ADMIN": "不能移除最后一个启用的管理员",
    "SERVICE_IN_USE": "发信服务正被运行中或已暂停的任务使用",
    "USER_HAS_CAMPAIGNS": "该用户仍有未结束的任务",
    "IDEMPOTENCY_IN_PROGRESS": "相同幂等键的请求仍在处理中",
    "IDEMPOTENCY_KEY_REUSED": "幂等键已用于不同的请求内容",
    "PAYLOAD_TOO_LARGE": "请求体过大",
    "UNSUPPORTED_MEDIA_TYPE": "请求体类型不受支持，请使用 application/json",
    "TOO_MANY_ATTEMPTS": "登录失败次数过多，请稍后再试",
    "SERVICE_UNAVAILABLE": "依赖服务暂不可用，请稍后重试",
    "INTERNAL_ERROR": "服务器内部错误",
}


def requested(header: str) -> Language | None:
    """The first of our languages the client asks for (by q-value), or None."""
    best: tuple[float, int, Language] | None = None
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("en", "zh") or q <= 0:
            continue
        lang: Language = "zh" if primary == "zh" else "en"
        if best is None or (q, -position) > (best[0], best[1]):
            best = (q, -position, lang)
    return None if best is None else best[2]


def error_message(code: str, message: str, details: dict[str, Any], lang: Language | None) -> str:
    if lang != "zh" or code not in ERRORS_ZH:
        return message
    field = details.get("field")
    return ERRORS_ZH[code] + (f"（字段：{field}）" if isinstance(field, str) and field else "")


def localize(data: Any, lang: Language | None) -> Any:
    """Pause messages in the asked language (a copy; cached read models stay untouched)."""
    if lang is None:
        return data
    table = PAUSE_ZH if lang == "zh" else PAUSE_EN
    return _walk(msgspec.to_builtins(data), table)


def _walk(value: Any, table: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if "pause_message" in value and value.get("pause_reason") in table:
            value["pause_message"] = table[value["pause_reason"]]
        for item in value.values():
            if isinstance(item, (dict, list)):
                _walk(item, table)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                _walk(item, table)
    return value
