"""`?`: every key that works on the screen underneath, with what it does."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

# Keys the widgets bring whose own descriptions say little to an operator.
DESCRIPTIONS = {"select_cursor": "Open the detail screen", "app.command_palette": "Command palette",
                "command_palette": "Command palette"}
HIDDEN = {"app.focus_next", "app.focus_previous", "focus_next", "focus_previous", "screen.copy_text",
          "copy_text", "help_quit", "app.help_quit", "scroll_home", "scroll_end", "page_up", "page_down",
          "cursor_up", "cursor_down", "cursor_left", "cursor_right", "scroll_left", "scroll_right", "page_left",
          "page_right", "scroll_top", "scroll_bottom"}


def key_rows(screen: Screen) -> list[tuple[str, str, bool]]:
    """(key, description, enabled) for every binding active on `screen`, in binding order."""
    rows: list[tuple[str, str, bool]] = []
    seen: set[str] = set()
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if binding.action in HIDDEN or binding.system and binding.action not in DESCRIPTIONS:
            continue
        text = DESCRIPTIONS.get(binding.action, binding.description)
        if not text or text in seen:
            continue
        seen.add(text)
        rows.append((screen.app.get_key_display(binding), text, active.enabled))
    return rows


def key_table(rows: list[tuple[str, str, bool]], columns: int = 1) -> Table:
    """Keys and what they do, in `columns` side-by-side pairs (filled top to bottom)."""
    table = Table.grid(padding=(0, 1))
    for _ in range(columns):
        table.add_column(style="bold cyan", justify="right")
        table.add_column()
    per = -(-len(rows) // columns)
    for i in range(per):
        cells: list[str | Text] = []
        for key, text, enabled in rows[i::per]:
            cells += [key, Text(text + "  ", style="" if enabled else "grey50")]
        table.add_row(*cells)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys of the screen it was opened over; greyed keys do not apply to this row or role."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, over: Screen) -> None:
        super().__init__()
        self.rows = key_rows(over)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("Keys on this screen  (Esc closes; ctrl+p finds any action by name)", style="bold"))
            # Two columns once the list would not fit an 80×24 terminal in one.
            yield Static(key_table(self.rows, 2 if len(self.rows) > 14 else 1), id="help-keys")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
