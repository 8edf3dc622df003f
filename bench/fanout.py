"""Fan-out: subtasks created per second when a large campaign starts, beside a COPY of the same
rows into a scratch copy of the subtasks table (same columns, same indexes) in the same run.

    .venv/bin/python bench/fanout.py [--contacts 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import datetime, timezone

from support import fresh_database, seed_account

from engine.dispatch.fanout import start_campaign
from engine.infra import db
from engine.live.events import EventWriter, LogSink


async def main(contacts: int) -> None:
    async with fresh_database() as url:
        pool = await db.create_pool(url, size=2)
        async with pool.acquire() as conn:
            t = time.perf_counter()
            user_id, sender_id, template_id = await seed_account(conn, contacts)
            print(f"seeded {contacts:,} contacts in {time.perf_counter() - t:.1f} s")
            campaign_id = await conn.fetchval(
                """INSERT INTO campaigns (user_id, name, sender_id, sender_name, reserved, planned)
                   VALUES ($1, 'bench', $2, 'bench', 0, 0) RETURNING id""", user_id, sender_id)
            await conn.execute("INSERT INTO campaign_templates (campaign_id, position, template_id) VALUES ($1, 0, $2)",
                               campaign_id, template_id)
            await conn.execute("INSERT INTO quota_log (user_id, delta, balance_after, kind) VALUES ($1, $2, $2, 'adjust')",
                               user_id, contacts)
            await conn.execute("UPDATE users SET quota_remaining = $2 WHERE id = $1", user_id, contacts)

        t = time.perf_counter()
        outcome = await start_campaign(pool, EventWriter(LogSink()), campaign_id, datetime.now(timezone.utc))
        fanout_s = time.perf_counter() - t
        assert outcome.status == "running" and outcome.total == contacts, outcome

        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT seq, contact_id, email, template_id FROM subtasks WHERE campaign_id = $1",
                                    campaign_id)
            records = [(campaign_id, r["seq"], r["contact_id"], r["email"], r["template_id"]) for r in rows]
            # Same columns, defaults, indexes and foreign key as subtasks: a like-for-like floor.
            await conn.execute("CREATE TABLE scratch_subtasks (LIKE subtasks INCLUDING ALL)")
            await conn.execute("ALTER TABLE scratch_subtasks ADD FOREIGN KEY (campaign_id) REFERENCES campaigns (id)")
            t = time.perf_counter()
            await conn.copy_records_to_table("scratch_subtasks", records=records,
                                             columns=["campaign_id", "seq", "contact_id", "email", "template_id"])
            copy_s = time.perf_counter() - t
        await pool.close()

    fan_rate, copy_rate = contacts / fanout_s, contacts / copy_s
    print(f"fan-out: {contacts:,} subtasks in {fanout_s:.2f} s = {fan_rate:,.0f}/s "
          "(resolve tags, dedupe by email, number, spread templates, settle quota, one transaction)")
    print(f"COPY   : {contacts:,} rows     in {copy_s:.2f} s = {copy_rate:,.0f}/s (same columns, indexes and foreign key)")
    print(f"ratio  : fan-out runs at {100 * fan_rate / copy_rate:.0f} % of COPY")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().contacts))
