"""Encryption of service credentials at rest (Fernet) and their masked view."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from engine.domain.errors import ConfigError


def mask(secret: str) -> str:
    """`…b868` for secrets of 16+ characters (at most 4 shown); shorter ones show nothing."""
    if len(secret) >= 16:
        return f"…{secret[-4:]}"
    return "••••"


class SecretBox:
    def __init__(self, key: str | bytes):
        self._key = key.encode() if isinstance(key, str) else key
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigError("EDM_SECRET_KEY is not a valid Fernet key", field="EDM_SECRET_KEY") from exc

    @classmethod
    def from_settings(cls, key: str, data_dir: Path) -> "SecretBox":
        if key:
            return cls(key)
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            path.write_bytes(Fernet.generate_key())
            path.chmod(0o600)
        return cls(path.read_bytes().strip())

    def derive(self, purpose: str) -> bytes:
        """A key for one purpose (e.g. signing recipient links), derived from the secret key."""
        return hmac.new(self._key, b"edm:" + purpose.encode(), hashlib.sha256).digest()

    def seal(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(data)).decode()

    def open(self, token: str) -> dict[str, Any]:
        try:
            return orjson.loads(self._fernet.decrypt(token.encode()))  # type: ignore[no-any-return]
        except InvalidToken as exc:
            raise ConfigError("service credentials cannot be decrypted with this EDM_SECRET_KEY") from exc
