"""The report's figures, 640x400 px PNGs: validation curves per group against iterations and against time, and
the test metric per group with its interval across seeds. matplotlib is imported here only, without pyplot (no
global state, no display needed); callers catch the ImportError when it is not installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metalearn.report.grouping import Group
from metalearn.report.intervals import mean_std_interval
from metalearn.report.table import Row, metric_label

SIZE_IN = (6.4, 4.0)
DPI = 100  # 640 x 400 pixels
FILES = ("val_curves.png", "val_curves_time.png", "test_metric.png")


def mean_curve(group: Group, x: str = "iteration") -> list[tuple[float, float, float]]:
    """(x, mean, half-width of the t 95% interval; 0 for one seed) of the group's validation metric at each
    iteration over its seeds; x is the iteration, or with x="elapsed" the mean elapsed seconds at that iteration."""
    at: dict[int, list[tuple[float, float | None]]] = {}
    for run in group.runs:
        last = {iteration: (value, elapsed) for iteration, value, elapsed in run.curve(group.metric)}  # last row wins
        for iteration, point in last.items():
            at.setdefault(iteration, []).append(point)
    points = []
    for iteration in sorted(at):
        mean, _, half = mean_std_interval([value for value, _ in at[iteration]])
        if x == "iteration":
            points.append((float(iteration), mean, half or 0.0))
            continue
        elapsed = [seconds for _, seconds in at[iteration] if seconds is not None]
        if elapsed:
            points.append((sum(elapsed) / len(elapsed), mean, half or 0.0))
    return points


def _scale(metric: str) -> float:
    return 100.0 if metric == "accuracy" else 1.0


def _short(label: str, width: int = 40) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _figure(columns: int) -> tuple[Any, list[Any]]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE_IN, dpi=DPI, layout="constrained")
    return figure, list(figure.subplots(1, columns, squeeze=False)[0])


def _curves(groups: list[Group], metrics: list[str], x: str, path: Path) -> None:
    figure, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics):
        scale, drawn = _scale(metric), 0
        for group in (g for g in groups if g.metric == metric):
            points = mean_curve(group, x)
            if not points:
                continue
            xs = [p[0] for p in points]
            ys = [scale * p[1] for p in points]
            (line,) = ax.plot(xs, ys, marker="." if len(points) < 30 else None, label=_short(group.label or "all runs"))
            low = [scale * (p[1] - p[2]) for p in points]
            high = [scale * (p[1] + p[2]) for p in points]
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn += 1
        ax.set_xlabel("iteration" if x == "iteration" else "elapsed time (s)")
        ax.set_ylabel(f"validation {metric_label(metric)}")
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize="x-small" if drawn > 6 else "small")
        else:
            ax.text(0.5, 0.5, "no validation rows in metrics.jsonl", ha="center", va="center", transform=ax.transAxes)
    figure.suptitle("validation: mean over seeds ± 95% t interval", fontsize="medium")
    figure.savefig(path, dpi=DPI)


def _test_metric(rows: list[Row], metrics: list[str], path: Path) -> None:
    figure, axes = _figure(len(metrics))
    for ax, metric in zip(axes, metrics):
        scale = _scale(metric)
        chosen = [row for row in rows if row.group.metric == metric]
        ys = list(range(len(chosen)))
        ax.errorbar(
            [scale * row.mean for row in chosen],
            ys,
            xerr=[scale * (row.ci95_seeds or 0.0) for row in chosen],
            fmt="o",
            capsize=4,
        )
        ax.set_yticks(ys, [_short(f"{row.group.label or 'all runs'} (n={row.seeds})", 32) for row in chosen])
        ax.tick_params(axis="y", labelsize="small")
        ax.set_ylim(len(chosen) - 0.5, -0.5)  # the first group on top, as in the table
        ax.set_xlabel(f"test {metric_label(metric)}")
        ax.grid(True, axis="x", alpha=0.3)
    figure.suptitle("test: mean over seeds ± 95% t interval", fontsize="medium")
    figure.savefig(path, dpi=DPI)


def write_plots(groups: list[Group], rows: list[Row], out_dir: Path) -> list[Path]:
    """Write the three figures into `out_dir`; raises ImportError when matplotlib is missing."""
    import matplotlib  # noqa: F401  (fail before anything is drawn)

    metrics = list(dict.fromkeys(group.metric for group in groups))
    paths = [out_dir / name for name in FILES]
    _curves(groups, metrics, "iteration", paths[0])
    _curves(groups, metrics, "elapsed", paths[1])
    _test_metric(rows, metrics, paths[2])
    return paths
