"""Waiting on a deadline of the injected clock or a wake event, whichever comes first."""

from __future__ import annotations

import asyncio
from datetime import datetime

from engine.infra.clock import Clock


async def wait_until(clock: Clock, deadline: datetime | None, wake: asyncio.Event,
                     cap_seconds: float | None = None) -> None:
    """Return at `deadline` (clock time), when `wake` is set, or after `cap_seconds` of real time."""
    if wake.is_set():
        return
    waiters: list[asyncio.Future[object]] = [asyncio.ensure_future(wake.wait())]
    if deadline is not None:
        waiters.append(asyncio.ensure_future(clock.sleep_until(deadline)))
    try:
        await asyncio.wait(waiters, timeout=cap_seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Cancelled, not awaited: awaiting them under `suppress(CancelledError)` also swallowed a
        # cancellation of the task itself arriving meanwhile, and a stopping engine then waited
        # on a loop that kept sleeping towards its next deadline.
        for w in waiters:
            if not w.done():
                w.cancel()
