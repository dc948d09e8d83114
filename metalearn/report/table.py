"""One row per group: the test mean over seeds with its t interval, the runs' own episode intervals, seeds,
iterations and wall time; as a Markdown table (accuracy in %) and as CSV (raw numbers)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metalearn.report.grouping import MISSING, Group
from metalearn.report.intervals import mean_std_interval
from metalearn.report.runs import is_number
from metalearn.report.text import display, markdown_table

CSV_COLUMNS = ("metric", "mean", "std", "ci95_seeds", "ci95_episodes", "seeds", "iterations", "wall_time_s", "runs")
NOTE = (
    "test: mean over seeds ± Student's t 95% interval across seeds (n-1 degrees of freedom; – for one seed). "
    "episode CI95: mean of the runs' own 95% intervals over their test episodes. Accuracy in %."
)


@dataclass
class Row:
    group: Group
    mean: float
    std: float | None  # across seeds; None for one seed
    ci95_seeds: float | None  # half-width of the t interval; None for one seed
    ci95_episodes: float | None  # the mean of the runs' own ci95
    seeds: int
    iterations: list[int]
    wall_time_s: float | None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(group: Group) -> Row:
    results = [run.results for run in group.runs]
    mean, std, half = mean_std_interval([float(r["mean"]) for r in results])
    return Row(
        group,
        mean,
        std,
        half,
        _mean([float(r["ci95"]) for r in results if is_number(r.get("ci95"))]),
        len(results),
        [int(r["iterations"]) for r in results if is_number(r.get("iterations"))],
        _mean([float(r["wall_time_s"]) for r in results if is_number(r.get("wall_time_s"))]),
    )


def metric_label(metric: str) -> str:
    return "accuracy (%)" if metric == "accuracy" else metric


def number(value: float | None, metric: str) -> str:
    """accuracy as a percentage with two decimals (0.8927 -> 89.27); other metrics with 4 significant digits."""
    if value is None:
        return "–"
    return f"{100 * value:.2f}" if metric == "accuracy" else f"{value:.4g}"


def _iterations(values: list[int]) -> str:
    if not values:
        return "–"
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}–{high}"


def markdown(keys: list[str], rows: list[Row]) -> str:
    header = [*keys, "metric", "test", "episode CI95", "seeds", "iterations", "wall time (s)"]
    body = []
    for row in rows:
        metric = row.group.metric
        values = ["–" if v is MISSING else display(v) for v in row.group.values]
        body.append(
            [
                *values,
                metric_label(metric),
                f"{number(row.mean, metric)} ± {number(row.ci95_seeds, metric)}",
                f"± {number(row.ci95_episodes, metric)}" if row.ci95_episodes is not None else "–",
                str(row.seeds),
                _iterations(row.iterations),
                f"{row.wall_time_s:.1f}" if row.wall_time_s is not None else "–",
            ]
        )
    n = len(keys)
    return markdown_table(header, body, right={n + 1, n + 2, n + 3, n + 4, n + 5})


def _raw(value: Any) -> Any:
    """A CSV cell: numbers as Python writes them (they read back exactly), nothing for a missing one."""
    return "" if value is None else value


def _whole(value: float | None) -> float | int | None:
    return int(value) if value is not None and value.is_integer() else value


def write_csv(keys: list[str], rows: list[Row], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*keys, *CSV_COLUMNS])
        for row in rows:
            values = ["" if v is MISSING else display(v) for v in row.group.values]
            writer.writerow(
                [
                    *values,
                    row.group.metric,
                    row.mean,
                    _raw(row.std),
                    _raw(row.ci95_seeds),
                    _raw(row.ci95_episodes),
                    row.seeds,
                    _raw(_whole(_mean([float(i) for i in row.iterations]))),
                    _raw(row.wall_time_s),
                    ";".join(str(run.path) for run in row.group.runs),
                ]
            )
