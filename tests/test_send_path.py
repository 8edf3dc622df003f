"""The send path without a task of its own per request: answers given at once are counted inline,
awaited ones by a callback on the provider's task; either way an adapter that raises fails only
its request, and a crash with requests at the provider gives every pooled connection back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from engine.providers import EngageLabTransport, ProviderFactory
from engine.providers.base import ConnectionSlots, Message, Provider, SendResult
from tests.engine_support import (
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


class Scripted:
    """Answers `sent`, inline (`answer_now`) or awaited, and raises for recipients named `boom`."""

    slots: ConnectionSlots | None = None

    def __init__(self, inline: bool):
        self.inline = inline
        self.inline_answers = 0
        self.awaited_answers = 0

    def _answer(self, message: Message) -> SendResult:
        if message.to.startswith("boom"):
            raise RuntimeError("adapter bug")
        return SendResult.sent(f"m-{message.subtask_id}")

    def answer_now(self, message: Message) -> SendResult | None:
        if not self.inline:
            return None
        self.inline_answers += 1
        return self._answer(message)

    async def send(self, message: Message) -> SendResult:
        self.awaited_answers += 1
        return self._answer(message)

    async def close(self) -> None:
        return None


class ScriptedProviders(ProviderFactory):
    def __init__(self, provider: Scripted):
        super().__init__()
        self.provider = provider

    def build(self, kind: str, credentials: Mapping[str, Any], base_url: str | None = None) -> Provider:
        return self.provider


async def test_an_adapter_that_raises_fails_only_its_request_inline_or_awaited(deps) -> None:
    pool, settings = deps.pool, deps.settings
    for inline in (True, False):
        clock = ScaledClock(START, factor=20)
        provider = Scripted(inline)
        user = await make_user(pool, quota=8)
        service = await make_service(pool, deps.box, settings, clock.now(), base_url="http://127.0.0.1:9")
        await map_user(pool, user, [service])
        await make_contacts(pool, user, 6)
        await make_contacts(pool, user, 2, prefix="boom")
        campaign = await make_campaign(pool, user, planned=8)
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ScriptedProviders(provider))
        async with running(engine):
            await wait_status(pool, campaign, "completed", timeout=30)
        rows = await pool.fetch("SELECT email, status, error FROM subtasks WHERE campaign_id = $1", campaign)
        failed = sorted(r["email"][:4] for r in rows if r["status"] == "failed")
        assert failed == ["boom", "boom"], rows
        assert all(r["error"] == "PROVIDER_ERROR: RuntimeError: adapter bug"
                   for r in rows if r["status"] == "failed"), rows
        assert sum(r["status"] == "sent" for r in rows) == 6
        # The path the test means to exercise is the one taken.
        assert (provider.inline_answers, provider.awaited_answers) == ((8, 0) if inline else (0, 8))
        assert not engine.dispatcher.sender.tasks
        await pool.execute("DELETE FROM user_service_map_items")


async def test_a_crash_with_requests_at_the_provider_gives_every_connection_back(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=1)
    transport = EngageLabTransport(pool_limit=3)
    async with fake_esp(FakeEspConfig(default=Knobs(latency_ms=3_000))) as (url, esp):
        await seed_campaign(deps, clock.now(), base_url=url, contacts=6, services=3)
        engine, _ = new_engine(settings, pool, clock, deps.box, providers=ProviderFactory(transport))
        await engine.start()
        await engine.wait_leader(10)
        try:
            async def all_out() -> bool:
                return len(esp.log.entries()) == 3 and len(engine.dispatcher.sender.tasks) == 3
            await eventually(all_out, what="three requests at the provider")
            assert transport.slots.used == 3
            await engine.abort()
            assert transport.slots.used == 0, "a crashed request kept its connection"
            assert not engine.dispatcher.sender.tasks and engine.dispatcher.sender.open() == 0
        finally:
            await transport.close()
