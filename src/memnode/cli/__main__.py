"""``python -m memnode.cli``: the same as the ``memnode`` command."""

import sys

from memnode.cli.main import main

sys.exit(main())
