"""End to end: the real dashboard process under tmux against a real API server on a TCP port,
read back with `tmux capture-pane`; includes an API restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web

from api.app import init_app
from tests.conftest import Api
from tests.live_support import add_campaign, add_service
from tests.tui_support import RecordingEngine, free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One detached session on a private server socket, so a developer's own tmux is untouched."""

    def __init__(self) -> None:
        self.socket = f"edm-tui-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.session = "dash"

    async def run(self, *args: str) -> str:
        proc = await asyncio.create_subprocess_exec("tmux", "-L", self.socket, *args,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return out.decode()

    async def start(self, command: str, width: int = 120, height: int = 40) -> None:
        await self.run("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height), command)

    async def screen(self) -> str:
        return await self.run("capture-pane", "-p", "-t", self.session)

    async def keys(self, *keys: str) -> None:
        for key in keys:
            await self.run("send-keys", "-t", self.session, key)
            await asyncio.sleep(0.15)

    async def wait_for(self, *texts: str, limit: float = 20.0) -> str:
        """The screen once every one of `texts` is on it (a screen fills in over several refreshes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            screen = await self.screen()
            missing = [t for t in texts if t not in screen]
            if not missing:
                return screen
            assert loop.time() < deadline, f"{missing!r} never appeared; the screen was:\n{screen}"
            await asyncio.sleep(0.2)

    async def kill(self) -> None:
        await self.run("kill-server")


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def test_dashboard_under_tmux_against_a_running_api(admin: Api, deps, clock) -> None:
    now = clock.now()
    svc = await add_service(deps.pool, "edge-tmux", now, used_today=300, remaining_today=700)
    frozen = await add_service(deps.pool, "frozen-tmux", now, abnormal_frozen=True, consecutive_failures=10,
                      abnormal_reason="10 consecutive failures")
    user, _ = await admin.new_user("carol", quota=50)
    await add_campaign(deps.pool, user["id"], "tmux campaign", created_at=now - timedelta(minutes=5),
                       total=40, sent_count=10, started_at=now - timedelta(minutes=4))
    # The engine's command surface, recorded: unfreeze is an engine command.
    deps.engine = RecordingEngine()
    port = free_port()
    runner = await serve(init_app(deps), port)
    tmux = Tmux()
    # COLUMNS/LINES from the test run would override the pane's real size.
    env = f"-u COLUMNS -u LINES EDM_TOKEN={admin.token} PYTHONPATH={ROOT}"
    try:
        await tmux.start(f"env {env} {sys.executable} -m tui --api http://127.0.0.1:{port}")
        # "Provider": the wide layout, the pane really is 120 columns.
        await tmux.wait_for("frozen-tmux", "● live", "FROZEN (abnormal)", "300/1000", "Provider")
        await tmux.keys("2")
        await tmux.wait_for("tmux campaign", "carol", "running")
        await tmux.keys("1")
        await tmux.wait_for("Provider", "edge-tmux")  # the services table is back before the next key
        await tmux.keys("e")  # edge-tmux is the first row (services sort by name)
        await tmux.wait_for("Disable service edge-tmux?")
        await tmux.keys("y")
        await tmux.wait_for("disabled")
        assert await deps.pool.fetchval("SELECT enabled FROM services WHERE id = $1", svc) is False
        # Filter to the frozen service and drill down into it, act from its detail screen, come back.
        # (Filtering rather than moving the cursor: a refresh landing between two key presses
        # must not decide which row opens.)
        await tmux.keys("/", "f", "r", "o", "z", "e", "n", "Enter")
        await tmux.wait_for("frozen-tmux")
        await tmux.keys("Enter")
        await tmux.wait_for("Service frozen-tmux", "Status log", "consecutive failures 10",
                            "abnormal: 10 consecutive failures")
        await tmux.keys("u")
        await tmux.wait_for("Unfroze frozen-tmux")
        assert ("unfreeze", str(frozen)) in deps.engine.calls
        await tmux.keys("Escape")
        await tmux.wait_for("Provider")  # the services table again
        await tmux.keys("/", "C-u", "Enter")  # clear the filter: every service again
        await tmux.wait_for("edge-tmux")
        # The API goes away and comes back on the same address: the dashboard says so, then recovers.
        await runner.cleanup()
        await tmux.wait_for("reconnecting")
        runner = await serve(init_app(deps), port)
        await tmux.wait_for("● live", "edge-tmux")
        await tmux.keys("q")
    finally:
        await tmux.kill()
        await runner.cleanup()
