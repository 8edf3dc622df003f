"""The users table (admins): quota left, running campaigns, share of recent sends."""

from __future__ import annotations

from rich.text import Text

from tui.format import bar, clip, count, percent
from tui.layout import Column, Row, Spec, Widths, fit
from tui.models import Overview, UserView
from tui.table_view import SortKeys


def user_columns(width: int) -> list[Column]:
    return fit([Spec("username", "User", 16, 2, 40), Spec("quota", "Quota left", 10),
                Spec("running", "Running", 7), Spec("share", "Share of recent sends", 21, 1, 50)], width)


def user_row(u: UserView, w: Widths) -> Row:
    share = bar(u.share_recent, w["share"] - 6, "cyan") + Text(" " + percent(u.share_recent))
    quota = Text(count(u.quota_remaining).rjust(10), style="red" if u.quota_remaining == 0 else "")
    return u.id, (clip(u.username, w["username"]), quota, str(u.running_campaigns).rjust(7), share)


def user_rows(o: Overview, users: list[UserView], w: Widths) -> list[Row]:
    return [user_row(u, w) for u in users]


USER_SORT: SortKeys = {"username": lambda u: u.username, "quota": lambda u: u.quota_remaining,
                       "running": lambda u: u.running_campaigns, "share": lambda u: u.share_recent}


def user_texts(u: UserView) -> list[str]:
    return [u.username]


def user_detail(u: UserView | None, o: Overview | None) -> Text:
    if u is None or o is None:
        return Text("no user selected", style="grey50")
    mine = [c for c in o.campaigns if c.owner_id == u.id]
    active = sum(1 for c in mine if c.status in ("running", "paused"))
    return Text.assemble((u.username, "bold"), f" · quota {u.quota_remaining} · {len(mine)} campaigns, ",
                         f"{active} running or paused · {percent(u.share_recent).strip()} of recent sends")
