"""SMTP adapter (aiosmtplib): one reused connection per service, STARTTLS/TLS and AUTH."""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Literal

import aiosmtplib

from engine.providers.base import (
    INVALID_MESSAGE,
    ConnectionSlots,
    NETWORK_ERROR,
    TIMEOUT,
    Message,
    SendResult,
    scrub,
)

log = logging.getLogger("edm.providers.smtp")

TlsMode = Literal["starttls", "tls", "none"]

# Transient "try later" replies: the engine treats them as throttling, not as failures.
THROTTLE_CODES = frozenset({421, 450, 451, 452, 454})
SMTP_ERROR = "SMTP_ERROR"


def build_mime(message: Message) -> tuple[EmailMessage, str]:
    """A multipart/alternative (text + html) email and its Message-ID (without the brackets)."""
    domain = parseaddr(message.from_address)[1].rpartition("@")[2] or "localhost"
    # Unique per attempt (a throttled subtask is sent again later), short enough not to fold.
    msgid = f"<{message.subtask_id}.{secrets.token_hex(4)}@{domain}>"
    mime = EmailMessage()
    # The default policy rejects CR/LF in header values, so a subject cannot inject headers.
    mime["From"] = message.from_address
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    mime["Message-ID"] = msgid
    mime["X-EDM-Subtask"] = message.subtask_id
    mime["X-EDM-Campaign"] = message.campaign_id
    for name, value in message.headers.items():  # List-Unsubscribe and friends, as real headers
        mime[name] = value
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime, msgid.strip("<>")


class SmtpProvider:
    """One SMTP account as a `Provider`.

    Sends go one at a time over one connection that is kept between sends (a service sends at
    most once per interval, so one connection is enough). A kept connection is checked with
    NOOP before reuse and dropped after `max_idle` seconds or any error; nothing is ever
    resent on a fresh connection, since the first attempt may have been delivered.
    """

    # Its own connection, one send at a time: no shared pool to count.
    slots: ConnectionSlots | None = None

    def __init__(
        self, host: str, port: int, username: str | None = None, password: str | None = None,
        tls: TlsMode = "starttls", *, timeout: float = 30.0, max_idle: float = 60.0,
        tls_context: ssl.SSLContext | None = None, local_hostname: str | None = None,
    ):
        self.host = host
        self.port = port
        self.username = username or None
        self._password = password or None
        self.tls: TlsMode = tls
        self.timeout = timeout
        self.max_idle = max_idle
        self._tls_context = tls_context
        self._local_hostname = local_hostname
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SmtpProvider(host={self.host!r}, port={self.port}, username={self.username!r}, tls={self.tls!r})"

    def answer_now(self, message: Message) -> SendResult | None:
        return None  # every answer is the SMTP server's

    async def send(self, message: Message) -> SendResult:
        try:
            mime, message_id = build_mime(message)
        except (ValueError, TypeError) as exc:
            return SendResult.failed(INVALID_MESSAGE, scrub(str(exc)))
        async with self._lock:
            try:
                client = await self._connection()
                await client.send_message(mime, sender=message.from_address, recipients=[message.to],
                                          timeout=message.timeout or self.timeout)
            except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as exc:
                await self._drop()
                return self._error(exc)
            self._last_used = time.monotonic()
        return SendResult.sent(message_id)

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    client.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        """The kept connection if it is still alive, else a new logged-in one."""
        client = self._client
        if client is not None:
            if client.is_connected and time.monotonic() - self._last_used < self.max_idle:
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                    pass
            await self._drop()
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, timeout=self.timeout,
            username=self.username, password=self._password if self.username else None,
            use_tls=self.tls == "tls",
            # False = never upgrade, True = upgrade or fail: "starttls" never falls back to plain.
            start_tls=self.tls == "starttls",
            tls_context=self._tls_context, local_hostname=self._local_hostname,
        )
        await client.connect()
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _error(self, exc: BaseException) -> SendResult:
        code: int | None = None
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
            code, text = exc.recipients[0].code, exc.recipients[0].message
        elif isinstance(exc, aiosmtplib.SMTPResponseException):
            code, text = exc.code, exc.message
        else:
            text = f"{type(exc).__name__}: {exc}"
        text = scrub(text, self._password)
        if code is None:
            if isinstance(exc, asyncio.TimeoutError):
                kind = TIMEOUT
            elif isinstance(exc, (OSError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected)):
                kind = NETWORK_ERROR
            else:
                # Protocol trouble without a reply code, e.g. STARTTLS required but not offered.
                kind = SMTP_ERROR
            log.warning("smtp_send_error host=%s code=%s error=%s", self.host, kind, text)
            return SendResult.failed(kind, text)
        if code in THROTTLE_CODES:
            return SendResult.throttled(str(code), text)
        return SendResult.failed(str(code), text)
