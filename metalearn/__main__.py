"""`python -m metalearn` runs the same entrypoint as the `metalearn` console script."""

import sys

from metalearn.cli import main

if __name__ == "__main__":
    sys.exit(main())
