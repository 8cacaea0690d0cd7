"""Tagging readers (CoNLL-style token-per-line files, UD CoNLL-U, CCG supertags):
``{"tokens": [str], "tags": [str]}``.

The reader contract (arguments, errors, ``skip_invalid``) is in :mod:`xstilts.io`.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from ..errors import DataError
from .base import ReadStats, _Ctx, _Lines, _short


UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
             "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")




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
