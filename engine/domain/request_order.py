"""A service's results, taken in the order its requests started rather than the order they came
back: a failure streak ("10 consecutive failures") is a streak of requests, so a slow failure
that started before a quick success does not end up after it."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class InRequestOrder(Generic[T]):
    def __init__(self) -> None:
        self._next = 0  # number of the next request to start
        self._due = 0  # number of the next result to release
        self._held: dict[int, T] = {}

    def start(self) -> int:
        """Number a request as it starts."""
        n, self._next = self._next, self._next + 1
        return n

    def finish(self, n: int, result: T) -> list[T]:
        """Request `n` came back: the results now releasable, in request order (maybe none)."""
        if n == self._due and not self._held:  # the usual case: answers come back in order
            self._due += 1
            return [result]
        self._held[n] = result
        out = []
        while self._due in self._held:
            out.append(self._held.pop(self._due))
            self._due += 1
        return out

    @property
    def open(self) -> int:
        """Requests started and not yet released."""
        return self._next - self._due
