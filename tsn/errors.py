"""Exceptions for bad input.

Every error a user can cause (a wrong name, a missing file, a malformed
config) is a :class:`TSNError`; the command-line entry points print it as one
line instead of a traceback.
"""


class TSNError(Exception):
    """Base class for errors caused by user input."""


class ConfigError(TSNError, ValueError):
    """A config key, value or name is invalid."""


class DataError(TSNError):
    """A dataset is missing, incomplete or malformed."""


class CheckpointError(TSNError):
    """A checkpoint is unreadable or belongs to a different model."""
