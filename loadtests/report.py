"""Print Locust's per-endpoint figures (from its `--csv PREFIX` files) as one table: requests,
failures, req/s, p50/p95/p99 and max in milliseconds, p99 as a ratio of `/health`'s p99 in the
same run (the machine's floor under the same load), and whether p99 is under the budget."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

BUDGET_MS = 100.0  # issue 11: p99 < 100 ms per endpoint, 0 failures


def table(prefix: str) -> str:
    rows = list(csv.DictReader(Path(prefix + "_stats.csv").open()))
    anchor = next((float(r["99%"] or 0) for r in rows if r["Name"] == "/health"), 0.0)
    out = [f"{'endpoint':34} {'method':6} {'reqs':>7} {'fail':>5} {'req/s':>7} {'p50':>6} {'p95':>6} {'p99':>6} "
           f"{'max':>7} {'p99/health':>10}  p99<{BUDGET_MS:.0f}ms"]
    for r in rows:
        name = r["Name"] if r["Type"] else "(all)"
        if name == "(setup)":
            continue
        p99 = float(r["99%"] or 0)
        ok = "yes" if p99 < BUDGET_MS and r["Failure Count"] == "0" else "NO"
        if r["Name"] in ("Aggregated", "/auth/login"):
            ok = ""  # one login per user at the start is no steady endpoint; the aggregate is for context
        out.append(f"{r['Name'][:34]:34} {r['Type'][:6]:6} {r['Request Count']:>7} {r['Failure Count']:>5} "
                   f"{float(r['Requests/s']):7.1f} {r['50%']:>6} {r['95%']:>6} {r['99%']:>6} "
                   f"{float(r['Max Response Time']):7.0f} {(p99 / anchor if anchor else 0):10.2f}  {ok}")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(sys.argv[1]))
