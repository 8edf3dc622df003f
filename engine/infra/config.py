"""Configuration: one typed object read from `EDM_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from engine.domain.errors import ConfigError

PREFIX = "EDM_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every setting of the product. Each field is read from `EDM_<FIELD in upper case>`."""

    # PostgreSQL URL; empty = start the embedded PostgreSQL under `data_dir`.
    database_url: str = ""
    # Redis URL; empty = start an embedded redis-server under `data_dir`.
    redis_url: str = ""
    # Folder for the embedded servers' data (kept across restarts).
    data_dir: str = ".edm"
    # Address and port the control API listens on.
    host: str = "127.0.0.1"
    port: int = 8080
    # Port of the fake ESP that `edm demo` starts (on 127.0.0.1); the demo's services point at it.
    fake_esp_port: int = 8081
    # Secret that signs JWTs; empty = a random one kept in `data_dir` (fine for a single host).
    jwt_secret: str = ""
    # Token lifetime in seconds.
    jwt_ttl: int = 12 * 3600
    # Fernet key (urlsafe base64, 32 bytes) that encrypts service credentials; empty = a key
    # generated once and kept in `data_dir`.
    secret_key: str = ""
    # The business time zone for quota reset times.
    business_tz: str = "Asia/Shanghai"
    # Largest accepted request body in bytes (contact imports are the big ones).
    max_body_bytes: int = 64 * 1024 * 1024
    # Login throttling: failed attempts allowed per window, per account and per client address.
    login_max_failures: int = 10
    login_window_seconds: int = 300
    # Browser origins allowed by CORS, comma-separated (e.g. `https://ops.example.com`); empty = none.
    cors_origins: str = ""
    # How long an Idempotency-Key answer is kept, in seconds.
    idempotency_ttl: int = 24 * 3600
    # Database pool size.
    db_pool_size: int = 10
    # Connections of the one HTTP pool every EngageLab service shares: the most requests in flight
    # at once across all of them (the engine binds no more than it can put on the wire).
    http_pool_size: Annotated[int, msgspec.Meta(ge=1)] = 200
    # Seconds one overview snapshot is shared by every client with the same scope (0 = never).
    overview_cache_seconds: float = 1.0
    # Seconds a bearer token's user row (enabled, role, token version) is reused between requests
    # of one API process (0 = read it on every request). Whatever ends tokens drops it at once in
    # every process (the revocation push); without the push, a change shows within this.
    auth_cache_seconds: float = 1.0
    # Most active campaigns (running, or paused by the system) per user; 0 = no cap (the seed's
    # MAX_CONCURRENT_CAMPAIGNS). A due campaign over the cap waits pending; a resume over it is refused.
    max_concurrent_campaigns: int = 0
    # Most requests per minute across the whole engine (any 60 s), the seed's EMAIL_SEND_RATE_LIMIT;
    # 0 = no cap. An administrator may override it at runtime (PUT /engine/send-rate-limit).
    send_rate_limit: int = 0
    # Log level name.
    log_level: str = "INFO"
    # Base URL recipients reach the API's public side at (unsubscribe links, open pixel, click
    # redirects, webhook URLs shown to admins); empty = http://HOST:PORT.
    public_url: str = ""
    # Webhooks signed more than this many seconds away from now are refused (replay window).
    webhook_tolerance: int = 300
    # Soft bounces in a row that suppress an address.
    soft_bounce_limit: int = 3
    # Reputation guard: judge a service over its last `guard_window` accepted sends, once it has
    # at least `guard_min_sends`; freeze above these rates (fractions: 0.003 = 0.3 %).
    guard_window: int = 1000
    guard_min_sends: int = 100
    guard_complaint_rate: float = 0.003
    guard_hard_bounce_rate: float = 0.05
    # Own open pixel and click-redirect links in SMTP services' messages.
    smtp_tracking: bool = False
    # Retention: `edm archive` without --older-than archives campaigns finished more than this
    # many days ago (their subtasks leave the hot table; counts, history and logs stay). 0 = off.
    retention_days: int = 0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business_tz)

    @property
    def public_base(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Settings":
        """Read `EDM_*` variables; unknown `EDM_*` keys are an error, not silently ignored."""
        env = os.environ if env is None else env
        known = {f.name for f in msgspec.structs.fields(cls)}
        # Variables the tools themselves read (tests, demo) are not settings of the server.
        tooling = {"test_database_url", "test_redis_url", "api", "token", "username", "password"}
        raw: dict[str, object] = {}
        for key, value in env.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):].lower()
            if name in tooling:
                continue
            if name not in known:
                raise ConfigError(f"unknown setting {key}", field=key)
            raw[name] = value
        raw.update(overrides)
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"bad setting: {exc}") from exc
        try:
            settings.tz
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {settings.business_tz!r}", field="EDM_BUSINESS_TZ") from exc
        if settings.send_rate_limit < 0:
            raise ConfigError("EDM_SEND_RATE_LIMIT must be 0 (no cap) or more", field="EDM_SEND_RATE_LIMIT")
        return settings
