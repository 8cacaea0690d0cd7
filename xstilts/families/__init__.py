"""Task families: each module owns everything that depends on the kind of task.

A family is a module of :mod:`xstilts.families` named in :data:`FAMILIES` (below);
it implements :class:`Family` in full (retrieval too: what it cannot do raises a clear
:class:`~xstilts.errors.XstiltsError`). Nothing outside this package compares a family's
name: ``data``, ``model``, ``pipeline``, ``evaluate``, ``active_rows`` and ``translate`` read
these attributes instead. Adding a family = one module here + its name in ``FAMILIES`` +
a catalogue entry. ``tests/test_families.py`` checks every module against the protocol.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Literal, Mapping, Protocol, runtime_checkable

FAMILIES = ("classification", "multiple_choice", "span_qa", "tagging", "retrieval", "mlm")
"""Every family's name: the module ``xstilts.families.<name>`` implements :class:`Family`."""


@runtime_checkable
class Family(Protocol):
    """What a family module declares (module-level constants and functions).

    Records (:mod:`xstilts.data`):
        TITLE: a short human name (``"masked LM"``), used in messages.
        REQUIRED_FIELDS: fields every record has (a reader's record without one is a DataError).
        OPTIONAL_FIELDS: field -> value used when a hub row lacks it.
        HUB_FIELDS: the fields read from a hub row (``HubSource.columns`` maps them onto columns).
        NEEDS_LABELS: featurizing needs ``spec.labels``; a task without them gets the set its
            training data uses (:func:`labels_used`).
        reader_kwargs(spec): extra keyword arguments for the task's reader (e.g. the label set).
        check_example(example, spec): raise :class:`~xstilts.families.base.BadField` for a record
            read from a file that the family cannot use.
        from_hub(record, spec): a hub row's fields -> the family record, or None to leave the row
            out (no gold label); BadField for a bad value.
        hub_records(records): the list :func:`xstilts.data.load_from_hub` returns (retrieval: one
            aligned record).
        count_examples(spec, split, lang, path_of, load): how many examples a split holds
            (``load()`` reads them as records; ``path_of(split, lang)`` names a file).
        labels_used(examples): the label values the examples use.

    Features and model (:mod:`xstilts.data`, :mod:`xstilts.model`, :mod:`xstilts.train`):
        FEATURIZE_VERSION: bumped when ``featurize`` output changes (part of the cache key).
        featurize(examples, tokenizer, spec, max_length, stride) -> dict[str, list]: model inputs,
            one row per model input (``example_idx`` links a row back to its example).
        effective_stride(examples, tokenizer, max_length, stride): the window overlap used for
            the whole set (span QA shortens it for long questions; others return ``stride``).
        COLLATE_COLUMNS: the featurized columns ``collate`` reads.
        collate(rows, tok) -> dict[str, Tensor] (``tok``: :class:`xstilts.data.TokenIds`).
        TRAINS: the family trains a head (False: scored straight on the encoder, :func:`score_encoder`).
        POOLED_HEAD: the head reads position 0; a decoder model moves its last real token there.
        READS_EVERY_ROW: the loss reads every row of the word-embedding table (no active rows).
        make_head(hidden_size, spec, vocab_size=None, input_embeddings=None) -> nn.Module
            (masked LM ties its decoder to ``input_embeddings``).
        loss_and_logits(head, hidden, batch) -> (loss | None, logits).
        probe_features(hidden, batch) -> (features (m, hidden), labels (m,)): the (feature, label) pairs a
            linear probe of a training batch sees (LogME, :mod:`xstilts.forecast`); families without
            labels raise.

    Predictions and scores (:mod:`xstilts.evaluate`, :mod:`xstilts.pipeline`):
        decode(logits_rows, rows, examples, spec) -> one prediction per example.
        score(predictions, examples, spec, lang) -> dict[str, float].
        metric_names(spec): the keys ``score`` (or ``score_encoder``) returns for ``spec``.
        score_encoder(spec, split, lang, path_of, embed, *, limit, per_example, aligned): the
            scores of a family that does not train (others raise).
        per_example_scores(predictions, examples): one score per example for paired tests, or None.
        prediction_record(predictions, examples): what is saved as ``predictions/<lang>.json``.
        write_submission(preds, ids, dest_stem) -> (path, warning): one language's saved
            predictions in the XTREME submission layout (``dest_stem`` without suffix; ``ids``
            the saved example ids or None).

    Translate-train (:mod:`xstilts.translate`):
        TRANSLATION: ``"fields"`` (translate ``TRANSLATABLE_FIELDS``; list fields element-wise),
            ``"spans"`` (span QA's mark-and-translate) or None (not translated).
        TRANSLATABLE_FIELDS: the text fields translated, in order.
        NOT_TRANSLATABLE_REASON: why the family is not translated ("" : the generic message).
    """

    TITLE: str
    REQUIRED_FIELDS: tuple[str, ...]
    OPTIONAL_FIELDS: Mapping[str, Any]
    HUB_FIELDS: tuple[str, ...]
    NEEDS_LABELS: bool
    FEATURIZE_VERSION: int
    COLLATE_COLUMNS: tuple[str, ...]
    TRAINS: bool
    POOLED_HEAD: bool
    READS_EVERY_ROW: bool
    TRANSLATION: Literal["fields", "spans"] | None
    TRANSLATABLE_FIELDS: tuple[str, ...]
    NOT_TRANSLATABLE_REASON: str

    def reader_kwargs(self, spec) -> dict: ...
    def check_example(self, example: dict, spec) -> None: ...
    def from_hub(self, record: dict, spec) -> dict | None: ...
    def hub_records(self, records: list[dict]) -> list[dict]: ...
    def count_examples(self, spec, split: str, lang: str, path_of: Callable[[str, str], Path],
                       load: Callable[[], list]) -> int: ...
    def labels_used(self, examples: list[dict]) -> set: ...
    def featurize(self, examples, tokenizer, spec, max_length: int, stride: int | None = None) -> dict: ...
    def effective_stride(self, examples, tokenizer, max_length: int, stride: int | None = None) -> int | None: ...
    def collate(self, rows: list[dict], tok) -> dict: ...
    def make_head(self, hidden_size: int, spec, vocab_size: int | None = None, input_embeddings=None): ...
    def loss_and_logits(self, head, hidden, batch) -> tuple: ...

    def probe_features(self, hidden, batch) -> tuple: ...
    def decode(self, logits_rows, rows, examples, spec) -> list: ...
    def score(self, predictions, examples, spec, lang: str) -> dict[str, float]: ...
    def metric_names(self, spec) -> tuple[str, ...]: ...
    def score_encoder(self, spec, split: str, lang: str, path_of, embed, *, limit: int | None = None,
                      per_example: list | None = None, aligned=None) -> dict[str, float]: ...
    def per_example_scores(self, predictions, examples) -> list[float] | None: ...
    def prediction_record(self, predictions, examples): ...
    def write_submission(self, preds, ids, dest_stem: Path) -> tuple[Path, str | None]: ...


# Attribute name -> the kind it must be (a type, or "callable"): what tests/test_families.py checks.
PROTOCOL: dict[str, Any] = {
    name: "callable" for name in Family.__dict__
    if not name.startswith("_") and callable(Family.__dict__[name])
} | {name: kind for name, kind in {
    "TITLE": str, "REQUIRED_FIELDS": tuple, "OPTIONAL_FIELDS": dict, "HUB_FIELDS": tuple, "NEEDS_LABELS": bool,
    "FEATURIZE_VERSION": int, "COLLATE_COLUMNS": tuple, "TRAINS": bool, "POOLED_HEAD": bool,
    "READS_EVERY_ROW": bool, "TRANSLATION": (str, type(None)), "TRANSLATABLE_FIELDS": tuple,
    "NOT_TRANSLATABLE_REASON": str}.items()}


def get_family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{name}")


def missing(module: ModuleType) -> list[str]:
    """Protocol attributes ``module`` lacks or declares with the wrong kind (empty: a complete family)."""
    bad = []
    for name, kind in PROTOCOL.items():
        if not hasattr(module, name):
            bad.append(f"{name} (absent)")
        elif kind == "callable":
            if not callable(getattr(module, name)):
                bad.append(f"{name} (not callable)")
        elif not isinstance(getattr(module, name), kind):
            bad.append(f"{name} (not {kind})")
    return bad
