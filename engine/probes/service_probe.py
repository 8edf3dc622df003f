"""Probe a sending service's credentials with the cheapest authenticated call its provider has.

- EngageLab: `GET {base}/v1/domains` with HTTP Basic auth (lists the account's sending domains);
- SMTP: connect (TLS or STARTTLS as configured), AUTH when a username is set, NOOP, QUIT.

Nothing is sent and no quota or interval is used. The verdict is `ok`, `rejected` (the
provider refused the credentials or the account: 401/403, SMTP 535), `unreachable` (no
connection, timeout) or `error` (anything else). Details name codes, never credentials.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any, Literal, Mapping

import aiohttp
import aiosmtplib
import msgspec

Verdict = Literal["ok", "rejected", "unreachable", "error"]
ENGAGELAB_BASE = "https://email.api.engagelab.cc"


class ProbeResult(msgspec.Struct):
    service_id: str
    provider: str
    verdict: Verdict
    ok: bool
    detail: str
    latency_ms: float
    checked_at: datetime


async def probe_credentials(provider: str, creds: Mapping[str, Any], base_url: str | None,
                            timeout: float = 10.0) -> tuple[Verdict, str]:
    if provider == "engagelab":
        return await _engagelab(creds, base_url or ENGAGELAB_BASE, timeout)
    if provider == "smtp":
        return await _smtp(creds, timeout)
    return "error", f"no probe for provider {provider!r}"


async def _engagelab(creds: Mapping[str, Any], base: str, timeout: float) -> tuple[Verdict, str]:
    token = base64.b64encode(f"{creds['api_user']}:{creds['api_key']}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
                session.get(base.rstrip("/") + "/v1/domains", headers=headers, allow_redirects=False) as resp:
            body = await resp.content.read(64 * 1024)
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return "unreachable", type(exc).__name__
    if 200 <= status < 300:
        return "ok", f"HTTP {status}"
    code = _code(body)
    detail = f"HTTP {status}" + (f" code {code}" if code is not None else "")
    return ("rejected" if status in (401, 403) else "error"), detail


def _code(body: bytes) -> Any:
    try:
        doc = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    return doc.get("code") if isinstance(doc, dict) else None


async def _smtp(creds: Mapping[str, Any], timeout: float) -> tuple[Verdict, str]:
    tls = creds.get("tls", "starttls")
    client = aiosmtplib.SMTP(hostname=creds["host"], port=int(creds["port"]), use_tls=tls == "tls",
                             start_tls=tls == "starttls", timeout=timeout)
    try:
        await client.connect()
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return "unreachable", type(exc).__name__
    try:
        if creds.get("username"):
            await client.login(creds["username"], creds.get("password", ""))
        await client.noop()
        return "ok", "SMTP 250"
    except aiosmtplib.SMTPAuthenticationError as exc:
        return "rejected", f"SMTP {exc.code}"
    except aiosmtplib.SMTPResponseException as exc:
        return "error", f"SMTP {exc.code}"
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return "unreachable", type(exc).__name__
    finally:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


async def probe_service(service_id: str, provider: str, creds: Mapping[str, Any], base_url: str | None,
                        now: datetime, timeout: float = 10.0) -> ProbeResult:
    started = time.monotonic()
    verdict, detail = await probe_credentials(provider, creds, base_url, timeout)
    return ProbeResult(service_id, provider, verdict, verdict == "ok", detail,
                       round((time.monotonic() - started) * 1000, 1), now)
