"""Puts the engine into the running process (the composition root's engine half)."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

from api.deps import Deps


@contextlib.asynccontextmanager
async def running_engine(d: Deps) -> AsyncIterator[None]:
    # The dispatch engine is wired here once it exists; until then the API runs alone.
    yield
