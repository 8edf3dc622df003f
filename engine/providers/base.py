"""What the engine hands a provider, what it gets back, and the adapter protocol."""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

# `not_sent`: the request never left this machine (local congestion); it goes back to pending.
Outcome = Literal["sent", "failed", "throttled", "not_sent"]

# Error codes the adapters produce themselves (providers' own codes pass through as strings).
NETWORK_ERROR = "NETWORK_ERROR"
TIMEOUT = "TIMEOUT"
INVALID_MESSAGE = "INVALID_MESSAGE"
LOCAL_CONGESTION = "LOCAL_CONGESTION"


def request_id_of(subtask_id: str, attempt: int = 1) -> str:
    """The request id a provider sees for one attempt of a subtask: the subtask id for the first,
    `<subtask id>.<attempt>` for a retry (a new attempt of the same campaign), so a provider that
    de-duplicates on request ids never takes a retry for a repeat, and a log never confuses them."""
    return subtask_id if attempt <= 1 else f"{subtask_id}.{attempt}"


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """One rendered email for one recipient."""

    subtask_id: str
    campaign_id: str
    from_address: str
    to: str
    subject: str
    html: str
    text: str
    # Extra headers (List-Unsubscribe, List-Unsubscribe-Post); EngageLab takes them in the
    # body's `headers` object, SMTP as real headers.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Seconds the provider has to answer, once the request has its connection (the service's
    # `request_timeout`); None: the adapter's default.
    timeout: float | None = None
    # The provider request id (request_id_of); empty: the subtask id.
    request_id: str = ""


# Longest provider text the engine keeps (error texts and message ids end up in the database).
TEXT_LIMIT = 500


def clean_text(text: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """A provider's string made storable: no NUL (PostgreSQL rejects it in text), no lone
    surrogates (undecodable bytes smuggled through `surrogateescape`), at most `limit` chars."""
    if text is None:
        return None
    if not text.isascii() or "\x00" in text:
        text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit]


class SendResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one send attempt; never carries credentials.

    This is the adapter boundary: every string an adapter puts here (from the provider's reply)
    is cleaned once on construction, so nothing downstream has to distrust it.
    """

    outcome: Outcome
    message_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    # Seconds the provider asked us to wait (throttled replies only, when it said so).
    retry_after: float | None = None

    def __post_init__(self) -> None:
        for name in ("message_id", "error_code", "error"):
            value = getattr(self, name)
            if value is not None:
                clean = clean_text(value)
                if clean is not value:
                    msgspec.structs.force_setattr(self, name, clean)

    @classmethod
    def sent(cls, message_id: str | None) -> "SendResult":
        return cls(outcome="sent", message_id=message_id)

    @classmethod
    def failed(cls, code: str, error: str) -> "SendResult":
        return cls(outcome="failed", error_code=code, error=error)

    @classmethod
    def not_sent(cls, code: str, error: str) -> "SendResult":
        return cls(outcome="not_sent", error_code=code, error=error)

    @classmethod
    def throttled(cls, code: str, error: str, retry_after: float | None = None) -> "SendResult":
        return cls(outcome="throttled", error_code=code, error=error, retry_after=retry_after)


class ConnectionSlots:
    """The connections of one shared pool, as the engine counts them: from a request's bind to
    its answer (or to the moment it is known it will not be made).

    The dispatcher binds a request for a pooled adapter only while a slot is free, so every
    request it starts finds its connection at once: none queues in the pool (local congestion),
    and services beyond the pool wait for a slot unbound instead of being bound and given back.
    """

    __slots__ = ("capacity", "used")

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("a connection pool needs at least one connection")
        self.capacity = capacity
        self.used = 0

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def take(self) -> None:
        self.used += 1

    def give(self) -> None:
        self.used -= 1


class Provider(Protocol):
    """A sending service adapter.

    `send` never raises for provider or network trouble: it answers `failed` or `throttled`.
    A `failed` result after the request may have reached the provider (a timeout, a dropped
    connection) means the outcome is unknown; the engine must not resend it.

    `slots`: the shared connection pool its requests need (the engine binds no more requests
    than it has connections), or None when the adapter holds its own (SMTP) or needs none.
    """

    slots: ConnectionSlots | None

    def answer_now(self, message: Message) -> SendResult | None:
        """The answer without waiting, when the adapter needs no I/O to give it; None: the engine
        awaits `send`. An adapter that answers here spares the engine a task per request."""
        ...

    async def send(self, message: Message) -> SendResult: ...

    async def close(self) -> None: ...


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret replaced, and cut short: error texts end up in the database."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return clean_text(text) or ""
