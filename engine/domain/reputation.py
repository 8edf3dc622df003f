"""The reputation guard's rule: freeze a service before its provider suspends the account."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GuardPolicy:
    # Look at this many of the service's most recent accepted sends.
    window: int = 1000
    # Judge nothing on fewer sends than this (a few early bounces are noise).
    min_sends: int = 100
    # Mailbox providers' guidance: complaints under 0.3 %, hard bounces well under 5 %.
    complaint_rate: float = 0.003
    hard_bounce_rate: float = 0.05


def verdict(policy: GuardPolicy, sends: int, hard_bounced: int, complained: int) -> str | None:
    """The freeze reason when a rate is over its threshold, else None."""
    if sends < policy.min_sends or sends <= 0:
        return None
    complaint = complained / sends
    if complaint > policy.complaint_rate:
        return (f"reputation guard: complaint rate {complaint:.2%} over {policy.complaint_rate:.2%} "
                f"in the last {sends} sends")
    bounce = hard_bounced / sends
    if bounce > policy.hard_bounce_rate:
        return (f"reputation guard: hard bounce rate {bounce:.2%} over {policy.hard_bounce_rate:.2%} "
                f"in the last {sends} sends")
    return None
