"""Classification accuracy (XNLI, PAWS-X, XCOPA and every choice task)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xstilts.errors import XstiltsError


# --------------------------------------------------------------------------- #
# Classification
# --------------------------------------------------------------------------- #


def accuracy(preds: Sequence[Any], labels: Sequence[Any]) -> float:
    """Fraction of positions where ``preds[i] == labels[i]``.

    Args:
        preds: predicted labels (any comparable values; lists or numpy arrays).
        labels: gold labels, same length as ``preds``.

    Returns:
        Accuracy in ``[0, 1]``.

    Raises:
        XstiltsError: if the lengths differ or the inputs are empty.
    """
    preds, labels = list(preds), list(labels)
    if len(preds) != len(labels):
        raise XstiltsError(f"accuracy: {len(preds)} predictions for {len(labels)} labels")
    if not labels:
        raise XstiltsError("accuracy: no examples to score")
    return sum(1 for p, g in zip(preds, labels) if p == g) / len(labels)


def accuracy_per_example(preds: Sequence[Any], labels: Sequence[Any]) -> list[float]:
    """Per-example form of :func:`accuracy`: 1.0 where ``preds[i] == labels[i]``, else 0.0 (its mean is the
    accuracy; the paired bootstrap resamples these).

    Raises:
        XstiltsError: if the lengths differ.
    """
    preds, labels = list(preds), list(labels)
    if len(preds) != len(labels):
        raise XstiltsError(f"accuracy: {len(preds)} predictions for {len(labels)} labels")
    return [float(p == g) for p, g in zip(preds, labels)]
