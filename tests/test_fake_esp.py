"""The fake EngageLab over real HTTP on loopback: shape checks, knobs, the request log, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any, AsyncIterator, Mapping

import aiohttp
import msgspec
import pytest

from edm.fake_esp import (
    FAKE_ESP,
    FakeEsp,
    FakeEspConfig,
    Knobs,
    add_arguments,
    bound_port,
    run,
    serve,
)
from edm.fake_esp.cli import config_from_args
from engine.providers.engagelab import basic_auth

ROOT = Path(__file__).resolve().parent.parent
KEY = "k3y-0123456789-SECRET"


class Esp:
    """A running fake ESP plus a client session pointed at it."""

    def __init__(self, url: str, state: FakeEsp, http: aiohttp.ClientSession):
        self.url = url
        self.state = state
        self.http = http

    async def send(self, body: Any, *, user: str | None = "acme", key: str = KEY,
                   raw: bytes | None = None) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        headers = {"Content-Type": "application/json"}
        if user:
            headers["Authorization"] = basic_auth(user, key)
        data = raw if raw is not None else msgspec.json.encode(body)
        async with self.http.post(self.url + "/v1/mail/send", data=data, headers=headers) as resp:
            return resp.status, await resp.json(), resp.headers

    async def get(self, path: str) -> Any:
        """A JSON answer (200 expected)."""
        async with self.http.get(self.url + path) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()

    async def text(self, path: str) -> str:
        async with self.http.get(self.url + path) as resp:
            assert resp.status == 200
            return await resp.text()

    async def put_config(self, config: dict[str, Any], status: int = 200) -> dict[str, Any]:
        async with self.http.put(self.url + "/_fake/config", json=config) as resp:
            assert resp.status == status, await resp.text()
            return await resp.json()  # type: ignore[no-any-return]


async def start(config: FakeEspConfig | None = None) -> tuple[Any, Esp]:
    runner = await serve("127.0.0.1", 0, config)
    http = aiohttp.ClientSession()
    return runner, Esp(f"http://127.0.0.1:{bound_port(runner)}", runner.app[FAKE_ESP], http)


@pytest.fixture
async def esp() -> AsyncIterator[Esp]:
    runner, esp = await start()
    yield esp
    await esp.http.close()
    await runner.cleanup()


def mail(to: str = "bob@example.com", request_id: str = "sub-1", **over: Any) -> dict[str, Any]:
    body = {
        "from": "news@mail.example.com", "to": [to],
        "body": {"subject": "Hi", "content": {"html": "<p>Hi</p>", "text": "Hi"}},
        "request_id": request_id, "custom_args": {"campaign_id": "c-1", "subtask_id": request_id},
    }
    body.update(over)
    return body


async def test_send_answers_an_email_id_and_logs_the_request(esp: Esp) -> None:
    status, data, _ = await esp.send(mail())
    assert status == 200
    assert data["request_id"] == "sub-1"
    assert len(data["email_ids"]) == 1
    log = await esp.get("/_fake/log")
    assert len(log) == 1
    entry = log[0]
    assert {k: entry[k] for k in ("seq", "api_user", "from", "to", "request_id", "outcome", "status", "email_id")} == {
        "seq": 0, "api_user": "acme", "from": "news@mail.example.com", "to": ["bob@example.com"],
        "request_id": "sub-1", "outcome": "sent", "status": 200, "email_id": data["email_ids"][0],
    }
    assert entry["custom_args"] == {"campaign_id": "c-1", "subtask_id": "sub-1"}
    assert entry["time"].endswith("+00:00") and isinstance(entry["t"], float)
    assert KEY not in await esp.text("/_fake/log.jsonl")


async def test_missing_or_malformed_auth_is_401(esp: Esp) -> None:
    status, data, _ = await esp.send(mail(), user=None)
    assert (status, data["code"]) == (401, 40101)
    for header in ("Basic !!!", "Bearer abc", basic_auth("", KEY)):
        async with esp.http.post(esp.url + "/v1/mail/send", json=mail(), headers={"Authorization": header}) as resp:
            assert resp.status == 401
    log = await esp.get("/_fake/log")
    assert [e["outcome"] for e in log] == ["unauthorized"] * 4


async def test_expected_keys_are_checked_when_configured(esp: Esp) -> None:
    await esp.put_config({"keys": {"acme": KEY}})
    assert (await esp.send(mail(), key="wrong"))[0] == 401
    assert (await esp.send(mail()))[0] == 200
    # Users not listed are accepted with any key.
    assert (await esp.send(mail(), user="other", key="anything"))[0] == 200
    config = await esp.get("/_fake/config")
    assert config["keys"] == ["acme"] and KEY not in str(config)


@pytest.mark.parametrize("raw, field", [
    (b"not json", ""),
    (b"[1, 2]", ""),
    (msgspec.json.encode({k: v for k, v in mail().items() if k != "to"}), "to"),
    (msgspec.json.encode({**mail(), "to": []}), "$.to"),
    (msgspec.json.encode({**mail(), "to": "bob@example.com"}), "$.to"),  # a string, not a list
    (msgspec.json.encode({**mail(), "to": ["not-an-address"]}), "$.to[0]"),
    (msgspec.json.encode(mail(body={"content": {"text": "x"}})), "subject"),
    (msgspec.json.encode(mail(body={"subject": 5, "content": {"text": "x"}})), "$.body.subject"),
    (msgspec.json.encode(mail(body={"subject": "s", "content": {}})), "body.content"),
    (msgspec.json.encode({**mail(), "from": None}), "$.from"),
])
async def test_malformed_bodies_are_400_with_a_message(esp: Esp, raw: bytes, field: str) -> None:
    status, data, _ = await esp.send(None, raw=raw)
    assert status == 400
    assert data["code"] == 40001
    assert field in data["message"]
    log = await esp.get("/_fake/log")
    assert [e["outcome"] for e in log] == ["bad_request"]


async def test_error_rate_one_fails_every_request(esp: Esp) -> None:
    await esp.put_config({"default": {"error_rate": 1}})
    for i in range(3):
        status, data, _ = await esp.send(mail(request_id=f"s{i}"))
        assert (status, data["code"]) == (500, 50001)
        assert data["message"]
    assert (await esp.get("/_fake/stats"))["by_outcome"] == {"failed": 3}


async def test_throttle_rate_answers_429_with_retry_after(esp: Esp) -> None:
    await esp.put_config({"default": {"throttle_rate": 1, "retry_after": 2.5}})
    status, data, headers = await esp.send(mail())
    assert (status, data["code"], headers["Retry-After"]) == (429, 42901, "2.5")
    await esp.put_config({"default": {"throttle_rate": 1, "retry_after": None}})
    status, _, headers = await esp.send(mail())
    assert status == 429 and "Retry-After" not in headers


async def test_per_user_knobs_override_the_default(esp: Esp) -> None:
    await esp.put_config({"default": {}, "users": {"broken": {"fail_all": True}}})
    status, data, _ = await esp.send(mail(), user="broken")
    assert (status, data) == (403, {"code": 40301, "message": "account suspended (fake fail_all)"})
    assert (await esp.send(mail(), user="acme"))[0] == 200
    # A PUT that names only `default` keeps the users' overrides.
    await esp.put_config({"default": {"error_rate": 1}})
    assert (await esp.send(mail(), user="broken"))[0] == 403
    assert (await esp.send(mail(), user="acme"))[0] == 500
    assert (await esp.get("/_fake/stats"))["by_user"] == {"broken": 2, "acme": 2}


async def test_start_up_config_is_used() -> None:
    runner, esp = await start(FakeEspConfig(users={"down": Knobs(fail_all=True)}))
    try:
        assert (await esp.send(mail(), user="down"))[0] == 403
        assert (await esp.send(mail(), user="up"))[0] == 200
    finally:
        await esp.http.close()
        await runner.cleanup()


@pytest.mark.parametrize("config", [
    {"default": {"error_rate": 1.5}},
    {"default": {"throttle_rate": -0.1}},
    {"default": {"latency": 5}},
    {"nonsense": 1},
    {"users": {"a": {"fail_all": "yes"}}},
])
async def test_bad_config_is_400_and_changes_nothing(esp: Esp, config: dict[str, Any]) -> None:
    before = await esp.get("/_fake/config")
    data = await esp.put_config(config, status=400)
    assert data["code"] == 40001 and data["message"]
    assert await esp.get("/_fake/config") == before


async def _outcomes(esp: Esp, user: str, n: int) -> list[int]:
    return [(await esp.send(mail(request_id=f"r{i}"), user=user))[0] for i in range(n)]


async def test_seeded_outcomes_repeat(esp: Esp) -> None:
    await esp.put_config({"seed": 7, "default": {"error_rate": 0.3, "throttle_rate": 0.3}})
    first = await _outcomes(esp, "acme", 30)
    assert {200, 429, 500} <= set(first)
    ids_first = [e["email_id"] for e in await esp.get("/_fake/log")]
    # Re-seeding restarts the stream; another user's traffic in between changes nothing.
    await esp.put_config({"seed": 7})
    await esp.send(mail(), user="someone-else")
    await esp.http.delete(esp.url + "/_fake/log")
    second = await _outcomes(esp, "acme", 30)
    assert second == first
    assert [e["email_id"] for e in await esp.get("/_fake/log")] == ids_first
    await esp.put_config({"seed": 8})
    assert await _outcomes(esp, "acme", 30) != first


async def test_log_filters_jsonl_clear_and_stats(esp: Esp) -> None:
    for i in range(4):
        await esp.send(mail(request_id=f"a{i}"), user="a")
        await esp.send(mail(request_id=f"b{i}"), user="b")
    log = await esp.get("/_fake/log")
    assert [e["seq"] for e in log] == list(range(8))
    assert [e["request_id"] for e in await esp.get("/_fake/log?api_user=b")] == ["b0", "b1", "b2", "b3"]
    assert [e["seq"] for e in await esp.get("/_fake/log?since=5")] == [5, 6, 7]
    assert [e["seq"] for e in await esp.get("/_fake/log?since=2&limit=2")] == [2, 3]
    lines = (await esp.text("/_fake/log.jsonl")).splitlines()
    assert [msgspec.json.decode(line) for line in lines] == log
    async with esp.http.get(esp.url + "/_fake/log?since=x") as resp:
        assert resp.status == 400
    assert (await esp.get("/_fake/stats"))["total"] == 8
    async with esp.http.delete(esp.url + "/_fake/log") as resp:
        assert resp.status == 204
    assert await esp.get("/_fake/log") == []
    assert (await esp.get("/_fake/stats"))["total"] == 0


async def test_log_is_bounded_in_memory_and_complete_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    runner, esp = await start(FakeEspConfig(log_max=3, log_file=str(path)))
    try:
        for i in range(5):
            await esp.send(mail(request_id=f"s{i}"))
        assert [e["request_id"] for e in await esp.get("/_fake/log")] == ["s2", "s3", "s4"]
        assert (await esp.get("/_fake/stats"))["total"] == 5
    finally:
        await esp.http.close()
        await runner.cleanup()
    lines = path.read_bytes().splitlines()
    assert [msgspec.json.decode(line)["request_id"] for line in lines] == [f"s{i}" for i in range(5)]
    assert KEY.encode() not in path.read_bytes()


async def test_latency_delays_the_answer_but_not_the_log(esp: Esp) -> None:
    await esp.put_config({"default": {"latency_ms": 300}})
    task = asyncio.create_task(esp.send(mail()))
    # The request is in the log while its answer is still held back.
    while not esp.state.log.entries():
        await asyncio.sleep(0.01)
    assert not task.done()
    assert (await task)[0] == 200


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_options_build_the_config(tmp_path: Path) -> None:
    file = tmp_path / "c.json"
    file.write_text('{"seed": 3, "users": {"x": {"latency_ms": 5}}}')
    config = config_from_args(_parse("--config", str(file), "--latency-ms", "20", "--error-rate", "0.1",
                                     "--throttle-rate", "0.2", "--fail-user", "u1", "--fail-user", "x",
                                     "--log-file", "f.jsonl"))
    assert config.default == Knobs(latency_ms=20, error_rate=0.1, throttle_rate=0.2)
    assert config.users["u1"] == Knobs(latency_ms=20, error_rate=0.1, throttle_rate=0.2, fail_all=True)
    assert config.users["x"].latency_ms == 5 and config.users["x"].fail_all
    assert (config.seed, config.log_file) == (3, "f.jsonl")


def test_cli_rejects_bad_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_parse("--error-rate", "2")) == 2
    assert "error_rate" in capsys.readouterr().err


async def test_cli_process_serves_until_terminated(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edm.fake_esp", "--port", "0", "--fail-user", "down",
        "--log-file", str(tmp_path / "log.jsonl"),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("fake ESP listening on http://127.0.0.1:")
        url = line.split()[-1]
        async with aiohttp.ClientSession() as http:
            esp = Esp(url, None, http)  # type: ignore[arg-type]
            assert (await esp.send(mail(), user="down"))[0] == 403
            assert (await esp.send(mail(), user="up"))[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len((tmp_path / "log.jsonl").read_bytes().splitlines()) == 2
