"""The fixture API's deliverability routes (funnel, reputation, suppression list totals, alerts), with
small canned answers shaped like the live API's."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

Who = Callable[[web.Request], "dict[str, Any] | None"]
Reply = Callable[[Any], web.Response]
Refuse = Callable[[int, str, str], web.Response]
FLAKY = "00000000-0000-0000-0000-000000000053"  # the fixture's frozen service


def sample_funnel() -> dict[str, Any]:
    counts = {"delivered": 4300, "opened": 1720, "clicked": 430, "hard_bounced": 120, "soft_bounced": 65,
              "complained": 9, "unsubscribed": 22}
    return {"total": 10000, "sent": 4500, "failed": 12, "suppressed_at_start": 31, "attempts": 4530, **counts,
            "rates": {k: round(v / 4500, 6) for k, v in counts.items()}}


def sample_reputation(service_id: str) -> dict[str, Any]:
    """flaky was frozen by the guard in the fixture; the others are clean."""
    bad = service_id == FLAKY
    sends, bounced, complained = (400, 36, 2) if bad else (1000, 4, 0)
    return {"service_id": service_id, "window": 1000, "sends": sends, "hard_bounced": bounced,
            "complained": complained, "hard_bounce_rate": bounced / sends, "complaint_rate": complained / sends,
            "thresholds": {"hard_bounce_rate": 0.05, "complaint_rate": 0.001, "min_sends": 200}}


def sample_alerts() -> list[dict[str, Any]]:
    def delivery(channel: str, state: str, attempts: int = 1, error: str | None = None) -> dict[str, Any]:
        return {"channel_id": "00000000-0000-0000-0000-0000000000e1", "channel": channel, "state": state,
                "attempts": attempts, "next_attempt_at": None, "last_error": error,
                "delivered_at": "2026-11-23T04:41:00Z" if state == "delivered" else None}

    return [
        {"id": "00000000-0000-0000-0000-0000000000f1", "rule_id": "00000000-0000-0000-0000-0000000000d1",
         "rule": "frozen services", "kind": "service_frozen", "subject": "flaky",
         "message": "flaky froze: 5 failures in a row: HTTP 500", "data": {}, "opened_at": "2026-11-23T04:40:00Z",
         "cleared_at": None, "deliveries": [delivery("ops-wecom", "delivered"),
                                            delivery("oncall-hook", "failed", 3, "HTTP 502")]},
        {"id": "00000000-0000-0000-0000-0000000000f2", "rule_id": "00000000-0000-0000-0000-0000000000d2",
         "rule": "quota low", "kind": "user_quota_low", "subject": "bob",
         "message": "bob has 0 quota left", "data": {}, "opened_at": "2026-11-23T03:00:00Z",
         "cleared_at": "2026-11-23T03:30:00Z", "deliveries": [delivery("ops-wecom", "pending", 0)]},
    ]


SUPPRESSED = {"00000000-0000-0000-0000-0000000000a1": 17, "00000000-0000-0000-0000-0000000000b0": 0}


def add_feedback_routes(app: web.Application, who: Who, reads: list[str], ok: Reply, failure: Refuse) -> None:
    """GET routes the dashboard reads for deliverability; admin-only ones answer 403 to users."""

    async def handle(request: web.Request) -> web.Response:
        user = who(request)
        if not user:
            return failure(401, "UNAUTHORIZED", "missing or invalid token")
        path = request.path.removeprefix("/api/v1")
        reads.append(request.path_qs.removeprefix("/api/v1"))
        admin = user["role"] == "admin"
        if path.endswith("/funnel"):
            return ok(sample_funnel())
        if not admin and (path.startswith("/services") or path == "/alerts" or "user_id" in request.query):
            return failure(403, "FORBIDDEN", "administrators only")
        if path.endswith("/reputation"):
            return ok(sample_reputation(request.match_info["id"]))
        if path == "/suppressions":
            n = SUPPRESSED.get(request.query.get("user_id", user["id"]), 0)
            items = [{"email": f"x{i}@example.net"} for i in range(min(n, int(request.query.get("limit", 50))))]
            return ok({"items": items, "total": n, "limit": 1, "offset": 0})
        alerts = sample_alerts()
        return ok({"items": alerts, "total": len(alerts), "limit": 50, "offset": 0})

    for path in ("/campaigns/{id}/funnel", "/services/{id}/reputation", "/suppressions",
                 "/alerts"):
        app.router.add_get("/api/v1" + path, handle)
