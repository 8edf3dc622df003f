"""Pure text helpers: bars, sparklines, counts, durations and times in the business time zone."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text

_BLOCKS = "▁▂▃▄▅▆▇█"
_PARTIAL = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int, style: str = "green") -> Text:
    """A horizontal bar with eighth-cell resolution; the empty part is a dim track."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    filled = "█" * full + (_PARTIAL[part] if part and full < width else "")
    text = Text(filled, style=style)
    text.append("░" * (width - len(filled)), style="grey35")
    return text


def sparkline(values: list[int], width: int = 10, peak: float | None = None) -> Text:
    """Unicode block sparkline of the last `width` values, scaled to `peak` (default: their maximum).

    Pass one peak for every row of a table so equal heights mean equal rates.
    """
    values = values[-width:]
    top = max(values, default=0) if peak is None else max(peak, max(values, default=0))
    if top <= 0:
        return Text("▁" * len(values) + " " * (width - len(values)), style="grey35")
    # Any send at all shows above the zero line.
    chars = "".join(_BLOCKS[max(1, min(7, round(v / top * 7)))] if v > 0 else "▁" for v in values)
    return Text(chars.ljust(width), style="cyan")


def spark_cell(values: list[int], width: int, peak: float) -> Text:
    """A sparkline on a shared scale followed by the latest figure, e.g. `▂▃▅█  30`."""
    spark_width = max(1, width - 5)
    latest = values[-1] if values else 0
    return sparkline(values, spark_width, peak) + Text(count(latest).rjust(5), style="bold" if latest else "grey50")


def _chart_cell(value: int, top: int, height: int, row: int) -> str:
    """The block for one value at one chart row (1 = bottom); a non-zero value always shows."""
    level = value / top * height if top else 0.0
    if level >= row:
        return "█"
    eighths = int((level - (row - 1)) * 8) if level > row - 1 else 0
    if eighths <= 0:
        return "▁" if row == 1 and value > 0 else " "
    return _BLOCKS[min(7, eighths - 1)]


def column_chart(values: list[int], height: int = 5, label_width: int = 6) -> list[Text]:
    """A bar chart with a y axis (its top and zero) and one column per value; pure text lines."""
    top = max(values, default=0)
    lines: list[Text] = []
    for row in range(height, 0, -1):
        label = count(top) if row == height and top else "0" if row == 1 else ""
        axis = label.rjust(label_width - 2) + " ┤"
        line = Text(axis, style="grey50")
        for v in values:
            line.append(_chart_cell(v, top, height, row) * 2 + " ", style="cyan")
        lines.append(line)
    return lines


def count(n: float) -> str:
    """A count in at most four characters: 999, 9999, 12k, 123k, 1.2M, 12M."""
    n = int(n)
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n // 1000}k"
    if n < 10_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n // 1_000_000}M"


def duration(seconds: float | None) -> str:
    """A short duration: 45s, 12m, 1h05m, 3d; an em dash when unknown."""
    if seconds is None or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s" if s < 600 else f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600}h"


def rate(per_minute: float) -> str:
    return f"{count(per_minute)}/m" if per_minute >= 10 else f"{per_minute:.1f}/m" if per_minute else "—"


def percent(fraction: float) -> str:
    return f"{min(max(fraction, 0.0), 1.0) * 100:3.0f}%"


@lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def local_time(value: str | None, tz: str, fmt: str = "%H:%M") -> str:
    """An ISO instant shown in the business time zone; an em dash when absent."""
    parsed = parse_iso(value)
    return parsed.astimezone(zone(tz)).strftime(fmt) if parsed else "—"


def clip(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"
