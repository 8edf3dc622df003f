"""Pure parts of the dashboard: formatting, panel rows, the SSE parser, the status line, the CLI."""

from __future__ import annotations

import argparse

import msgspec
import pytest

from tests.tui_support import sample_events, sample_overview
from tui.cli import register
from tui.client import SseParser
from tui.format import bar, count, duration, local_time, rate, sparkline
from tui.models import LiveEvent, Me, Overview
from tui.panels.campaigns import campaign_columns, campaign_detail, campaign_rows
from tui.panels.events import event_rows
from tui.panels.services import service_columns, service_rows, service_state
from tui.panels.users import user_columns, user_rows
from tui.layout import widths
from tui.widgets.status import status_line

OVERVIEW = msgspec.convert(sample_overview(), Overview)
ROOT = Me(id="a0", username="root", role="admin")


def plain(cell: object) -> str:
    return getattr(cell, "plain", cell)  # type: ignore[return-value]


@pytest.mark.parametrize("n,text", [(0, "0"), (9999, "9999"), (10_000, "10k"), (999_999, "999k"),
                                    (1_250_000, "1.2M"), (12_000_000, "12M")])
def test_counts_fit_four_characters(n: int, text: str) -> None:
    assert count(n) == text and len(text) <= 4


@pytest.mark.parametrize("seconds,text", [(None, "—"), (-1, "—"), (0, "0s"), (59.4, "59s"), (61, "1m01s"),
                                          (866, "14m"), (3900, "1h05m"), (90_000, "1d1h")])
def test_durations(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_bar_and_sparkline_shapes() -> None:
    assert bar(0.5, 6).plain == "███░░░"
    assert bar(1.7, 4).plain == "████" and bar(-1, 4).plain == "░░░░"
    assert bar(0.0625, 2).plain == "▏░"
    assert sparkline([0, 1, 2, 4, 8]).plain == "▁▂▃▅█     "
    assert sparkline([]).plain == " " * 10 and sparkline([0, 0]).plain == "▁▁        "
    assert sparkline(list(range(20))).plain == "▅▅▅▆▆▇▇▇██"  # only the last ten count
    assert sparkline([1, 1000]).plain.startswith("▂")
    assert rate(0) == "—" and rate(2.5) == "2.5/m" and rate(380) == "380/m"


def test_times_are_shown_in_the_business_zone() -> None:
    assert local_time("2026-11-24T00:00:00Z", "Asia/Shanghai") == "08:00"
    assert local_time("2026-11-24T00:00:00+00:00", "Nowhere/Else") == "00:00"  # unknown zone: UTC
    assert local_time(None, "UTC") == "—" and local_time("garbage", "UTC") == "—"


def test_service_states_and_countdown() -> None:
    s = {x.name: x for x in OVERVIEW.services}
    tz = OVERVIEW.business_tz
    assert plain(service_state(s["slow-lane"], tz)) == "interval 3.2s"
    assert plain(service_state(s["slow-lane"], tz, elapsed=3.0)) == "interval 0.2s"
    assert plain(service_state(s["slow-lane"], tz, elapsed=3.3)) == "ready"
    assert plain(service_state(s["big-pipe"], tz, elapsed=20)) == "throttled"
    assert plain(service_state(s["tiny-quota"], tz)) == "exhausted until 08:00"
    disabled_but_frozen = msgspec.structs.replace(s["flaky"], enabled=False)
    assert plain(service_state(disabled_but_frozen, tz)) == "disabled"


@pytest.mark.parametrize("width", [80, 99, 100, 118, 160, 220])
def test_rows_fit_their_columns_at_every_width(width: int) -> None:
    """Every cell fits its column and the columns fill the terminal without running off it."""
    for columns, rows in ((service_columns(width), service_rows(OVERVIEW, OVERVIEW.services, widths(service_columns(width)))),
                          (campaign_columns(width), campaign_rows(OVERVIEW, OVERVIEW.campaigns,
                                                                  widths(campaign_columns(width)))),
                          (user_columns(width), user_rows(OVERVIEW, OVERVIEW.users, widths(user_columns(width))))):
        assert sum(c.width + 2 for c in columns) + 1 <= width
        for _, cells in rows:
            assert len(cells) == len(columns)
            for col, cell in zip(columns, cells):
                assert len(plain(cell)) <= col.width, (col, plain(cell))
    keys = [c.key for c in campaign_columns(width)]
    assert "rate" in keys and "eta" in keys  # from 80 columns up


def test_names_grow_with_the_terminal() -> None:
    name = {w: widths(campaign_columns(w))["name"] for w in (80, 120, 200)}
    assert name[80] < name[120] < name[200] and name[200] > 20
    assert widths(service_columns(200))["name"] > 20


def test_users_see_no_owner_column() -> None:
    columns = campaign_columns(80, show_owner=False)
    rows = campaign_rows(OVERVIEW, OVERVIEW.campaigns, widths(columns))
    assert "owner" not in [c.key for c in columns] and all(len(r[1]) == len(columns) for r in rows)


def test_campaign_detail_explains_a_pause() -> None:
    paused = OVERVIEW.campaigns[1]
    text = campaign_detail(paused, OVERVIEW.business_tz).plain
    assert "paused: SERVICE_QUOTA_EXHAUSTED — every service mapped to bob" in text
    assert "scheduled for 2026-11-23 13:01 Asia/Shanghai" in campaign_detail(OVERVIEW.campaigns[2], "Asia/Shanghai").plain
    assert campaign_detail(None, "UTC").plain == "no campaign selected"


def test_user_rows() -> None:
    rows = user_rows(OVERVIEW, OVERVIEW.users, widths(user_columns(80)))
    assert [plain(r[1][0]) for r in rows] == ["alice", "bob", "carol"]
    assert plain(rows[0][1][3]).endswith(" 72%")


def test_event_rows_newest_first_with_filter() -> None:
    events = [msgspec.convert(e, LiveEvent) for e in sample_events()]
    rows = event_rows(events, "", "Asia/Shanghai")
    assert [plain(r[1][1]) for r in rows][:2] == ["campaign.progress", "service.quota_used"]
    assert [plain(r[1][1]) for r in event_rows(events, "", "UTC", chatty=False)] == [
        "campaign.paused", "service.frozen", "campaign.started"]
    assert [r[0] for r in event_rows(events, "FROZEN", "UTC")] == ["1763874000000-3"]
    assert [plain(r[1][2]) for r in event_rows(events, "black friday", "UTC")] == [
        "Black Friday 10k: 4500/10000 sent", "Black Friday 10k started (10000 recipients)"]
    assert len(event_rows(events, "", "UTC", limit=2)) == 2


def test_sse_parser_fields_comments_and_multiline_data() -> None:
    p = SseParser()
    lines = [": ping", "retry: 3000", "", "id: 5-0", "event: service.frozen",
             'data: {"kind": "service.frozen", "at": "2026-11-23T04:00:00Z",', 'data: "message": "x"}', ""]
    got = [e for e in (p.feed(line) for line in lines) if e is not None]
    assert len(got) == 1 and (got[0].id, got[0].kind, got[0].message) == ("5-0", "service.frozen", "x")
    # Not JSON: kept as a message rather than dropped.
    got = [p.feed("event: alert"), p.feed("data: plain text"), p.feed("")]
    assert got[2] is not None and (got[2].kind, got[2].message, got[2].id) == ("alert", "plain text", "5-0")


def test_status_line_states() -> None:
    assert "● live  13:00:00 root │ ready 1/6 frozen 1 exh 1 │ run 2 │ 436/min │ pend 6188" in \
        status_line("live", ROOT, OVERVIEW, "http://x").plain
    assert status_line("reconnecting", ROOT, OVERVIEW, "http://x").plain.startswith(" ⟳ reconnecting… ")
    alice = Me(id=OVERVIEW.users[0].id, username="alice", role="user", quota_remaining=1)
    assert "alice quota 4200 │" in status_line("live", alice, OVERVIEW, "http://x").plain
    assert status_line("connecting", None, None, "http://api:8080").plain.endswith("http://api:8080")


def test_api_address_with_or_without_the_prefix() -> None:
    from tui.client import ApiClient

    assert ApiClient("http://h:8080/api/v1/").base_url == "http://h:8080"
    assert ApiClient("http://h:8080/")._url("/me") == "http://h:8080/api/v1/me"


def test_cli_registers_tui(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDM_API", "http://edm.internal:8080")
    parser = argparse.ArgumentParser(prog="edm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tui", "--username", "root"])
    assert (args.api, args.username, args.interval) == ("http://edm.internal:8080", "root", 1.0)
    assert args.fn.__name__ == "run"
    assert parser.parse_args(["tui", "--api", "http://h:1"]).api == "http://h:1"
