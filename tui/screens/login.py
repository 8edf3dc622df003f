"""The login screen: username and password, checked against the API; retries while the API is down."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from tui.client import ApiClient, ApiError, Unreachable
from tui.models import Me

RETRY_MAX = 5.0  # seconds between attempts while the API cannot be reached


class LoginScreen(Screen[Me]):
    """Dismisses with the logged-in account once the API accepts the credentials.

    With a username and a password given up front (--password, EDM_PASSWORD) it logs in by
    itself, and keeps trying while the API is unreachable rather than dropping the password.
    """

    def __init__(self, client: ApiClient, username: str = "", error: str = "", password: str = "",
                 auto: bool = False) -> None:
        super().__init__()
        self.client = client
        self.username, self.password = username, password
        self.first_error = error
        self.auto = auto and bool(username and password)
        self.attempts = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="login-box"):
            yield Static(f"EDM dashboard — log in to {self.client.base_url}", id="login-title")
            yield Input(value=self.username, placeholder="username", id="login-username")
            yield Input(value=self.password, placeholder="password", password=True, id="login-password")
            yield Button("Log in", variant="primary", id="login-submit")
            yield Static(self.first_error, id="login-error")

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = False  # steady cursor: less traffic over SSH, stable screenshots
        target = "#login-password" if self.username else "#login-username"
        self.query_one(target, Input).focus()
        if self.auto:
            self.submit()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "login-username":
            self.query_one("#login-password", Input).focus()
        else:
            self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.submit()

    def say(self, text: str) -> None:
        self.query_one("#login-error", Static).update(text)

    def submit(self) -> None:
        username = self.query_one("#login-username", Input).value.strip()
        password = self.query_one("#login-password", Input).value
        if not username or not password:
            self.say("enter a username and a password")
            return
        self.say("logging in…")
        self.attempt(username, password)

    @work(exclusive=True, group="login")
    async def attempt(self, username: str, password: str) -> None:
        failures = 0
        while True:
            try:
                await self.client.login(username, password)
                me = await self.client.me()
            except ApiError as exc:
                self.say(f"{exc.code}: {exc.message}")
                self.query_one("#login-password", Input).value = ""
                return
            except Unreachable as exc:
                # The API may still be starting (make demo, a restart): keep the credentials, retry.
                failures += 1
                self.attempts = failures
                delay = min(RETRY_MAX, 0.5 * 2 ** min(failures, 4))
                self.say(f"cannot reach the API: {exc} — retrying in {delay:.0f}s (attempt {failures})")
                await asyncio.sleep(delay)
                continue
            self.dismiss(me)
            return
