"""JWT issue and verification (PyJWT, HS256)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import msgspec

from engine.domain.errors import Unauthorized


class Claims(msgspec.Struct, frozen=True):
    sub: uuid.UUID
    role: str
    ver: int


# Tokens whose signature this process has checked; cleared when full (a re-check is all it costs).
MAX_VERIFIED = 10_000


class TokenIssuer:
    def __init__(self, secret: str, ttl_seconds: int):
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_seconds)
        # PyJWT's decode was a tenth of the API's CPU under load, once per request for the same
        # few tokens: a signature checked once stays good for this secret, so only the expiry
        # (by the injected clock) is judged again. Revocation is the user row's job (api.auth).
        self._verified: dict[str, tuple[int, Claims]] = {}

    @classmethod
    def from_settings(cls, secret: str, ttl: int, data_dir: Path) -> "TokenIssuer":
        if not secret:
            path = data_dir / "jwt.secret"
            if not path.exists():
                data_dir.mkdir(parents=True, exist_ok=True)
                path.write_text(secrets.token_urlsafe(48))
                path.chmod(0o600)
            secret = path.read_text().strip()
        return cls(secret, ttl)

    @property
    def ttl_seconds(self) -> int:
        return int(self._ttl.total_seconds())

    def issue(self, user_id: uuid.UUID, role: str, version: int, now: datetime) -> str:
        payload = {
            "sub": str(user_id),
            "role": role,
            "ver": version,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def verify(self, token: str, now: datetime) -> Claims:
        checked = self._verified.get(token)
        if checked is None:
            checked = self._decode(token)
            if len(self._verified) >= MAX_VERIFIED:
                self._verified.clear()
            self._verified[token] = checked
        exp, claims = checked
        # Expiry (and issue time) are judged by the injected clock, not the wall clock.
        if exp <= int(now.timestamp()):
            raise Unauthorized("token expired")
        return claims

    def _decode(self, token: str) -> tuple[int, Claims]:
        try:
            payload = jwt.decode(
                token, self._secret, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "ver"]}
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid token") from exc
        try:
            return int(payload["exp"]), msgspec.convert(payload, Claims, strict=False)
        except (msgspec.ValidationError, TypeError, ValueError) as exc:
            raise Unauthorized("invalid token") from exc
