"""Evaluation metrics matching the official XTREME / XTREME-R definitions, and the metric registry.

Every metric function is pure: it takes plain Python / numpy data and returns
plain Python numbers (``float`` fractions in ``[0, 1]``; XTREME reports the
same numbers multiplied by 100). One module per kind, each naming the official
script it reproduces (and where it deliberately deviates):

* :mod:`.classification` - ``accuracy``.
* :mod:`.qa` - ``squad_v1`` / ``squad_v2`` (SQuAD ``evaluate-v1.1.py`` /
  ``evaluate-v2.0.py``) and ``mlqa`` (``mlqa_evaluation_v1.py``).
* :mod:`.tagging` - ``tagging_f1`` (seqeval, PAN-X) and ``pos_f1`` / ``pos_prf`` /
  ``pos_accuracy`` (XTREME's UD-POS: seqeval 0.0.12 chunking, reimplemented).
* :mod:`.retrieval` - BUCC mining / F1 / threshold (LASER, XTREME), Tatoeba,
  LAReQA / Mewsli-X rankings and ``map_at_k`` (XTREME-R ``utils_lareqa.py``).

Benchmark aggregates (``xtreme_score`` over the XTREME / XTREME-R groups) live with the groups in
:mod:`xstilts.tasks.benchmarks`: they aggregate tasks, so they sit above the metric definitions.
* :mod:`.registry` - metric name -> :class:`~.registry.Metric` (function, direction,
  per-example form): what a task's ``metrics`` may name.

Missing predictions score 0 and still count in the denominator (SQuAD v1.1 and
MLQA behaviour; see :func:`squad_v2` for the one place this deviates from the
official script).
"""

from __future__ import annotations

from .classification import accuracy, accuracy_per_example
from .qa import MLQA_LANGUAGES, mlqa, mlqa_tokens, normalize_mlqa_answer, normalize_squad_answer, squad_v1, squad_v2
from .registry import Metric, get_metric, register_metric
from .retrieval import (
    average_precision_at_k,
    bucc_best_threshold,
    bucc_f1,
    bucc_mine,
    lareqa_rankings,
    map_at_k,
    retrieval_rankings,
    tatoeba_accuracy,
    tatoeba_hits,
    tatoeba_predictions,
)
from .tagging import _seqeval_0012_chunks, pos_accuracy, pos_f1, pos_prf, tagging_f1  # noqa: F401 (tests read the private one)

__all__ = [
    "accuracy",
    "accuracy_per_example",
    "normalize_squad_answer",
    "squad_v1",
    "squad_v2",
    "normalize_mlqa_answer",
    "mlqa_tokens",
    "mlqa",
    "MLQA_LANGUAGES",
    "tagging_f1",
    "pos_f1",
    "pos_prf",
    "pos_accuracy",
    "bucc_mine",
    "bucc_f1",
    "bucc_best_threshold",
    "tatoeba_accuracy",
    "tatoeba_predictions",
    "retrieval_rankings",
    "lareqa_rankings",
    "average_precision_at_k",
    "map_at_k",
    "Metric",
    "get_metric",
    "register_metric",
]
