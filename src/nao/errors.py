"""Typed errors raised at the library's boundaries.

Every error a user can cause by bad input derives from :class:`NaoError`; the CLI turns
those into one line on stderr and exit code 2, so messages must name the offending
file, line, token or flag themselves.

>>> from nao.errors import OutOfSpaceError
>>> try:
...     raise OutOfSpaceError("node 3 input 5 > 4 in 'normal' cell")
... except NaoError as e:
...     print(e)
node 3 input 5 > 4 in 'normal' cell
"""

from __future__ import annotations


class NaoError(Exception):
    """Base class for errors caused by user input (bad strings, files, flags)."""


class ParseError(NaoError, ValueError):
    """A human-readable architecture string could not be parsed."""


class OutOfSpaceError(NaoError, ValueError):
    """A token sequence or architecture lies outside the search space's grammar."""


class BenchmarkFileError(NaoError):
    """A tabular benchmark file is missing, corrupt or inconsistent with the space."""


class NotInTableError(NaoError, KeyError):
    """A queried architecture is absent from a tabular benchmark."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class ConfigError(NaoError, ValueError):
    """A configuration value or combination of flags is invalid."""


class DataError(NaoError):
    """A dataset is missing, truncated or malformed."""
