"""Pure rules behind the dashboard v2: quota-aware ETA, sort and filter, fleet history, charts."""

from __future__ import annotations

import msgspec

from tests.tui_support import ALICE, CAROL, sample_mappings, sample_overview
from tui.capacity import capacity, campaign_eta
from tui.format import column_chart, spark_cell, sparkline
from tui.models import Overview
from tui.panels.campaigns import CAMPAIGN_SORT, campaign_detail, campaign_texts, done_fraction, eta_text, progress_cell
from tui.table_view import TableView, arrange, matches, sort_label
from tui.throughput import merge, series

OVERVIEW = msgspec.convert(sample_overview(), Overview)
BY_NAME = {c.name: c for c in OVERVIEW.campaigns}


def mapped(user_id: str) -> frozenset[str]:
    return frozenset(sample_mappings()[user_id])


def test_eta_waits_for_the_reset_when_pending_exceeds_what_the_services_have_left() -> None:
    spring = BY_NAME["Spring sale"]  # 900 pending, carol's only service has 380 left
    cap = capacity(OVERVIEW.services, mapped(CAROL["id"]))
    assert (cap.remaining, cap.known) == (380, True)
    eta = campaign_eta(spring, cap)
    assert eta.seconds is None and eta.waits_until == "2026-11-24T00:00:00Z"
    assert eta_text(eta, "Asia/Shanghai", 24).plain == "waits for reset at 08:00"
    assert eta_text(eta, "Asia/Shanghai", 11).plain == "reset 08:00"
    assert eta_text(eta, "Asia/Shanghai", 6).plain == "↻08:00"
    assert "waits for reset at 08:00: 900 pending, 380 left today on its services" in campaign_detail(
        spring, "Asia/Shanghai", cap).plain
    # With room to spare the rate decides.
    friday = BY_NAME["Black Friday 10k"]
    assert campaign_eta(friday, capacity(OVERVIEW.services, mapped(ALICE["id"]))).seconds == 866.0


def test_frozen_and_disabled_services_count_for_nothing_today() -> None:
    every = capacity(OVERVIEW.services, None)
    # fast-lane 19188 + slow-lane 380 + big-pipe 500; flaky (frozen), smtp-relay (disabled), tiny-quota (0).
    assert (every.remaining, every.known) == (20068, False)
    assert capacity(OVERVIEW.services, frozenset({"00000000-0000-0000-0000-000000000053"})).remaining == 0


def test_a_cancelled_campaign_is_not_a_full_bar() -> None:
    old = BY_NAME["Old promo"]
    assert done_fraction(old) == 0.4
    cell = progress_cell(old, 12)
    assert cell.plain.endswith(" 40%") and "░" in cell.plain
    assert all("green" not in str(span.style) for span in cell.spans)


def test_sort_cycles_and_header_clicks_flip() -> None:
    view = TableView()
    view.cycle(["name", "rate"])
    assert (view.sort, view.descending) == ("name", False)
    view.cycle(["name", "rate"])
    assert (view.sort, view.descending) == ("name", True)
    view.cycle(["name", "rate"])
    assert (view.sort, view.descending) == ("rate", False)
    view.cycle(["name", "rate"])
    view.cycle(["name", "rate"])
    assert view.sort is None  # back to the API's order
    view.click("pending")
    view.click("pending")
    assert (view.sort, view.descending) == ("pending", True)
    assert sort_label("Pending", "pending", view) == "Pending ▼"


def test_arrange_filters_by_every_word_then_sorts_unknowns_last() -> None:
    view = TableView(sort="eta")
    order = [c.name for c in arrange(OVERVIEW.campaigns, view, CAMPAIGN_SORT, campaign_texts)]
    assert order[:2] == ["Spring sale", "Black Friday 10k"]  # 180 s, 866 s, then the ones without an ETA
    view.needle = "alice running"
    assert [c.name for c in arrange(OVERVIEW.campaigns, view, CAMPAIGN_SORT, campaign_texts)] == ["Black Friday 10k"]
    assert matches(["Newsletter", "bob"], "") and not matches(["Newsletter"], "news x")


def test_fleet_history_fills_an_hour_from_ten_minute_snapshots() -> None:
    first = merge({}, OVERVIEW)
    assert len(first) == 10 and series(first)[-1] == sum(s.sends_per_minute[-1] for s in OVERVIEW.services)
    later = msgspec.structs.replace(OVERVIEW, now="2026-11-23T05:05:00Z")
    both = merge(first, later)
    assert len(both) == 15 and len(series(both)) == 15
    much_later = msgspec.structs.replace(OVERVIEW, now="2026-11-23T07:00:00Z")
    assert len(merge(both, much_later)) == 10  # older than an hour is dropped


def test_sparklines_share_a_scale_and_show_the_figure() -> None:
    assert sparkline([1, 1], 2).plain == "██"  # alone, one send a minute looks like full load
    assert sparkline([1, 1], 2, peak=120).plain == "▂▂"  # against the fleet's busiest, it does not
    assert spark_cell([0, 3, 30], 11, 120).plain == "▁▂▃      30"  # any send shows above the zero line


def test_column_chart_has_an_axis_and_a_block_per_value() -> None:
    lines = [line.plain for line in column_chart([0, 5, 10], 2)]
    assert lines[0].startswith("  10 ┤") and lines[1].startswith("   0 ┤")
    assert lines[0].endswith("      ██ ") and lines[1].endswith("   ██ ██ ")


def test_an_idle_chart_has_no_top_figure() -> None:
    lines = [line.plain for line in column_chart([0, 0], 2)]
    assert lines[0].startswith("     ┤") and lines[1].startswith("   0 ┤")
