"""Sending limits as pure functions of what the API returned: each domain group's usage against
its limits (last minute, today), and the engine-wide per-minute cap."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui.format import bar, clip
from tui.limits_models import DomainGroupRow, SendRateLimitRow


def usage(used: int, limit: int | None) -> Text:
    """`3/4 ███░` against a limit (red at it), or just the count when there is none."""
    if limit is None:
        return Text(f"{used} (no limit)", style="grey50")
    full = used >= limit
    return Text.assemble((f"{used}/{limit} ", "bold red" if full else ""), bar(min(1.0, used / limit), 8,
                                                                               "red" if full else "green"))


def cap_line(cap: SendRateLimitRow | None) -> Text:
    if cap is None:
        return Text("engine-wide cap: …", style="grey50")
    if cap.per_minute <= 0:
        return Text.assemble("engine-wide cap: ", ("none", "bold"), f"  ({cap.used_last_minute} requests last minute)")
    source = "set by an admin" if cap.source == "admin" else "EDM_SEND_RATE_LIMIT"
    return Text.assemble("engine-wide cap: ", usage(cap.used_last_minute, cap.per_minute), f" per minute ({source})")


def groups_table(groups: list[DomainGroupRow]) -> RenderableType:
    """One row per group: its domains, per-minute and per-day usage against the limits, and whether
    its recipients wait (the dispatcher skips them until the limit frees)."""
    if not groups:
        return Text("no domain groups: every recipient domain is sent to at its services' pace", style="grey50")
    table = Table(box=None, padding=(0, 1), expand=True, header_style="bold")
    for name, kw in (("group", {"no_wrap": True}), ("domains", {"ratio": 2}), ("last minute", {"no_wrap": True}),
                     ("today", {"no_wrap": True}), ("counts", {"no_wrap": True}), ("state", {"no_wrap": True})):
        table.add_column(name, **kw)  # type: ignore[arg-type]
    for g in groups:
        state = Text("waiting", style="bold yellow") if g.at_limit else Text("open", style="green")
        scope = "per service (busiest)" if g.per_service else "all services"
        table.add_row(Text(clip(g.name, 20), style="bold"), g.pattern, usage(g.used_last_minute, g.per_minute),
                      usage(g.used_today, g.per_day), Text(scope, style="grey70"), state)
    return Group(table)
