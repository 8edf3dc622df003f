"""Registration of the sub-commands owned by other modules (fake ESP, quota tool, dashboard)."""

from __future__ import annotations

import argparse
from typing import Callable

ALL: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]
