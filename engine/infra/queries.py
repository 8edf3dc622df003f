"""Named SQL blocks from `sql/queries/*.sql`, loaded once.

A block starts with a line `-- name: some_name`; the text up to the next such line is the
statement. Blocks are addressed as `file.some_name` (file without `.sql`).
"""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_blocks(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2]):
        if name in blocks:
            raise ValueError(f"duplicate query name {name!r}")
        blocks[name] = body.strip()
    return blocks


def load_queries(directory: Path = SQL_DIR / "queries") -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        for name, sql in parse_blocks(path.read_text()).items():
            queries[f"{path.stem}.{name}"] = sql
    return queries


Q: dict[str, str] = load_queries()
