"""Deliverability as pure functions of what the API returned: a campaign's funnel, a service's
reputation and warm-up, a user's suppression list size, and the alerts list."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tui.feedback_models import AlertRow, Funnel, Reputation
from tui.format import bar, clip, count, local_time
from tui.models import ServiceInfo, ServiceView

DELIVERY_STYLES = {"delivered": "green", "pending": "yellow", "failed": "red"}


def share(rate: float) -> str:
    """A rate as a percentage with two decimals: bounce and complaint rates live well under 1 %."""
    return f"{rate * 100:6.2f}%"


def funnel_lines(f: Funnel) -> list[Text]:
    """sent → delivered → opened → clicked with bars on one scale (sent), then the losses."""
    steps = [("sent", f.sent, 1.0 if f.sent else 0.0)] + [
        (name, getattr(f, name), f.rates.get(name, 0.0)) for name in ("delivered", "opened", "clicked")]
    lines = [Text.assemble(f"{name:<10}", (count(n).rjust(5), "bold"), " ", bar(rate, 30, "green"), f" {share(rate)}")
             for name, n, rate in steps]
    losses = [("bounced hard", "hard_bounced"), ("bounced soft", "soft_bounced"), ("complained", "complained"),
              ("unsubscribed", "unsubscribed")]
    lines.append(Text("  ·  ".join(f"{label} {getattr(f, key)} ({share(f.rates.get(key, 0.0)).strip()})"
                                   for label, key in losses), style="yellow" if f.hard_bounced or f.complained
                      else "grey70"))
    lines.append(Text(f"of {f.total} recipients: {f.failed} failed, {f.suppressed_at_start} suppressed at start, "
                      f"{f.attempts} attempts", style="grey50"))
    return lines


def reputation_lines(r: Reputation, s: ServiceView | None) -> list[Text]:
    """The guard's window, each rate against its threshold, and whether the guard froze the service."""
    t = r.thresholds

    def rate_line(label: str, n: int, rate: float, limit: float) -> Text:
        over = r.sends >= t.min_sends and rate > limit
        return Text.assemble(f"{label:<18}", (share(rate), "bold red" if over else "bold"),
                             f"  ({n} of {r.sends})  limit {share(limit).strip()}")

    lines = [Text(f"last {r.sends} sends (window {r.window}; the guard acts from {t.min_sends})", style="grey70"),
             rate_line("hard bounce rate", r.hard_bounced, r.hard_bounce_rate, t.hard_bounce_rate),
             rate_line("complaint rate", r.complained, r.complaint_rate, t.complaint_rate)]
    frozen = s is not None and s.state == "frozen" and (s.abnormal_reason or "").startswith("reputation guard")
    lines.append(Text(f"FROZEN by the reputation guard: {s.abnormal_reason}", style="bold red") if frozen and s
                 else Text("not frozen by the reputation guard", style="green"))
    return lines


def warmup_line(info: ServiceInfo) -> Text | None:
    if info.warmup_day is None:
        return None
    return Text.assemble("warm-up ramp ", (f"day {info.warmup_day}", "bold cyan"),
                         f": {count(info.warmup_quota or 0)} allowed today")


def suppression_line(n: int) -> Text:
    return Text.assemble(("suppressed addresses ", ""), (count(n), "bold"))


def alerts_table(alerts: list[AlertRow], tz: str) -> RenderableType:
    """Newest first: when, open or cleared, the rule and its condition, the message, each channel's delivery."""
    if not alerts:
        return Text("no alerts raised", style="grey50")
    table = Table(box=None, padding=(0, 1), expand=True, header_style="bold")
    for name, kw in (("opened", {"no_wrap": True}), ("state", {"no_wrap": True}), ("rule / condition", {}),
                     ("message", {"ratio": 2}), ("channels", {})):
        table.add_column(name, **kw)  # type: ignore[arg-type]
    for a in alerts:
        state = Text("open", style="bold red") if a.cleared_at is None else Text(
            f"cleared {local_time(a.cleared_at, tz, '%H:%M')}", style="green")
        channels = Text("\n".join(f"{clip(d.channel, 14)} {d.state}" + (f" ×{d.attempts}" if d.attempts > 1 else "")
                                  for d in a.deliveries) or "none", style="grey50" if not a.deliveries else "")
        for d in a.deliveries:
            channels.highlight_words([d.state], DELIVERY_STYLES.get(d.state, ""))
        table.add_row(local_time(a.opened_at, tz, "%m-%d %H:%M"), state,
                      Text.assemble((a.rule, "bold"), "\n", (f"{a.kind}: {a.subject}", "grey70")), a.message, channels)
    return Group(table)
