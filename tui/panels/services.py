"""The services table: layout by width, cells on a shared throughput scale, sort keys, detail line."""

from __future__ import annotations

from rich.text import Text

from tui.format import bar, clip, count, duration, local_time, spark_cell
from tui.layout import Cell, Column, Row, Spec, Widths, fit
from tui.models import Overview, ServiceView
from tui.table_view import SortKeys

# Below this many columns the tables use their compact layouts (80×24 terminals).
COMPACT_BELOW = 100
QUOTA_FIGURES = 9  # "9999/9999"


def service_columns(width: int) -> list[Column]:
    specs = [Spec("name", "Service", 11, 3, 40), Spec("state", "State", 21), Spec("used", "Used / daily", 15, 1, 26),
             Spec("spm", "Sends/min", 11, 1, 21), Spec("fail", "Err", 3), Spec("reset", "Reset", 5)]
    if width >= COMPACT_BELOW:
        specs.append(Spec("provider", "Provider", 9))
    return fit(specs, width)


def service_state(s: ServiceView, tz: str, elapsed: float = 0.0) -> Text:
    """The state cell; an interval countdown is advanced by the seconds since the snapshot."""
    if not s.enabled or s.state == "disabled":
        return Text("disabled", style="grey50")
    match s.state:
        case "frozen":
            return Text("FROZEN (abnormal)", style="bold white on red")
        case "exhausted":
            return Text(f"exhausted until {local_time(s.next_reset_at, tz)}", style="yellow")
        case "throttled":
            left = max(0.0, s.interval_remaining - elapsed)
            return Text(f"throttled {duration(left)}" if left else "throttled", style="magenta")
        case "interval":
            left = max(0.0, s.interval_remaining - elapsed)
            if left <= 0:
                return Text("ready", style="bold green")
            return Text(f"interval {left:.1f}s", style="cyan")
        case _:
            return Text("ready", style="bold green")


def used_fraction(s: ServiceView) -> float:
    return s.used_today / s.daily_quota if s.daily_quota else 0.0


def service_used(s: ServiceView, width: int) -> Text:
    numbers = f"{count(s.used_today)}/{count(s.daily_quota)}"
    fraction = used_fraction(s)
    style = "red" if fraction >= 0.95 else "yellow" if fraction >= 0.75 else "green"
    return Text(numbers.rjust(QUOTA_FIGURES) + " ") + bar(fraction, max(1, width - QUOTA_FIGURES - 1), style)


def throughput_peak(services: list[ServiceView]) -> int:
    """The one scale every row's sparkline is drawn against."""
    return max((max(s.sends_per_minute, default=0) for s in services), default=0)


def service_row(s: ServiceView, tz: str, w: Widths, peak: int, elapsed: float = 0.0, marked: bool = False) -> Row:
    fails = Text(str(s.consecutive_failures), style="bold red" if s.consecutive_failures else "grey50")
    name: Cell = Text.assemble(("● ", "bold magenta"), clip(s.name, w["name"] - 2)) if marked else clip(s.name, w["name"])
    cells: tuple[Cell, ...] = (
        name,
        service_state(s, tz, elapsed),
        service_used(s, w["used"]),
        spark_cell(s.sends_per_minute, w["spm"], peak),
        fails,
        local_time(s.next_reset_at, tz),
    )
    if "provider" in w:
        cells += (s.provider,)
    return s.id, cells


def service_rows(o: Overview, services: list[ServiceView], w: Widths, elapsed: float = 0.0,
                 marked: frozenset[str] = frozenset()) -> list[Row]:
    peak = throughput_peak(o.services)
    return [service_row(s, o.business_tz, w, peak, elapsed, s.id in marked) for s in services]


SERVICE_SORT: SortKeys = {
    "name": lambda s: s.name, "state": lambda s: s.state, "used": used_fraction,
    "spm": lambda s: s.sends_per_minute[-1] if s.sends_per_minute else 0, "fail": lambda s: s.consecutive_failures,
    "reset": lambda s: s.next_reset_at, "provider": lambda s: s.provider,
}


def service_texts(s: ServiceView) -> list[str]:
    return [s.name, s.provider, s.state, "disabled" if not s.enabled else "", s.abnormal_reason or ""]


def service_detail(s: ServiceView | None, tz: str, peak: int = 0) -> Text:
    if s is None:
        return Text("no service selected", style="grey50")
    last = s.sends_per_minute[-1] if s.sends_per_minute else 0
    text = Text.assemble((s.name, "bold"), f" · {s.provider} · every {s.send_interval}s · ",
                         f"{s.remaining_today} left · resets {s.reset_time or '—'} {tz} · ",
                         f"{last} sends last min (scale 0–{peak}/min)")
    if s.abnormal_reason:
        text.append(f"\nabnormal: {s.abnormal_reason}", style="red")
    return text
