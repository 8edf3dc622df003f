"""The dashboard over a fleet larger than the overview's first page: it fetches the rest of each
list from the paged routes, so every row an operator scrolls to is there."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from tests.tui_support import ADMIN_TOKEN, FixtureState, ThreadServer, fixture_app, sample_overview, wait_for
from tui.app import Dashboard
from tui.client import FIRST_PAGE, PAGE, ApiClient
from tui.widgets.keyed_table import KeyedTable

EXTRA = FIRST_PAGE + PAGE + 50  # services past the first page: two more pages


def big_fleet() -> dict:
    overview = sample_overview()
    extra = [overview["services"][0] | {"id": f"00000000-0000-0000-0001-{n:012d}", "name": f"zz-svc-{n:05d}"}
             for n in range(EXTRA)]
    return overview | {"services": overview["services"] + extra}


@pytest.fixture
def state() -> FixtureState:
    return FixtureState(overview=big_fleet())


@pytest.fixture
def server(state: FixtureState) -> AsyncIterator[ThreadServer]:
    srv = ThreadServer(lambda: fixture_app(state)).start()
    yield srv
    srv.close()


async def test_the_client_completes_each_list_from_its_pages(server: ThreadServer, state: FixtureState) -> None:
    client = ApiClient(server.url, ADMIN_TOKEN)
    try:
        snapshot = await client.overview()
    finally:
        await client.close()
    want = len(state.overview["services"])
    assert [s.id for s in snapshot.services] == [s["id"] for s in state.overview["services"]]
    assert snapshot.services_total == want and len(snapshot.campaigns) == len(state.overview["campaigns"])
    # Only the list that overflowed its first page was paged, one request per PAGE items.
    assert [r for r in state.reads if r.startswith("/monitor/")] == [
        f"/monitor/services?limit={PAGE}&offset={FIRST_PAGE}", f"/monitor/services?limit={PAGE}&offset={FIRST_PAGE + PAGE}"]


async def test_the_services_table_holds_every_service_of_a_fleet_past_the_first_page(
        server: ThreadServer, state: FixtureState) -> None:
    app = Dashboard(ApiClient(server.url, ADMIN_TOKEN), clock=lambda: 0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one("#services-table", KeyedTable)
        await wait_for(pilot, lambda: table.row_count > 0)
        assert table.row_count == len(state.overview["services"])
        # The last one, far past the first page, is there to scroll to.
        table.move_cursor(row=table.row_count - 1)
        await pilot.pause()
        assert f"zz-svc-{EXTRA - 1:05d}" in str(table.get_row_at(table.cursor_row))
