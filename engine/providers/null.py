"""An in-process provider that accepts everything at once (benchmarks, dry runs)."""

from __future__ import annotations

import asyncio

from engine.providers.base import ConnectionSlots, Message, SendResult


class NullProvider:
    """Answers `sent` for every message, after an optional delay, and counts the calls."""

    slots: ConnectionSlots | None = None

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.calls = 0

    def answer_now(self, message: Message) -> SendResult | None:
        if self.latency > 0:
            return None
        self.calls += 1
        return SendResult.sent(f"null-{message.subtask_id}")

    async def send(self, message: Message) -> SendResult:
        self.calls += 1
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        return SendResult.sent(f"null-{message.subtask_id}")

    async def close(self) -> None:
        return None
