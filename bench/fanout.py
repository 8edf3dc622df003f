"""Fan-out: subtasks created per second when a large campaign starts, beside a COPY of the same
rows into a scratch copy of the subtasks table (same columns, same indexes; with and without a
foreign key to campaigns) in the same run.

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
            # Plain COPY: the same columns, defaults and indexes as subtasks, no foreign key (the
            # goal's anchor); then the same with a foreign key to campaigns, checked per row.
            copy_s: dict[str, float] = {}
            for name, fk in (("plain", False), ("with_fk", True)):
                await conn.execute(f"CREATE TABLE scratch_{name} (LIKE subtasks INCLUDING ALL)")
                if fk:
                    await conn.execute(f"ALTER TABLE scratch_{name} ADD FOREIGN KEY (campaign_id) REFERENCES campaigns (id)")
                t = time.perf_counter()
                await conn.copy_records_to_table(f"scratch_{name}", records=records,
                                                 columns=["campaign_id", "seq", "contact_id", "email", "template_id"])
                copy_s[name] = time.perf_counter() - t
        await pool.close()

    fan_rate = contacts / fanout_s
    plain_rate, fk_rate = contacts / copy_s["plain"], contacts / copy_s["with_fk"]
    print(f"fan-out: {contacts:,} subtasks in {fanout_s:.2f} s = {fan_rate:,.0f}/s "
          "(resolve tags, dedupe by email, number, spread templates, settle quota, one transaction)")
    print(f"COPY   : {contacts:,} rows     in {copy_s['plain']:.2f} s = {plain_rate:,.0f}/s "
          "(same columns and indexes, no foreign key)")
    print(f"COPY+FK: {contacts:,} rows     in {copy_s['with_fk']:.2f} s = {fk_rate:,.0f}/s "
          "(the same plus a foreign key to campaigns)")
    print(f"ratio  : fan-out runs at {100 * fan_rate / plain_rate:.0f} % of plain COPY "
          f"({100 * fan_rate / fk_rate:.0f} % of COPY with the foreign key); goal ≥ 80 % of plain COPY")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    asyncio.run(main(parser.parse_args().contacts))
