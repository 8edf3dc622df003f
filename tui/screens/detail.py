"""The base of the drill-down screens: live part from the app's snapshot, the rest fetched in a worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import RenderableType
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.client import ApiError, Unreachable

if TYPE_CHECKING:
    from tui.app import Dashboard

RELOAD_EVERY = 5.0  # seconds between fetches of the logs, counted from the end of the last fetch


class DetailScreen(Screen[None]):
    """Subclasses fetch what the overview lacks (`fetch`) and render both parts (`body`)."""

    BINDINGS = [Binding("escape", "back", "Back"), Binding("backspace", "back", show=False)]
    KIND = ""

    def __init__(self, ident: str) -> None:
        super().__init__(classes="detail-screen")
        self.ident = ident
        self.fetched: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    @property
    def dash(self) -> "Dashboard":
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-live")
            yield Static("loading…", id="detail-fetched")
        yield Footer()

    def on_mount(self) -> None:
        self.redraw()
        self.load()

    def action_back(self) -> None:
        self.dismiss(None)

    # --- data -------------------------------------------------------------------------------

    def parts(self) -> dict[str, Any]:
        """Name → awaitable for each part the overview lacks; each may fail on its own (shown in place)."""
        raise NotImplementedError

    @work(exclusive=True, group="detail")
    async def load(self) -> None:
        for name, call in self.parts().items():
            try:
                self.fetched[name] = await call
                self.errors.pop(name, None)
            except ApiError as exc:
                self.errors[name] = f"{exc.code}: {exc.message}"
            except Unreachable as exc:
                self.errors[name] = f"the API is unreachable: {exc}"
        if self.is_attached:
            self.redraw()
            # The next fetch is scheduled only once this one finished: slow answers never pile up.
            self.set_timer(RELOAD_EVERY, self.load)

    # --- drawing ----------------------------------------------------------------------------

    def heading(self) -> RenderableType:
        raise NotImplementedError

    def live(self) -> RenderableType:
        raise NotImplementedError

    def body(self) -> RenderableType:
        raise NotImplementedError

    def redraw(self) -> None:
        if not self.is_attached:
            return
        self.query_one("#detail-title", Static).update(self.heading())
        self.query_one("#detail-live", Static).update(self.live())
        self.query_one("#detail-fetched", Static).update(self.body())
