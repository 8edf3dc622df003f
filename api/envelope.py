"""The response envelope of DESIGN.md section 5."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
from aiohttp import web

from api import i18n

_encoder = msgspec.json.Encoder()
REQUEST_ID = web.RequestKey("request_id", str)


def _stamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ok(request: web.Request, data: Any, *, message: str = "ok", status: int = 200) -> web.Response:
    data = i18n.localize(data, i18n.requested(request.headers.get("Accept-Language", "")))
    body = {"success": True, "data": data, "message": message, "timestamp": _stamp(), "requestId": request.get(REQUEST_ID, "")}
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")


def error(request: web.Request, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> web.Response:
    details = details or {}
    message = i18n.error_message(code, message, details, i18n.requested(request.headers.get("Accept-Language", "")))
    body = {
        "success": False,
        "error": {"code": code, "message": message, "details": details},
        "timestamp": _stamp(),
        "requestId": request.get(REQUEST_ID, ""),
    }
    return web.Response(body=_encoder.encode(body), status=status, content_type="application/json")
