"""The operator's actions: one confirm-then-act path for single rows, bulk actions and admin forms."""

from __future__ import annotations

from typing import Callable

from rich.markup import escape
from textual import work

from tui.base import DashboardBase
from tui.client import ApiError, CampaignVerb, ServiceVerb, Unreachable
from tui.models import CampaignView, ServiceView, UserView
from tui.screens.confirm import ConfirmScreen
from tui.screens.forms import MappingForm, QuotaForm, RemainingForm

DONE = {"pause": "Paused", "resume": "Resumed", "cancel": "Cancelled", "unfreeze": "Unfroze",
        "reset-now": "Reset the quota of", "enable": "Enabled", "disable": "Disabled"}
ASK = {"cancel": "Cancel campaign [b]{}[/b]? Its pending mails will not be sent.",
       "reset-now": "Reset today's quota of [b]{}[/b] now?"}
Target = tuple[str, str, str]  # (campaign|service, id, name)


def _ask(verb: str, name: str) -> str | None:
    """The confirmation question for a verb that needs one (names are escaped: they are markup)."""
    return ASK[verb].format(escape(name)) if verb in ASK else None


class Actions(DashboardBase):
    """Mixed into the Dashboard: every change the operator makes goes through `act` or a form."""

    def campaign_verb(self, campaign: CampaignView | None, verb: CampaignVerb) -> None:
        if campaign is None:
            self.notify("no campaign selected", severity="warning")
            return
        self._confirm_then(_ask(verb, campaign.name), [("campaign", campaign.id, campaign.name)], verb)

    def service_verb(self, service: ServiceView | None, verb: ServiceVerb) -> None:
        if service is None:
            self.notify("no service selected", severity="warning")
            return
        self._confirm_then(_ask(verb, service.name), [("service", service.id, service.name)], verb)

    def toggle_service(self, service: ServiceView | None) -> None:
        if service is None:
            self.notify("no service selected", severity="warning")
        elif service.enabled:
            self._confirm_then(f"Disable service [b]{escape(service.name)}[/b]? Nothing will be sent through it.",
                               [("service", service.id, service.name)], "disable")
        else:
            self._confirm_then(None, [("service", service.id, service.name)], "enable")

    # --- bulk -------------------------------------------------------------------------------

    def pause_all_of(self, user: UserView | None) -> None:
        """Pause every running campaign of one user, after one confirmation."""
        if user is None or self.snapshot is None:
            self.notify("no user selected", severity="warning")
            return
        running = [("campaign", c.id, c.name) for c in self.snapshot.campaigns
                   if c.owner_id == user.id and c.status == "running"]
        if not running:
            self.notify(f"{user.username} has no running campaign", severity="warning")
            return
        self._confirm_then(f"Pause all {len(running)} running campaign(s) of [b]{escape(user.username)}[/b]?", running,
                           "pause")

    def unfreeze_many(self, services: list[ServiceView]) -> None:
        """Unfreeze the marked services (or, with none marked, every frozen one) after one confirmation."""
        if not services:
            self.notify("no frozen or marked service", severity="warning")
            return
        names = ", ".join(escape(s.name) for s in services[:5]) + (" …" if len(services) > 5 else "")
        self._confirm_then(f"Unfreeze {len(services)} service(s): [b]{names}[/b]?",
                           [("service", s.id, s.name) for s in services], "unfreeze")

    # --- admin forms ------------------------------------------------------------------------

    def quota_form(self, user: UserView | None) -> None:
        if user is None:
            self.notify("no user selected", severity="warning")
            return
        self.push_screen(QuotaForm(self.client, user), self._form_done)

    def remaining_form(self, service: ServiceView | None) -> None:
        if service is None:
            self.notify("no service selected", severity="warning")
            return
        self.push_screen(RemainingForm(self.client, service), self._form_done)

    @work(group="actions")
    async def mapping_form(self, user: UserView | None) -> None:
        if user is None or self.snapshot is None:
            self.notify("no user selected", severity="warning")
            return
        try:
            current = frozenset((await self.client.user_services(user.id)).service_ids)
        except (ApiError, Unreachable) as exc:
            self.notify(str(exc), title="cannot read the mapping", severity="error")
            return
        self.push_screen(MappingForm(self.client, user, list(self.snapshot.services), current), self._form_done)

    def _form_done(self, done: str | None) -> None:
        if done:
            self.notify(done)
            self.poller.poke()
            self.refresh_mappings()

    # --- the one path to the API ------------------------------------------------------------

    def _confirm_then(self, ask: str | None, targets: list[Target], verb: str) -> None:
        """Run `verb` on every target, after one confirmation when a question is given."""
        run: Callable[[], object] = lambda: self.act(targets, verb)  # noqa: E731
        if ask is None:
            run()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                run()

        self.push_screen(ConfirmScreen(ask), answered)

    @work(group="actions")
    async def act(self, targets: list[Target], verb: str) -> None:
        done, failed = [], []
        for kind, ident, name in targets:
            try:
                if kind == "campaign":
                    await self.client.campaign_action(ident, verb)  # type: ignore[arg-type]
                else:
                    await self.client.service_action(ident, verb)  # type: ignore[arg-type]
            except ApiError as exc:
                failed.append(name)
                self.notify(f"{name}: {exc.message}" if len(targets) > 1 else exc.message, title=exc.code,
                            severity="error")
            except Unreachable as exc:
                self.notify(f"the API is unreachable: {exc}", title="not sent", severity="error")
                return
            else:
                done.append(name)
        if len(done) == 1:
            self.notify(f"{DONE.get(verb, verb)} {done[0]}")
        elif done:
            self.notify(f"{DONE.get(verb, verb)} {len(done)}: {', '.join(done)}")
        self.poller.poke()

    # --- the keys of the main screen ------------------------------------------------------------

    def action_campaign(self, verb: CampaignVerb) -> None:
        self.campaign_verb(self.campaigns.selected(), verb)

    def action_service(self, verb: ServiceVerb) -> None:
        self.service_verb(self.services.selected(), verb)

    def action_toggle_service(self) -> None:
        self.toggle_service(self.services.selected())

    def action_mark(self) -> None:
        self.services.toggle_mark()

    def action_unfreeze_marked(self) -> None:
        marked = [s for s in self.services.shown if s.id in self.services.marked]
        self.unfreeze_many(marked or [s for s in self.services.shown if s.state == "frozen"])

    def action_remaining(self) -> None:
        self.remaining_form(self.services.selected())

    def action_pause_user(self) -> None:
        self.pause_all_of(self.users.selected())

    def action_quota(self) -> None:
        self.quota_form(self.users.selected())

    def action_map_services(self) -> None:
        self.mapping_form(self.users.selected())

    def action_chatty(self) -> None:
        self.events.toggle_chatty()
        self._stream_state(self.stream)
