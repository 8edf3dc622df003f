"""One bad result never stops settlement (issue 8, item 1): provider strings are cleaned at the
adapter boundary, and a result the database still refuses is isolated from its batch, written as
a clean failure and counted, while every other result settles."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from edm.fake_esp import FakeEspConfig, Knobs
from engine.infra.scaled_clock import ScaledClock
from engine.live.metrics import EngineMetrics
from engine.providers.base import SendResult, clean_text
from tests.engine_support import (
    check_invariants,
    fake_esp,
    make_campaign,
    make_contacts,
    make_service,
    make_user,
    map_user,
    new_engine,
    running,
    seed_campaign,
    wait_status,
)

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)


def test_provider_strings_are_cleaned_once_at_the_adapter_boundary() -> None:
    # aiosmtplib decodes a non-UTF-8 reply with surrogateescape: a lone surrogate per bad byte.
    smtp_reply = b"550 bad \xff\xfe mailbox".decode("utf-8", "surrogateescape")
    r = SendResult.failed("SMTP_550", smtp_reply + "\x00" + "x" * 5000)
    assert r.error is not None and "\x00" not in r.error and len(r.error) == 500
    assert r.error.encode("utf-8")  # storable: no lone surrogates left
    assert SendResult(outcome="sent", message_id="id\x00").message_id == "id"
    assert clean_text("plain") == "plain" and clean_text(None) is None


async def test_a_non_utf8_smtp_reply_is_stored_cleaned(deps) -> None:
    """A real SMTP conversation whose RCPT reply carries raw 0xFF 0xFE bytes (aiosmtplib decodes
    them with surrogateescape); PostgreSQL must accept what the adapter returns."""
    from engine.providers import Message, SmtpProvider

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 poison.test ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                writer.write(b"250 poison.test\r\n")
            elif verb == b"RCPT":
                writer.write(b"550 5.1.1 mailbox \xff\xfe unknown\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = SmtpProvider("127.0.0.1", port, tls="none", timeout=5)
    try:
        result = await provider.send(Message(subtask_id="s1", campaign_id="c1", from_address="a@poison.test",
                                             to="b@example.net", subject="s", html="<p>h</p>", text="t"))
    finally:
        await provider.close()
        server.close()
        await server.wait_closed()
    assert result.outcome == "failed" and result.error is not None and "unknown" in result.error
    assert await deps.pool.fetchval("SELECT $1::text", result.error) == result.error  # no DataError


async def test_nul_in_provider_errors_never_blocks_settlement(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    poison = Knobs(error_rate=1.0, error_message="mailbox \u0000 full")
    async with fake_esp(FakeEspConfig(default=poison)) as (url, esp):
        user, services, campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=6, services=3)
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            await wait_status(pool, campaign, "completed")
        errors = [r[0] for r in await pool.fetch("SELECT error FROM subtasks")]
        assert len(errors) == 6 and all(e and "full" in e and "\x00" not in e for e in errors)
        await check_invariants(pool, esp, settings)


async def test_a_result_the_database_refuses_is_isolated_and_written_as_a_failure(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user = await make_user(pool, quota=20)
        services = [await make_service(pool, deps.box, settings, clock.now(), base_url=url) for _ in range(4)]
        await map_user(pool, user, services)
        emails = await make_contacts(pool, user, 20)
        campaign = await make_campaign(pool, user, planned=20)
        # Something about this one row makes every settle statement that carries it fail, as a
        # NUL or a broken CHECK did; only a clean SETTLE_REJECTED failure gets through.
        await pool.execute(f"""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.email = '{emails[7]}' AND NEW.status <> 'sending'
                 AND coalesce(NEW.error, '') NOT LIKE 'SETTLE_REJECTED%' THEN
                RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER refuse BEFORE UPDATE ON subtasks FOR EACH ROW EXECUTE FUNCTION refuse();""")
        engine, _ = new_engine(settings, pool, clock, deps.box, settle_batch=8)
        engine.dispatcher.settler.metrics = metrics = EngineMetrics()
        async with running(engine):
            await wait_status(pool, campaign, "completed")
            assert engine.dispatcher.settler.buffer.isolated == 1 and not engine.dispatcher.settler.buffer.dead
        assert b'edm_settle_isolated_total{fate="rewritten"} 1.0' in metrics.render()
        rows = await pool.fetch("SELECT email, status, error FROM subtasks WHERE status <> 'sent'")
        assert [(r["email"], r["status"]) for r in rows] == [(emails[7], "failed")]
        assert rows[0]["error"].startswith("SETTLE_REJECTED") and "CheckViolationError" in rows[0]["error"]
        await check_invariants(pool, esp, settings)


async def test_a_freeze_cancelled_by_an_unfreeze_is_not_written_without_a_reason(deps) -> None:
    pool, settings = deps.pool, deps.settings
    clock = ScaledClock(START, factor=50)
    async with fake_esp() as (url, esp):
        user, (service,), campaign = await seed_campaign(deps, clock.now(), base_url=url, contacts=3,
                                                         scheduled_at=START.replace(year=2030))
        engine, _ = new_engine(settings, pool, clock, deps.box)
        async with running(engine):
            # A failure streak asked for a freeze, then an unfreeze + reload cleared the flag and
            # the reason before the flush: the freeze must not be written (abnormal_reason NULL).
            s = engine.state.services[service]
            s.abnormal_frozen, s.abnormal_reason = False, None
            engine.dispatcher.settler.to_freeze.add(service)
            await pool.execute("UPDATE campaigns SET scheduled_at = NULL WHERE id = $1", campaign)
            await engine.campaign_saved(campaign)
            await wait_status(pool, campaign, "completed")
            assert not engine.dispatcher.settler.buffer.dead
        assert not await pool.fetchval("SELECT abnormal_frozen FROM services")
        await check_invariants(pool, esp, settings)
