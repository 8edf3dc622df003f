"""What the engine hands a provider, what it gets back, and the adapter protocol."""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

Outcome = Literal["sent", "failed", "throttled"]

# Error codes the adapters produce themselves (providers' own codes pass through as strings).
NETWORK_ERROR = "NETWORK_ERROR"
TIMEOUT = "TIMEOUT"
INVALID_MESSAGE = "INVALID_MESSAGE"


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One rendered email for one recipient; `subtask_id` doubles as the provider request id."""

    subtask_id: str
    campaign_id: str
    from_address: str
    to: str
    subject: str
    html: str
    text: str


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one send attempt; never carries credentials."""

    outcome: Outcome
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    # Seconds the provider asked us to wait (throttled replies only, when it said so).
    retry_after: float | None = None

    @classmethod
    def sent(cls, message_id: str | None) -> "SendResult":
        return cls(outcome="sent", message_id=message_id)

    @classmethod
    def failed(cls, code: str, error: str) -> "SendResult":
        return cls(outcome="failed", error_code=code, error=error)

    @classmethod
    def throttled(cls, code: str, error: str, retry_after: float | None = None) -> "SendResult":
        return cls(outcome="throttled", error_code=code, error=error, retry_after=retry_after)


class Provider(Protocol):
    """A sending service adapter.

    `send` never raises for provider or network trouble: it answers `failed` or `throttled`.
    A `failed` result after the request may have reached the provider (a timeout, a dropped
    connection) means the outcome is unknown; the engine must not resend it.
    """

    async def send(self, message: Message) -> SendResult: ...

    async def close(self) -> None: ...


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret replaced, and cut short: error texts end up in the database."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:500]
