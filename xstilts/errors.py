"""User-facing errors.

Every mistake a user can make (a bad config key, a malformed data record, a
missing file) raises an :class:`XstiltsError`. The CLI prints its message and
exits non-zero without a traceback; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations


class XstiltsError(Exception):
    """An error caused by user input, reported without a traceback."""


class ConfigError(XstiltsError):
    """A config value is unknown, of the wrong type, or points nowhere."""


class DataError(XstiltsError):
    """A data record is malformed.

    Args:
        path: file the record came from.
        line: 1-based line number (or record number for JSON files) or None.
        field: the offending field, or None when the whole record is bad.
        message: what is wrong.
    """

    def __init__(self, path, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = self.path + (f":{line}" if line is not None else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {message}".replace(": ", ": ", 1))
