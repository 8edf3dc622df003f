"""Subtask ids are time-ordered (UUIDv7, migration 0012): the rows one statement writes get ids
in the order it writes them, so a batch of consecutive claims shares a few primary-key pages."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.engine_support import make_campaign, make_user


async def test_a_fan_out_numbers_its_rows_with_version_7_ids_in_write_order(deps) -> None:
    pool = deps.pool
    user = await make_user(pool, quota=0)
    campaign = await make_campaign(pool, user, planned=0)
    before = datetime.now(timezone.utc)
    await pool.execute(
        "INSERT INTO subtasks (campaign_id, seq, email, template_id) "
        "SELECT $1, g, 'r' || g || '@example.net', (SELECT template_id FROM campaign_templates "
        "WHERE campaign_id = $1) FROM generate_series(1, 20000) g", campaign)
    after = datetime.now(timezone.utc)
    rows = await pool.fetch("SELECT id FROM subtasks WHERE campaign_id = $1 ORDER BY seq", campaign)
    ids = [r["id"] for r in rows]
    assert {u.version for u in ids} == {7} and {u.variant for u in ids} == {"specified in RFC 4122"}
    millis = [u.int >> 80 for u in ids]  # the first 48 bits: Unix time in milliseconds
    assert millis == sorted(millis), "ids out of write order"
    # The server's clock, read by this process too (a second of slack for a server elsewhere).
    assert int(before.timestamp() * 1000) - 1000 <= millis[0] <= millis[-1] <= int(after.timestamp() * 1000) + 1000
    assert len(set(ids)) == len(ids)
