"""Builds the adapter for a sending service from its provider kind and decrypted credentials."""

from __future__ import annotations

from typing import Any, Mapping, cast

from engine.domain.errors import ConfigError
from engine.providers.base import Provider
from engine.providers.engagelab import EngageLabProvider, EngageLabTransport
from engine.providers.null import NullProvider
from engine.providers.smtp import SmtpProvider, TlsMode

TLS_MODES = ("starttls", "tls", "none")


class ProviderFactory:
    """Owns what adapters share (the EngageLab HTTP session) and builds one adapter per service.

    Credentials keys: engagelab `api_user`, `api_key`; smtp `host`, `port`, `username`,
    `password`, `tls` (starttls|tls|none, default starttls). Kind `null` takes none.
    """

    def __init__(self, transport: EngageLabTransport | None = None, *, smtp_timeout: float = 30.0):
        self.transport = transport or EngageLabTransport()
        self.smtp_timeout = smtp_timeout

    def build(self, kind: str, credentials: Mapping[str, Any], base_url: str | None = None) -> Provider:
        match kind:
            case "engagelab":
                return EngageLabProvider(
                    self.transport, base_url, _text(credentials, "api_user"), _text(credentials, "api_key"))
            case "smtp":
                tls = credentials.get("tls") or "starttls"
                if tls not in TLS_MODES:
                    raise ConfigError(f"smtp tls must be one of {', '.join(TLS_MODES)}", field="tls")
                port = credentials.get("port")
                if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                    raise ConfigError("smtp port must be an integer 1-65535", field="port")
                return SmtpProvider(
                    _text(credentials, "host"), port,
                    credentials.get("username") or None, credentials.get("password") or None,
                    cast(TlsMode, tls), timeout=self.smtp_timeout,
                )
            case "null":
                return NullProvider()
            case _:
                raise ConfigError(f"unknown provider {kind!r}", field="provider")

    async def close(self) -> None:
        """Close what is shared; per-service adapters are closed by whoever holds them."""
        await self.transport.close()


def _text(credentials: Mapping[str, Any], key: str) -> str:
    value = credentials.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"credentials need a non-empty {key}", field=key)
    return value
