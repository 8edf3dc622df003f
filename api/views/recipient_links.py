"""The public side recipients reach without logging in: one-click unsubscribe (RFC 8058: GET
shows a confirmation page, POST unsubscribes), and the open pixel and click redirect of SMTP
services with tracking on. Tokens are HMAC-signed per recipient (engine/domain/recipient_token)."""

from __future__ import annotations

import base64
import hashlib
import html

import asyncpg
from aiohttp import web

from api.feedback_deps import after_feedback, feedback_store, link_key
from api.routing import Call, Routes
from engine.domain.errors import NotFound
from engine.domain.recipient_token import verify
from engine.infra.queries import Q
from engine.store.feedback import Feedback, Kind

routes = Routes()

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body style="font-family:sans-serif;max-width:32em;margin:4em auto">{body}</body></html>"""


async def _subtask(call: Call, purpose: str, extra: str = "") -> asyncpg.Record:
    subtask_id = verify(link_key(call.deps), purpose, call.request.match_info["token"], extra)  # type: ignore[arg-type]
    row = await call.deps.pool.fetchrow(Q["feedback.subtask_owner"], subtask_id) if subtask_id else None
    if row is None:
        raise NotFound("this link is not valid", field="token")
    return row


async def _record(call: Call, sub: asyncpg.Record, kind: Kind, source: str, extra: str = "") -> None:
    d = call.deps
    now = d.clock.now()
    # One event per recipient and kind (a link clicked twice counts once; clicks per URL).
    key = hashlib.sha256(f"{source}|{sub['id']}|{kind}|{extra}".encode()).hexdigest()
    f = Feedback(kind=kind, dedupe_key=key, occurred_at=now, subtask_id=sub["id"],
                 data={"url": extra} if extra else {})
    rec = await feedback_store(d).record([f], source, now)  # type: ignore[arg-type]
    await after_feedback(d, rec.refunded_users, rec.frozen)


@routes.route("GET", "/r/unsubscribe/{token}", summary="Unsubscribe confirmation page (no login)",
              access="public", tag="recipients")
async def unsubscribe_page(call: Call) -> web.Response:
    sub = await _subtask(call, "u")
    body = (f"<p>Stop emails to <b>{html.escape(sub['email'])}</b>?</p>"
            '<form method="post"><button type="submit">Unsubscribe</button></form>')
    return web.Response(text=_PAGE.format(body=body), content_type="text/html")


@routes.route("POST", "/r/unsubscribe/{token}", summary="One-click unsubscribe (RFC 8058; idempotent, no login)",
              access="public", tag="recipients")
async def unsubscribe(call: Call) -> web.Response:
    sub = await _subtask(call, "u")
    await _record(call, sub, "unsubscribe", "unsubscribe_link")
    body = f"<p><b>{html.escape(sub['email'])}</b> is unsubscribed. You will not receive these emails again.</p>"
    return web.Response(text=_PAGE.format(body=body), content_type="text/html")


@routes.route("GET", "/r/open/{token}", summary="Open pixel (SMTP tracking)", access="public", tag="recipients")
async def open_pixel(call: Call) -> web.Response:
    try:
        sub = await _subtask(call, "o")
        await _record(call, sub, "open", "tracking")
    except NotFound:
        pass  # a pixel always answers with the image
    return web.Response(body=_PIXEL, content_type="image/gif", headers={"Cache-Control": "no-store"})


@routes.route("GET", "/r/click/{token}", summary="Click redirect (SMTP tracking; the URL is signed)",
              access="public", tag="recipients")
async def click(call: Call) -> web.Response:
    target = call.request.query.get("u", "")
    if not target.startswith(("http://", "https://")):
        raise NotFound("this link is not valid", field="u")
    sub = await _subtask(call, "c", target)
    await _record(call, sub, "click", "tracking", target)
    return web.Response(status=302, headers={"Location": target})
