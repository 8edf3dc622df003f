"""The fake ESP's knobs: a global default, per-api_user overrides, and the random seed."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from edm.fake_esp.webhooks import Feedback

Rate = Annotated[float, Meta(ge=0, le=1)]


class Knobs(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How one account behaves. `throttle_rate` and `error_rate` are disjoint shares of requests."""

    # Delay before every answer (the request is logged, and decided, on arrival).
    latency_ms: Annotated[float, Meta(ge=0, le=600_000)] = 0.0
    # Share of requests answered 500 {code: 50001}.
    error_rate: Rate = 0.0
    # Share of requests answered 429 {code: 42901}.
    throttle_rate: Rate = 0.0
    # Every request answered 403 {code: 40301} (a suspended account).
    fail_all: bool = False
    # Retry-After header (seconds) on 429 answers; None sends no header.
    retry_after: Annotated[float, Meta(ge=0)] | None = 1.0
    # The `message` of error answers (500 and 403) instead of the default text: fault runs
    # send poison (a NUL, lone surrogates, megabytes) to check the engine cleans what it stores.
    error_message: str | None = None


class FakeEspConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Start-up configuration. `default`, `users`, `seed`, `keys` and `webhooks` may change at run time."""

    default: Knobs = msgspec.field(default_factory=Knobs)
    # Per api_user knobs; a listed user's knobs replace the default as a whole.
    users: dict[str, Knobs] = msgspec.field(default_factory=dict)
    # Seed of the per-user random streams, so a run's outcomes can be repeated.
    seed: int = 0
    # Expected api_key per api_user; users not listed are accepted with any key.
    keys: dict[str, str] = msgspec.field(default_factory=dict)
    # Per api_user: post signed EngageLab callbacks to this URL, at these rates.
    webhooks: dict[str, Feedback] = msgspec.field(default_factory=dict)
    # Append every logged request to this JSON-lines file too.
    log_file: str | None = None
    # Requests kept in memory (the oldest are dropped past this; the file keeps all).
    log_max: Annotated[int, Meta(ge=1)] = 1_000_000

    def knobs_for(self, api_user: str) -> Knobs:
        return self.users.get(api_user, self.default)


class ConfigUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Body of `PUT /_fake/config`: each field given replaces that part of the config."""

    default: Knobs | msgspec.UnsetType = msgspec.UNSET
    users: dict[str, Knobs] | msgspec.UnsetType = msgspec.UNSET
    seed: int | msgspec.UnsetType = msgspec.UNSET
    keys: dict[str, str] | msgspec.UnsetType = msgspec.UNSET
    webhooks: dict[str, Feedback] | msgspec.UnsetType = msgspec.UNSET

    def apply(self, config: FakeEspConfig) -> FakeEspConfig:
        changes = {f: getattr(self, f) for f in self.__struct_fields__ if getattr(self, f) is not msgspec.UNSET}
        return msgspec.structs.replace(config, **changes)
