"""A DataTable that takes whole row sets but updates changed cells in place (no flicker, cursor kept)."""

from __future__ import annotations

from textual.widgets import DataTable

from tui.layout import Cell, Column, Row


class KeyedTable(DataTable):
    """Rows are keyed by id; `show()` diffs against what is on screen."""

    DEFAULT_CSS = "KeyedTable { scrollbar-size-vertical: 1; }"

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._layout: list[Column] = []
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}

    def set_layout(self, columns: list[Column]) -> bool:
        """Replace the columns when they changed; returns True when the table was reset."""
        if columns == self._layout:
            return False
        self.clear(columns=True)
        for col in columns:
            self.add_column(col.label, key=col.key, width=col.width)
        self._layout, self._keys, self._cells = list(columns), [], {}
        return True

    @property
    def selected_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    def show(self, rows: list[Row]) -> None:
        """Bring the table to `rows`: cell updates when the key order is unchanged, else a rebuild."""
        keys = [k for k, _ in rows]
        if keys != self._keys:
            self._rebuild(rows)
            return
        for key, cells in rows:
            kept = []
            for col, new, was in zip(self._layout, cells, self._cells[key]):
                if new != was:
                    self.update_cell(key, col.key, new)
                kept.append(new if new != was else was)
            # Remember exactly the objects the table holds (push_front sorts by identity).
            self._cells[key] = tuple(kept)

    def push_front(self, rows: list[Row], limit: int) -> None:
        """A newest-first log: put `rows` (newest first) above the others, keep at most `limit`.

        Cheaper than a rebuild when events stream in: only the new rows are added, the oldest are
        dropped, and one sort puts them in place (the first cell of every row must be its own object).
        """
        rows = [r for r in rows if r[0] not in self._cells]
        if not rows:
            return
        for key, cells in rows:
            self.add_row(*cells, key=key)
            self._cells[key] = cells
        keys = [k for k, _ in rows] + self._keys
        for key in keys[limit:]:
            self.remove_row(key)
            del self._cells[key]
        self._keys = keys[:limit]
        position = {id(self._cells[k][0]): i for i, k in enumerate(self._keys)}
        self.sort(self._layout[0].key, key=lambda cell: position[id(cell)])

    def _rebuild(self, rows: list[Row]) -> None:
        # Keep the cursor on the same row (by key) across the rebuild.
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._keys = [k for k, _ in rows]
        self._cells = dict(rows)
        if selected in self._cells:
            self.move_cursor(row=self._keys.index(selected), animate=False)
