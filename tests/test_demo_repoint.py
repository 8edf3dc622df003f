"""`edm demo` run again with another fake ESP port: its services follow the fake ESP it started."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from edm.demo import ADMIN, seed
from engine.infra.config import Settings
from tests.conftest import Api


def service(name: str, base_url: str) -> dict:
    return {"name": name, "provider": "engagelab", "domain": "mail.example.test",
            "credentials": {"api_user": name, "api_key": "demo-key-0123456789abcdef"}, "base_url": base_url,
            "daily_quota": 100, "reset_time": "02:00", "send_interval": 1}


async def test_a_second_run_points_the_demo_services_at_its_fake_esp(admin: Api, client: TestClient, deps) -> None:
    await admin.new_user(ADMIN[0], role="admin", password=ADMIN[1])  # the demo data is already there
    old = "http://127.0.0.1:8081"
    demo = await admin.ok("POST", "/services", json=service("el-fast-1", old))
    mine = await admin.ok("POST", "/services", json=service("my-own-service", old))
    base = str(client.make_url("/api/v1"))
    assert await seed(deps, base, "http://127.0.0.1:9191") is False
    assert (await admin.ok("GET", f"/services/{demo['id']}"))["base_url"] == "http://127.0.0.1:9191"
    assert (await admin.ok("GET", f"/services/{mine['id']}"))["base_url"] == old  # not the demo's


def test_the_fake_esp_port_is_its_own_setting() -> None:
    assert Settings.from_env({}).fake_esp_port == 8081
    settings = Settings.from_env({"EDM_PORT": "9000", "EDM_FAKE_ESP_PORT": "9101"})
    assert (settings.port, settings.fake_esp_port) == (9000, 9101)
