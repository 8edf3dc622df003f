"""A fake EngageLab: speaks `POST /v1/mail/send`, misbehaves on demand, records every request."""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import time
import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from edm.fake_esp.config import ConfigUpdate, FakeEspConfig, Knobs
from edm.fake_esp.webhooks import WebhookPoster, plan
from edm.fake_esp.request_log import (
    LogEntry,
    Outcome,
    RequestLog,
    encode_json,
    encode_jsonl,
)

# Error codes the fake answers with, in EngageLab's {code, message} shape.
BAD_REQUEST = 40001
UNAUTHORIZED = 40101
SUSPENDED = 40301
THROTTLED = 42901
SERVER_ERROR = 50001

Address = Annotated[str, Meta(min_length=3, max_length=320, pattern="@")]


class Content(msgspec.Struct):
    html: str = ""
    text: str = ""


class Body(msgspec.Struct):
    subject: Annotated[str, Meta(min_length=1)]
    content: Content


class SendRequest(msgspec.Struct, kw_only=True):
    """The subset of EngageLab's send body the fake checks; other fields are let through."""

    from_: Address = msgspec.field(name="from")
    to: Annotated[list[Address], Meta(min_length=1, max_length=100)]
    body: Body
    request_id: str | None = None
    custom_args: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


_send_decoder = msgspec.json.Decoder(SendRequest)
_update_decoder = msgspec.json.Decoder(ConfigUpdate)


class FakeEsp:
    """The fake's state: its config, one seeded random stream per api_user, and its log."""

    def __init__(self, config: FakeEspConfig):
        self.config = config
        self.log = RequestLog(config.log_max, config.log_file)
        self._rngs: dict[str, random.Random] = {}
        self._feedback_rngs: dict[str, random.Random] = {}
        self.webhooks = WebhookPoster()
        # api_users of the credential probes received (GET /v1/domains), oldest first.
        self.probes: list[str] = []
        # Every probe received, refused ones too: (monotonic arrival time, api_user, HTTP status),
        # on the send log's `t` scale, so a test can place probes among the sends.
        self.probe_log: list[tuple[float, str | None, int]] = []

    def update(self, change: ConfigUpdate) -> None:
        self.config = change.apply(self.config)
        if change.seed is not msgspec.UNSET:
            self._rngs.clear()
            self._feedback_rngs.clear()

    def feedback(self, api_user: str, req: SendRequest, email_id: str) -> None:
        """Schedule the callbacks of one accepted message, when this user has webhooks configured."""
        fb = self.config.webhooks.get(api_user)
        if fb is None:
            return
        rng = self._feedback_rngs.get(api_user)
        if rng is None:
            rng = self._feedback_rngs[api_user] = random.Random(f"{self.config.seed}:feedback:{api_user}")
        self.webhooks.schedule(fb, plan(rng, fb), req.to[0], req.request_id, email_id, req.custom_args)

    def rng(self, api_user: str) -> random.Random:
        # One stream per user: a user's outcomes repeat whatever other users do in between.
        rng = self._rngs.get(api_user)
        if rng is None:
            rng = self._rngs[api_user] = random.Random(f"{self.config.seed}:{api_user}")
        return rng

    def decide(self, api_user: str, knobs: Knobs) -> tuple[Outcome, int]:
        if knobs.fail_all:
            return "failed", 403
        draw = self.rng(api_user).random()
        if draw < knobs.throttle_rate:
            return "throttled", 429
        if draw < knobs.throttle_rate + knobs.error_rate:
            return "failed", 500
        return "sent", 200

    def record(self, *, t: float, when: str, api_user: str | None, req: SendRequest | None,
               outcome: Outcome, status: int, email_id: str | None) -> LogEntry:
        entry = LogEntry(
            seq=self.log.next_seq(), time=when, t=t, api_user=api_user,
            from_=req.from_ if req else None, to=list(req.to) if req else None,
            request_id=req.request_id if req else None, custom_args=req.custom_args if req else None,
            outcome=outcome, status=status, email_id=email_id, headers=req.headers if req else None,
        )
        self.log.append(entry)
        return entry


FAKE_ESP = web.AppKey("fake_esp", FakeEsp)


def _error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status, headers=headers)


def _credentials(request: web.Request) -> tuple[str, str] | None:
    """(api_user, api_key) from a Basic authorization header, or None if absent or malformed."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, key = decoded.partition(":")
    return (user, key) if sep and user else None


async def send(request: web.Request) -> web.Response:
    """`POST /v1/mail/send`."""
    esp = request.app[FAKE_ESP]
    t = time.monotonic()
    when = datetime.now(timezone.utc).isoformat()
    creds = _credentials(request)
    raw = await request.read()
    if creds is None:
        esp.record(t=t, when=when, api_user=None, req=None, outcome="unauthorized", status=401, email_id=None)
        return _error(401, UNAUTHORIZED, "missing or malformed Basic authorization")
    api_user, api_key = creds
    expected = esp.config.keys.get(api_user)
    if expected is not None and api_key != expected:
        esp.record(t=t, when=when, api_user=api_user, req=None, outcome="unauthorized", status=401, email_id=None)
        return _error(401, UNAUTHORIZED, "invalid api_user or api_key")
    try:
        req = _send_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        esp.record(t=t, when=when, api_user=api_user, req=None, outcome="bad_request", status=400, email_id=None)
        return _error(400, BAD_REQUEST, f"invalid request body: {exc}")
    if not (req.body.content.html or req.body.content.text):
        esp.record(t=t, when=when, api_user=api_user, req=req, outcome="bad_request", status=400, email_id=None)
        return _error(400, BAD_REQUEST, "body.content needs html or text")

    knobs = esp.config.knobs_for(api_user)
    outcome, status = esp.decide(api_user, knobs)
    email_id = str(uuid.UUID(int=esp.rng(api_user).getrandbits(128), version=4)) if status == 200 else None
    # Logged on arrival, as a real ESP would have accepted it: a client that times out during
    # the latency still finds its request here, which is what an "unknown outcome" means.
    entry = esp.record(t=t, when=when, api_user=api_user, req=req, outcome=outcome, status=status,
                       email_id=email_id)
    if knobs.latency_ms > 0:
        await asyncio.sleep(knobs.latency_ms / 1000)
    entry.answered = time.monotonic()
    match status:
        case 200:
            assert email_id is not None
            esp.feedback(api_user, req, email_id)
            request_id = req.request_id or str(uuid.uuid4())
            return web.json_response({"email_ids": [email_id], "request_id": request_id})
        case 429:
            headers = {"Retry-After": f"{knobs.retry_after:g}"} if knobs.retry_after is not None else None
            return _error(429, THROTTLED, "too many requests (fake throttle)", headers)
        case 403:
            return _error(403, SUSPENDED, knobs.error_message or "account suspended (fake fail_all)")
        case _:
            return _error(500, SERVER_ERROR, knobs.error_message or "internal error (fake error_rate)")


async def domains(request: web.Request) -> web.Response:
    """`GET /v1/domains`: what a credentials probe calls. Authenticated like a send, kept out of
    the send log (it sends nothing); each authenticated probe's api_user is kept in `esp.probes`."""
    esp = request.app[FAKE_ESP]
    t = time.monotonic()
    creds = _credentials(request)
    if creds is None:
        esp.probe_log.append((t, None, 401))
        return _error(401, UNAUTHORIZED, "missing or malformed Basic authorization")
    api_user, api_key = creds
    expected = esp.config.keys.get(api_user)
    if expected is not None and api_key != expected:
        esp.probe_log.append((t, api_user, 401))
        return _error(401, UNAUTHORIZED, "invalid api_user or api_key")
    esp.probes.append(api_user)
    if esp.config.knobs_for(api_user).fail_all:
        esp.probe_log.append((t, api_user, 403))
        return _error(403, SUSPENDED, "account suspended (fake fail_all)")
    esp.probe_log.append((t, api_user, 200))
    return web.json_response({"result": [], "total": 0})


async def get_config(request: web.Request) -> web.Response:
    """`GET /_fake/config` (without the expected keys)."""
    config = request.app[FAKE_ESP].config
    data = msgspec.to_builtins(config)
    data["keys"] = sorted(config.keys)
    return web.json_response(data)


async def put_config(request: web.Request) -> web.Response:
    """`PUT /_fake/config`: replace `default`, `users`, `seed` and/or `keys`."""
    try:
        change = _update_decoder.decode(await request.read())
    except msgspec.DecodeError as exc:
        return _error(400, BAD_REQUEST, f"invalid config: {exc}")
    request.app[FAKE_ESP].update(change)
    return await get_config(request)


def _int_query(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f'{{"code": {BAD_REQUEST}, "message": "{name} must be an integer"}}',
                                 content_type="application/json") from None
    if number < 0:
        raise web.HTTPBadRequest(text=f'{{"code": {BAD_REQUEST}, "message": "{name} must be >= 0"}}',
                                 content_type="application/json")
    return number


def _selected(request: web.Request) -> list[LogEntry]:
    return request.app[FAKE_ESP].log.entries(
        since=_int_query(request, "since") or 0, api_user=request.query.get("api_user"),
        limit=_int_query(request, "limit"),
    )


async def get_log(request: web.Request) -> web.Response:
    """`GET /_fake/log[?since=SEQ&api_user=U&limit=N]`: a JSON array, oldest first."""
    return web.Response(body=encode_json(_selected(request)), content_type="application/json")


async def get_log_jsonl(request: web.Request) -> web.Response:
    """`GET /_fake/log.jsonl`: the same entries as JSON lines."""
    return web.Response(body=encode_jsonl(_selected(request)), content_type="application/x-ndjson")


async def delete_log(request: web.Request) -> web.Response:
    """`DELETE /_fake/log`: forget the in-memory log and counters."""
    request.app[FAKE_ESP].log.clear()
    return web.Response(status=204)


async def get_stats(request: web.Request) -> web.Response:
    """`GET /_fake/stats`: request counts by outcome and by api_user."""
    return web.json_response(request.app[FAKE_ESP].log.stats())


async def get_webhooks(request: web.Request) -> web.Response:
    """`GET /_fake/webhooks`: the callbacks posted so far (to, request_id, kind, engine's status)."""
    posted = request.app[FAKE_ESP].webhooks.posted
    return web.json_response([{"to": p.to, "request_id": p.request_id, "kind": p.kind, "status": p.status}
                              for p in posted])


def build_app(config: FakeEspConfig | None = None) -> web.Application:
    """The fake ESP as an aiohttp application."""
    app = web.Application(client_max_size=16 * 1024 * 1024)
    esp = FakeEsp(config or FakeEspConfig())
    app[FAKE_ESP] = esp

    async def close_log(_: web.Application) -> None:
        esp.log.close()
        await esp.webhooks.close()

    app.on_cleanup.append(close_log)
    app.router.add_post("/v1/mail/send", send)
    app.router.add_get("/v1/domains", domains)
    app.router.add_get("/_fake/config", get_config)
    app.router.add_put("/_fake/config", put_config)
    app.router.add_get("/_fake/log", get_log)
    app.router.add_get("/_fake/log.jsonl", get_log_jsonl)
    app.router.add_delete("/_fake/log", delete_log)
    app.router.add_get("/_fake/stats", get_stats)
    app.router.add_get("/_fake/webhooks", get_webhooks)
    return app


async def serve(host: str = "127.0.0.1", port: int = 0, config: FakeEspConfig | None = None) -> web.AppRunner:
    """Start the fake ESP and return its runner (`await runner.cleanup()` stops it)."""
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful with port 0)."""
    address = runner.addresses[0]
    return int(address[1])
