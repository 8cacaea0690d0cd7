"""The metric registry: every metric name a task's ``metrics`` may list.

One :class:`Metric` per name a family's ``score`` returns, with its direction, where it is computed
(dotted references to the official definitions in this package; a name such as ``f1`` is computed by
several of them, one per family or option), and its per-example form where there is one (a function
whose mean over examples is the metric; the paired bootstrap resamples it). Plain data: this module
imports no family and no metric function, so reading it has no import cost and no cycle.

:func:`xstilts.tasks.register` checks a task's metrics here and against its family's
``metric_names(spec)`` (what the family computes for the task's options); a task without ``metrics``
gets its family's first metric name. The first of a task's metrics is its primary metric
(:attr:`xstilts.tasks.TaskSpec.primary_metric`), the one model selection, reports and studies read.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError


@dataclass(frozen=True)
class Metric:
    """One metric name.

    Attributes:
        name: the key a family's ``score`` returns (and the store's ``metric`` column).
        higher_is_better: True for scores; None for a count or a tuned parameter reported next to the
            scores (``total``, ``threshold``), which is no score.
        computed_by: dotted references (``"xstilts.metrics.qa.squad_v1"``) of the functions whose result
            holds this name.
        per_example: dotted reference of its per-example form, or None.
        description: one line.
    """

    name: str
    higher_is_better: bool | None
    computed_by: tuple[str, ...]
    per_example: str | None = None
    description: str = ""

    @property
    def is_score(self) -> bool:
        return self.higher_is_better is not None

    def per_example_function(self) -> Callable | None:
        """The per-example form, imported on demand."""
        return None if self.per_example is None else resolve(self.per_example)


def resolve(reference: str) -> Callable:
    """The function a dotted reference (``"xstilts.metrics.qa.squad_v1"``) names."""
    module, _, name = reference.rpartition(".")
    return getattr(importlib.import_module(module), name)


_M = "xstilts.metrics."
_QA1, _QA2, _MLQA = _M + "qa.squad_v1", _M + "qa.squad_v2", _M + "qa.mlqa"
_SEQEVAL, _POS_F1, _POS_ACC = _M + "tagging.tagging_f1", _M + "tagging.pos_f1", _M + "tagging.pos_accuracy"
_BUCC, _BUCC_T = _M + "retrieval.bucc_f1", _M + "retrieval.bucc_best_threshold"
_TATOEBA, _MAP = _M + "retrieval.tatoeba_hits", _M + "retrieval.map_at_k"

_METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric, *, replace: bool = False) -> Metric:
    """Add a metric name; a duplicate is an error unless ``replace``."""
    if not replace and metric.name in _METRICS:
        raise ValueError(f"metric {metric.name!r} is already registered")
    _METRICS[metric.name] = metric
    return metric


def get_metric(name: str) -> Metric:
    """The metric called ``name``; an unknown name is a :class:`ConfigError` with the closest names."""
    try:
        return _METRICS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_METRICS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown metric {name!r}{hint} (registered: {', '.join(metric_names())})") from None


def metric_names() -> list[str]:
    return sorted(_METRICS)


def is_registered(name: str) -> bool:
    return name in _METRICS


for _metric in (
    Metric("accuracy", True, (_M + "classification.accuracy", _POS_ACC, _TATOEBA),
           _M + "classification.accuracy_per_example",
           "fraction correct: labels, choices, UPOS tokens, or Tatoeba queries whose nearest sentence is the gold one "
           "(Tatoeba's per-example form is tatoeba_hits)"),
    Metric("f1", True, (_QA1, _QA2, _MLQA, _SEQEVAL, _POS_F1, _BUCC),
           description="F1: SQuAD/MLQA token F1, seqeval entity F1 (PAN-X), XTREME's UD-POS F1, BUCC pair F1"),
    Metric("precision", True, (_SEQEVAL, _BUCC), description="seqeval entity precision (PAN-X), BUCC pair precision"),
    Metric("recall", True, (_SEQEVAL, _BUCC), description="seqeval entity recall (PAN-X), BUCC pair recall"),
    Metric("exact_match", True, (_QA1, _MLQA), description="SQuAD v1.1 / MLQA exact match of the normalised answer"),
    Metric("exact", True, (_QA2,), description="SQuAD v2.0 exact match (no-answer questions included)"),
    Metric("HasAns_exact", True, (_QA2,), description="SQuAD v2.0 exact match over answerable questions"),
    Metric("HasAns_f1", True, (_QA2,), description="SQuAD v2.0 F1 over answerable questions"),
    Metric("NoAns_exact", True, (_QA2,), description="SQuAD v2.0 exact match over unanswerable questions"),
    Metric("NoAns_f1", True, (_QA2,), description="SQuAD v2.0 F1 over unanswerable questions"),
    Metric("total", None, (_QA2,), description="SQuAD v2.0: number of questions scored (a count)"),
    Metric("HasAns_total", None, (_QA2,), description="SQuAD v2.0: number of answerable questions (a count)"),
    Metric("NoAns_total", None, (_QA2,), description="SQuAD v2.0: number of unanswerable questions (a count)"),
    Metric("threshold", None, (_BUCC_T,), description="BUCC: the margin threshold tuned for F1 on dev (a parameter)"),
    Metric("map@20", True, (_MAP,), description="mean average precision at 20 (LAReQA; Mewsli-X, where it is MRR@20)"),
):
    register_metric(_metric)
