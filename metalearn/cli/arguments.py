"""Reading `metalearn`'s command line as Hydra will: its flags (with their values) and the overrides, and the
mistakes Hydra's argument parser would answer with its usage text, as one sentence."""

from __future__ import annotations

VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c", "--package", "-p"}
INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}
# flags after which Hydra only prints something: no run, nothing to check
PRINT_ONLY = {"--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc", "--version"}
# Hydra takes one of these per command
MODES = {"--run", "-r", "--multirun", "-m", "--cfg", "-c", "--info", "-i", "--shell-completion", "-sc"}
SWITCHES = {"--resolve", "--run", "-r", "--multirun", "-m", "--experimental-rerun"}


def split_argv(argv: list[str]) -> tuple[dict[str, str | None], list[str]]:
    """Hydra's flags (with their values) and the overrides, as `metalearn ARGV` passes them to Hydra."""
    flags: dict[str, str | None] = {}
    overrides: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            overrides.append(word)
            continue
        name, eq, value = word.partition("=")
        if eq:
            flags[name] = value
        elif name in VALUE_FLAGS:
            flags[name] = next(words, None)
        else:
            flags[name] = None
    if "--info" in flags or "-i" in flags:  # its optional value was read as an override
        if overrides and overrides[0] in INFO_VALUES:
            overrides.pop(0)
    return flags, overrides


def argv_problem(argv: list[str]) -> str | None:
    """What Hydra's argument parser would answer with its usage text, as one sentence: an unknown flag, or a flag
    between overrides (its parser takes the overrides as one run of words)."""
    known = VALUE_FLAGS | PRINT_ONLY | SWITCHES
    kinds, words = [], iter(argv)
    for word in words:
        if not word.startswith("-"):
            kinds.append("override")
            continue
        name, eq, _ = word.partition("=")
        if name not in known:
            return f"unknown option {name}: metalearn --help lists the options (an override is KEY=VALUE, no dashes)"
        kinds.append("flag")
        if name in VALUE_FLAGS and not eq:
            next(words, None)
    flags, overrides = split_argv(argv)
    modes = [f for f in flags if f in MODES]
    if len(modes) > 1:
        return f"{' and '.join(modes)} cannot be combined: give one of --run, --multirun, --cfg, --info"
    if "override" not in kinds:
        return None
    first, last = kinds.index("override"), len(kinds) - kinds[::-1].index("override")
    if "flag" in kinds[first:last]:
        ordered = [f"{k}={v}" if v is not None else k for k, v in flags.items()] + overrides
        return f"put the options before the overrides, as in: metalearn {' '.join(ordered)}"
    return None


def last_values(overrides: list[str]) -> dict[str, str]:
    """key -> the value the command line gives it (the last one wins, as in Hydra), for plain `key=value`."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    values = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_delete() and not override.is_sweep_override():
            values[override.key_or_group.lstrip("+")] = str(override.value())
    return values


def config_dirs(flags: dict[str, str | None]) -> tuple[str, ...]:
    """The folders of --config-dir / -cd, searched after conf/."""
    return tuple(d for d in (flags.get("--config-dir"), flags.get("-cd")) if d)
