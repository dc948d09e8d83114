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
