"""Factories and readers shared by the live-operations tests (overview, SSE, metrics)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, time, timedelta
from typing import Any, Callable

import aiohttp
import asyncpg

from engine.live.event_stream import RedisStreamPublisher


async def eventually(condition: Callable[[], bool], what: str, limit: float = 15.0) -> None:
    """Wait for a condition the code under test reaches on its own; the limit only guards a hang."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.01)


async def flushed(publisher: RedisStreamPublisher) -> None:
    await eventually(lambda: publisher.buffered == 0, "publisher buffer drained")


async def add_service(pool: asyncpg.Pool, name: str, now: datetime, **live: Any) -> uuid.UUID:
    """A service row with live-state columns set straight in the database."""
    cols: dict[str, Any] = {
        "name": name, "provider": "engagelab", "domain": f"{name}.example.com", "credentials": "sealed",
        "daily_quota": 1000, "reset_time": time(0, 0), "send_interval": 10, "enabled": True, "used_today": 0,
        "remaining_today": 1000, "quota_day_start": now - timedelta(hours=12), "last_request_at": None,
        "consecutive_failures": 0, "throttled_until": None, "abnormal_frozen": False, "abnormal_reason": None,
    }
    cols.update(live)
    names = list(cols)
    sql = (f"INSERT INTO services ({', '.join(names)}) VALUES "
           f"({', '.join(f'${i + 1}' for i in range(len(names)))}) RETURNING id")
    return await pool.fetchval(sql, *cols.values())


async def map_services(pool: asyncpg.Pool, user_id: uuid.UUID | str, *service_ids: uuid.UUID) -> None:
    await pool.execute("INSERT INTO user_service_maps (user_id) VALUES ($1)", uuid.UUID(str(user_id)))
    await pool.executemany("INSERT INTO user_service_map_items (user_id, service_id) VALUES ($1, $2)",
                           [(uuid.UUID(str(user_id)), s) for s in service_ids])


async def add_campaign(pool: asyncpg.Pool, user_id: uuid.UUID | str, name: str, *, created_at: datetime,
                       **cols: Any) -> uuid.UUID:
    values: dict[str, Any] = {"user_id": uuid.UUID(str(user_id)), "name": name, "sender_name": "news",
                              "status": "running", "created_at": created_at}
    values.update(cols)
    names = list(values)
    sql = (f"INSERT INTO campaigns ({', '.join(names)}) VALUES "
           f"({', '.join(f'${i + 1}' for i in range(len(names)))}) RETURNING id")
    return await pool.fetchval(sql, *values.values())


async def add_attempts(pool: asyncpg.Pool, campaign_id: uuid.UUID, service_id: uuid.UUID, at: datetime, n: int,
                       status: str = "sent", first_seq: int = 0) -> None:
    """`n` subtasks sent through a service at `at` (settled one second later), counted in the
    per-minute send counters as the engine's recorder writes them."""
    # With its from-address, as a bind writes it (a `sending` row must have one: subtasks_sending_from).
    await pool.executemany(
        "INSERT INTO subtasks (campaign_id, seq, email, template_id, status, service_id, attempted_at, settled_at,"
        " from_address) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'news@mail.example.com')",
        [(campaign_id, first_seq + i, f"r{first_seq + i}@example.com", uuid.uuid4(), status, service_id, at,
          at + timedelta(seconds=1)) for i in range(n)])
    if status in ("sent", "failed"):
        await pool.execute(
            "INSERT INTO send_minutes (minute, service_id, campaign_id, user_id, sent, failed)"
            " SELECT date_trunc('minute', $1::timestamptz), $2, id, user_id, $3, $4 FROM campaigns WHERE id = $5"
            " ON CONFLICT (minute, service_id, campaign_id) DO UPDATE"
            " SET sent = send_minutes.sent + EXCLUDED.sent, failed = send_minutes.failed + EXCLUDED.failed",
            at + timedelta(seconds=1), service_id, n if status == "sent" else 0, n if status == "failed" else 0,
            campaign_id)


class SseReader:
    """Reads Server-Sent Events blocks off a streaming aiohttp response."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.response = response

    async def block(self, limit: float = 15.0) -> dict[str, str]:
        """The next block: fields (`id`, `event`, `data`, `retry`) or `comment` for `: ...` lines."""
        fields: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(self.response.content.readline(), timeout=limit)
            if not line:
                raise EOFError("stream ended")
            text = line.decode().rstrip("\n")
            if not text:
                if fields:
                    return fields
                continue
            if text.startswith(":"):
                fields["comment"] = text[1:].strip()
                continue
            key, _, value = text.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value

    async def event(self) -> dict[str, str]:
        """The next real event, skipping comments and the retry hint."""
        while True:
            b = await self.block()
            if "event" in b:
                return b
