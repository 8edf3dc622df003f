"""The `edm tui` sub-command (registered by the edm CLI), `python -m tui`, and an in-loop opener."""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", default=os.environ.get("EDM_API", "http://127.0.0.1:8080"),
                        help="base URL of the control API (env EDM_API; default http://127.0.0.1:8080)")
    parser.add_argument("--username", default=os.environ.get("EDM_USERNAME", ""),
                        help="log in as this user (env EDM_USERNAME); without a password the login screen asks")
    parser.add_argument("--password", default=os.environ.get("EDM_PASSWORD", ""),
                        help="password (env EDM_PASSWORD); a token in EDM_TOKEN skips the login")
    parser.add_argument("--interval", type=float, default=1.0, help="overview refresh period in seconds")


def run(args: argparse.Namespace) -> int:
    """Open the dashboard until the operator quits."""
    from tui.app import Dashboard
    from tui.client import ApiClient

    client = ApiClient(args.api, token=os.environ.get("EDM_TOKEN") or None)
    Dashboard(client, username=args.username, password=args.password, interval=max(0.2, args.interval)).run()
    return 0


async def open_dashboard(api: str, username: str = "", password: str = "", token: str | None = None) -> None:
    """Run the dashboard inside an already running event loop (e.g. `edm demo`) until it quits."""
    from tui.app import Dashboard
    from tui.client import ApiClient

    await Dashboard(ApiClient(api, token), username=username, password=password).run_async()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `tui` to the edm command's sub-parsers."""
    parser = sub.add_parser("tui", help="the live dashboard (talks to the API only)",
                            description="Live dashboard of services, campaigns, users and events.")
    add_arguments(parser)
    parser.set_defaults(fn=run)
