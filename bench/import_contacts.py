"""Benchmark: import 100k contacts as JSON lines and as CSV, directly and over HTTP.

Starts the embedded PostgreSQL and Redis in `.edm/bench` the way the tests do, builds a fresh
database and, per format, times: parsing alone; `engine.store.contact_import.import_contacts` into an
empty account (all new), the same file again (nothing to change) and an edited file (every
contact changed); then `POST /api/v1/contacts/import` through a real aiohttp server (new, then
edited). For scale it also times the floor: a plain COPY of the same contacts and tag links
straight into the real tables, with no upsert (rolled back).
Run: `.venv/bin/python bench/import_contacts.py [--rows N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

import aiohttp
import asyncpg
import orjson
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import init_app  # noqa: E402
from edm.embedded import EmbeddedServers  # noqa: E402
from edm.runtime import Urls, open_deps  # noqa: E402
from engine.infra import db  # noqa: E402
from engine.infra.config import Settings  # noqa: E402
from engine.infra.passwords import Passwords  # noqa: E402
from engine.store.accounts import create_user  # noqa: E402
from engine.store.contact_import import import_contacts  # noqa: E402
from engine.store.contact_rows import Format, parse  # noqa: E402

DATABASE = "edm_bench_import"
PASSWORD = "bench-password"
TAGS = ["vip", "news", "beta", "churned", "trial", "eu", "us", "apac", "b2b", "b2c"]
CITIES = ["Paris", "Berlin", "Shanghai", "Lima", "Oslo"]
CONTENT_TYPES: dict[Format, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def person(i: int, edit: str) -> tuple[str, str, list[str], dict[str, Any]]:
    fields = {"company": f"Company {i % 977}{edit}", "city": CITIES[i % 5], "score": i % 100}
    return f"person{i}@example.com", f"Person {i}{edit}", [TAGS[i % 10], TAGS[(i * 7) % 10]], fields


def make_file(fmt: Format, rows: int, edit: str = "") -> bytes:
    """`rows` contacts, two tags and three custom fields each; `edit` changes names and a field."""
    people = (person(i, edit) for i in range(rows))
    if fmt == "jsonl":
        return b"".join(orjson.dumps({"email": e, "name": n, "fields": f, "tags": t}) + b"\n" for e, n, t, f in people)
    lines = ["email,name,tags,company,city,score"]
    lines += [f"{e},{n},{';'.join(t)},{f['company']},{f['city']},{f['score']}" for e, n, t, f in people]
    return ("\n".join(lines) + "\n").encode()


async def timed(label: str, run: Callable[[], Awaitable[dict[str, Any]]]) -> None:
    started = time.perf_counter()
    r = await run()
    elapsed = time.perf_counter() - started
    print(f"  {label:<44} {elapsed:7.2f} s   imported={r['imported']} updated={r['updated']} "
          f"unchanged={r['unchanged']} rejected={r['rejected']}", flush=True)


async def copy_floor(pool: asyncpg.Pool, user_id: uuid.UUID, rows: int) -> None:
    """Time COPY of the same contacts and links into the real tables, then roll back."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            tag_ids = {name: await conn.fetchval("INSERT INTO tags (user_id, name) VALUES ($1, $2) RETURNING id",
                                                 user_id, name) for name in TAGS}
            ids = [uuid.uuid4() for _ in range(rows)]
            contacts = []
            links = []
            for i in range(rows):
                email, name, tags, fields = person(i, "")
                contacts.append((ids[i], user_id, email, name, orjson.dumps(fields)))
                links += [(tag_ids[t], ids[i]) for t in set(tags)]
            started = time.perf_counter()
            await conn.execute("CREATE TEMP TABLE floor_stage (id uuid, user_id uuid, email text, name text, "
                               "fields bytea) ON COMMIT DROP")
            await conn.copy_records_to_table("floor_stage", records=contacts)
            await conn.execute("INSERT INTO contacts (id, user_id, email, name, fields) "
                               "SELECT id, user_id, email, name, convert_from(fields, 'UTF8')::jsonb FROM floor_stage")
            await conn.copy_records_to_table("contact_tags", records=links, columns=("tag_id", "contact_id"))
            print(f"  {'floor: plain COPY/INSERT, no upsert':<44} {time.perf_counter() - started:7.2f} s   "
                  f"contacts={rows} links={len(links)}", flush=True)
        finally:
            await tx.rollback()


async def fresh_database(server_url: str) -> str:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await admin.close()
    url = db.with_database(server_url, DATABASE)
    conn = await db.connect(url)
    try:
        await db.migrate(conn)
    finally:
        await conn.close()
    return url


async def main(rows: int) -> None:
    servers = EmbeddedServers(ROOT / ".edm" / "bench").start()
    url = await fresh_database(servers.database_url)
    settings = Settings.from_env({}, data_dir=str(ROOT / ".edm" / "bench" / "data"), jwt_secret="bench-" + "x" * 40)
    formats: list[Format] = ["jsonl", "csv"]
    files = {fmt: (make_file(fmt, rows), make_file(fmt, rows, " v2")) for fmt in formats}
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {rows} rows: "
          f"JSONL {len(files['jsonl'][0]) / 2**20:.1f} MiB, CSV {len(files['csv'][0]) / 2**20:.1f} MiB", flush=True)

    quick_hashes = Passwords(time_cost=1, memory_cost=1024)
    async with open_deps(settings, Urls(url, servers.redis_url), passwords=quick_hashes) as d:
        for fmt in formats:
            first, edited = files[fmt]
            started = time.perf_counter()
            parse(first, fmt)
            print(f"{fmt}: parse and validate only {time.perf_counter() - started:.2f} s", flush=True)
            user = await create_user(d.pool, d.passwords, f"direct_{fmt}", "b@example.com", PASSWORD)

            def direct(raw: bytes, fmt: Format = fmt, user_id: uuid.UUID = user.id) -> Callable[[], Awaitable[dict]]:
                async def run() -> dict[str, Any]:
                    r = await import_contacts(d.pool, user_id, raw, fmt)
                    return {"imported": r.imported, "updated": r.updated, "unchanged": r.unchanged,
                            "rejected": r.rejected}
                return run

            await timed("import_contacts: all new", direct(first))
            await timed("import_contacts: same file again", direct(first))
            await timed("import_contacts: every contact edited", direct(edited))

        server = TestServer(init_app(d))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                for fmt in formats:
                    first, edited = files[fmt]
                    name = f"http_{fmt}"
                    await create_user(d.pool, d.passwords, name, "b@example.com", PASSWORD)
                    async with http.post(server.make_url("/api/v1/auth/login"),
                                         json={"username": name, "password": PASSWORD}) as resp:
                        token = (await resp.json())["data"]["token"]

                    def over_http(raw: bytes, fmt: Format = fmt, token: str = token) -> Callable[[], Awaitable[dict]]:
                        async def run() -> dict[str, Any]:
                            async with http.post(server.make_url("/api/v1/contacts/import"), data=raw,
                                                 headers={"Authorization": f"Bearer {token}",
                                                          "Content-Type": CONTENT_TYPES[fmt]}) as resp:
                                body = await resp.json()
                                assert resp.status == 200, body
                                return body["data"]
                        return run

                    await timed(f"HTTP POST /contacts/import ({fmt}): all new", over_http(first))
                    await timed(f"HTTP POST /contacts/import ({fmt}): edited", over_http(edited))
        finally:
            await server.close()
        floor_user = await create_user(d.pool, d.passwords, "floor", "b@example.com", PASSWORD)
        await copy_floor(d.pool, floor_user.id, rows)
        print(f"load average {os.getloadavg()[0]:.2f}")
    servers.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().rows))
