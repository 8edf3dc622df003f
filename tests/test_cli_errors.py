"""CLI failures are one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def run_edm(*args: str, env: dict[str, str], stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edm.cli", *args, cwd=str(ROOT), env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=60)
    except TimeoutError:
        proc.kill()  # never leave a hung server behind
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


def _env(database_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {"EDM_DATABASE_URL": database_url, "EDM_REDIS_URL": redis_url, "EDM_DATA_DIR": str(tmp_path),
            "EDM_LOG_LEVEL": "WARNING", "EDM_PASSWORD": ""}


async def test_serve_on_a_port_in_use_is_one_line(database_url: str, redis_url: str, tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, text = await run_edm("serve", env={**_env(database_url, redis_url, tmp_path), "EDM_PORT": str(port)})
    assert code != 0 and "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("error:") and str(port) in last and "in use" in last, text


async def test_user_create_without_a_password_on_closed_stdin(database_url: str, redis_url: str,
                                                              tmp_path: Path) -> None:
    code, text = await run_edm("user", "create", "nobody", env=_env(database_url, redis_url, tmp_path), stdin=b"")
    assert code != 0 and "Traceback" not in text, text
    assert text.strip().splitlines()[-1].startswith("error:") and "password" in text, text


async def test_unreachable_database_is_one_line(redis_url: str, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {**_env(f"postgresql://postgres@127.0.0.1:{closed}/postgres", redis_url, tmp_path),
           "EDM_PASSWORD": "long-enough-pass"}
    code, text = await run_edm("user", "create", "nobody", env=env)
    assert code != 0 and "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("error:") and "database" in last, text


def test_reusing_running_embedded_servers_is_not_reported_as_starting(tmp_path: Path, caplog) -> None:
    import logging

    from edm.embedded import EmbeddedRedis, EmbeddedServers

    owner = EmbeddedRedis(tmp_path / "redis")
    owner.start()
    try:
        with caplog.at_level(logging.INFO, logger="edm.embedded"):
            EmbeddedServers(tmp_path).start(postgres=False, redis=True)
        assert "embedded_redis_started" not in caplog.text and "embedded_redis_reused" in caplog.text
    finally:
        owner.stop()


async def test_user_unlock_clears_the_login_counters(database_url: str, redis_url: str, tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    try:
        await client.hset("edm:login:acct:bob", mapping={"a": 12, "s": 1, "n": 1})
        await client.hset("edm:login:pair:bob:10.0.0.1", mapping={"a": 10, "s": 1, "n": 0})
        await client.hset("edm:login:pair:bobby:10.0.0.1", mapping={"a": 3, "s": 1, "n": 0})
        code, text = await run_edm("user", "unlock", "Bob", env=_env(database_url, redis_url, tmp_path))
        assert code == 0 and "2 login counter(s) cleared" in text, text
        assert await client.exists("edm:login:acct:bob", "edm:login:pair:bob:10.0.0.1") == 0
        assert await client.exists("edm:login:pair:bobby:10.0.0.1") == 1
    finally:
        await client.aclose()
