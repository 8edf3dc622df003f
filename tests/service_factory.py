"""Sending-service payloads and a factory that creates them through the API."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api

ENGAGELAB_KEY = "63b8f00dSECRETapikeyZZ9b868"
SMTP_PASSWORD = "smtp-Pa55word-WHOLE-7731"


def engagelab_payload(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"svc-{uuid.uuid4().hex[:8]}",
        "provider": "engagelab",
        "domain": "mail.example.com",
        "credentials": {"api_user": "edm_marketing_user", "api_key": ENGAGELAB_KEY},
        "base_url": "http://127.0.0.1:9999",
        "daily_quota": 1000,
        "reset_time": "02:00",
        "send_interval": 5,
    }
    body.update(over)
    return body


def smtp_payload(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"smtp-{uuid.uuid4().hex[:8]}",
        "provider": "smtp",
        "domain": "smtp.example.org",
        "credentials": {"host": "127.0.0.1", "port": 2525, "username": "mailer", "password": SMTP_PASSWORD,
                        "tls": "none"},
        "daily_quota": 500,
        "reset_time": "00:00",
        "send_interval": 2,
    }
    body.update(over)
    return body


async def make_service(admin: Api, **over: Any) -> dict[str, Any]:
    return await admin.ok("POST", "/services", json=engagelab_payload(**over))


class EngineRecorder:
    """Stands in for the running engine's command surface; records what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, uuid.UUID]] = []

    async def services_changed(self, service_id: uuid.UUID) -> None:
        self.calls.append(("services_changed", service_id))

    async def remaining_set(self, service_id: uuid.UUID, remaining: int) -> None:
        self.calls.append(("remaining_set", service_id))

    async def mapping_changed(self, user_id: uuid.UUID) -> None:
        self.calls.append(("mapping_changed", user_id))
