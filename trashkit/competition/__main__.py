"""``python -m trashkit.competition ...``: the competition commands on their own."""

import sys

from .cli import main

sys.exit(main())
