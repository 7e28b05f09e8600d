"""`python -m rnnzoo` is the `rnnzoo` command."""

import sys

from rnnzoo.app.cli import main

sys.exit(main())
