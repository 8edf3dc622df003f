"""Registration of the sub-commands owned by other modules (fake ESP, quota tool, retention, dashboard)."""

from __future__ import annotations

import argparse
from typing import Callable

from edm import quota_tool, retention_tool
from tui import cli as tui_cli


def fake_esp(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    import edm.fake_esp as esp

    p = sub.add_parser("fake-esp", help="a local EngageLab stand-in that records every request")
    esp.add_arguments(p)
    p.set_defaults(fn=esp.run)


ALL: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    quota_tool.register, retention_tool.register, fake_esp, tui_cli.register]
