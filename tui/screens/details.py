"""Enter on a row: the campaign, service and user detail screens (Esc goes back)."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from textual.binding import Binding

from tui.models import CampaignView, ServiceView, UserView
from tui.panels.details import (campaign_body, campaign_live, campaign_title, service_body, service_live,
                                service_title, user_body, user_live, user_title)
from tui.screens.detail import DetailScreen


class CampaignDetail(DetailScreen):
    """Progress, rate over time, delivery funnel, pause history, recent failures and the event log of one campaign."""

    BINDINGS = [Binding("p", "act('pause')", "Pause"), Binding("r", "act('resume')", "Resume"),
                Binding("c", "act('cancel')", "Cancel")]

    def item(self) -> CampaignView | None:
        snap = self.dash.snapshot
        return next((c for c in snap.campaigns if c.id == self.ident), None) if snap else None

    def parts(self) -> dict[str, Any]:
        client = self.dash.client
        return {"funnel": client.funnel(self.ident), "events": client.campaign_events(self.ident),
                "failures": client.failed_subtasks(self.ident)}

    def heading(self) -> RenderableType:
        return campaign_title(self.item(), self.ident)

    def live(self) -> RenderableType:
        c = self.item()
        caps = self.dash.campaigns.capacities()
        return campaign_live(c, self.dash.tz, caps.get(c.owner_id) if c else None, self.dash.rates_of(self.ident))

    def body(self) -> RenderableType:
        return campaign_body(self.fetched.get("funnel"), self.fetched.get("events"), self.fetched.get("failures"), self.errors, self.dash.tz)

    def action_act(self, verb: str) -> None:
        self.dash.campaign_verb(self.item(), verb)  # type: ignore[arg-type]


class ServiceDetail(DetailScreen):
    """State, countdown, quota and the next reset, a sends/min chart, configuration and warm-up day,
    reputation, status log, users."""

    BINDINGS = [Binding("u", "act('unfreeze')", "Unfreeze"), Binding("e", "toggle_enabled", "On/off"),
                Binding("z", "act('reset-now')", "Reset quota"), Binding("equals_sign", "remaining", "Set left")]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action in ("back",) or self.dash.is_admin

    def item(self) -> ServiceView | None:
        snap = self.dash.snapshot
        return next((s for s in snap.services if s.id == self.ident), None) if snap else None

    def parts(self) -> dict[str, Any]:
        client = self.dash.client
        if not self.dash.is_admin:
            return {}
        return {"info": client.service(self.ident), "reputation": client.reputation(self.ident),
                "log": client.status_log(self.ident)}

    def heading(self) -> RenderableType:
        return service_title(self.item(), self.ident)

    def live(self) -> RenderableType:
        return service_live(self.item(), self.dash.tz, self.dash.elapsed())

    def body(self) -> RenderableType:
        if not self.dash.is_admin:
            return ""
        return service_body(self.item(), self.fetched.get("info"), self.fetched.get("reputation"),
                            self.fetched.get("log"), self.dash.users_of(self.ident), self.errors, self.dash.tz)

    def action_act(self, verb: str) -> None:
        self.dash.service_verb(self.item(), verb)  # type: ignore[arg-type]

    def action_toggle_enabled(self) -> None:
        self.dash.toggle_service(self.item())

    def action_remaining(self) -> None:
        self.dash.remaining_form(self.item())


class UserDetail(DetailScreen):
    """Quota and its ledger, campaigns, mapped services, suppression list size, share of recent sends (admins)."""

    BINDINGS = [Binding("plus", "quota", "Quota ±"), Binding("m", "map", "Services"),
                Binding("P", "pause_all", "Pause all")]

    def item(self) -> UserView | None:
        snap = self.dash.snapshot
        return next((u for u in snap.users if u.id == self.ident), None) if snap else None

    def parts(self) -> dict[str, Any]:
        client = self.dash.client
        return {"services": client.user_services(self.ident), "ledger": client.quota_log(self.ident),
                "suppressed": client.suppression_count(self.ident)}

    def heading(self) -> RenderableType:
        return user_title(self.item(), self.ident)

    def live(self) -> RenderableType:
        snap = self.dash.snapshot
        mine = [c for c in snap.campaigns if c.owner_id == self.ident] if snap else []
        return user_live(self.item(), mine, self.dash.tz)

    def body(self) -> RenderableType:
        return user_body(self.fetched.get("services"), self.fetched.get("ledger"), self.fetched.get("suppressed"),
                         self.errors, self.dash.tz)

    def action_quota(self) -> None:
        self.dash.quota_form(self.item())

    def action_map(self) -> None:
        self.dash.mapping_form(self.item())

    def action_pause_all(self) -> None:
        self.dash.pause_all_of(self.item())
