"""Registration of the sub-commands owned by other modules (fake ESP, quota tool, dashboard)."""

from __future__ import annotations

import argparse
from typing import Callable

from edm import quota_tool

ALL: list[Callable[[argparse._SubParsersAction], None]] = [quota_tool.register]  # type: ignore[type-arg]
