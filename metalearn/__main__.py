"""`python -m metalearn` runs the same entrypoint as the `metalearn` console script."""

from metalearn.cli import main

if __name__ == "__main__":
    main()
