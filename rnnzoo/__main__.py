"""`python -m rnnzoo` is the `rnnzoo` command."""

import sys

from rnnzoo.cli import main

sys.exit(main())
