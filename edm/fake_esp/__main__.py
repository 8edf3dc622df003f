"""`python -m edm.fake_esp`."""

import sys

from edm.fake_esp.cli import main

sys.exit(main())
