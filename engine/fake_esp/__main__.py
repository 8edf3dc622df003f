"""`python -m engine.fake_esp`."""

import sys

from engine.fake_esp.cli import main

sys.exit(main())
