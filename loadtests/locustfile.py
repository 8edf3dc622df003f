"""Locust load on the control API while a campaign dispatches.

    make demo            # in one terminal (or `edm serve` with your data)
    make loadtest        # 100 users for 60 s against http://127.0.0.1:8080, prints p50/p95/p99

Every user logs in once, then mixes the calls operators and scripts make most: the dashboard's
overview, campaign lists and details, the caller's profile, and contact pages.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

USERNAME = os.environ.get("EDM_USERNAME", "alice")
PASSWORD = os.environ.get("EDM_PASSWORD", "alice-demo-pass")


class Operator(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        resp = self.client.post("/api/v1/auth/login", json={"username": USERNAME, "password": PASSWORD})
        resp.raise_for_status()
        self.client.headers["Authorization"] = "Bearer " + resp.json()["data"]["token"]
        campaigns = self.client.get("/api/v1/campaigns?limit=20").json().get("data", {}).get("items", [])
        self.campaign_ids = [c["id"] for c in campaigns]

    @task(5)
    def overview(self) -> None:
        self.client.get("/api/v1/monitor/overview", name="/monitor/overview")

    @task(3)
    def campaigns(self) -> None:
        self.client.get("/api/v1/campaigns?limit=20", name="/campaigns")

    @task(3)
    def campaign_detail(self) -> None:
        if self.campaign_ids:
            self.client.get(f"/api/v1/campaigns/{random.choice(self.campaign_ids)}", name="/campaigns/{id}")

    @task(2)
    def me(self) -> None:
        self.client.get("/api/v1/me", name="/me")

    @task(2)
    def contacts(self) -> None:
        self.client.get(f"/api/v1/contacts?limit=50&offset={random.randrange(0, 5000)}", name="/contacts")
