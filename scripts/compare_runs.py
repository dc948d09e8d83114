"""Compare two folders written by scripts/record_runs.sh: every run's metrics.jsonl and results.json must be
equal, except for wall-clock fields (elapsed_s, wall_time_s) and paths that name the folder itself.

Usage: python scripts/compare_runs.py BEFORE AFTER   (exit 1 if any run differs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CLOCK = {"elapsed_s", "wall_time_s", "checkpoint"}


def rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    text = path.read_text()
    items = [json.loads(line) for line in text.splitlines()] if path.suffix == ".jsonl" else [json.loads(text)]
    return [{k: v for k, v in item.items() if k not in CLOCK} for item in items]


def main(before: Path, after: Path) -> int:
    names = sorted(p.name for p in before.iterdir() if p.is_dir())
    differ = 0
    for name in names:
        for file in ("metrics.jsonl", "results.json"):
            a, b = rows(before / name / file), rows(after / name / file)
            exists = [(folder / name / file).is_file() for folder in (before, after)]
            same = a == b and exists[0] == exists[1] and (exists[0] or file == "metrics.jsonl")
            differ += not same
            print(f"{name:18s} {file:14s} {'identical' if same else 'DIFFERENT'} ({len(a)} / {len(b)} rows)")
    print(f"{len(names)} runs, {differ} files differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
