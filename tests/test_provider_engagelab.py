"""The EngageLab adapter against the fake ESP over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import msgspec
import pytest
from aiohttp import web

from edm.fake_esp import FAKE_ESP, FakeEsp, FakeEspConfig, Knobs, bound_port, serve
from engine.domain.errors import ConfigError
from engine.providers import (
    DEFAULT_BASE_URL,
    EngageLabProvider,
    EngageLabTransport,
    Message,
    NullProvider,
    ProviderFactory,
    SendResult,
    SmtpProvider,
)
from engine.providers.engagelab import parse_retry_after

KEY = "63b8f00d-very-secret-api-key-b868"
USER = "svc-user"


class Fake:
    def __init__(self, url: str, state: FakeEsp):
        self.url = url
        self.state = state

    def configure(self, default: Knobs | None = None, users: dict[str, Knobs] | None = None) -> None:
        config = self.state.config
        self.state.config = msgspec.structs.replace(
            config, default=default or Knobs(), users=users if users is not None else config.users)

    def log(self) -> list[dict[str, Any]]:
        return msgspec.to_builtins(self.state.log.entries())  # type: ignore[no-any-return]


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    runner = await serve("127.0.0.1", 0, FakeEspConfig(keys={USER: KEY}))
    yield Fake(f"http://127.0.0.1:{bound_port(runner)}", runner.app[FAKE_ESP])
    await runner.cleanup()


@pytest.fixture
async def transport() -> AsyncIterator[EngageLabTransport]:
    transport = EngageLabTransport(pool_limit=4, connect_timeout=2, total_timeout=5)
    yield transport
    await transport.close()


def message(n: int = 1, to: str = "bob@example.com") -> Message:
    return Message(subtask_id=f"00000000-0000-4000-8000-{n:012d}", campaign_id="c0ffee00-0000-4000-8000-000000000001",
                   from_address="news@mail.example.com", to=to, subject=f"Hello {n}",
                   html=f"<p>Hello {n}</p>", text=f"Hello {n}")


def assert_no_secret(result: SendResult, caplog: pytest.LogCaptureFixture) -> None:
    assert KEY not in msgspec.json.encode(result).decode()
    assert KEY not in caplog.text


async def test_sent_with_the_message_id_and_exactly_one_logged_request(
        fake: Fake, transport: EngageLabTransport, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = EngageLabProvider(transport, fake.url, USER, KEY)
    msg = message()
    result = await provider.send(msg)
    assert result.outcome == "sent"
    [entry] = fake.log()
    assert result.message_id == entry["email_id"] and result.message_id
    assert (entry["api_user"], entry["from"], entry["to"], entry["request_id"]) == (
        USER, msg.from_address, [msg.to], msg.subtask_id)
    assert entry["custom_args"] == {"campaign_id": msg.campaign_id, "subtask_id": msg.subtask_id}
    assert (result.error_code, result.error, result.retry_after) == (None, None, None)
    assert KEY not in repr(provider)
    assert_no_secret(result, caplog)


async def test_wrong_key_fails_with_the_provider_code(
        fake: Fake, transport: EngageLabTransport, caplog: pytest.LogCaptureFixture) -> None:
    result = await EngageLabProvider(transport, fake.url, USER, "not-the-key").send(message())
    assert (result.outcome, result.error_code) == ("failed", "40101")
    assert result.error and "not-the-key" not in result.error


@pytest.mark.parametrize("knobs, code, text", [
    (Knobs(error_rate=1), "50001", "internal error (fake error_rate)"),
    (Knobs(fail_all=True), "40301", "account suspended (fake fail_all)"),
])
async def test_provider_errors_fail_with_code_and_message(
        fake: Fake, transport: EngageLabTransport, caplog: pytest.LogCaptureFixture,
        knobs: Knobs, code: str, text: str) -> None:
    fake.configure(users={USER: knobs})
    result = await EngageLabProvider(transport, fake.url, USER, KEY).send(message())
    assert (result.outcome, result.error_code, result.error, result.message_id) == ("failed", code, text, None)
    assert [e["outcome"] for e in fake.log()] == ["failed"]
    assert_no_secret(result, caplog)


async def test_429_is_throttled_and_honours_retry_after(fake: Fake, transport: EngageLabTransport) -> None:
    provider = EngageLabProvider(transport, fake.url, USER, KEY)
    fake.configure(Knobs(throttle_rate=1, retry_after=7))
    result = await provider.send(message())
    assert (result.outcome, result.error_code, result.retry_after) == ("throttled", "42901", 7.0)
    fake.configure(Knobs(throttle_rate=1, retry_after=None))
    assert (await provider.send(message(2))).retry_after is None


async def test_connection_refused_fails_as_network_error(
        transport: EngageLabTransport, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await EngageLabProvider(transport, f"http://127.0.0.1:{port}", USER, KEY).send(message())
    assert (result.outcome, result.error_code) == ("failed", "NETWORK_ERROR")
    assert result.error
    assert_no_secret(result, caplog)


async def test_slow_answer_fails_as_timeout_but_the_request_arrived(
        fake: Fake, caplog: pytest.LogCaptureFixture) -> None:
    fake.configure(Knobs(latency_ms=1000))
    transport = EngageLabTransport(connect_timeout=1, total_timeout=0.2)
    try:
        result = await EngageLabProvider(transport, fake.url, USER, KEY).send(message())
    finally:
        await transport.close()
    assert (result.outcome, result.error_code) == ("failed", "TIMEOUT")
    # The outcome is unknown to the engine: the ESP did get (and would have sent) it.
    assert [e["outcome"] for e in fake.log()] == ["sent"]
    assert_no_secret(result, caplog)


async def test_a_request_that_waits_too_long_for_a_pooled_connection_was_not_sent(fake: Fake) -> None:
    fake.configure(Knobs(latency_ms=1000))
    transport = EngageLabTransport(pool_limit=1, pool_wait=0.2, total_timeout=5)
    try:
        provider = EngageLabProvider(transport, fake.url, USER, KEY)
        first, second = await asyncio.gather(provider.send(message(1)), provider.send(message(2)))
    finally:
        await transport.close()
    assert first.outcome == "sent"
    assert (second.outcome, second.error_code) == ("not_sent", "LOCAL_CONGESTION")
    assert len(fake.log()) == 1  # it never left this machine


async def test_the_wait_for_a_pooled_connection_is_not_the_providers_timeout(fake: Fake) -> None:
    # Each answer takes 0.5 s, within the 0.8 s timeout; the second waits 0.5 s for the one
    # connection first, which must not count against it.
    fake.configure(Knobs(latency_ms=500))
    transport = EngageLabTransport(pool_limit=1, pool_wait=5, total_timeout=0.8)
    try:
        provider = EngageLabProvider(transport, fake.url, USER, KEY)
        results = await asyncio.gather(provider.send(message(1)), provider.send(message(2)))
    finally:
        await transport.close()
    assert [r.outcome for r in results] == ["sent", "sent"]


async def test_the_services_request_timeout_overrides_the_transports(fake: Fake) -> None:
    fake.configure(Knobs(latency_ms=1000))
    transport = EngageLabTransport(total_timeout=30)
    try:
        provider = EngageLabProvider(transport, fake.url, USER, KEY)
        result = await provider.send(msgspec.structs.replace(message(), timeout=0.2))
    finally:
        await transport.close()
    assert (result.outcome, result.error_code) == ("failed", "TIMEOUT")


async def test_one_transport_serves_many_services_concurrently(fake: Fake, transport: EngageLabTransport) -> None:
    providers = [EngageLabProvider(transport, fake.url + "/", f"user-{i}", "k") for i in range(3)]
    results = await asyncio.gather(*(providers[n % 3].send(message(n)) for n in range(30)))
    assert [r.outcome for r in results] == ["sent"] * 30
    log = fake.log()
    assert sorted(e["request_id"] for e in log) == sorted(message(n).subtask_id for n in range(30))
    assert {e["api_user"] for e in log} == {"user-0", "user-1", "user-2"}
    session = transport.session()
    assert all(p._transport.session() is session for p in providers)
    await transport.close()
    assert session.closed


async def _odd_server(status: int, body: bytes, content_type: str = "text/html") -> web.AppRunner:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_post("/v1/mail/send", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize("status, body, outcome, code, error", [
    (502, b"<html>Bad Gateway</html>", "failed", "HTTP_502", "HTTP 502 Bad Gateway"),
    (400, b'{"code": 30002, "message": "from domain not verified"}', "failed", "30002", "from domain not verified"),
    (503, b'["unexpected"]', "failed", "HTTP_503", "HTTP 503 Service Unavailable"),
    (429, b"", "throttled", "HTTP_429", "HTTP 429 Too Many Requests"),
    (200, b"not json", "sent", None, None),
])
async def test_odd_answers_never_raise(transport: EngageLabTransport, status: int, body: bytes,
                                       outcome: str, code: str | None, error: str | None) -> None:
    runner = await _odd_server(status, body)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        result = await EngageLabProvider(transport, url, USER, KEY).send(message())
    finally:
        await runner.cleanup()
    assert (result.outcome, result.error_code, result.error, result.message_id) == (outcome, code, error, None)


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


def test_default_base_url_is_engagelabs_production_endpoint() -> None:
    provider = EngageLabProvider(EngageLabTransport(), None, USER, KEY)
    assert DEFAULT_BASE_URL == "https://email.api.engagelab.cc"
    assert "https://email.api.engagelab.cc/v1/mail/send" in repr(provider)


async def test_factory_builds_each_kind_and_rejects_bad_credentials() -> None:
    factory = ProviderFactory()
    try:
        assert isinstance(factory.build("engagelab", {"api_user": "u", "api_key": "k"}, "http://x"), EngageLabProvider)
        smtp = factory.build("smtp", {"host": "h", "port": 587, "username": "u", "password": "p"})
        assert isinstance(smtp, SmtpProvider) and smtp.tls == "starttls"
        assert isinstance(factory.build("null", {}), NullProvider)
        bad: list[tuple[str, dict[str, Any], str]] = [
            ("engagelab", {"api_user": "u"}, "api_key"),
            ("engagelab", {"api_user": "", "api_key": "k"}, "api_user"),
            ("smtp", {"host": "h", "port": "25"}, "port"),
            ("smtp", {"host": "h", "port": 70000}, "port"),
            ("smtp", {"host": "h", "port": 25, "tls": "ssl"}, "tls"),
            ("smtp", {"port": 25}, "host"),
            ("carrier-pigeon", {}, "provider"),
        ]
        for kind, creds, field in bad:
            with pytest.raises(ConfigError) as err:
                factory.build(kind, creds)
            assert err.value.field == field
    finally:
        await factory.close()


async def test_null_provider_answers_sent_and_counts() -> None:
    provider = NullProvider()
    results = [await provider.send(message(n)) for n in range(3)]
    assert [r.outcome for r in results] == ["sent"] * 3
    assert provider.calls == 3
    await provider.close()
