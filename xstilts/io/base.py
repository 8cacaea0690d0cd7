"""What every reader shares: the located errors, skip-and-count bookkeeping, raw input, field helpers.

A bad record raises :class:`xstilts.errors.DataError` (the one located-error base: file, 1-based line,
field, message) through :class:`_Ctx`, or is skipped and counted in a :class:`ReadStats` under
``skip_invalid=True``. The contract all readers follow is in :mod:`xstilts.io`.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from ..errors import DataError

log = logging.getLogger("xstilts.io")

MAX_ERRORS_KEPT = 10


def shared_data_dir() -> Path:
    """Where the offline benchmark data lives: ``$XSTILTS_SHARED_DATA``, else
    ``../shared/data`` beside the repository. Not checked for existence."""
    env = os.environ.get("XSTILTS_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


# ---------------------------------------------------------------- stats


@dataclass
class ReadStats:
    """What a read kept and what it skipped; pass one in to find out.

    Attributes:
        read: examples returned (for the retrieval readers: pairs / questions).
        skipped: bad records skipped under ``skip_invalid=True``.
        errors: the messages of the first :data:`MAX_ERRORS_KEPT` skipped records.
        no_gold: NLI records without a gold label (``gold_label == "-"``) left
            out, as the official MNLI/SNLI evaluation does. Not errors.
        answer_offset_mismatches: span-QA answers whose ``answer_start`` does not
            point at their text, kept because ``strict_offsets=False``.
        duplicate_ids: span-QA questions whose id repeated an earlier one and
            was made unique (see :func:`read_squad`).
        warnings: located messages about data that is read but suspect (e.g.
            an NER ``I-`` tag after ``O``). A reader given a ``stats`` object
            leaves reporting them to its caller; without one it logs them.
    """

    read: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    no_gold: int = 0
    answer_offset_mismatches: int = 0
    duplicate_ids: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.read} read", f"{self.skipped} skipped"]
        if self.no_gold:
            parts.append(f"{self.no_gold} without gold label")
        if self.answer_offset_mismatches:
            parts.append(f"{self.answer_offset_mismatches} answer offset mismatches")
        if self.duplicate_ids:
            parts.append(f"{self.duplicate_ids} duplicate ids renamed")
        if self.warnings:
            parts.append(f"{len(self.warnings)} warning(s)")
        return ", ".join(parts)


class _Ctx:
    """Per-call bookkeeping: raise or skip-and-count a bad record."""

    def __init__(self, path, skip_invalid: bool, stats: ReadStats | None):
        self.path = Path(path)
        self.skip_invalid = skip_invalid
        self.log_warnings = stats is None
        self.stats = stats if stats is not None else ReadStats()
        self.skipped = 0
        self.first_error: str | None = None

    def error(self, line: int | None, fld: str | None, message: str, path=None) -> DataError:
        return DataError(path if path is not None else self.path, line, fld, message)

    def bad(self, err: DataError) -> None:
        """A bad record: raise, or (skip_invalid) count it and carry on."""
        if not self.skip_invalid:
            raise err
        self.skipped += 1
        self.stats.skipped += 1
        if len(self.stats.errors) < MAX_ERRORS_KEPT:
            self.stats.errors.append(str(err))
        if self.first_error is None:
            self.first_error = str(err)

    def warn(self, line: int | None, fld: str | None, message: str) -> None:
        """Suspect but readable data: into ``stats.warnings``, or the log when the caller passed no stats."""
        text = str(DataError(self.path, line, fld, message))
        self.stats.warnings.append(text)
        if self.log_warnings:
            log.warning("%s", text)

    def done(self, n: int) -> None:
        self.stats.read += n
        if self.skipped:
            log.warning("%s: skipped %d invalid record(s); first: %s", self.path, self.skipped, self.first_error)


# ---------------------------------------------------------------- raw input


def file_present(path) -> bool:
    """Whether ``path`` exists. Absent is an answer; a broken file is an error.

    A dangling symlink or a symlink loop raises :class:`DataError` naming the
    link (``Path.exists`` would call both absent); so does a path that exists
    but cannot be examined.
    """
    path = Path(path)
    try:
        os.stat(path)
        return True
    except (FileNotFoundError, NotADirectoryError):
        if path.is_symlink():
            raise DataError(path, None, None, f"broken symlink: it points to {os.readlink(path)!r}, "
                                              f"which does not exist") from None
        return False
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise DataError(path, None, None, "symlink loop: the link leads back to itself") from None
        raise DataError(path, None, None, f"cannot access: {e.strerror or e}") from None


def _read_bytes(path: Path) -> bytes:
    file_present(path)  # a broken symlink is reported as one, not as a missing file
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, None, None, "is a directory, not a file") from None
    except OSError as e:
        raise DataError(path, None, None, f"cannot read: {e.strerror or e}") from None
    if path.name.endswith(".gz") or raw[:2] == b"\x1f\x8b":
        if not raw:
            raise DataError(path, None, None, "zero-byte .gz file: not a valid gzip file (an interrupted download "
                                              "or copy?)")
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(path, None, None, f"not a valid gzip file: {e}") from None
    if not raw.lstrip(b"\xef\xbb\xbf").strip():
        raise DataError(path, None, None, "empty file: no records" + (" (only blank lines)" if raw else ""))
    return raw


def _utf8_error(path: Path, raw: bytes, e: UnicodeDecodeError) -> DataError:
    line = raw.count(b"\n", 0, e.start) + 1
    col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
    return DataError(path, line, None, f"invalid UTF-8 byte(s) {raw[e.start:e.end]!r} at column {col}")


def _read_text(path: Path) -> str:
    """The whole file as text; invalid UTF-8 always raises (used for JSON documents)."""
    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _utf8_error(path, raw, e) from None
    return text[1:] if text.startswith("\ufeff") else text


class _Lines:
    r"""A file split on ``\n`` only (never on U+2028 & co., which occur inside sentences).

    ``lines[i]`` is line ``i + 1`` without its ``\n`` (a ``\r`` before it is
    removed too unless ``keepends``, where the ``\n`` is kept, as the csv module
    wants). ``bad`` maps the numbers of lines that are not valid UTF-8 to their
    error; such lines are decoded with U+FFFD so parsing can go on, and the
    error is raised (or counted, under ``skip_invalid``) when the record that
    contains the line is reached, so errors come in file order.
    """

    def __init__(self, ctx: _Ctx, keepends: bool = False):
        self.ctx = ctx
        raw = _read_bytes(ctx.path)
        self.bad: dict[int, DataError] = {}
        try:
            pieces = raw.decode("utf-8").split("\n")
        except UnicodeDecodeError:
            pieces = []
            for n, chunk in enumerate(raw.split(b"\n"), 1):
                try:
                    pieces.append(chunk.decode("utf-8"))
                except UnicodeDecodeError as e:
                    self.bad[n] = DataError(ctx.path, n, None, f"invalid UTF-8 byte(s) "
                                                               f"{chunk[e.start:e.end]!r} at column {e.start + 1}")
                    pieces.append(chunk.decode("utf-8", errors="replace"))
        if pieces and pieces[0].startswith("\ufeff"):
            pieces[0] = pieces[0][1:]
        if pieces and pieces[-1] == "":
            pieces.pop()  # the file ended with a newline
        if keepends:
            self.lines = [p + "\n" for p in pieces]
        else:
            self.lines = [p[:-1] if p.endswith("\r") else p for p in pieces]

    def check(self, first: int, last: int | None = None) -> bool:
        """True if lines first..last are valid UTF-8; else report the first bad one (raise or count)."""
        if self.bad:
            for n in range(first, (last if last is not None else first) + 1):
                if n in self.bad:
                    self.ctx.bad(self.bad[n])
                    return False
        return True

    def __iter__(self) -> Iterator[tuple[int, str]]:
        """(line number, text) of every valid line; invalid ones are reported in passing."""
        for n, line in enumerate(self.lines, 1):
            if self.check(n):
                yield n, line


def _jsonl(ctx: _Ctx, lines: _Lines | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line; bad JSON / non-objects raise or are skipped."""
    for n, line in lines if lines is not None else _Lines(ctx):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            ctx.bad(ctx.error(n, None, f"invalid JSON at column {e.colno}: {e.msg}"))
            continue
        if not isinstance(obj, dict):
            ctx.bad(ctx.error(n, None, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        yield n, obj


def _json_document(ctx: _Ctx) -> Any:
    text = _read_text(ctx.path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ctx.error(e.lineno, None, f"invalid JSON at column {e.colno}: {e.msg}") from None


def _csv_rows(ctx: _Ctx, lines: _Lines, **fmt) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, row) for each non-empty csv row; rows touching bad lines are skipped.

    A blank line between records is a bad record (blank lines at the end of the
    file are not). A record the csv module cannot parse is fatal and reported
    at the line where it starts: a quote that is never closed swallows the
    lines after it, so the parser fails far below the real defect.
    """
    reader = csv.reader(iter(lines.lines), **fmt)
    end = 0
    blank = None
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            hint = ""
            if lines.lines[start - 1].lstrip(" ").startswith('"') or '\t"' in lines.lines[start - 1]:
                hint = "; a quoted field starting on this line is never closed (unterminated quote?)"
            raise ctx.error(start, None, f"malformed CSV/TSV record starting here (the parser gave up at line "
                                         f"{reader.line_num}: {e}){hint}") from None
        end = reader.line_num
        if not lines.check(start, end):
            continue
        if not row or row == [""] or (len(row) == 1 and not row[0].strip()):
            blank = start if blank is None else blank
            continue
        if blank is not None:
            ctx.bad(ctx.error(blank, None, "blank line between records"))
            blank = None
        yield start, row


# ---------------------------------------------------------------- field helpers


class _Bad(Exception):
    """Internal: a record is bad; converted to DataError with the record's location."""

    def __init__(self, fld: str | None, message: str):
        super().__init__(message)
        self.fld, self.message = fld, message


def _get(obj: dict, key: str, kind: type | tuple = str, where: str = "") -> Any:
    name = where + key
    if key not in obj:
        raise _Bad(name, "missing")
    value = obj[key]
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(name, f"expected an integer, got {value!r}")
    elif not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise _Bad(name, f"expected {names}, got {type(value).__name__} {_short(value)}")
    return value


def _text(obj: dict, key: str, where: str = "") -> str:
    """A required text field: a string with something besides whitespace in it."""
    value = _get(obj, key, str, where)
    if not value.strip():
        raise _Bad(where + key, "empty" if not value else f"only whitespace ({value!r})")
    return value


def _short(value: Any, n: int = 60) -> str:
    r = repr(value)
    return r if len(r) <= n else r[: n - 3] + "..."


def _int_label(value: Any, n_choices: int, fld: str = "label", base: int = 0) -> int:
    """An integer label (int, or a string of digits) in ``base .. base + n_choices - 1``; returns it 0-based."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(fld, f"expected an integer label, got {_short(value)}")
    if not base <= value < base + n_choices:
        raise _Bad(fld, f"label {value} out of range {base}..{base + n_choices - 1}")
    return value - base


def _check_label(label: str, labels: Iterable[str] | None, fld: str = "label") -> str:
    if labels is not None and label not in labels:
        raise _Bad(fld, f"unknown label {label!r}; expected one of: {', '.join(labels)}")
    return label


def _records(ctx: _Ctx, items: Iterable[tuple[int, Any]], convert: Callable[[Any], dict | None]) -> list[dict]:
    """Run ``convert`` over (line, raw record); _Bad becomes a located DataError. None = leave out."""
    out = []
    for n, raw in items:
        try:
            ex = convert(raw)
        except _Bad as b:
            ctx.bad(ctx.error(n, b.fld, b.message))
            continue
        if ex is not None:
            out.append(ex)
    ctx.done(len(out))
    return out
