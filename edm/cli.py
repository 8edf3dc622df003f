"""The `edm` command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from typing import Callable

from engine.domain.errors import EdmError
from engine.infra.config import Settings


def _settings() -> Settings:
    return Settings.from_env()


def cmd_serve(args: argparse.Namespace) -> int:
    from edm.serve import run_serve

    return run_serve(_settings())


def cmd_demo(args: argparse.Namespace) -> int:
    from edm.demo import run_demo

    return run_demo(_settings(), open_dashboard=not args.no_tui)


def cmd_migrate(args: argparse.Namespace) -> int:
    from edm.runtime import resolve_urls
    from engine.infra import db

    urls = resolve_urls(_settings(), redis=False)

    async def go() -> list[str]:
        conn = await db.connect(urls.database)
        try:
            return await db.migrate(conn)
        finally:
            await conn.close()

    applied = asyncio.run(go())
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    from edm.runtime import open_deps, resolve_urls
    from engine.store.accounts import create_user

    password = os.environ.get("EDM_PASSWORD") or _read_password()
    if not password:
        print("error: no password given (set EDM_PASSWORD, type it at the prompt or pipe it in)", file=sys.stderr)
        return 2
    if len(password) < 8:
        print("error: the password needs at least 8 characters", file=sys.stderr)
        return 2
    settings = _settings()
    urls = resolve_urls(settings)

    async def go() -> None:
        async with open_deps(settings, urls) as d:
            user = await create_user(d.pool, d.passwords, args.username, args.email or f"{args.username}@localhost",
                                     password, role="admin" if args.admin else "user", quota=args.quota)
            print(f"created {user.role} {user.username} ({user.id})")

    asyncio.run(go())
    return 0


def cmd_user_unlock(args: argparse.Namespace) -> int:
    from api.login_throttle import unlock
    from edm.runtime import open_deps, resolve_urls

    settings = _settings()
    urls = resolve_urls(settings)

    async def go() -> int:
        async with open_deps(settings, urls) as d:
            return await unlock(d.redis, d.pool, args.username)

    cleared = asyncio.run(go())
    print(f"unlocked {args.username}: {cleared} login counter(s) cleared")
    return 0


def _read_password() -> str:
    """The prompt on a terminal; the first line of stdin otherwise (empty when stdin is closed)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    try:
        return getpass.getpass("password: ")
    except EOFError:
        return ""


def cmd_schema_snapshot(args: argparse.Namespace) -> int:
    from edm.schema_snapshot import write_snapshot

    path = write_snapshot(_settings())
    print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edm", description="Bulk-email dispatch engine")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    add("serve", cmd_serve, "run the engine and the control API")
    demo = add("demo", cmd_demo, "the product tour: embedded servers, fake ESP, demo data, engine, API")
    demo.add_argument("--no-tui", action="store_true", help="serve only; do not open the dashboard")
    add("migrate", cmd_migrate, "apply database migrations")
    add("schema-snapshot", cmd_schema_snapshot, "rewrite sql/schema_snapshot.txt from the migrated database")

    user = sub.add_parser("user", help="user administration").add_subparsers(dest="user_command", required=True)
    create = user.add_parser("create", help="create a user (password from EDM_PASSWORD or a prompt)")
    create.add_argument("username")
    create.add_argument("--email", default="")
    create.add_argument("--admin", action="store_true", help="create an administrator")
    create.add_argument("--quota", type=int, default=0)
    create.set_defaults(fn=cmd_user_create)
    unlock = user.add_parser("unlock", help="clear an account's failed-login counters (every address)")
    unlock.add_argument("username")
    unlock.set_defaults(fn=cmd_user_unlock)

    for register in _plugins():
        register(sub)
    return parser


def _plugins() -> list[Callable[[argparse._SubParsersAction], None]]:  # type: ignore[type-arg]
    """Sub-commands that live beside the features they drive."""
    from edm import cli_plugins

    return cli_plugins.ALL


def main(argv: list[str] | None = None) -> int:
    from edm.logging_setup import setup_logging

    args = build_parser().parse_args(argv)
    try:
        setup_logging(_settings().log_level)
        return int(args.fn(args) or 0)
    except EdmError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        # Servers that cannot be reached or files that cannot be written: the reason, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
