"""`edm quota`: the seed's reset-time tool (list, status, set in HH:MM or HH:MM:SS, reset-now)
against a real database, with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timezone
from pathlib import Path

import pytest

from api.deps import Deps
from edm import quota_tool
from edm.cli import build_parser
from engine.domain.quota_day import parse_reset_time
from engine.infra.clock import FakeClock
from engine.infra.config import Settings
from tests.engine_support import make_service

UTC = timezone.utc


@pytest.fixture
def tool_settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({}, database_url=database_url, redis_url=redis_url, data_dir=str(tmp_path / "tool"))


@pytest.mark.parametrize("text, expected", [("02:00", time(2, 0)), ("02:00:00", time(2, 0)),
                                            ("23:59:00", time(23, 59)), ("00:00:00", time(0, 0))])
def test_reset_time_accepts_both_forms(text: str, expected: time) -> None:
    assert parse_reset_time(text) == expected


@pytest.mark.parametrize("text", ["02:00:30", "24:00:00", "2:00:00", "02:00:", "02:60:00", "02:00:00\n", "", "0200"])
def test_reset_time_rejects_the_rest(text: str) -> None:
    with pytest.raises(ValueError):
        parse_reset_time(text)


def test_the_parser_takes_the_seed_form() -> None:
    args = build_parser().parse_args(["quota", "set", "el-fast-1", "02:00:00"])
    assert (args.name, args.time) == ("el-fast-1", "02:00:00")


async def test_set_with_seconds_stores_the_time_logs_it_and_tells_the_engine(
        deps: Deps, tool_settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.dispatch.command_surface import CHANNEL

    sid = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1",
                             name="el-fast-1", reset_time="02:00")
    before = await deps.pool.fetchval("SELECT quota_day_start FROM services WHERE id = $1", sid)
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await deps.pool.acquire()

    def on_notify(*args: object) -> None:
        heard.put_nowait(str(args[3]))

    await listener.add_listener(CHANNEL, on_notify)
    try:
        # 12:00 Beijing now; 13:00 has not come yet today, so the current quota day keeps its start.
        assert await quota_tool._set(tool_settings, "EL-FAST-1", "13:00:00", clock) == 0
        assert await asyncio.wait_for(heard.get(), 5) == f"service:{sid}"
    finally:
        await listener.remove_listener(CHANNEL, on_notify)
        await deps.pool.release(listener)
    row = await deps.pool.fetchrow("SELECT reset_time, quota_day_start FROM services WHERE id = $1", sid)
    assert row["reset_time"] == time(13, 0) and row["quota_day_start"] == before
    log = await deps.pool.fetchrow("SELECT kind, message, data FROM service_status_log WHERE service_id = $1", sid)
    assert log["kind"] == "updated" and "02:00 -> 13:00" in log["message"]
    assert log["data"] == {"reset_time": "13:00", "previous": "02:00"}
    assert "el-fast-1: resets daily at 13:00 Asia/Shanghai; next reset 2026-11-23 13:00" in capsys.readouterr().out


async def test_set_to_a_time_already_passed_today_never_grants_an_extra_reset(
        deps: Deps, tool_settings: Settings, clock: FakeClock) -> None:
    sid = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1",
                             reset_time="02:00")
    assert await quota_tool._set(tool_settings, (await _name(deps, sid)), "11:30:00", clock) == 0
    # 11:30 Beijing today has passed: that moment opens the current quota day (no reset is due).
    start = await deps.pool.fetchval("SELECT quota_day_start FROM services WHERE id = $1", sid)
    assert start == datetime(2026, 11, 23, 3, 30, tzinfo=UTC)


@pytest.mark.parametrize("text", ["02:00:30", "25:00", "2pm"])
async def test_set_rejects_a_bad_time_and_writes_nothing(
        deps: Deps, tool_settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str], text: str) -> None:
    sid = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1")
    assert await quota_tool._set(tool_settings, await _name(deps, sid), text, clock) == 2
    assert "error:" in capsys.readouterr().err
    assert await deps.pool.fetchval("SELECT reset_time FROM services WHERE id = $1", sid) == time(2, 0)
    assert await deps.pool.fetchval("SELECT count(*) FROM service_status_log") == 0


async def test_set_an_unknown_service(deps: Deps, tool_settings: Settings, clock: FakeClock,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert await quota_tool._set(tool_settings, "nope", "02:00:00", clock) == 1
    assert "no service named 'nope'" in capsys.readouterr().err


async def test_list_and_status_show_state_use_and_a_due_reset(
        deps: Deps, tool_settings: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]) -> None:
    base = "http://127.0.0.1:1"
    a = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url=base, name="a-ready", daily_quota=50)
    b = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url=base, name="b-used", daily_quota=50)
    c = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url=base, name="c-frozen")
    d = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url=base, name="d-off")
    await deps.pool.execute("UPDATE services SET used_today = 50, remaining_today = 0 WHERE id = $1", b)
    await deps.pool.execute("UPDATE services SET abnormal_frozen = true, abnormal_reason = 'test' WHERE id = $1", c)
    await deps.pool.execute("UPDATE services SET enabled = false WHERE id = $1", d)
    # a's quota day opened a day early: the engine missed a reset (it was not running).
    await deps.pool.execute("UPDATE services SET quota_day_start = quota_day_start - interval '1 day' WHERE id = $1", a)

    assert await quota_tool._list(tool_settings, False, clock) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["NAME", "STATE", "USED", "DAILY", "LEFT", "RESET"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert rows["a-ready"][1:6] == ["ready", "0", "50", "50", "02:00"]
    assert rows["b-used"][1:6] == ["exhausted", "50", "50", "0", "02:00"]
    assert rows["c-frozen"][1] == "frozen" and rows["d-off"][1] == "disabled"
    assert lines[-1] == "4 service(s); times in Asia/Shanghai"

    assert await quota_tool._list(tool_settings, True, clock) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("DUE")
    status = {line.split()[0]: line for line in lines[1:-1]}
    assert "yes (engine not running?)" in status["a-ready"]
    assert status["b-used"].endswith("no")


async def test_reset_now_refills_and_logs(deps: Deps, tool_settings: Settings, clock: FakeClock,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    sid = await make_service(deps.pool, deps.box, deps.settings, clock.now(), base_url="http://127.0.0.1:1",
                             name="el-slow", daily_quota=20)
    await deps.pool.execute("UPDATE services SET used_today = 20, remaining_today = 0 WHERE id = $1", sid)
    assert await quota_tool._reset_now(tool_settings, "el-slow", clock) == 0
    row = await deps.pool.fetchrow("SELECT used_today, remaining_today, quota_day_start FROM services WHERE id = $1", sid)
    assert (row["used_today"], row["remaining_today"], row["quota_day_start"]) == (0, 20, clock.now())
    assert await deps.pool.fetchval(
        "SELECT message FROM service_status_log WHERE service_id = $1 AND kind = 'reset'", sid) == "edm quota reset-now"
    assert "el-slow: quota reset now" in capsys.readouterr().out
    assert await quota_tool._reset_now(tool_settings, "ghost", clock) == 1


async def _name(deps: Deps, sid: object) -> str:
    return await deps.pool.fetchval("SELECT name FROM services WHERE id = $1", sid)  # type: ignore[no-any-return]
