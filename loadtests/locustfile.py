"""Locust load on the control API while a campaign dispatches: the dashboard's and scripts' calls.

    make demo            # in one terminal (or `edm serve` with your data)
    make loadtest        # 100 users for 60 s against http://127.0.0.1:8080, prints p50/p95/p99 per endpoint
    .venv/bin/python bench/api_load.py   # the same against a fresh product it starts itself

Every simulated user logs in once (retrying after a throttle's Retry-After), then repeats what
its kind of client does most:
- `Dashboard` (an administrator's `edm tui`, one in four users): the overview every second or so,
  the paged lists behind it, services, every user's campaigns and their progress;
- `Script` (a user's automation, alice or bob): own campaigns, their progress, detail and event
  log, the profile and mapped services, the user's overview, a page of contacts.
The live event stream (SSE) is left out: a stream has no response time to measure. `/health`
(no token, `SELECT 1` and a Redis PING) is the anchor: the floor of this machine under this load.

The client is Locust's `FastHttpUser` (geventhttpclient): on this 2-core machine the load
generator shares the CPUs with the server it measures, and `HttpUser` (requests) spends about
1.8 times the CPU per request (measured by bench/api_load.py --client). `EDM_LOCUST_CLIENT=requests` selects `HttpUser` to compare.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from locust import FastHttpUser, HttpUser, between, task

API = "/api/v1"
ADMIN = (os.environ.get("EDM_ADMIN_USERNAME", "admin"), os.environ.get("EDM_ADMIN_PASSWORD", "admin-demo-pass"))
USERS = [(os.environ.get("EDM_USERNAME", "alice"), os.environ.get("EDM_PASSWORD", "alice-demo-pass")),
         ("bob", "bob-demo-pass")]
_User = HttpUser if os.environ.get("EDM_LOCUST_CLIENT") == "requests" else FastHttpUser


class _Client(_User):  # type: ignore[valid-type,misc]  # chosen at import time
    abstract = True
    wait_time = between(0.1, 0.5)
    account: tuple[str, str] = ADMIN
    auth: dict[str, str] = {}

    def on_start(self) -> None:
        for _ in range(20):
            resp = self.client.post(API + "/auth/login", json={"username": self.account[0], "password": self.account[1]},
                                    name="/auth/login")
            if resp.status_code != 429:
                break
            time.sleep(float(resp.headers.get("Retry-After", "1")))
        resp.raise_for_status()
        # Per request, not on the session: FastHttpSession has no default headers to set.
        self.auth = {"Authorization": "Bearer " + resp.json()["data"]["token"]}
        self.campaign_ids = [c["id"] for c in self._items(API + "/campaigns?limit=20" + self.all_campaigns)]

    all_campaigns = ""

    def _items(self, path: str) -> list[dict]:
        return self._get(path, "(setup)").json().get("data", {}).get("items", [])

    def _get(self, path: str, name: str) -> Any:
        return self.client.get(path, name=name, headers=self.auth)

    def _campaign(self) -> str | None:
        return random.choice(self.campaign_ids) if self.campaign_ids else None


class Dashboard(_Client):
    weight = 1
    account = ADMIN
    all_campaigns = "&all=true"

    @task(10)
    def overview(self) -> None:
        self._get(API + "/monitor/overview", "/monitor/overview")

    @task(2)
    def campaigns_page(self) -> None:
        self._get(API + "/monitor/campaigns?limit=50&offset=0", "/monitor/campaigns")

    @task(1)
    def services_page(self) -> None:
        self._get(API + "/monitor/services?state=ready&limit=50", "/monitor/services")

    @task(2)
    def services(self) -> None:
        self._get(API + "/services?limit=50", "/services")

    @task(2)
    def all_campaigns_list(self) -> None:
        self._get(API + "/campaigns?all=true&limit=20", "/campaigns")

    @task(3)
    def progress(self) -> None:
        if (cid := self._campaign()) is not None:
            self._get(f"{API}/campaigns/{cid}/progress", "/campaigns/{id}/progress")


class Script(_Client):
    weight = 3

    def on_start(self) -> None:
        self.account = random.choice(USERS)
        super().on_start()

    @task(3)
    def campaigns(self) -> None:
        self._get(API + "/campaigns?limit=20", "/campaigns")

    @task(5)
    def progress(self) -> None:
        if (cid := self._campaign()) is not None:
            self._get(f"{API}/campaigns/{cid}/progress", "/campaigns/{id}/progress")

    @task(2)
    def detail(self) -> None:
        if (cid := self._campaign()) is not None:
            self._get(f"{API}/campaigns/{cid}", "/campaigns/{id}")

    @task(2)
    def events(self) -> None:
        if (cid := self._campaign()) is not None:
            self._get(f"{API}/campaigns/{cid}/events?limit=50", "/campaigns/{id}/events")

    @task(2)
    def me(self) -> None:
        self._get(API + "/me", "/me")

    @task(1)
    def my_services(self) -> None:
        self._get(API + "/me/services", "/me/services")

    @task(3)
    def overview(self) -> None:
        self._get(API + "/monitor/overview", "/monitor/overview")

    @task(1)
    def health(self) -> None:
        # The anchor: no token, one trivial query and a Redis PING; the report divides by its p99.
        self._get(API + "/health", "/health")

    @task(1)
    def contacts(self) -> None:
        self._get(f"{API}/contacts?limit=50&offset={random.randrange(0, 5000)}", "/contacts")
