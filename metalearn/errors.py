"""Errors that end a run with one clear message instead of a traceback."""


class MetalearnError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class ConfigError(MetalearnError):
    """A config value is of the wrong type, unknown, or impossible."""


class DataError(MetalearnError):
    """A data set is missing, corrupt or too small for the requested episodes."""


class CheckpointError(MetalearnError):
    """A checkpoint is missing, unreadable or does not match the config."""


class RunDirError(MetalearnError):
    """The run directory is not this run's to write (another run's outputs, in use, unwritable): nothing is
    recorded in it, not even the failure."""


class RunEnded(BaseException):
    """Ends a run from inside Hydra's job, its message already said, with `exit_code`, which the `metalearn` entry
    point returns. A BaseException, as SystemExit is: Hydra's job runner passes it on (it catches Exception, to
    print a traceback), and a sweep's launcher stops, as it must on SIGINT or SIGTERM."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)  # the code is the argument: pickled with it from a launcher's worker process
        self.exit_code = exit_code


def one_line(exc: Exception) -> tuple[str, int]:
    """The one-line message and exit code for an error: ours (2), the file system's (2), or a bug (1)."""
    if isinstance(exc, MetalearnError):
        return str(exc), 2
    if isinstance(exc, OSError):  # a file-system problem outside our own checks (full disk, permissions)
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot access{where}: {exc.strerror or exc}", 2
    first = (str(exc).splitlines() or [""])[0]  # a bug: still one line by default, the traceback on request
    return f"unexpected {type(exc).__name__}: {first} (set HYDRA_FULL_ERROR=1 for the traceback; please report it)", 1
