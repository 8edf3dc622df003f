"""Retention (`edm archive`): a finished campaign's subtasks leave the hot table while every API
answer about it stays what it was; links in its messages keep working; idempotent, resumable,
and safe while the engine sends another campaign."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from api.deps import Deps
from edm.cli import build_parser
from edm.fake_esp import FakeEspConfig, Knobs
from edm.retention_tool import run_archive
from engine.domain.errors import InvalidState
from engine.infra.config import Settings
from engine.infra.queries import Q
from engine.infra.scaled_clock import ScaledClock
from engine.store.retention import archive_finished
from engine.store.retry import retry_failed
from tests.conftest import Api
from tests.engine_support import (
    check_invariants,
    eventually,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    map_user,
    new_engine,
    running,
    wait_status,
)
from tests.feedback_support import callbacks_done, patch_settings, webhook_service

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)
N = 30


async def _answers(admin: Api, api: Api, campaign: uuid.UUID, user: str, service: uuid.UUID) -> dict[str, Any]:
    """Everything the API says about a campaign's history, its owner's and its service's."""
    return {
        "campaign": await api.ok("GET", f"/campaigns/{campaign}"),
        "progress": await api.ok("GET", f"/campaigns/{campaign}/progress"),
        "funnel": await api.ok("GET", f"/campaigns/{campaign}/funnel"),
        "subtasks": await api.ok("GET", f"/campaigns/{campaign}/subtasks?limit=100"),
        "failed": await api.ok("GET", f"/campaigns/{campaign}/subtasks?status=failed&limit=100"),
        "events": await api.ok("GET", f"/campaigns/{campaign}/events?limit=100"),
        "daily_campaign": await api.ok("GET", f"/reports/daily?scope=campaign&id={campaign}&days=60"),
        "daily_user": await admin.ok("GET", f"/reports/daily?scope=user&id={user}&days=60"),
        "daily_service": await admin.ok("GET", f"/reports/daily?scope=service&id={service}&days=60"),
        "quota_log": await admin.ok("GET", f"/users/{user}/quota-log?limit=100"),
    }


async def _sent(deps: Deps) -> int:
    return int(await deps.pool.fetchval("SELECT count(*) FROM subtasks_all WHERE status = 'sent'"))


async def _minutes_count(deps: Deps, campaign: uuid.UUID, n: int) -> bool:
    return await deps.pool.fetchval("SELECT coalesce(sum(sent + failed), 0) FROM send_minutes WHERE campaign_id = $1",
                                    campaign) == n


async def _hot_and_archived(deps: Deps, campaign: uuid.UUID) -> tuple[int, int]:
    hot = await deps.pool.fetchval("SELECT count(*) FROM subtasks WHERE campaign_id = $1", campaign)
    cold = await deps.pool.fetchval("SELECT count(*) FROM subtasks_archive WHERE campaign_id = $1", campaign)
    return hot, cold


async def test_archiving_moves_the_rows_and_every_answer_stays_the_same(admin: Api, deps: Deps) -> None:
    pool = deps.pool
    clock = ScaledClock(START, factor=50)
    patch_settings(deps, webhook_tolerance=10**9)
    async with fake_esp(FakeEspConfig(seed=7, default=Knobs(error_rate=0.2))) as (esp_url, esp):
        user, api = await admin.new_user(quota=2 * N)
        uid = uuid.UUID(user["id"])
        service, _ = await webhook_service(admin, deps, esp, esp_url, clock, api_user="ret-1",
                                           hard_bounce_rate=0.1, open_rate=0.3, click_rate=0.1)
        await map_user(pool, uid, [service])
        await make_contacts(pool, uid, N)
        done = await make_campaign(pool, uid, planned=N)
        # Another user's campaign on another service sends while the first is archived.
        other, _ = await admin.new_user(quota=N)
        oid = uuid.UUID(other["id"])
        await map_user(pool, oid, [await make_service(pool, deps.box, deps.settings, clock.now(), base_url=esp_url)])
        await make_contacts(pool, oid, N)
        later = await make_campaign(pool, oid, planned=N, scheduled_at=START + timedelta(days=1))
        engine, _ = new_engine(deps.settings, pool, clock, deps.box)
        deps.engine = engine
        async with running(engine):
            await wait_status(pool, done, "completed")
            await callbacks_done(esp, await _sent(deps))  # at least one callback per message sent
            # The rate comes from the per-minute counters, written behind every 2 s: wait for them.
            await eventually(lambda: _minutes_count(deps, done, N), what="the per-minute counters")
            finished_before = clock.now()  # the other campaign, not started yet, finishes after it
            before = await _answers(admin, api, done, user["id"], service)
            assert before["progress"]["sent"] + before["progress"]["failed"] == N
            assert before["progress"]["failed"] > 0 and before["funnel"]["delivered"] > 0
            # Archived in batches of 7 (several) while the other campaign sends.
            await pool.execute("UPDATE campaigns SET scheduled_at = $2 WHERE id = $1", later, clock.now())
            await engine.campaign_saved(later)
            await wait_status(pool, later, "running")
            report = await archive_finished(pool, finished_before, clock.now(), batch=7)
            assert [(c.id, c.subtasks) for c in report.campaigns] == [(done, N)]
            assert await _hot_and_archived(deps, done) == (0, N)
            assert await _answers(admin, api, done, user["id"], service) == before
            await wait_status(pool, later, "completed")
            await callbacks_done(esp, 0)  # none still on its way
            # Idempotent: nothing left to do for the first; the second is too recent.
            again = await archive_finished(pool, clock.now() - timedelta(days=1), clock.now())
            assert again.campaigns == []
            # A link in an archived campaign's message still unsubscribes its recipient.
            sub = await pool.fetchrow("SELECT id, email FROM subtasks_archive WHERE campaign_id = $1 "
                                      "AND status = 'sent' ORDER BY seq LIMIT 1", done)
            link = next(e.headers["List-Unsubscribe"] for e in esp.log.entries()  # type: ignore[index]
                        if e.request_id == str(sub["id"]))
            resp = await admin.client.post(urlsplit(link.strip("<>")).path, data="List-Unsubscribe=One-Click",
                                           headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert resp.status == 200, await resp.text()
            assert await pool.fetchval("SELECT reason FROM suppressions WHERE user_id = $1 AND email = $2",
                                       uid, sub["email"].lower()) == "unsubscribe"
            # Its failures are history: no retry.
            await api.err("POST", f"/campaigns/{done}/retry", 409, "INVALID_STATE", field="id")
        deps.engine = None
        # The whole run over hot and archived rows: no recipient twice, intervals, counters.
        await check_invariants(pool, esp, deps.settings)


async def test_an_interrupted_run_is_finished_by_the_next(admin: Api, deps: Deps) -> None:
    pool = deps.pool
    user, api = await admin.new_user(quota=N)
    uid = uuid.UUID(user["id"])
    service = await make_service(pool, deps.box, deps.settings, START, base_url="http://127.0.0.1:9")
    await make_contacts(pool, uid, N)
    campaign = await make_campaign(pool, uid, planned=N)
    # Finished by hand as the engine would leave it: every subtask sent or failed a week ago.
    await pool.execute(
        """INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id, from_address,
                                 attempted_at, settled_at, error)
           SELECT $1, g, 'r' || g || '@example.net',
                  (SELECT template_id FROM campaign_templates WHERE campaign_id = $1),
                  CASE WHEN g % 5 = 0 THEN 'failed' ELSE 'sent' END, $2, 'news@mail.example.com',
                  t, t, CASE WHEN g % 5 = 0 THEN 'X: no' END
           FROM generate_series(1, $4) g, LATERAL (SELECT $3::timestamptz + g * interval '1 s' AS t) x""",
        campaign, service, START, N)
    await pool.execute("UPDATE campaigns SET status = 'completed', total = $2, sent_count = $3, failed_count = $4, "
                       "started_at = $5, finished_at = $5::timestamptz + interval '1 hour', reserved = 0 WHERE id = $1",
                       campaign, N, N - N // 5, N // 5, START)
    before = await _answers(admin, api, campaign, user["id"], service)
    now = START + timedelta(days=8)
    # A run cut after its first batch: the campaign is taken, 10 rows moved, 20 still hot.
    assert await pool.fetchval(Q["retention.take"], campaign, now, now - timedelta(days=1)) == campaign
    row = await pool.fetchrow(Q["retention.move_batch"], campaign, 0, 10)
    assert (row["n"], row["last"]) == (10, 10)
    assert await _hot_and_archived(deps, campaign) == (20, 10)
    assert await _answers(admin, api, campaign, user["id"], service) == before
    with pytest.raises(InvalidState, match="archived"):  # the API answers 409 (first test)
        await retry_failed(pool, None, campaign, uid, False, now)  # type: ignore[arg-type]
    # The next run (with a cutoff the campaign no longer meets) finishes it.
    report = await archive_finished(pool, START, now, batch=8)
    assert [(c.id, c.subtasks) for c in report.campaigns] == [(campaign, 20)]
    assert await _hot_and_archived(deps, campaign) == (0, N)
    assert await _answers(admin, api, campaign, user["id"], service) == before
    assert (await archive_finished(pool, now, now)).campaigns == []


async def test_unfinished_and_recent_campaigns_stay(admin: Api, deps: Deps) -> None:
    pool = deps.pool
    user, _ = await admin.new_user(quota=3 * N)
    uid = uuid.UUID(user["id"])
    await make_contacts(pool, uid, 2)
    now = START + timedelta(days=30)
    ids = {}
    for name, status, finished in (("running", "running", None), ("recent", "completed", now - timedelta(hours=2)),
                                   ("failed", "failed", START), ("old", "cancelled", START)):
        c = await make_campaign(pool, uid, planned=1)
        await pool.execute("UPDATE campaigns SET status = $2, finished_at = $3, "
                           "failure_reason = CASE WHEN $2 = 'failed' THEN 'x' END WHERE id = $1", c, status, finished)
        await pool.execute("INSERT INTO subtasks (campaign_id, seq, email, template_id, status) "
                           "SELECT $1, 1, 'a@example.net', template_id, 'cancelled' FROM campaign_templates "
                           "WHERE campaign_id = $1", c)
        ids[name] = c
    # A cancelled campaign whose last send is still settling is left for a later run.
    late = await make_campaign(pool, uid, planned=1)
    await pool.execute("UPDATE campaigns SET status = 'cancelled', finished_at = $2 WHERE id = $1", late, START)
    await pool.execute("INSERT INTO subtasks (campaign_id, seq, email, template_id, status, from_address) "
                       "SELECT $1, 1, 'a@example.net', template_id, 'sending', 'n@mail.example.com' "
                       "FROM campaign_templates WHERE campaign_id = $1", late)
    dry = await archive_finished(pool, now - timedelta(days=1), now, dry_run=True)
    assert {c.id for c in dry.campaigns} == {ids["old"], late}
    assert await pool.fetchval("SELECT count(*) FROM subtasks_archive") == 0
    report = await archive_finished(pool, now - timedelta(days=1), now)
    assert [c.id for c in report.campaigns] == [ids["old"]]
    assert await _hot_and_archived(deps, late) == (1, 0)
    assert await pool.fetchval("SELECT archived_at FROM campaigns WHERE id = $1", late) is None


async def test_the_archive_table_has_the_subtasks_columns_in_order(deps: Deps) -> None:
    """Rows move with INSERT … SELECT *: a column added to subtasks must be added to the archive."""

    async def columns(table: str) -> list[tuple[str, str, str]]:
        return [(r["column_name"], r["data_type"], r["is_nullable"]) for r in await deps.pool.fetch(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = $1 "
            "ORDER BY ordinal_position", table)]

    assert await columns("subtasks") == await columns("subtasks_archive")


@pytest.fixture
def tool_settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings.from_env({}, database_url=database_url, data_dir=str(tmp_path / "tool"))


async def test_the_command_needs_a_retention_and_a_day_at_least(
        deps: Deps, tool_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_archive(tool_settings, None, False) == 2
    assert "retention is off" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["archive", "--older-than", "0"])
    assert "at least 1 day" in capsys.readouterr().err
    args = build_parser().parse_args(["archive", "--older-than", "30", "--dry-run"])
    assert (args.older_than, args.dry_run) == (30, True)
    # EDM_RETENTION_DAYS stands in for --older-than.
    days = Settings.from_env({"EDM_RETENTION_DAYS": "90"}, database_url=tool_settings.database_url,
                             data_dir=tool_settings.data_dir)
    assert await run_archive(days, None, True) == 0
    assert "would archive 0 campaign(s), 0 subtask(s)" in capsys.readouterr().out
