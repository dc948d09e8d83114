"""`metalearn report DIR [DIR ...]`: many run directories and sweeps -> one table per setting (Markdown, CSV) and
figures (PNG). Reads only what runs wrote (results.json, failed.json, metrics.jsonl, .hydra/); never imports torch.

Modules: runs (one run directory), sweeps (Hydra's sweep directories, Optuna's results), discover (walking the
folders), grouping (which keys tell runs apart; --filter), intervals (Student's t), table (rows, Markdown, CSV),
plots (matplotlib, imported only there), command (the command line).
"""

from metalearn.report.command import main, report

__all__ = ["main", "report"]
