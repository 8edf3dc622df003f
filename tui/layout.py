"""Column layouts that follow the terminal width: fixed columns keep their width, the rest grow."""

from __future__ import annotations

from typing import NamedTuple

from rich.text import Text


class Column(NamedTuple):
    key: str
    label: str
    width: int


class Spec(NamedTuple):
    """A column before fitting: its narrowest width, how much of any spare room it takes, its widest."""

    key: str
    label: str
    min: int
    grow: int = 0
    max: int = 0


Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]
Widths = dict[str, int]

# Each DataTable column pads one cell either side; the table keeps one column for its scrollbar.
PADDING, SCROLLBAR = 2, 1


def room(specs: list[Spec]) -> int:
    """Terminal columns the specs need at their narrowest."""
    return sum(s.min + PADDING for s in specs) + SCROLLBAR


def fit(specs: list[Spec], width: int) -> list[Column]:
    """Widths for `specs` in a table `width` cells wide: spare room goes to the growing columns."""
    spare = max(0, width - room(specs))
    weights = sum(s.grow for s in specs)
    columns = []
    for s in specs:
        extra = spare * s.grow // weights if weights and s.grow else 0
        w = s.min + extra
        columns.append(Column(s.key, s.label, min(w, s.max) if s.max else w))
    return columns


def widths(columns: list[Column]) -> Widths:
    return {c.key: c.width for c in columns}
