"""The fake ESP's record of every request it received: ground truth for tests and benchmarks."""

from __future__ import annotations

from collections import Counter, deque
from typing import IO, Any, Literal

import msgspec

Outcome = Literal["sent", "failed", "throttled", "bad_request", "unauthorized"]


class LogEntry(msgspec.Struct, kw_only=True):
    """One request as the fake ESP saw it; the api_key is never kept."""

    seq: int
    time: str  # ISO 8601, UTC, at arrival
    t: float  # time.monotonic() at arrival, for interval measurements
    api_user: str | None
    from_: str | None = msgspec.field(name="from")
    to: list[str] | None
    request_id: str | None
    custom_args: dict[str, Any] | None
    outcome: Outcome
    status: int
    email_id: str | None
    # The `headers` object of the send body (List-Unsubscribe and friends), as received.
    headers: dict[str, str] | None = None
    # time.monotonic() when the answer was handed back (after the latency); with `t`, how many
    # requests were open at once. Set in memory only (the file line is written on arrival).
    answered: float | None = None


_encoder = msgspec.json.Encoder()


class RequestLog:
    """In-memory (bounded) and optionally file-backed (JSON lines, append) request log."""

    def __init__(self, max_entries: int = 1_000_000, path: str | None = None):
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._next_seq = 0
        self.counts: Counter[str] = Counter()
        self.by_user: Counter[str] = Counter()
        self._file: IO[bytes] | None = open(path, "ab") if path else None  # noqa: SIM115 - closed in close()

    def next_seq(self) -> int:
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        return seq

    def append(self, entry: LogEntry) -> None:
        self._entries.append(entry)
        self.counts[entry.outcome] += 1
        self.by_user[entry.api_user or ""] += 1
        if self._file is not None:
            # Flushed per line so a reader (or a crash) never sees half a run.
            self._file.write(_encoder.encode(entry) + b"\n")
            self._file.flush()

    def entries(self, *, since: int = 0, api_user: str | None = None, limit: int | None = None) -> list[LogEntry]:
        """Entries with `seq >= since`, optionally of one api_user, oldest first."""
        out = []
        for entry in self._entries:
            if entry.seq < since or (api_user is not None and entry.api_user != api_user):
                continue
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
        return out

    def stats(self) -> dict[str, Any]:
        return {"total": sum(self.counts.values()), "kept": len(self._entries), "next_seq": self._next_seq,
                "by_outcome": dict(self.counts), "by_user": dict(self.by_user)}

    def clear(self) -> None:
        """Forget the in-memory entries and counters (the file, if any, is left as it is)."""
        self._entries.clear()
        self._next_seq = 0
        self.counts.clear()
        self.by_user.clear()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def encode_json(entries: list[LogEntry]) -> bytes:
    return _encoder.encode(entries)


def encode_jsonl(entries: list[LogEntry]) -> bytes:
    return b"".join(_encoder.encode(e) + b"\n" for e in entries)
