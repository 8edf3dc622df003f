"""What the operator chose for a table — sort column, direction, filter — and applying it (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, TypeVar

T = TypeVar("T")
SortKeys = dict[str, Callable[[Any], Any]]


@dataclass
class TableView:
    """One table's sort and filter; lives in the app, so it outlives screens and reconnects."""

    sort: str | None = None  # column key; None keeps the API's order
    descending: bool = False
    needle: str = ""

    def cycle(self, columns: Sequence[str]) -> None:
        """`s`: next column ascending, then the same column descending, then the next column."""
        if self.sort in columns and not self.descending:
            self.descending = True
            return
        i = columns.index(self.sort) + 1 if self.sort in columns else 0
        self.sort, self.descending = (columns[i], False) if i < len(columns) else (None, False)

    def click(self, column: str) -> None:
        """A header click: sort by it, or flip the direction when it already is the sort."""
        if self.sort == column:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, False


@dataclass
class ViewState:
    """The chosen tab and every table's view."""

    tab: str = "services"
    tables: dict[str, TableView] = field(default_factory=dict)

    def of(self, tab: str) -> TableView:
        return self.tables.setdefault(tab, TableView())


def matches(texts: Iterable[str], needle: str) -> bool:
    """Every word of the filter appears in one of the row's texts (case-insensitive)."""
    words = needle.lower().split()
    if not words:
        return True
    hay = " ".join(texts).lower()
    return all(w in hay for w in words)


def arrange(items: Iterable[T], view: TableView, keys: SortKeys, texts: Callable[[T], Iterable[str]]) -> list[T]:
    """Filter then sort; ties keep the API's order (the sort is stable)."""
    chosen = [i for i in items if matches(texts(i), view.needle)]
    key = keys.get(view.sort or "")
    if key is not None:
        chosen.sort(key=lambda i: _orderable(key(i)), reverse=view.descending)
    return chosen


def _orderable(value: Any) -> tuple[int, Any]:
    # Unknown values (None) sort after known ones in ascending order.
    return (1, 0) if value is None else (0, value.lower() if isinstance(value, str) else value)


def sort_label(label: str, key: str, view: TableView) -> str:
    return f"{label} {'▼' if view.descending else '▲'}" if view.sort == key else label
