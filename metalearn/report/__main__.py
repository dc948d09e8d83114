"""`python -m metalearn.report DIR ...`, the same as `metalearn report DIR ...`."""

import sys

from metalearn.report.command import main

if __name__ == "__main__":
    sys.exit(main())
