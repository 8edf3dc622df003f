"""A campaign's quota units: pure rules shared by every path that gives units back.

A started campaign holds `reserved` units for its `total` subtasks; units of subtasks that will
never reach a provider (cancelled, suppressed, never rendered) go back to the owner and are
counted in `released`, so `total - released - reserved` is always the shortfall the start could
not charge, whichever path gave units back.
"""

from __future__ import annotations


def shortfall(total: int, reserved: int, released: int) -> int:
    """Subtasks not covered by the owner's quota (the extra the start could not charge)."""
    return max(0, total - released - reserved)


def cancel_refund(cancelled: int, total: int, reserved: int, released: int = 0) -> int:
    """Units to give back when `cancelled` never-attempted subtasks go: never more than is held.

    Units of the shortfall were never held, so they are not refunded; `released` units were
    already given back.
    """
    return max(0, min(reserved, cancelled - shortfall(total, reserved, released)))
