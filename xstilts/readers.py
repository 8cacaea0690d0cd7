"""Readers for the benchmark file formats: files on disk -> model-agnostic example dicts.

One reader per file format. Every reader

* takes ``path`` (``.gz`` files are gunzipped transparently; text is UTF-8,
  a leading BOM is ignored) plus keyword-only options::

      read_X(path, *, skip_invalid=False, stats=None, **format_args)

* returns plain dicts in the family layout (the contract with the rest of the
  toolkit):

  ===============  ==========================================================
  classification   ``{"text_a": str, "text_b": str | None, "label": str}``
  multiple choice  ``{"context": str, "question": str, "choices": [str], "label": int}``
  span QA          ``{"id", "question", "context",
                   "answers": {"text": [str], "answer_start": [int]}}``
                   (unanswerable: empty lists)
  tagging          ``{"tokens": [str], "tags": [str]}``
  ===============  ==========================================================

  The retrieval readers (:func:`read_tatoeba`, :func:`read_bucc`,
  :func:`read_xquad_r`) return one dict for the whole file (pair).

* raises :class:`~xstilts.errors.DataError` for a bad record, naming the file,
  the 1-based line (line formats, and JSON syntax errors) and the field. For a
  structurally bad record inside a JSON *document* (SQuAD-style files) the line
  is ``None`` and the field is the record's 0-based index path, e.g.
  ``data[3].paragraphs[0].qas[2].answers[0].answer_start``. Bytes that are
  not UTF-8 raise with the line they are on. A missing or unreadable file
  raises DataError too.

* with ``skip_invalid=True`` skips bad records instead, counting them in
  ``stats`` (a :class:`ReadStats`; counts accumulate across calls so one object
  can cover many files) and logging a warning, so nothing is dropped silently.
  What is skipped is one record: a line (JSONL, TSV), a CSV row, a sentence
  (tagging, CoNLL-U), one question (SQuAD), one aligned pair (Tatoeba). A JSON
  document that does not parse, a non-UTF-8 JSON document, and misaligned
  parallel files are fatal even then, since no record boundary survives them.

``READERS`` maps format names (as used in task specs) to the single-file
readers that return ``list[dict]``.
"""

from __future__ import annotations

import csv
import errno
import gzip
import json
import logging
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import DataError

log = logging.getLogger(__name__)

__all__ = [
    "ReadStats", "shared_data_dir", "file_present",
    "NLI_LABELS", "PAWSX_LABELS", "QQP_LABELS", "UPOS_TAGS", "PANX_TAGS",
    "read_xnli", "read_pawsx", "read_pair_tsv", "read_qqp", "read_mnli", "read_snli", "read_anli",
    "read_copa", "read_xcopa", "read_siqa", "read_cosmosqa", "read_commonsenseqa", "read_hellaswag",
    "read_squad", "read_xquad", "read_mlqa", "read_tydiqa",
    "read_tags", "read_udpos", "read_panx", "read_conllu", "read_ccg",
    "read_tatoeba", "read_bucc", "read_xquad_r",
    "read_mewsli_x", "read_mewsli_x_entities",
    "READERS",
]

NLI_LABELS = ("entailment", "neutral", "contradiction")
PAWSX_LABELS = ("0", "1")
QQP_LABELS = ("0", "1")
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
             "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

COPA_QUESTIONS = {"cause": "What was the cause?", "effect": "What happened as a result?"}
ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}

HELLASWAG_ENDINGS = 4

MAX_ERRORS_KEPT = 10


def shared_data_dir() -> Path:
    """Where the offline benchmark data lives: ``$XSTILTS_SHARED_DATA``, else
    ``../shared/data`` beside the repository. Not checked for existence."""
    env = os.environ.get("XSTILTS_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


# ---------------------------------------------------------------- classification


def read_pair_tsv(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
                  labels: Iterable[str] | None = None,
                  columns: tuple[str, str, str] = ("text_a", "text_b", "label")) -> list[dict]:
    r"""XTREME-format sentence-pair TSV: ``text_a<TAB>text_b<TAB>label``, no header.

    Written by Python's ``csv.writer(delimiter="\t")``: CRLF line ends, fields
    containing ``"`` quoted with doubled quotes; read back with the csv module
    (strict quoting), so a quoted field may even span lines. The line reported
    for a bad row is the row's first line; errors name fields by ``columns``.
    Both texts must be non-empty; a blank line between rows is an error.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    labels = tuple(labels) if labels is not None else None
    lines = _Lines(ctx, keepends=True)

    def convert(row):
        if len(row) != 3:
            raise _Bad(None, f"expected 3 tab-separated columns ({', '.join(columns)}), got {len(row)}")
        record = dict(zip(columns, row))
        return {"text_a": _text(record, columns[0]), "text_b": _text(record, columns[1]),
                "label": _check_label(row[2].strip(), labels, columns[2])}

    return _records(ctx, _csv_rows(ctx, lines, delimiter="\t", strict=True), convert)


def read_xnli(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels: Iterable[str] | None = NLI_LABELS) -> list[dict]:
    """XNLI in XTREME format (``premise, hypothesis, label``); see :func:`read_pair_tsv`."""
    return read_pair_tsv(path, skip_invalid=skip_invalid, stats=stats, labels=labels,
                         columns=("premise", "hypothesis", "label"))


def read_pawsx(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
               labels: Iterable[str] | None = PAWSX_LABELS) -> list[dict]:
    """PAWS-X in XTREME format (``sentence1, sentence2, label`` with label "0"/"1")."""
    return read_pair_tsv(path, skip_invalid=skip_invalid, stats=stats, labels=labels,
                         columns=("sentence1", "sentence2", "label"))


def read_qqp(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
             labels: Iterable[str] | None = QQP_LABELS) -> list[dict]:
    """GLUE QQP TSV with header ``id qid1 qid2 question1 question2 is_duplicate``.

    Columns are found by header name; no quoting (GLUE TSVs are plain
    tab-separated, questions may contain bare ``"``). Label "0"/"1".
    """
    ctx = _Ctx(path, skip_invalid, stats)
    labels = tuple(labels) if labels is not None else None
    rows = iter(_csv_rows(ctx, _Lines(ctx, keepends=True), delimiter="\t", quoting=csv.QUOTE_NONE))
    first = next(rows, None)
    if first is None:
        ctx.done(0)
        return []
    hn, header = first
    missing = [c for c in ("question1", "question2", "is_duplicate") if c not in header]
    if missing:
        raise ctx.error(hn, None, f"header lacks column(s) {', '.join(missing)} (got {header})")
    i1, i2, il = header.index("question1"), header.index("question2"), header.index("is_duplicate")

    def convert(row):
        if len(row) != len(header):
            raise _Bad(None, f"expected {len(header)} tab-separated columns, got {len(row)}")
        record = dict(zip(header, row))
        return {"text_a": _text(record, "question1"), "text_b": _text(record, "question2"),
                "label": _check_label(row[il].strip(), labels, "is_duplicate")}

    return _records(ctx, rows, convert)


def read_mnli(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels: Iterable[str] | None = NLI_LABELS) -> list[dict]:
    """MNLI / SNLI JSONL (``sentence1``, ``sentence2``, ``gold_label``).

    Records with ``gold_label == "-"`` (no annotator majority) are left out and
    counted in ``stats.no_gold``, as in the official evaluation.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    labels = tuple(labels) if labels is not None else None

    def convert(obj):
        a, b, gold = _text(obj, "sentence1"), _text(obj, "sentence2"), _get(obj, "gold_label")
        if gold == "-":
            ctx.stats.no_gold += 1
            return None
        return {"text_a": a, "text_b": b, "label": _check_label(gold, labels, "gold_label")}

    return _records(ctx, _jsonl(ctx), convert)


read_snli = read_mnli


def read_anli(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels: Iterable[str] | None = NLI_LABELS) -> list[dict]:
    """ANLI JSONL: ``premise`` (or ``context``, as in the official release), ``hypothesis``,
    ``label`` e/n/c -> entailment/neutral/contradiction (full names accepted too)."""
    ctx = _Ctx(path, skip_invalid, stats)
    labels = tuple(labels) if labels is not None else None

    def convert(obj):
        premise = _text(obj, "premise") if "premise" in obj or "context" not in obj else _text(obj, "context")
        hyp, raw = _text(obj, "hypothesis"), _get(obj, "label")
        label = ANLI_LABELS.get(raw, raw)
        if label not in NLI_LABELS:
            raise _Bad("label", f"unknown label {raw!r}; expected e, n or c")
        return {"text_a": premise, "text_b": hyp, "label": _check_label(label, labels)}

    return _records(ctx, _jsonl(ctx), convert)


# ---------------------------------------------------------------- multiple choice


def read_copa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """COPA / XCOPA JSONL ``{"premise","choice1","choice2","question":"cause"|"effect","label":0|1}``.

    context = premise, question = "What was the cause?" / "What happened as a
    result?", choices = [choice1, choice2].
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        q = _get(obj, "question")
        if q not in COPA_QUESTIONS:
            raise _Bad("question", f"expected 'cause' or 'effect', got {q!r}")
        return {"context": _text(obj, "premise"), "question": COPA_QUESTIONS[q],
                "choices": [_text(obj, "choice1"), _text(obj, "choice2")],
                "label": _int_label(_get(obj, "label", (int, str)), 2)}

    return _records(ctx, _jsonl(ctx), convert)


read_xcopa = read_copa


def _siqa_labels_path(path: Path) -> tuple[Path | None, Path]:
    """(the labels file beside ``path`` or None, the name it would have)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else Path(name).stem
    expected = path.with_name(f"{stem}-labels.lst")
    for cand in (expected, path.with_name(f"{stem}-labels.lst.gz")):
        if file_present(cand):
            return cand, expected
    return None, expected


def read_siqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels_path=None) -> list[dict]:
    """SocialIQA JSONL ``{"context","question","answerA","answerB","answerC"}``.

    The label comes from the record's ``"correct": "A"|"B"|"C"`` (v1.4 files)
    or else from a labels file with one of 1/2/3 per line, aligned with the
    data lines (``labels_path``; by default ``<stem>-labels.lst`` beside the
    data file, as in the official ``dev.jsonl`` / ``dev-labels.lst``).
    Labels become 0/1/2. Different record / label counts raise DataError; a bad
    or empty label names the labels file and its line (blank lines at the end
    of the labels file are ignored). Records without ``correct`` and no labels
    file: a DataError naming the labels file that was looked for.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    path = ctx.path
    lines = _Lines(ctx)
    expected = None
    if labels_path is None:
        labels_path, expected = _siqa_labels_path(path)
    gold: list[tuple[int, str]] = []
    pos: dict[int, int] = {}
    if labels_path is not None:
        gold = [(n, s.strip()) for n, s in _Lines(_Ctx(labels_path, False, None))]
        while gold and not gold[-1][1]:
            gold.pop()
        data = [n for n, s in enumerate(lines.lines, 1) if s.strip()]
        if len(gold) != len(data):
            line = gold[len(data)][0] if len(gold) > len(data) else (gold[-1][0] + 1 if gold else 1)
            raise DataError(labels_path, line, None,
                            f"{len(gold)} labels for {len(data)} records in {path.name}: not aligned")
        pos = {n: i for i, n in enumerate(data)}
    out = []
    for n, obj in _jsonl(ctx, lines):
        try:
            ex = {"context": _text(obj, "context"), "question": _text(obj, "question"),
                  "choices": [_text(obj, "answerA"), _text(obj, "answerB"), _text(obj, "answerC")]}
            if "correct" in obj:
                c = _get(obj, "correct")
                if c not in ("A", "B", "C"):
                    raise _Bad("correct", f"unknown label {c!r}; expected A, B or C")
                ex["label"] = "ABC".index(c)
            elif labels_path is None:
                raise DataError(expected, None, None, f"labels file not found: the records of {path.name} (line {n} "
                                                      f"on) have no 'correct' field, so their labels come from "
                                                      f"{expected.name} beside it (or pass labels_path=...)")
            else:
                ln, value = gold[pos[n]]
                try:
                    if not value:
                        raise _Bad("label", "empty")
                    ex["label"] = _int_label(value, 3, base=1)
                except _Bad as b:
                    ctx.bad(DataError(labels_path, ln, "label", f"{b.message} (expected 1, 2 or 3)"))
                    continue
        except _Bad as b:
            ctx.bad(ctx.error(n, b.fld, b.message))
            continue
        out.append(ex)
    ctx.done(len(out))
    return out


def read_cosmosqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Cosmos QA: CSV with header ``id,context,question,answer0..answer3,label`` (``.csv``)
    or JSONL with the same keys (any other extension). Label 0..3."""
    ctx = _Ctx(path, skip_invalid, stats)
    name = ctx.path.name[:-3] if ctx.path.name.endswith(".gz") else ctx.path.name
    keys = ("context", "question", "answer0", "answer1", "answer2", "answer3", "label")

    def convert(obj):
        return {"context": _text(obj, "context"), "question": _text(obj, "question"),
                "choices": [_text(obj, f"answer{i}") for i in range(4)],
                "label": _int_label(_get(obj, "label", (int, str)), 4)}

    if not name.endswith(".csv"):
        return _records(ctx, _jsonl(ctx), convert)
    rows = iter(_csv_rows(ctx, _Lines(ctx, keepends=True)))
    first = next(rows, None)
    if first is None:
        ctx.done(0)
        return []
    hn, header = first
    missing = [k for k in keys if k not in header]
    if missing:
        raise ctx.error(hn, None, f"header lacks column(s) {', '.join(missing)} (got {header})")

    def row_convert(row):
        if len(row) != len(header):
            raise _Bad(None, f"expected {len(header)} comma-separated columns, got {len(row)}")
        return convert(dict(zip(header, row)))

    return _records(ctx, rows, row_convert)


def read_commonsenseqa(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """CommonsenseQA JSONL, either layout.

    * Hugging Face: ``{"question": str, "choices": {"label": [..], "text": [..]}, "answerKey"}``
    * original: ``{"question": {"stem", "choices": [{"label", "text"}]}, "answerKey"}``

    context = "" (the task has none); label = position of ``answerKey`` among the choice labels.
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        q = _get(obj, "question", (str, dict))
        if isinstance(q, dict):
            stem = _text(q, "stem", "question.")
            choices = _get(q, "choices", list, "question.")
            keys, texts = [], []
            for i, c in enumerate(choices):
                if not isinstance(c, dict):
                    raise _Bad(f"question.choices[{i}]", "expected an object with label and text")
                keys.append(_get(c, "label", str, f"question.choices[{i}]."))
                texts.append(_get(c, "text", str, f"question.choices[{i}]."))
        else:
            stem = _text(obj, "question")
            ch = _get(obj, "choices", dict)
            keys, texts = _get(ch, "label", list, "choices."), _get(ch, "text", list, "choices.")
            if len(keys) != len(texts) or not all(isinstance(t, str) for t in texts + keys):
                raise _Bad("choices", f"expected equally long string lists, got {len(keys)} labels, {len(texts)} texts")
        if len(texts) < 2:
            raise _Bad("choices", f"expected at least 2 choices, got {len(texts)}")
        for i, t in enumerate(texts):
            if not t.strip():
                raise _Bad(f"choices.text[{i}]" if not isinstance(q, dict) else f"question.choices[{i}].text", "empty")
        key = _get(obj, "answerKey")
        if key not in keys:
            raise _Bad("answerKey", f"unknown label {key!r}; choice labels are {', '.join(keys)}")
        return {"context": "", "question": stem, "choices": list(texts), "label": keys.index(key)}

    return _records(ctx, _jsonl(ctx), convert)


def read_hellaswag(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """HellaSwag JSONL, either layout; context = ``activity_label + ": " + ctx``, question = "".

    * converted validation file here: ``{"idx", "ctx", "label", "endings"}`` whose
      ``ctx`` already starts with the activity label;
    * official: ``{"activity_label", "ctx_a", "ctx_b", "ctx", "endings", "label", ...}``
      (``ctx`` is rebuilt from ``ctx_a`` + ``ctx_b`` when absent).

    Every record has exactly :data:`HELLASWAG_ENDINGS` non-empty endings.
    """
    ctx = _Ctx(path, skip_invalid, stats)

    def convert(obj):
        if "activity_label" in obj:
            if "ctx" in obj:
                c = _text(obj, "ctx")
            else:
                c = (_get(obj, "ctx_a") + " " + _get(obj, "ctx_b")).strip()
                if not c:
                    raise _Bad("ctx_a", "empty (and so is ctx_b)")
            context = f"{_get(obj, 'activity_label')}: {c}"
        else:
            context = _text(obj, "ctx")
        endings = _get(obj, "endings", list)
        if len(endings) != HELLASWAG_ENDINGS or not all(isinstance(e, str) for e in endings):
            raise _Bad("endings", f"expected a list of {HELLASWAG_ENDINGS} strings, got {len(endings)}: "
                                  f"{_short(endings)}")
        for i, e in enumerate(endings):
            if not e.strip():
                raise _Bad(f"endings[{i}]", "empty")
        return {"context": context, "question": "", "choices": list(endings),
                "label": _int_label(_get(obj, "label", (int, str)), len(endings))}

    return _records(ctx, _jsonl(ctx), convert)


# ---------------------------------------------------------------- span QA


def read_squad(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
               strict_offsets: bool = True, require_answers: bool = True,
               duplicate_ids: str = "error") -> list[dict]:
    """SQuAD v1.1 / v2.0 JSON (XQuAD, MLQA, TyDiQA-GoldP): one example per question.

    Checks every answer: ``context[answer_start:answer_start + len(text)] == text``.
    A mismatch is a bad record unless ``strict_offsets=False``, which keeps the
    example and counts the answer in ``stats.answer_offset_mismatches`` (the
    real XQuAD, MLQA dev and TyDiQA-GoldP files here have none). A v2.0
    question with ``is_impossible: true`` gets empty answer lists (its
    ``plausible_answers`` are ignored). Any other question without answers is
    a bad record unless ``require_answers=False`` (e.g. answer-stripped test
    files). Scoring keys predictions by id, so a repeated question id is a bad
    record (``duplicate_ids="error"``, naming both places); with
    ``duplicate_ids="rename"`` (for training files, which are never scored) it
    gets ``~1``, ``~2``, ... appended and is counted in ``stats.duplicate_ids``
    (the XTREME TyDiQA-GoldP English train file reuses small integers as ids:
    3696 questions, 89 distinct ids). Errors name the record by its 0-based
    index path, e.g. ``data[3].paragraphs[0].qas[2]``, with line None.
    """
    if duplicate_ids not in ("error", "rename"):
        raise ValueError(f"duplicate_ids must be 'error' or 'rename', got {duplicate_ids!r}")
    ctx = _Ctx(path, skip_invalid, stats)
    doc = _json_document(ctx)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ctx.error(None, "data", "missing: expected a SQuAD-style object with a 'data' list")
    out: list[dict] = []
    seen: dict[str, str] = {}
    dups = 0
    for a_i, article in enumerate(doc["data"]):
        where_a = f"data[{a_i}]"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            ctx.bad(ctx.error(None, f"{where_a}.paragraphs", "missing or not a list"))
            continue
        for p_i, par in enumerate(paragraphs):
            where_p = f"{where_a}.paragraphs[{p_i}]"
            try:
                if not isinstance(par, dict):
                    raise _Bad(where_p, "expected an object")
                context = _text(par, "context", where_p + ".")
                qas = _get(par, "qas", list, where_p + ".")
            except _Bad as b:
                ctx.bad(ctx.error(None, b.fld, b.message))
                continue
            for q_i, qa in enumerate(qas):
                where_q = f"{where_p}.qas[{q_i}]"
                try:
                    ex, mismatches = _squad_question(qa, context, where_q, strict_offsets, require_answers)
                except _Bad as b:
                    ctx.bad(ctx.error(None, b.fld, b.message))
                    continue
                if ex["id"] in seen and duplicate_ids == "error":
                    ctx.bad(ctx.error(None, where_q + ".id", f"duplicate question id {ex['id']!r} (first at "
                                                             f"{seen[ex['id']]}); predictions are scored by id"))
                    continue
                if ex["id"] in seen:
                    base, k = ex["id"], 1
                    while f"{base}~{k}" in seen:
                        k += 1
                    ex["id"] = f"{base}~{k}"
                    ctx.stats.duplicate_ids += 1
                    dups += 1
                seen[ex["id"]] = where_q
                ctx.stats.answer_offset_mismatches += mismatches
                out.append(ex)
    if dups:
        log.warning("%s: %d duplicate question id(s) renamed '<id>~<n>'", ctx.path, dups)
    ctx.done(len(out))
    return out


def _squad_question(qa, context: str, where: str, strict_offsets: bool, require_answers: bool):
    if not isinstance(qa, dict):
        raise _Bad(where, "expected an object")
    qid = _get(qa, "id", (str, int), where + ".")
    question = _text(qa, "question", where + ".")
    impossible = qa.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise _Bad(where + ".is_impossible", f"expected true/false, got {impossible!r}")
    texts: list[str] = []
    starts: list[int] = []
    mismatches = 0
    if not impossible:
        answers = _get(qa, "answers", list, where + ".")
        for k, ans in enumerate(answers):
            w = f"{where}.answers[{k}]"
            if not isinstance(ans, dict):
                raise _Bad(w, "expected an object with text and answer_start")
            text = _text(ans, "text", w + ".")
            start = _get(ans, "answer_start", int, w + ".")
            if start < 0 or context[start:start + len(text)] != text:
                if strict_offsets:
                    raise _Bad(w + ".answer_start",
                               f"answer_start {start} does not point at the answer text {_short(text)} "
                               f"(context there: {_short(context[max(start, 0):max(start, 0) + len(text)])})")
                mismatches += 1
            texts.append(text)
            starts.append(start)
        if not texts and require_answers:
            raise _Bad(where + ".answers", "no answers, and the question is not marked is_impossible")
    return ({"id": str(qid), "question": question, "context": context,
             "answers": {"text": texts, "answer_start": starts}}, mismatches)


read_xquad = read_squad
read_mlqa = read_squad
read_tydiqa = read_squad


# ---------------------------------------------------------------- tagging


def _sentences(lines: _Lines) -> Iterator[list[tuple[int, str]]]:
    """Groups of (line number, line) separated by blank lines; a group with an invalid
    (non-UTF-8) line is reported (raise or count) instead of yielded."""
    group: list[tuple[int, str]] = []
    for n, line in enumerate(lines.lines, 1):
        if not line.strip() and n not in lines.bad:
            if group and lines.check(group[0][0], group[-1][0]):
                yield group
            group = []
            continue
        group.append((n, line))
    if group and lines.check(group[0][0], group[-1][0]):
        yield group


def read_tags(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels: Iterable[str] | None = None, scheme: str | None = None) -> list[dict]:
    """``token<TAB>tag`` per line, a blank line between sentences (XTREME UD-POS / PAN-X).

    A line without a tab, or with more than one (more tags than tokens), an
    empty token or tag, or a tag outside ``labels`` (when given) makes its
    sentence bad. With ``scheme="iob2"`` an ``I-X`` tag that does not continue
    an ``X`` entity (after ``O``, another type, or at the sentence start) is
    accepted, as seqeval and XTREME's scorer accept it (as the start of a new
    entity), and reported once per file as a warning with its first line and
    the count (see :attr:`ReadStats.warnings`).
    """
    if scheme not in (None, "iob2"):
        raise ValueError(f"scheme must be None or 'iob2', got {scheme!r}")
    ctx = _Ctx(path, skip_invalid, stats)
    labels = tuple(labels) if labels is not None else None
    lab_set = set(labels) if labels is not None else None
    stray: list[tuple[int, str, str]] = []  # (line, tag, what precedes it) of I- tags that begin an entity
    out = []
    for group in _sentences(_Lines(ctx)):
        tokens, tags = [], []
        try:
            for n, line in group:
                parts = line.split("\t")
                if len(parts) < 2:
                    raise ctx.error(n, "tag", f"no tab: expected token<TAB>tag, got {_short(line)}")
                if len(parts) > 2:
                    raise ctx.error(n, "tag", f"more tags than tokens: {len(parts)} tab-separated fields, "
                                              f"expected token<TAB>tag")
                tok, tag = parts
                if not tok:
                    raise ctx.error(n, "token", "empty token")
                if not tag:
                    raise ctx.error(n, "tag", "empty tag")
                if lab_set is not None and tag not in lab_set:
                    raise ctx.error(n, "tag", f"unknown label {tag!r}; expected one of: {', '.join(labels)}")
                tokens.append(tok)
                tags.append(tag)
        except DataError as e:
            ctx.bad(e)
            continue
        if scheme == "iob2":
            prev = None
            for (n, _), tag in zip(group, tags):
                if tag.startswith("I-") and (prev is None or prev[2:] != tag[2:]):
                    stray.append((n, tag, repr(prev) if prev else "the sentence start"))
                prev = tag
        out.append({"tokens": tokens, "tags": tags})
    if stray:
        n, tag, prev = stray[0]
        ctx.warn(n, "tag", f"{tag!r} after {prev} does not continue an entity; it is read, as seqeval reads it, "
                           f"as the start of a new one ({len(stray)} such tag(s) in this file, this is the first)")
    ctx.done(len(out))
    return out


def read_udpos(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
               labels: Iterable[str] | None = UPOS_TAGS) -> list[dict]:
    """XTREME UD-POS (``token<TAB>UPOS``); tags checked against the 17 UPOS tags (``labels=None``: unchecked)."""
    return read_tags(path, skip_invalid=skip_invalid, stats=stats, labels=labels)


def read_panx(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
              labels: Iterable[str] | None = PANX_TAGS) -> list[dict]:
    """XTREME PAN-X / WikiANN (``token<TAB>IOB2 tag``); tags checked against PER/ORG/LOC IOB2,
    an ``I-`` tag after ``O`` warned about (see :func:`read_tags`)."""
    return read_tags(path, skip_invalid=skip_invalid, stats=stats, labels=labels, scheme="iob2")


_CONLLU_COLUMNS = {"upos": 3, "xpos": 4, "deprel": 7}
_CONLLU_RANGE_OR_EMPTY = re.compile(r"[0-9]+-[0-9]+|[0-9]+\.[0-9]+")


def read_conllu(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
                column: str = "upos", labels: Iterable[str] | None = UPOS_TAGS) -> list[dict]:
    """CoNLL-U: tokens = FORM of the syntactic words, tags = ``column`` (UPOS by default).

    Comment lines (``#``), multiword-token ranges (``1-2``) and empty nodes
    (``1.1``) are skipped. Word ids must run 1, 2, 3, ... in each sentence;
    every line needs 10 tab-separated fields; a sentence needs at least one
    word (the error names its first line). ``labels`` is checked only when
    ``column == "upos"`` (pass None to disable).
    """
    if column not in _CONLLU_COLUMNS:
        raise ValueError(f"column must be one of {sorted(_CONLLU_COLUMNS)}, got {column!r}")
    col = _CONLLU_COLUMNS[column]
    ctx = _Ctx(path, skip_invalid, stats)
    lab_set = set(labels) if labels is not None and column == "upos" else None
    out = []
    for group in _sentences(_Lines(ctx)):
        tokens, tags = [], []
        try:
            for n, line in group:
                if line.startswith("#"):
                    continue
                parts = line.split("\t")
                if len(parts) != 10:
                    raise ctx.error(n, None, f"expected 10 tab-separated fields, got {len(parts)}")
                wid = parts[0]
                if _CONLLU_RANGE_OR_EMPTY.fullmatch(wid):
                    continue
                if not (wid.isascii() and wid.isdigit()):
                    raise ctx.error(n, "ID", f"bad word id {wid!r}: expected an integer, a range like 1-2 or an "
                                             f"empty node like 1.1")
                if int(wid) != len(tokens) + 1:
                    raise ctx.error(n, "ID", f"word id {wid} out of sequence (expected {len(tokens) + 1})")
                tag = parts[col]
                if lab_set is not None and tag not in lab_set:
                    raise ctx.error(n, column.upper(), f"unknown label {tag!r}; expected one of: "
                                                       f"{', '.join(labels)}")
                tokens.append(parts[1])
                tags.append(tag)
            if not tokens:
                raise ctx.error(group[0][0], None, f"sentence without tokens (lines {group[0][0]}-{group[-1][0]} "
                                                   f"hold no word line)")
        except DataError as e:
            ctx.bad(e)
            continue
        out.append({"tokens": tokens, "tags": tags})
    ctx.done(len(out))
    return out


def read_ccg(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
             format: str = "auto") -> list[dict]:
    """CCG supertags (CCGbank-derived), two layouts:

    * ``"tsv"``: ``token<TAB>supertag`` per line, blank line between sentences
      (as :func:`read_tags`);
    * ``"pipe"``: one sentence per line, space-separated ``word|POS|supertag``
      items (the C&C / ``.stagged`` layout); the POS is dropped. Lines starting
      with ``#`` whose first item has no ``|`` are comments.

    ``"auto"`` picks ``tsv`` if the first content line contains a tab, else ``pipe``.
    """
    if format not in ("auto", "tsv", "pipe"):
        raise ValueError(f"format must be 'auto', 'tsv' or 'pipe', got {format!r}")
    ctx = _Ctx(path, skip_invalid, stats)
    lines = _Lines(ctx)

    def is_comment(line: str) -> bool:
        return line.startswith("#") and "|" not in line.split(" ", 1)[0]

    if format == "auto":
        first = next((s for s in lines.lines if s.strip() and not is_comment(s)), "")
        format = "tsv" if "\t" in first else "pipe"
    if format == "tsv":
        return read_tags(path, skip_invalid=skip_invalid, stats=stats)
    out = []
    for n, line in lines:
        if not line.strip() or is_comment(line):
            continue
        tokens, tags = [], []
        try:
            for k, item in enumerate(x for x in line.split(" ") if x):
                parts = item.rsplit("|", 2)
                if len(parts) != 3 or not all(parts):
                    raise ctx.error(n, f"token {k + 1}", f"expected word|POS|supertag, got {_short(item)}")
                tokens.append(parts[0])
                tags.append(parts[2])
        except DataError as e:
            ctx.bad(e)
            continue
        out.append({"tokens": tokens, "tags": tags})
    ctx.done(len(out))
    return out


# ---------------------------------------------------------------- retrieval


def read_tatoeba(src_path, tgt_path, *, skip_invalid: bool = False,
                 stats: ReadStats | None = None) -> dict:
    """Line-aligned parallel files -> ``{"source": [str], "target": [str]}``.

    Different line counts raise DataError (always: alignment is lost). An
    empty line or invalid UTF-8 on either side makes that pair bad.
    """
    sctx = _Ctx(src_path, skip_invalid, stats)
    tctx = _Ctx(tgt_path, skip_invalid, sctx.stats)
    src, tgt = _Lines(sctx), _Lines(tctx)
    if len(src.lines) != len(tgt.lines):
        n = min(len(src.lines), len(tgt.lines)) + 1
        longer = src_path if len(src.lines) > len(tgt.lines) else tgt_path
        raise DataError(longer, n, None,
                        f"not aligned: {Path(src_path).name} has {len(src.lines)} lines, "
                        f"{Path(tgt_path).name} has {len(tgt.lines)}")
    source, target = [], []
    for i, (s, t) in enumerate(zip(src.lines, tgt.lines)):
        n = i + 1
        if not (src.check(n) and tgt.check(n)):
            continue
        if not s.strip() or not t.strip():
            sctx.bad(DataError(src_path if not s.strip() else tgt_path, n, None, "empty sentence"))
            continue
        source.append(s)
        target.append(t)
    sctx.done(len(source))
    if tctx.skipped:
        log.warning("%s: skipped %d invalid line(s); first: %s", tctx.path, tctx.skipped, tctx.first_error)
    return {"source": source, "target": target}


def _id_sentences(ctx: _Ctx) -> dict[str, str]:
    out: dict[str, str] = {}
    for n, line in _Lines(ctx):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            ctx.bad(ctx.error(n, None, f"expected id<TAB>sentence, got {len(parts)} tab-separated fields"))
            continue
        sid, sent = parts[0].strip(), parts[1]
        if not sid:
            ctx.bad(ctx.error(n, "id", "empty id"))
        elif not sent.strip():
            ctx.bad(ctx.error(n, "sentence", "empty"))
        elif sid in out:
            ctx.bad(ctx.error(n, "id", f"duplicate id {sid!r}"))
        else:
            out[sid] = sent
    return out


def read_bucc(src_path, tgt_path, gold_path=None, *, skip_invalid: bool = False,
              stats: ReadStats | None = None) -> dict:
    """BUCC 2018: ``id<TAB>sentence`` files (+ optional ``src_id<TAB>tgt_id`` gold) ->
    ``{"source": {id: sent}, "target": {id: sent}, "gold": [(src_id, tgt_id)]}``.

    Ids must be unique per file; gold ids must exist in the source / target.
    ``stats.read`` grows by the source and target sentences and gold pairs read.
    """
    sctx = _Ctx(src_path, skip_invalid, stats)
    source = _id_sentences(sctx)
    tctx = _Ctx(tgt_path, skip_invalid, sctx.stats)
    target = _id_sentences(tctx)
    gold: list[tuple[str, str]] = []
    if gold_path is not None:
        gctx = _Ctx(gold_path, skip_invalid, sctx.stats)
        for n, line in _Lines(gctx):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split("\t")]
            if len(parts) != 2:
                gctx.bad(gctx.error(n, None, f"expected src_id<TAB>tgt_id, got {len(parts)} tab-separated fields"))
            elif parts[0] not in source:
                gctx.bad(gctx.error(n, "src_id", f"id {parts[0]!r} not in {Path(src_path).name}"))
            elif parts[1] not in target:
                gctx.bad(gctx.error(n, "tgt_id", f"id {parts[1]!r} not in {Path(tgt_path).name}"))
            else:
                gold.append((parts[0], parts[1]))
        gctx.done(len(gold))
    sctx.done(len(source))
    tctx.done(len(target))
    return {"source": source, "target": target, "gold": gold}


def read_xquad_r(path, *, skip_invalid: bool = False, stats: ReadStats | None = None,
                 id_prefix: str = "") -> dict:
    """LAReQA XQuAD-R JSON (one language) -> questions and candidate answer sentences.

    Returns ``{"questions": [{"id", "question", "answer_sentence_ids": [..]}],
    "sentences": [{"id", "text", "context"}]}``. Every paragraph carries
    ``sentences`` and ``sentence_breaks`` (``[start, end)`` character offsets
    into ``context``); each sentence becomes a candidate with id
    ``f"{id_prefix}{article}-{paragraph}-{sentence}"`` (0-based indices; use
    ``id_prefix`` such as ``"de:"`` to pool several languages) and the
    paragraph as its context. A question's relevant sentence is the one whose
    break span contains its ``answer_start`` (answers may run past the end of
    that sentence; it is still the one). Sentence text is taken from
    ``sentences`` (in the Turkish file two of them differ slightly from the
    context slice). ``stats.read`` counts questions.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    doc = _json_document(ctx)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ctx.error(None, "data", "missing: expected a SQuAD-style object with a 'data' list")
    questions: list[dict] = []
    sentences: list[dict] = []
    for a_i, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            ctx.bad(ctx.error(None, f"data[{a_i}].paragraphs", "missing or not a list"))
            continue
        for p_i, par in enumerate(paragraphs):
            where = f"data[{a_i}].paragraphs[{p_i}]"
            try:
                if not isinstance(par, dict):
                    raise _Bad(where, "expected an object")
                context = _text(par, "context", where + ".")
                sents = _get(par, "sentences", list, where + ".")
                breaks = _get(par, "sentence_breaks", list, where + ".")
                qas = _get(par, "qas", list, where + ".")
                if len(sents) != len(breaks):
                    raise _Bad(where + ".sentence_breaks",
                               f"{len(breaks)} breaks for {len(sents)} sentences")
                spans = []
                for s_i, (s, b) in enumerate(zip(sents, breaks)):
                    if not isinstance(s, str):
                        raise _Bad(f"{where}.sentences[{s_i}]", "expected a string")
                    if (not isinstance(b, list) or len(b) != 2 or not all(type(x) is int for x in b)
                            or not 0 <= b[0] <= b[1] <= len(context)):
                        raise _Bad(f"{where}.sentence_breaks[{s_i}]",
                                   f"expected [start, end] within the context (length {len(context)}), got {_short(b)}")
                    spans.append((b[0], b[1]))
            except _Bad as b:
                ctx.bad(ctx.error(None, b.fld, b.message))
                continue
            ids = [f"{id_prefix}{a_i}-{p_i}-{s_i}" for s_i in range(len(sents))]
            sentences.extend({"id": i, "text": s, "context": context} for i, s in zip(ids, sents))
            for q_i, qa in enumerate(qas):
                wq = f"{where}.qas[{q_i}]"
                try:
                    ex, _ = _squad_question(qa, context, wq, True, True)
                    rel = []
                    for k, start in enumerate(ex["answers"]["answer_start"]):
                        hit = [i for i, (s, e) in zip(ids, spans) if s <= start < e]
                        if not hit:
                            raise _Bad(f"{wq}.answers[{k}].answer_start",
                                       f"answer_start {start} is in no sentence_breaks span")
                        rel.extend(h for h in hit if h not in rel)
                except _Bad as b:
                    ctx.bad(ctx.error(None, b.fld, b.message))
                    continue
                questions.append({"id": ex["id"], "question": ex["question"], "answer_sentence_ids": rel})
    ctx.done(len(questions))
    return {"questions": questions, "sentences": sentences}


# ---------------------------------------------------------------- Mewsli-X


def _mewsli_context(obj: dict, where: str) -> dict:
    c = _get(obj, "context", dict, where)
    w = where + "context."
    return {"text": _get(c, "text", str, w), "language": _get(c, "language", str, w),
            "document_id": _get(c, "document_id", (str, int), w)}


def _mewsli_mention(m: Any, context: dict, where: str) -> dict:
    if not isinstance(m, dict):
        raise _Bad(where.rstrip("."), "expected an object")
    span = _get(m, "mention_span", dict, where)
    ws = where + "mention_span."
    text, start, end = _get(span, "text", str, ws), _get(span, "start", int, ws), _get(span, "end", int, ws)
    if not context["text"]:
        raise _Bad(where.split("mentions")[0] + "context.text",
                   "empty: the released *_no_text files lack article text; run get-mewsli-x.sh to restore it")
    if not 0 <= start <= end <= len(context["text"]) or context["text"][start:end] != text:
        raise _Bad(ws + "start", f"span [{start}, {end}) does not match mention text {_short(text)}")
    return {"id": str(_get(m, "example_id", (str, int), where)), "entity_id": _get(m, "entity_id", str, where),
            "mention": text, "start": start, "end": end, "context": context["text"],
            "language": context["language"], "document_id": str(context["document_id"])}


def _mewsli_entity(e: Any, where: str) -> dict:
    if not isinstance(e, dict):
        raise _Bad(where.rstrip(".") or None, "expected an object")
    return {"entity_id": _get(e, "entity_id", str, where), "title": _get(e, "title", str, where),
            "description": _get(e, "description", str, where),
            "language": _get(e, "description_language", str, where)}


def read_mewsli_x(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Mewsli-X mention files (google-research ``dense_representations_for_entity_retrieval/mel``).

    Handles both JSONL layouts, one example per mention:

    * ``wikinews_mentions-{dev,test}.jsonl``: ``{"context": {..., "text", "language",
      "document_id"}, "mentions": [{"example_id", "entity_id",
      "mention_span": {"text", "start", "end"}}]}`` (one line per article);
    * ``wikipedia_pairs-{train,dev}.jsonl``: ``{"contextual_mention": {"context": {...},
      "mention": {...}}, "entity": {entity record}}``.

    Example: ``{"id", "entity_id", "mention", "start", "end", "context", "language",
    "document_id"}`` plus, for Wikipedia pairs, ``"entity"`` (as
    :func:`read_mewsli_x_entities` gives). The span must match the context text;
    the released ``*_no_text`` files (empty text) are rejected. A bad mention
    skips its whole line under ``skip_invalid``.
    """
    ctx = _Ctx(path, skip_invalid, stats)
    out: list[dict] = []
    for n, obj in _jsonl(ctx):
        try:
            if "contextual_mention" in obj:
                cm = _get(obj, "contextual_mention", dict)
                context = _mewsli_context(cm, "contextual_mention.")
                ex = _mewsli_mention(_get(cm, "mention", dict, "contextual_mention."), context,
                                     "contextual_mention.mention.")
                ex["entity"] = _mewsli_entity(_get(obj, "entity", dict), "entity.")
                if ex["entity"]["entity_id"] != ex["entity_id"]:
                    raise _Bad("entity.entity_id", f"{ex['entity']['entity_id']!r} differs from the "
                                                   f"mention's entity_id {ex['entity_id']!r}")
                found = [ex]
            else:
                context = _mewsli_context(obj, "")
                mentions = _get(obj, "mentions", list)
                found = [_mewsli_mention(m, context, f"mentions[{i}].") for i, m in enumerate(mentions)]
        except _Bad as b:
            ctx.bad(ctx.error(n, b.fld, b.message))
            continue
        out.extend(found)
    ctx.done(len(out))
    return out


def read_mewsli_x_entities(path, *, skip_invalid: bool = False, stats: ReadStats | None = None) -> list[dict]:
    """Mewsli-X ``candidate_set_entities.jsonl`` -> ``[{"entity_id", "title", "description", "language"}]``."""
    ctx = _Ctx(path, skip_invalid, stats)
    return _records(ctx, _jsonl(ctx), lambda obj: _mewsli_entity(obj, ""))


# ---------------------------------------------------------------- registry

#: Format name -> reader taking one path and returning ``list[dict]``.
READERS: dict[str, Callable[..., list[dict]]] = {
    "xnli": read_xnli,
    "pawsx": read_pawsx,
    "pair_tsv": read_pair_tsv,
    "qqp": read_qqp,
    "mnli": read_mnli,
    "snli": read_snli,
    "anli": read_anli,
    "copa": read_copa,
    "xcopa": read_xcopa,
    "siqa": read_siqa,
    "cosmosqa": read_cosmosqa,
    "commonsenseqa": read_commonsenseqa,
    "hellaswag": read_hellaswag,
    "squad": read_squad,
    "xquad": read_xquad,
    "mlqa": read_mlqa,
    "tydiqa": read_tydiqa,
    "tags": read_tags,
    "udpos": read_udpos,
    "panx": read_panx,
    "conllu": read_conllu,
    "ccg": read_ccg,
    "mewsli_x": read_mewsli_x,
}
