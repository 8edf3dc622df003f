"""The embedded PostgreSQL's settings: sized to the machine, written once into its data folder."""

from __future__ import annotations

from pathlib import Path

from edm.embedded import postgres_settings, write_postgres_settings

GIB = 1 << 30


def test_shared_buffers_are_an_eighth_of_memory_between_128_mb_and_2_gb() -> None:
    assert postgres_settings(512 << 20)["shared_buffers"] == "128MB"
    assert postgres_settings(8 * GIB)["shared_buffers"] == "1024MB"
    assert postgres_settings(64 * GIB)["shared_buffers"] == "2048MB"


def test_the_settings_file_is_included_once_and_rewritten_each_start(tmp_path: Path) -> None:
    (tmp_path / "postgresql.conf").write_text("port = 5432\n")
    write_postgres_settings(tmp_path, {"shared_buffers": "1024MB"})
    write_postgres_settings(tmp_path, {"shared_buffers": "2048MB", "max_wal_size": "4GB"})
    assert (tmp_path / "postgresql.conf").read_text() == "port = 5432\ninclude_if_exists = 'edm.conf'\n"
    assert (tmp_path / "edm.conf").read_text() == "shared_buffers = '2048MB'\nmax_wal_size = '4GB'\n"
