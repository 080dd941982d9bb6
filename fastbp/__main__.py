"""``python -m fastbp``: see fastbp.cli."""

import sys

from fastbp.cli import main

if __name__ == "__main__":
    sys.exit(main())
