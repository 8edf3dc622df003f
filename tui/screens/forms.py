"""Admin forms: adjust a user's quota, map services to a user, set a service's remaining-today.

The API is the validator: its messages (which name the field) are shown in the form, which stays
open until the API accepts the change.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, SelectionList, Static

from tui.client import ApiClient, ApiError, Unreachable
from tui.models import ServiceView, UserView


class FormScreen(ModalScreen[str | None]):
    """Dismisses with a line saying what was done, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, client: ApiClient, title: str) -> None:
        super().__init__(classes="form-screen")
        self.client, self.heading = client, title

    def compose(self) -> ComposeResult:
        with Vertical(id="form-box"):
            yield Static(self.heading, id="form-title")
            yield from self.fields()
            yield Static("", id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button("Save", variant="primary", id="form-save")
                yield Button("Cancel", id="form-cancel")

    def fields(self) -> list[Widget]:
        raise NotImplementedError

    def request(self) -> tuple[Callable[[], Awaitable[None]], str] | str:
        """The call to make and the line to report, or a message when the input is not even a request."""
        raise NotImplementedError

    def on_mount(self) -> None:
        for field in self.query(Input):
            field.cursor_blink = False
        self.query(Input).first().focus() if self.query(Input) else self.query_one(SelectionList).focus()

    def show_error(self, text: str) -> None:
        self.query_one("#form-error", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "form-save":
            self.submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        at = inputs.index(event.input)
        if at + 1 < len(inputs):
            inputs[at + 1].focus()
        else:
            self.submit()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def submit(self) -> None:
        made = self.request()
        if isinstance(made, str):
            self.show_error(made)
            return
        self.show_error("saving…")
        self.save(*made)

    @work(exclusive=True, group="form")
    async def save(self, call: Callable[[], Awaitable[None]], done: str) -> None:
        try:
            await call()
        except ApiError as exc:
            self.show_error(f"{exc.code}: {exc.message}")
            return
        except Unreachable as exc:
            self.show_error(f"the API is unreachable: {exc}")
            return
        self.dismiss(done)

    def value(self, ident: str) -> str:
        return self.query_one(f"#{ident}", Input).value.strip()


def whole_number(text: str, name: str) -> int | str:
    try:
        return int(text.replace(",", "").replace("_", ""))
    except ValueError:
        return f"{name} must be a whole number" + (" (e.g. 500 or -200)" if name == "delta" else "")


class QuotaForm(FormScreen):
    """POST /users/{id}/quota {delta, reason}."""

    def __init__(self, client: ApiClient, user: UserView) -> None:
        super().__init__(client, f"Adjust the quota of [b]{user.username}[/b] (now {user.quota_remaining})")
        self.user = user

    def fields(self) -> list[Widget]:
        return [Input(placeholder="delta, e.g. 5000 or -200", id="form-delta"),
                Input(placeholder="reason (kept in the ledger)", id="form-reason")]

    def request(self) -> tuple[Callable[[], Awaitable[None]], str] | str:
        delta = whole_number(self.value("form-delta"), "delta")
        if isinstance(delta, str):
            return delta
        reason = self.value("form-reason")
        return (lambda: self.client.adjust_quota(self.user.id, delta, reason),
                f"Quota of {self.user.username} {delta:+d}")


class RemainingForm(FormScreen):
    """PUT /services/{id}/remaining {remaining, reason}."""

    def __init__(self, client: ApiClient, service: ServiceView) -> None:
        super().__init__(client, f"Set what [b]{service.name}[/b] may still send today "
                                 f"(now {service.remaining_today} of {service.daily_quota})")
        self.service = service

    def fields(self) -> list[Widget]:
        return [Input(value=str(self.service.remaining_today), id="form-remaining"),
                Input(placeholder="reason (kept in the status log)", id="form-reason")]

    def request(self) -> tuple[Callable[[], Awaitable[None]], str] | str:
        remaining = whole_number(self.value("form-remaining"), "remaining")
        if isinstance(remaining, str):
            return remaining
        reason = self.value("form-reason")
        return (lambda: self.client.set_remaining(self.service.id, remaining, reason),
                f"{self.service.name}: {remaining} left today")


class MappingForm(FormScreen):
    """PUT /users/{id}/services {service_ids}: the user's whole set, replaced in one call."""

    def __init__(self, client: ApiClient, user: UserView, services: list[ServiceView], current: frozenset[str]):
        super().__init__(client, f"Services [b]{user.username}[/b] may send through (space toggles)")
        self.user, self.services, self.current = user, services, current

    def fields(self) -> list[Widget]:
        return [SelectionList[str](*((s.name, s.id, s.id in self.current) for s in self.services),
                                   id="form-services")]

    def request(self) -> tuple[Callable[[], Awaitable[None]], str] | str:
        chosen = list(self.query_one(SelectionList).selected)
        return (lambda: self.client.map_services(self.user.id, chosen),
                f"{self.user.username} now sends through {len(chosen)} service(s)")
