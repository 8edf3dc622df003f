"""Timed unfreezes: when the next credentials probe of a still-frozen service comes (pure rules)."""

from __future__ import annotations

from datetime import timedelta

# A failed probe keeps the service frozen; the k-th failure in a row waits 1, 2, 4, … minutes,
# at most an hour, before the next probe.
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)


def probe_backoff(failed_probes: int) -> timedelta:
    """Wait before the next probe after `failed_probes` (>= 1) failed ones in a row."""
    return min(MAX_RETRY, FIRST_RETRY * 2 ** min(max(failed_probes, 1) - 1, 12))


def probe_reason(verdict: str, detail: str) -> str:
    """The visible reason of a service a failed probe keeps frozen."""
    return f"unfreeze probe failed: {verdict} ({detail})"[:500]
