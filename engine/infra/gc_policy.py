"""The garbage-collector settings of a process that runs the engine.

The hot state is large and long-lived (services, fairness heaps, claimed subtasks in memory),
and dispatch allocates short-lived objects at thousands a second. With CPython's default
thresholds, full collections ran about once a second and each walked the whole hot state
(a quarter of a second each at 12,000 services): over a third of the engine's CPU time in
bench/dispatch.py, and a pause in every service's timing. Here a full collection needs ten
times more younger collections first. Reference counting still frees almost everything at
once; only cyclic garbage waits longer. (`gc.freeze()` was tried too: it gained nothing measurable, and it would
pin whatever cyclic garbage exists at the time for the life of the process.)
"""

from __future__ import annotations

import gc

# Younger collections between two full ones (CPython's default is 10).
FULL_EVERY = 100


def tune_for_dispatch() -> None:
    """Make full collections rarer (process-wide, idempotent)."""
    gen0, gen1, _ = gc.get_threshold()
    gc.set_threshold(gen0, gen1, FULL_EVERY)
