"""Provider credentials: validation per provider, sealing at rest and the masked view.

The whole secret exists in plain text only in the request that sets it and in the engine that
opens it to send; everything shown to people (API, dashboard, status log) is the masked view.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Mapping

import msgspec

from engine.domain.errors import ValidationError
from engine.infra.secret_box import SecretBox, mask

Provider = Literal["engagelab", "smtp"]

# No control characters in any credential: they would end up in headers and SMTP commands.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$(?!\n)"
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=PRINTABLE)]
_Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=PRINTABLE)]
_Host = Annotated[str, msgspec.Meta(
    pattern=r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$(?!\n)", max_length=253)]


class EngageLabCredentials(msgspec.Struct, forbid_unknown_fields=True):
    api_user: _Text
    api_key: _Secret


class SmtpCredentials(msgspec.Struct, forbid_unknown_fields=True):
    host: _Host
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    # Empty username and password = a relay that takes mail without AUTH.
    username: Annotated[str, msgspec.Meta(max_length=256, pattern=PRINTABLE)]
    password: Annotated[str, msgspec.Meta(max_length=1024, pattern=PRINTABLE)]
    tls: Literal["starttls", "tls", "none"]


Credentials = EngageLabCredentials | SmtpCredentials

_KIND: dict[str, type[EngageLabCredentials] | type[SmtpCredentials]] = {
    "engagelab": EngageLabCredentials,
    "smtp": SmtpCredentials,
}
# Fields whose value is a secret: shown masked, never whole.
_SECRETS = frozenset({"api_key", "password"})

_AT = re.compile(r"at `\$\.?(.*?)`")
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def _field(exc: msgspec.ValidationError) -> str:
    """`credentials.api_key` for the key a msgspec error points at."""
    text = str(exc)
    named = _NAMED.search(text)
    at = _AT.search(text)
    key = named.group(1) if named else (at.group(1) if at else "")
    return f"credentials.{key}" if key else "credentials"


def parse_credentials(provider: str, raw: Mapping[str, Any]) -> Credentials:
    """Check `raw` against the provider's credential shape; errors name `credentials.<key>`."""
    kind = _KIND.get(provider)
    if kind is None:
        raise ValidationError(f"unknown provider {provider!r}", field="provider")
    try:
        return msgspec.convert(dict(raw), kind)
    except msgspec.ValidationError as exc:
        field = _field(exc)
        # msgspec messages describe types and names only, never the submitted values.
        raise ValidationError(f"{field}: {_AT.sub('', str(exc)).rstrip(' -')}", field=field) from None


def masked(creds: Credentials) -> dict[str, Any]:
    """The view people may see: plain fields whole, secrets as `63b8…b868`."""
    return {k: mask(v) if k in _SECRETS else v for k, v in msgspec.structs.asdict(creds).items()}


def seal(box: SecretBox, creds: Credentials) -> str:
    return box.seal(msgspec.structs.asdict(creds))
