"""Bearer JWTs: a signature is checked once per process, the expiry on every call by the injected clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from api.tokens import TokenIssuer
from engine.domain.errors import Unauthorized

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_a_checked_token_still_expires_by_the_clock() -> None:
    issuer = TokenIssuer("s" * 48, ttl_seconds=60)
    user = uuid.uuid4()
    token = issuer.issue(user, "user", 3, NOW)
    assert issuer.verify(token, NOW).sub == user
    assert issuer.verify(token, NOW + timedelta(seconds=59)).ver == 3
    with pytest.raises(Unauthorized):
        issuer.verify(token, NOW + timedelta(seconds=60))


def test_a_tampered_or_foreign_token_fails_even_next_to_a_checked_one() -> None:
    issuer = TokenIssuer("s" * 48, ttl_seconds=60)
    token = issuer.issue(uuid.uuid4(), "user", 1, NOW)
    issuer.verify(token, NOW)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    for bad in (f"{head}.{payload}.{flipped}", TokenIssuer("t" * 48, 60).issue(uuid.uuid4(), "admin", 1, NOW)):
        with pytest.raises(Unauthorized):
            issuer.verify(bad, NOW)
