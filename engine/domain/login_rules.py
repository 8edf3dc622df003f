"""The login throttling rule, shared by the Redis counters and their PostgreSQL fallback.

Two counters, both counted *before* the password is checked (a reservation), so parallel
guesses cannot all pass a check that only failures would have moved:
- per (account, client address): at most `max_attempts` unsuccessful attempts per window, then
  refused until the window ends. One address cannot guess forever; other addresses (and other
  accounts behind the same proxy) are not affected.
- per account, from anywhere: past `max_attempts`, each further attempt must wait an
  exponentially growing delay (1 s, 2 s, 4 s, … capped at `max_delay`) after the previous one.
  A distributed guesser is slowed to one try per `max_delay`; the owner is delayed, never locked.
A successful login clears both counters of that account and address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class ThrottleRule:
    max_attempts: int
    window: timedelta
    max_delay: timedelta = timedelta(seconds=60)

    def delay_after(self, attempts: int) -> timedelta:
        """How long the account waits after its `attempts`-th unsuccessful attempt."""
        if attempts < self.max_attempts:
            return timedelta(0)
        exponent = min(attempts - self.max_attempts, 30)
        return min(self.max_delay, timedelta(seconds=2 ** exponent))


@dataclass(frozen=True)
class Counter:
    """Attempts counted since `started`; for the account, also the earliest next attempt."""

    attempts: int = 0
    started: datetime | None = None
    next_allowed: datetime | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: timedelta
    pair: Counter
    account: Counter


def decide(rule: ThrottleRule, pair: Counter, account: Counter, now: datetime) -> Decision:
    """Whether this attempt may check a password, and the counters to store if it may."""
    pair = _fresh(rule, pair, now)
    account = _fresh(rule, account, now)
    if pair.attempts >= rule.max_attempts:
        assert pair.started is not None
        return Decision(False, pair.started + rule.window - now, pair, account)
    if account.next_allowed is not None and now < account.next_allowed:
        return Decision(False, account.next_allowed - now, pair, account)
    n = account.attempts + 1
    # No delay below the limit: a next-allowed time of "now" would refuse a concurrent attempt
    # whose clock was read a moment earlier (parallel correct logins of one account).
    delay = rule.delay_after(n)
    return Decision(True, timedelta(0), Counter(pair.attempts + 1, pair.started or now),
                    Counter(n, account.started or now, now + delay if delay else None))


def _fresh(rule: ThrottleRule, counter: Counter, now: datetime) -> Counter:
    """A counter whose window has ended starts again from zero."""
    if counter.started is None or now - counter.started >= rule.window:
        return Counter()
    return counter
