"""Feedback test support: a service whose fake ESP account posts signed callbacks to the API."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from api.deps import Deps
from edm.fake_esp import FakeEsp
from edm.fake_esp.webhooks import Feedback
from engine.infra.clock import Clock
from tests.conftest import Api
from tests.engine_support import eventually, make_service


def patch_settings(deps: Deps, **changes: Any) -> None:
    deps.settings = msgspec.structs.replace(deps.settings, **changes)


async def webhook_service(admin: Api, deps: Deps, esp: FakeEsp, esp_url: str, clock: Clock,
                          api_user: str | None = None, **rates: float) -> tuple[uuid.UUID, str]:
    """A service on the fake ESP with its webhook secret rotated and the fake posting to it.

    The fake's feedback draws are seeded by (seed, api_user): a fixed pair repeats the outcomes."""
    api_user = api_user or f"acct-{uuid.uuid4().hex[:8]}"
    service = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url=esp_url,
                                 api_user=api_user, send_interval=1)
    secret = await admin.ok("POST", f"/services/{service}/webhook-secret")
    url = str(admin.client.make_url(f"/api/v1/webhooks/engagelab/{service}"))
    hooks = dict(esp.config.webhooks)
    hooks[api_user] = Feedback(url=url, secret=secret["secret"], **rates)
    esp.config = msgspec.structs.replace(esp.config, webhooks=hooks)
    return service, secret["secret"]


async def callbacks_done(esp: FakeEsp, at_least: int) -> None:
    async def done() -> bool:
        return esp.webhooks.pending == 0 and len(esp.webhooks.posted) >= at_least
    await eventually(done, 30, "the fake ESP's callbacks")
