"""Schemathesis with all checks against the app's own OpenAPI document (`make fuzz`).

Slow (minutes): behind the `schemathesis` marker, excluded from `make test`. The number of
examples per operation is bounded by EDM_FUZZ_EXAMPLES (default 25); EDM_FUZZ_ARGS adds
Schemathesis options (say, a path filter).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import Api

pytestmark = pytest.mark.schemathesis

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(1800)
async def test_schemathesis_all_checks_find_nothing(admin: Api, client, deps, tmp_path: Path) -> None:
    deps.sse_ping_seconds = 0.5
    port = client.server.port
    st = Path(sys.executable).with_name("st")
    args = [str(st), "--config-file", str(ROOT / "tests" / "schemathesis.toml"), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json", "--url", f"http://127.0.0.1:{port}",
            "--checks", "all", "--max-examples", os.environ.get("EDM_FUZZ_EXAMPLES", "25"), "--seed", "7",
            "--workers", "1",
            # Not the stateful phase: its inferred links feed a null field ("None") into path ids.
            "--phases", "examples,coverage,fuzzing",
            # Left out, with their open findings (README, make fuzz): the CSV / JSON-lines import,
            # whose header and rows no JSON Schema of a string can state; and the recipients'
            # feedback routes (webhooks, suppressions, recipient links), whose schemas do not yet
            # state their email rule, their CSV answer or their link tokens.
            "--exclude-operation-id", "import_contacts_view",
            "--exclude-tag", "feedback", "--exclude-tag", "suppression", "--exclude-tag", "recipients", "--request-timeout", "10", "--no-color",
            "-H", f"Authorization: Bearer {admin.token}", "--report", "ndjson", "--report-dir", str(tmp_path),
            # e.g. EDM_FUZZ_ARGS="--include-path-regex /services" to fuzz a part of the API
            *shlex.split(os.environ.get("EDM_FUZZ_ARGS", ""))]
    proc = await asyncio.create_subprocess_exec(*args, cwd=str(ROOT), stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode()
    (Path(os.environ.get("EDM_FUZZ_LOG", "")) if os.environ.get("EDM_FUZZ_LOG") else tmp_path / "st.txt").write_text(text)
    assert proc.returncode == 0, text[-20000:]
