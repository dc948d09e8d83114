"""Hydra's own errors (bad override syntax, an unknown group option or key, a missing plugin) as one line that
says how to fix them."""

from __future__ import annotations

import os
import re
import sys


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def fail(message: str, code: int) -> None:
    print(f"Error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


PLUGIN_EXTRAS = {
    "hydra/sweeper/optuna": ("Hydra's Optuna sweeper (hparams_search=NAME uses it)", "sweeps"),
    "hydra/launcher/joblib": ("Hydra's joblib launcher", "sweeps"),
    "hydra/launcher/submitit_local": ("Hydra's submitit launcher", "slurm"),
    "hydra/launcher/submitit_slurm": ("Hydra's submitit launcher", "slurm"),
    "hydra/launcher/ray": ("Hydra's Ray launcher", "ray"),
    "hydra/launcher/ray_aws": ("Hydra's Ray launcher", "ray"),
}


def missing_plugin(text: str) -> str | None:
    """A sweeper or launcher whose plugin is not installed (`Could not find 'hydra/launcher/joblib'`, or `Could not
    load` it from a preset such as hydra/launcher=slurm): which extra installs it."""
    found = re.search(r"Could not (?:find|load) '(hydra/(?:sweeper|launcher)/[^'/]+)'", text)
    if not found or found.group(1) not in PLUGIN_EXTRAS:
        return None
    what, extra = PLUGIN_EXTRAS[found.group(1)]
    preset = re.search(r"In '(hydra/(?:sweeper|launcher)/[^'/]+)': Could not load", text)
    group, _, option = (preset or found).group(1).rpartition("/")
    return f'{group}={option} needs {what}, which is not installed: pip install "metalearn[{extra}]"'


def hydra_message(exc: BaseException) -> str:
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc)
    plugin = missing_plugin(text)
    if plugin:
        return plugin
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
    if isinstance(exc, MissingConfigException) and found:
        group, option = found.groups()
        options = ", ".join(exc.options or [])
        return f"{group}={option} is not an option of {group}" + (f"; choose one of: {options}" if options else "")
    if isinstance(exc, OverrideParseException):
        return parse_message(exc.override, text.splitlines()[0])
    found = re.search(r"Multiple values for (\S+)\. To override a value use 'override \S+: ([^']+)'", text)
    if found:  # `+experiment=NAME`: the group is in the defaults list already
        group, option = found.groups()
        return f"{group} is chosen in the defaults list already: write {group}={option} (without the +)"
    found = re.search(r"Could not append to config\. An item is already at '([^']+)'", text)
    if found:
        return f"{found.group(1)} is a key already: set it with {found.group(1)}=VALUE (without the +)"
    found = re.search(r"Could not override '([^']+)'", text)
    if found:
        cause = str(exc.__cause__ or "").splitlines()
        reason = cause[0] if cause else ""
        if "not in struct" in reason:
            return f"{found.group(1)} is not a known key; metalearn --help lists the keys"
        return f"cannot set {found.group(1)}: {reason or text.splitlines()[0]}"
    lines = [line.strip() for line in text.split("\n\n")[0].splitlines() if line.strip()]
    return "; ".join(lines) or type(exc).__name__


def parse_message(override: str, reason: str) -> str:
    """An override Hydra's grammar refuses, with the quoting that fixes the usual causes: a value the shell split at
    a space (the second half arrives as an override of its own), or non-ASCII letters and other characters that
    the grammar only takes inside quotes."""
    key, equals, value = override.partition("=")
    if not equals:
        return (
            f"cannot parse the override {override!r}: an override is KEY=VALUE; if {override!r} is part of the value "
            f"before it, quote the whole value, e.g. 'dataset.root=\"my data\"'"
        )
    if value and not value.startswith(("'", '"')) and not re.fullmatch(r"[\w.,:/+\-\[\]{}()=*?@$%~]*", value, re.ASCII):
        return f"cannot parse the override {override!r}: quote the value, as in '{key}=\"{value}\"'"
    return f"cannot parse the override {override!r}: {reason} (see metalearn --help)"
