"""The login screen: username and password, checked against the API."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from tui.client import ApiClient, ApiError, Unreachable
from tui.models import Me


class LoginScreen(Screen[Me]):
    """Dismisses with the logged-in account once the API accepts the credentials."""

    def __init__(self, client: ApiClient, username: str = "", error: str = "") -> None:
        super().__init__()
        self.client = client
        self.username = username
        self.first_error = error

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box"):
            yield Static(f"EDM dashboard — log in to {self.client.base_url}", id="login-title")
            yield Input(value=self.username, placeholder="username", id="login-username")
            yield Input(placeholder="password", password=True, id="login-password")
            yield Button("Log in", variant="primary", id="login-submit")
            yield Static(self.first_error, id="login-error")

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = False  # steady cursor: less traffic over SSH, stable screenshots
        target = "#login-password" if self.username else "#login-username"
        self.query_one(target, Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "login-username":
            self.query_one("#login-password", Input).focus()
        else:
            self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.submit()

    def submit(self) -> None:
        username = self.query_one("#login-username", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        if not username or not password:
            self.query_one("#login-error", Static).update("enter a username and a password")
            return
        self.query_one("#login-error", Static).update("logging in…")
        self.attempt(username, password)

    @work(exclusive=True, group="login")
    async def attempt(self, username: str, password: str) -> None:
        try:
            await self.client.login(username, password)
            me = await self.client.me()
        except ApiError as exc:
            self.query_one("#login-error", Static).update(f"{exc.code}: {exc.message}")
            self.query_one("#login-password", Input).value = ""
            return
        except Unreachable as exc:
            self.query_one("#login-error", Static).update(f"cannot reach the API: {exc}")
            return
        self.dismiss(me)
