"""A fake EngageLab email API whose request log is the ground truth for tests, demo and benchmarks."""

from edm.fake_esp.cli import add_arguments, main, run
from edm.fake_esp.config import ConfigUpdate, FakeEspConfig, Knobs
from edm.fake_esp.request_log import LogEntry, RequestLog
from edm.fake_esp.server import FAKE_ESP, FakeEsp, bound_port, build_app, serve

__all__ = [
    "FAKE_ESP", "ConfigUpdate", "FakeEsp", "FakeEspConfig", "Knobs", "LogEntry", "RequestLog",
    "add_arguments", "bound_port", "build_app", "main", "run", "serve",
]
