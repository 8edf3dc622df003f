"""`python -m tui --api URL`: the dashboard without the edm command."""

from __future__ import annotations

import argparse
import sys

from tui.cli import add_arguments, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tui", description="EDM live dashboard")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
