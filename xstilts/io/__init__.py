"""Readers for the benchmark file formats: files on disk -> model-agnostic example dicts.

One reader per file format, in one module per family (:mod:`.classification`,
:mod:`.multiple_choice`, :mod:`.span_qa`, :mod:`.tagging`, :mod:`.retrieval`) over
the shared bookkeeping of :mod:`.base`. Every reader

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

from typing import Callable

from ..errors import DataError
from .base import MAX_ERRORS_KEPT, ReadStats, file_present, shared_data_dir
from .classification import (ANLI_LABELS, NLI_LABELS, PAWSX_LABELS, QQP_LABELS, read_anli, read_mnli, read_pair_tsv,
                             read_pawsx, read_qqp, read_snli, read_xnli)
from .multiple_choice import (COPA_QUESTIONS, HELLASWAG_ENDINGS, read_commonsenseqa, read_copa, read_cosmosqa,
                              read_hellaswag, read_siqa, read_xcopa)
from .retrieval import read_bucc, read_mewsli_x, read_mewsli_x_entities, read_tatoeba, read_xquad_r
from .span_qa import read_mlqa, read_squad, read_tydiqa, read_xquad
from .tagging import PANX_TAGS, UPOS_TAGS, read_ccg, read_conllu, read_panx, read_tags, read_udpos

__all__ = [
    "DataError", "ReadStats", "MAX_ERRORS_KEPT", "shared_data_dir", "file_present",
    "NLI_LABELS", "PAWSX_LABELS", "QQP_LABELS", "ANLI_LABELS", "UPOS_TAGS", "PANX_TAGS", "COPA_QUESTIONS",
    "HELLASWAG_ENDINGS",
    "read_xnli", "read_pawsx", "read_pair_tsv", "read_qqp", "read_mnli", "read_snli", "read_anli",
    "read_copa", "read_xcopa", "read_siqa", "read_cosmosqa", "read_commonsenseqa", "read_hellaswag",
    "read_squad", "read_xquad", "read_mlqa", "read_tydiqa",
    "read_tags", "read_udpos", "read_panx", "read_conllu", "read_ccg",
    "read_tatoeba", "read_bucc", "read_xquad_r",
    "read_mewsli_x", "read_mewsli_x_entities",
    "READERS",
]

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
