"""SMTP delivery through the engine (invariant 11) to a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from email import message_from_bytes, policy
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from engine.infra.scaled_clock import ScaledClock
from tests.engine_support import (
    check_invariants,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    running,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        mime = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "mime": mime})
        return "250 2.0.0 Ok: queued"


async def test_smtp_campaign_reaches_the_loopback_server(deps) -> None:
    pool, settings = deps.pool, deps.settings
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, hostname="localhost", loop=loop), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = ScaledClock(START, factor=50)
    try:
        user = await make_user(pool, quota=3)
        service = await make_service(
            pool, deps.box, settings, clock.now(), base_url="", provider="smtp", domain="smtp.example.org",
            credentials={"host": "127.0.0.1", "port": port, "username": "", "password": "", "tls": "none"})
        await map_user(pool, user, [service])
        emails = await make_contacts(pool, user, 3)
        campaign = await make_campaign(pool, user, planned=3, sender="letters")
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        await check_invariants(pool, None, settings)
    finally:
        server.close()
    assert sorted(m["to"][0] for m in inbox.messages) == sorted(emails)
    for m in inbox.messages:
        mime = m["mime"]
        local = m["to"][0].split("@")[0]
        assert m["from"] == "letters@smtp.example.org" and mime["From"] == "letters@smtp.example.org"
        assert mime["To"] == m["to"][0]
        assert mime["Subject"] == f"Hi {local} #0"
        assert f"Hello {local} from Paris" in mime.get_body(("html",)).get_content()
        assert f"Hello {local}" in mime.get_body(("plain",)).get_content()
    ids = {r["message_id"] for r in await pool.fetch("SELECT message_id FROM subtasks")}
    assert len(ids) == 3 and None not in ids
