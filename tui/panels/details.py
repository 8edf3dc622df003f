"""The drill-down screens' content as pure functions of the snapshot item and what was fetched."""

from __future__ import annotations

from typing import Iterable

from rich.console import Group, RenderableType
from rich.text import Text

from tui.capacity import Capacity, campaign_eta
from tui.feedback_models import Funnel, Reputation
from tui.format import bar, clip, column_chart, count, local_time, percent, rate
from tui.models import (CampaignEventRow, CampaignView, Page, QuotaEntryRow, ServiceInfo, ServiceView, StatusEntryRow,
                        SubtaskRow, UserServices, UserView)
from tui.panels.feedback import funnel_lines, reputation_lines, suppression_line, warmup_line
from tui.panels.campaigns import campaign_status, done_fraction, eta_text, progress_cell
from tui.panels.services import service_state, used_fraction

PAUSE_KINDS = ("campaign.paused", "campaign.resumed", "paused", "resumed")


def section(title: str, *lines: RenderableType) -> Group:
    return Group(Text(""), Text(title, style="bold underline"), *lines)


def missing(error: str | None, what: str) -> Text:
    return Text(error or f"loading {what}…", style="red" if error else "grey50")


def log_lines(rows: Iterable[tuple[str, str, str]], tz: str, limit: int = 15) -> list[Text]:
    lines = [Text.assemble((local_time(at, tz, "%m-%d %H:%M:%S"), "grey70"), "  ", (kind, "bold"), "  ", message)
             for at, kind, message in list(rows)[:limit]]
    return lines or [Text("none", style="grey50")]


# --- campaign -------------------------------------------------------------------------------

def campaign_title(c: CampaignView | None, ident: str) -> Text:
    return Text.assemble(" Campaign ", (c.name if c else ident, "bold"), "  (Esc: back)")


def campaign_live(c: CampaignView | None, tz: str, cap: Capacity | None, rates: list[int]) -> RenderableType:
    if c is None:
        return Text("this campaign is no longer in the overview", style="grey50")
    eta = campaign_eta(c, cap)
    head = Text.assemble(campaign_status(c, tz), f"  owner {c.owner}  ", progress_cell(c, 35),
                         f"  {c.sent} sent · {c.failed} failed · {c.pending} pending · {c.cancelled} cancelled",
                         f" of {c.total}")
    pace = Text.assemble("rate ", (rate(c.rate_per_minute), "bold"), "  ETA ", eta_text(eta, tz, 40))
    if c.pause_reason:
        pace.append(f"  paused: {c.pause_reason}" + (f" — {c.pause_message}" if c.pause_message else ""),
                    style="yellow")
    chart = column_chart(rates[-30:], 4) if any(rates) else [Text("no sends seen yet", style="grey50")]
    return Group(head, pace, section("Rate over time (sends/min, one column per minute seen)", *chart))


def campaign_body(funnel: Funnel | None, events: Page[CampaignEventRow] | None, failures: Page[SubtaskRow] | None,
                  errors: dict[str, str], tz: str) -> RenderableType:
    ev = events.items if events else []
    pauses = [(e.created_at, e.kind, e.message) for e in ev if e.kind.endswith(PAUSE_KINDS)]
    fail_lines = [Text.assemble((clip(f.email, 32).ljust(32), "bold"), "  ", (f.error or "—", "red"))
                  for f in (failures.items if failures else [])] or [Text("none", style="grey50")]
    return Group(
        section("Delivery funnel (unique recipients; rates are shares of sent)",
                *(funnel_lines(funnel) if funnel else [missing(errors.get("funnel"), "funnel")])),
        section("Pause history", *(log_lines(pauses, tz) if events else [missing(errors.get("events"), "events")])),
        section(f"Recent failures ({failures.total if failures else '…'})",
                *(fail_lines if failures else [missing(errors.get("failures"), "failures")])),
        section("Event log", *(log_lines(((e.created_at, e.kind, e.message) for e in ev), tz) if events
                               else [missing(errors.get("events"), "events")])),
    )


# --- service --------------------------------------------------------------------------------

def service_title(s: ServiceView | None, ident: str) -> Text:
    return Text.assemble(" Service ", (s.name if s else ident, "bold"), "  (Esc: back)")


def minute_axis(n: int) -> Text:
    """Labels under a per-minute chart whose columns are 3 cells wide, newest on the right."""
    cells = [f"-{n - 1 - i}m" if (n - 1 - i) % 3 == 0 and i < n - 1 else "" for i in range(n)]
    cells[-1] = "now"
    return Text("      " + "".join(c.ljust(3) for c in cells), style="grey50")


def service_live(s: ServiceView | None, tz: str, elapsed: float) -> RenderableType:
    if s is None:
        return Text("this service is no longer in the overview", style="grey50")
    state = Text.assemble("state ", service_state(s, tz, elapsed), f"  every {s.send_interval}s",
                          f"  consecutive failures ", (str(s.consecutive_failures),
                                                       "bold red" if s.consecutive_failures else ""))
    if s.abnormal_reason:
        state.append(f"\nabnormal: {s.abnormal_reason}", style="red")
    fraction = used_fraction(s)
    quota = Text.assemble(f"quota {count(s.used_today)} used of {count(s.daily_quota)} ",
                          bar(fraction, 30, "red" if fraction >= 0.95 else "green"), f" {percent(fraction)}",
                          f"  {s.remaining_today} left · next reset {local_time(s.next_reset_at, tz, '%m-%d %H:%M')}"
                          f" {tz}")
    values = s.sends_per_minute
    numbers = Text("      " + "".join(count(v).rjust(3) for v in values), style="bold")
    chart = section("Sends per minute", *column_chart(values, 5), minute_axis(len(values)), numbers)
    return Group(state, quota, chart)


def service_body(s: ServiceView | None, info: ServiceInfo | None, reputation: Reputation | None,
                 log: Page[StatusEntryRow] | None, users: list[str], errors: dict[str, str],
                 tz: str) -> RenderableType:
    if info is not None:
        creds = " ".join(f"{k}={v}" for k, v in info.credentials.items())
        conf = Text.assemble(f"{info.provider} · domain {info.domain} · {info.base_url or 'default endpoint'}",
                             f"\ncredentials {creds or '—'}",
                             f"\nlast request {local_time(info.last_request_at, tz, '%m-%d %H:%M:%S')}")
        ramp = warmup_line(info)
        if ramp is not None:
            conf = Text.assemble(conf, "\n", ramp)
        thaw = unfreeze_line(info, tz)
        if thaw is not None:
            conf = Text.assemble(conf, "\n", thaw)
    else:
        conf = missing(errors.get("info"), "configuration")
    mapped = Text(", ".join(users) if users else "none known", style="" if users else "grey50")
    status = log_lines(((e.created_at, e.kind, e.message) for e in log.items), tz) if log else [
        missing(errors.get("log"), "status log")]
    rep = reputation_lines(reputation, s) if reputation else [missing(errors.get("reputation"), "reputation")]
    return Group(section("Configuration", conf), section("Reputation (bounces and complaints)", *rep),
                 section("Users mapped (of users with campaigns)", mapped),
                 section("Status log", *status))


def unfreeze_line(info: ServiceInfo, tz: str) -> Text | None:
    """How an engine freeze (failures, reputation guard) of this service ends, when it has a timed
    unfreeze (without one, an administrator unfreezes it, as the state line says)."""
    if info.unfreeze_after is None:
        return None
    line = Text.assemble("an engine freeze lifts itself after ", (_duration(info.unfreeze_after), "bold"),
                         (", if a credentials probe passes" if info.probe_before_unfreeze else ""))
    if info.frozen_until:
        line.append(f" · due {local_time(info.frozen_until, tz, '%m-%d %H:%M:%S')} {tz}", style="yellow")
    return line


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m" if seconds >= 60 \
        else f"{seconds}s"


# --- user -----------------------------------------------------------------------------------

def user_title(u: UserView | None, ident: str) -> Text:
    return Text.assemble(" User ", (u.username if u else ident, "bold"), "  (Esc: back)")


def user_live(u: UserView | None, campaigns: list[CampaignView], tz: str) -> RenderableType:
    if u is None:
        return Text("this user is no longer in the overview", style="grey50")
    head = Text.assemble("quota left ", (count(u.quota_remaining), "bold red" if u.quota_remaining == 0 else "bold"),
                         f"  running {u.running_campaigns}  share of recent sends ",
                         bar(u.share_recent, 20, "cyan"), f" {percent(u.share_recent)}")
    rows = [Text.assemble(clip(c.name, 30).ljust(30), "  ", _padded(campaign_status(c, tz), 18),
                          f"{percent(done_fraction(c))}  {c.sent}/{c.total}  {rate(c.rate_per_minute)}")
            for c in campaigns] or [Text("none", style="grey50")]
    return Group(head, section(f"Campaigns ({len(campaigns)})", *rows))


def _padded(text: Text, width: int) -> Text:
    return text + Text(" " * max(1, width - len(text.plain)))


def user_body(services: UserServices | None, ledger: Page[QuotaEntryRow] | None, suppressed: int | None,
              errors: dict[str, str], tz: str) -> RenderableType:
    names = Text(", ".join(s.name for s in services.services) or "none mapped",
                 style="" if services and services.services else "yellow") if services else missing(
        errors.get("services"), "services")
    if ledger is not None:
        lines = [Text.assemble((local_time(e.created_at, tz, "%m-%d %H:%M"), "grey70"), "  ",
                               (f"{e.delta:+d}".rjust(8), "green" if e.delta > 0 else "red"),
                               f"  → {e.balance_after:<8} ", (e.kind, "bold"), f"  {e.reason}")
                 for e in ledger.items[:20]] or [Text("no entries", style="grey50")]
    else:
        lines = [missing(errors.get("ledger"), "quota ledger")]
    supp = suppression_line(suppressed) if suppressed is not None else missing(errors.get("suppressed"),
                                                                                 "suppression list size")
    return Group(section("Services", names), section("Suppression list", supp), section("Quota ledger (newest first)", *lines))
