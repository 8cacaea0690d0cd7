"""Classification readers (XNLI, PAWS-X, QQP, MNLI/SNLI, ANLI, generic pair TSV):
``{"text_a": str, "text_b": str | None, "label": str}``.

The reader contract (arguments, errors, ``skip_invalid``) is in :mod:`xstilts.io`.
"""

from __future__ import annotations

import csv
from typing import Iterable

from .base import ReadStats, _Bad, _Ctx, _Lines, _check_label, _csv_rows, _get, _jsonl, _records, _text


NLI_LABELS = ("entailment", "neutral", "contradiction")
PAWSX_LABELS = ("0", "1")
QQP_LABELS = ("0", "1")
ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}




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
