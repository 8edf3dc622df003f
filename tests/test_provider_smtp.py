"""The SMTP adapter against a real aiosmtpd server on loopback (plain, AUTH, STARTTLS, TLS)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, AsyncIterator

import msgspec
import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from engine.providers import Message, SmtpProvider
from engine.providers.smtp import build_mime

# aiosmtpd warns about AUTH without TLS; the plain-AUTH tests want exactly that on loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "smtp-pa55word-TOP-secret"
LOGIN = "mailer"


class Recorder:
    """aiosmtpd handler: keeps every accepted message; some recipients get scripted replies."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.connections = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address.startswith("unknown@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = envelope.rcpt_tos[0]
        if rcpt.startswith("later@"):
            return "451 4.7.1 Greylisted, try again later"
        if rcpt.startswith("full@"):
            return "552 5.2.2 Mailbox full"
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append({
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "mime": parsed,
            "auth": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "tls": server.transport is not None and server.transport.get_extra_info("ssl_object") is not None,
        })
        return "250 2.0.0 Ok: queued"


def authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (LOGIN.encode(), PASSWORD.encode())
    # handled=False: let aiosmtpd answer the failure itself (535).
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class SmtpServer:
    def __init__(self, recorder: Recorder, server: asyncio.Server):
        self.recorder = recorder
        self.server = server
        self.port: int = server.sockets[0].getsockname()[1]


async def start_server(*, auth: bool = False, starttls: ssl.SSLContext | None = None,
                       implicit_tls: ssl.SSLContext | None = None) -> SmtpServer:
    recorder = Recorder()

    def factory() -> SMTP:
        recorder.connections += 1
        return SMTP(
            recorder, hostname="localhost", tls_context=starttls, require_starttls=starttls is not None,
            authenticator=authenticator if auth else None, auth_required=auth,
            auth_require_tls=starttls is not None, loop=asyncio.get_running_loop(),
        )

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=implicit_tls)
    return SmtpServer(recorder, server)


@pytest.fixture
async def plain() -> AsyncIterator[SmtpServer]:
    smtp = await start_server()
    yield smtp
    smtp.server.close()


@pytest.fixture
async def authed() -> AsyncIterator[SmtpServer]:
    smtp = await start_server(auth=True)
    yield smtp
    smtp.server.close()


def message(to: str = "bob@example.com", n: int = 1, subject: str = "Ünïcode subject") -> Message:
    return Message(subtask_id=f"00000000-0000-4000-8000-{n:012d}", campaign_id="c0ffee00-0000-4000-8000-000000000001",
                   from_address="news@mail.example.com", to=to, subject=subject,
                   html=f"<p>Hello <b>{n}</b></p>", text=f"Hello {n}")


def assert_no_secret(value: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert PASSWORD not in msgspec.json.encode(value).decode()
    assert PASSWORD not in caplog.text


async def test_plain_send_delivers_headers_and_both_bodies(plain: SmtpServer) -> None:
    provider = SmtpProvider("127.0.0.1", plain.port, tls="none")
    msg = message()
    result = await provider.send(msg)
    await provider.close()
    assert result.outcome == "sent"
    [got] = plain.recorder.messages
    mime: EmailMessage = got["mime"]
    assert (got["mail_from"], got["rcpt_tos"]) == (msg.from_address, [msg.to])
    assert (mime["From"], mime["To"], mime["Subject"]) == (msg.from_address, msg.to, msg.subject)
    assert mime["X-EDM-Subtask"] == msg.subtask_id and mime["X-EDM-Campaign"] == msg.campaign_id
    assert mime["Message-ID"] == f"<{result.message_id}>"
    assert result.message_id and result.message_id.startswith(msg.subtask_id + ".")
    assert result.message_id.endswith("@mail.example.com")
    assert mime.get_content_type() == "multipart/alternative"
    plain_part = mime.get_body(("plain",))
    html_part = mime.get_body(("html",))
    assert plain_part is not None and html_part is not None
    assert plain_part.get_content().strip() == msg.text
    assert html_part.get_content().strip() == msg.html


async def test_auth_login_and_connection_reuse(authed: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = SmtpProvider("127.0.0.1", authed.port, LOGIN, PASSWORD, tls="none")
    results = [await provider.send(message(n=n)) for n in range(3)]
    assert [r.outcome for r in results] == ["sent"] * 3
    assert [m["auth"] for m in authed.recorder.messages] == [LOGIN] * 3
    # One connection carried all three messages.
    assert authed.recorder.connections == 1
    await provider.close()
    assert_no_secret(results, caplog)


async def test_wrong_password_fails_without_revealing_it(authed: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    provider = SmtpProvider("127.0.0.1", authed.port, LOGIN, PASSWORD + "-wrong", tls="none")
    result = await provider.send(message())
    await provider.close()
    assert (result.outcome, result.error_code) == ("failed", "535")
    assert result.error and PASSWORD not in result.error
    assert not authed.recorder.messages
    assert_no_secret(result, caplog)


async def test_auth_required_but_not_configured_fails(authed: SmtpServer) -> None:
    provider = SmtpProvider("127.0.0.1", authed.port, tls="none")
    result = await provider.send(message())
    await provider.close()
    assert (result.outcome, result.error_code) == ("failed", "530")


@pytest.mark.parametrize("to, outcome, code", [
    ("later@example.com", "throttled", "451"),
    ("busy@example.com", "throttled", "452"),
    ("full@example.com", "failed", "552"),
    ("unknown@example.com", "failed", "550"),
])
async def test_reply_codes_map_to_throttled_or_failed(plain: SmtpServer, to: str, outcome: str, code: str) -> None:
    provider = SmtpProvider("127.0.0.1", plain.port, tls="none")
    result = await provider.send(message(to))
    assert (result.outcome, result.error_code, result.message_id) == (outcome, code, None)
    assert result.error
    # The next message goes through on a fresh connection.
    assert (await provider.send(message())).outcome == "sent"
    await provider.close()
    assert len(plain.recorder.messages) == 1


async def test_connection_refused_fails_as_network_error(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = SmtpProvider("127.0.0.1", port, LOGIN, PASSWORD, tls="none", timeout=5)
    result = await provider.send(message())
    await provider.close()
    assert (result.outcome, result.error_code) == ("failed", "NETWORK_ERROR")
    assert_no_secret(result, caplog)


async def test_silent_server_fails_as_timeout() -> None:
    async def never_greets(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # say nothing until the client gives up
        writer.close()

    server = await asyncio.start_server(never_greets, "127.0.0.1", 0)
    try:
        provider = SmtpProvider("127.0.0.1", server.sockets[0].getsockname()[1], tls="none", timeout=0.3)
        result = await provider.send(message())
        await provider.close()
    finally:
        server.close()
    assert (result.outcome, result.error_code) == ("failed", "TIMEOUT")


async def test_server_dropping_the_kept_connection_is_survived(plain: SmtpServer) -> None:
    provider = SmtpProvider("127.0.0.1", plain.port, tls="none")
    assert (await provider.send(message(n=1))).outcome == "sent"
    # Drop the kept connection from under the provider (as an idle timeout on the server would).
    assert provider._client is not None
    provider._client.close()
    assert (await provider.send(message(n=2))).outcome == "sent"
    await provider.close()
    assert plain.recorder.connections == 2


async def test_header_injection_is_refused_before_connecting(plain: SmtpServer) -> None:
    provider = SmtpProvider("127.0.0.1", plain.port, tls="none")
    result = await provider.send(message(subject="hi\r\nBcc: victim@example.com"))
    await provider.close()
    assert (result.outcome, result.error_code) == ("failed", "INVALID_MESSAGE")
    assert plain.recorder.connections == 0


def test_mime_message_id_is_unique_per_build() -> None:
    first = build_mime(message())[1]
    second = build_mime(message())[1]
    assert first != second


def _self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only this certificate) for localhost/127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return server, client


async def test_starttls_with_auth(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    smtp = await start_server(auth=True, starttls=server_ctx)
    try:
        provider = SmtpProvider("127.0.0.1", smtp.port, LOGIN, PASSWORD, tls="starttls", tls_context=client_ctx)
        result = await provider.send(message())
        await provider.close()
        # A client that does not trust the certificate refuses to go on.
        untrusting = SmtpProvider("127.0.0.1", smtp.port, LOGIN, PASSWORD, tls="starttls")
        refused = await untrusting.send(message(n=2))
        await untrusting.close()
    finally:
        smtp.server.close()
    assert result.outcome == "sent"
    [got] = smtp.recorder.messages
    assert got["tls"] and got["auth"] == LOGIN
    assert refused.outcome == "failed"


async def test_starttls_required_but_not_offered_fails(plain: SmtpServer) -> None:
    provider = SmtpProvider("127.0.0.1", plain.port, tls="starttls")
    result = await provider.send(message())
    await provider.close()
    assert (result.outcome, result.error_code) == ("failed", "SMTP_ERROR")
    assert not plain.recorder.messages


async def test_implicit_tls(tmp_path: Path) -> None:
    server_ctx, client_ctx = _self_signed(tmp_path)
    smtp = await start_server(implicit_tls=server_ctx)
    try:
        provider = SmtpProvider("127.0.0.1", smtp.port, tls="tls", tls_context=client_ctx)
        result = await provider.send(message())
        await provider.close()
    finally:
        smtp.server.close()
    assert result.outcome == "sent"
    assert smtp.recorder.messages[0]["tls"]
