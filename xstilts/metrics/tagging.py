"""Sequence-tagging metrics (PAN-X NER, UD-POS).

* ``tagging_f1`` - ``seqeval.metrics`` precision/recall/F1 in the default
  (conlleval-like, non-strict) mode, as XTREME ``evaluate.py`` for PAN-X.
* ``pos_f1`` / ``pos_prf`` - XTREME's UD-POS F1: seqeval **0.0.12** chunking of
  raw UPOS tags, reimplemented here (seqeval >= 1.0 differs on UPOS).
* ``pos_accuracy`` - token accuracy.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from xstilts.errors import XstiltsError

from .classification import accuracy


# --------------------------------------------------------------------------- #
# Sequence tagging (PAN-X NER, UD-POS)
# --------------------------------------------------------------------------- #


def _check_tag_shapes(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]):
    if len(pred_tags) != len(gold_tags):
        raise XstiltsError(
            f"tagging: {len(pred_tags)} predicted sentences for {len(gold_tags)} gold sentences"
        )
    for i, (p, g) in enumerate(zip(pred_tags, gold_tags)):
        if len(p) != len(g):
            raise XstiltsError(f"tagging: sentence {i} has {len(p)} predicted and {len(g)} gold tags")
    if not any(len(g) for g in gold_tags):
        raise XstiltsError("tagging: no tokens to score")


def _seqeval_prf(pred_tags, gold_tags) -> dict[str, float]:
    from seqeval.metrics import f1_score, precision_score, recall_score

    y_true = [list(s) for s in gold_tags]
    y_pred = [list(s) for s in pred_tags]
    with warnings.catch_warnings():
        # seqeval warns about non-IOB tags (UPOS) and undefined precision.
        warnings.simplefilter("ignore")
        return {
            "f1": float(f1_score(y_true, y_pred)),
            "precision": float(precision_score(y_true, y_pred)),
            "recall": float(recall_score(y_true, y_pred)),
        }


def tagging_f1(
    pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level precision / recall / F1 via ``seqeval`` (default mode), as XTREME.

    Default mode is conlleval-like: e.g. a chunk starting with ``I-PER`` is
    accepted as a PER chunk (no strict IOB2 validation).

    Args:
        pred_tags: predicted tag sequences, one list per sentence.
        gold_tags: gold tag sequences, same shape.

    Returns:
        ``{"f1", "precision", "recall"}`` as fractions.

    Raises:
        XstiltsError: on shape mismatch or when there are no tokens.
    """
    _check_tag_shapes(pred_tags, gold_tags)
    return _seqeval_prf(pred_tags, gold_tags)


def _seqeval_0012_chunks(sentences: Sequence[Sequence[str]]) -> set[tuple[str, int, int]]:
    """Chunks as ``seqeval==0.0.12`` ``get_entities`` finds them (what XTREME scored with).

    Reimplemented because the installed seqeval (>= 1.0) chunks differently.
    0.0.12 semantics, faithfully: the sentences are concatenated with an
    ``"O"`` after each one (global offsets); a label's chunk tag is its first
    character and its type everything after its last ``-`` (the whole label
    when it has none), so ``CCONJ`` (tag ``C``, type ``CCONJ``) and ``SCONJ``
    (tag ``S``, type ``SCONJ``) are different types and a sentence-final ``X``
    is still a chunk. Chunk ends / starts follow 0.0.12's ``end_of_chunk`` /
    ``start_of_chunk`` (IOBES tags ``B I E S O``; ``.`` never starts or ends a
    typed chunk by itself).
    """
    seq = [label for sent in sentences for label in [*sent, "O"]]
    chunks: set[tuple[str, int, int]] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, label in enumerate([*seq, "O"]):
        tag, type_ = label[0], label.split("-")[-1]
        end = (
            prev_tag in ("E", "S")
            or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
            or (prev_tag not in ("O", ".") and prev_type != type_)
        )
        start = (
            tag in ("B", "S")
            or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
            or (tag not in ("O", ".") and prev_type != type_)
        )
        if end:
            chunks.add((prev_type, begin, i - 1))
        if start:
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def pos_prf(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> dict[str, float]:
    """UD-POS precision / recall / F1 as XTREME reports them (XTREME-compatible).

    XTREME's ``evaluate.py`` / ``run_tag.py`` score raw UPOS tags (no
    ``B-``/``I-`` prefixes) with ``seqeval.metrics`` **0.0.12** (the version
    its published tables and its own ``evaluate_test.py`` use). seqeval then
    reads the first character as the chunk tag and the rest as the type, so
    runs of the same tag merge into one chunk (``NOUN NOUN`` is one 2-token
    chunk) and tags starting with ``B E I O S`` get IOBES semantics. This is
    NOT token accuracy (see :func:`pos_accuracy`). seqeval >= 1.0 gives other
    numbers (CCONJ and SCONJ share a type there, a sentence-final ``X`` is
    dropped): up to ~9 points on single languages, so xstilts implements the
    0.0.12 chunking itself (:func:`_seqeval_0012_chunks`; differential test
    against the official script in ``tests/test_official.py``).

    Args:
        pred_tags: predicted UPOS sequences, one list per sentence.
        gold_tags: gold UPOS sequences, same shape.

    Returns:
        ``{"f1", "precision", "recall"}`` as fractions (0 when undefined, as 0.0.12).
    """
    _check_tag_shapes(pred_tags, gold_tags)
    true, pred = _seqeval_0012_chunks(gold_tags), _seqeval_0012_chunks(pred_tags)
    correct = len(true & pred)
    p = correct / len(pred) if pred else 0.0
    r = correct / len(true) if true else 0.0
    return {"f1": 2 * p * r / (p + r) if p + r > 0 else 0.0, "precision": p, "recall": r}


def pos_f1(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> float:
    """The XTREME-compatible UD-POS F1 (``pos_prf(...)["f1"]``)."""
    return pos_prf(pred_tags, gold_tags)["f1"]


def pos_accuracy(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> float:
    """Token-level accuracy over all tokens of all sentences.

    This is the conventional POS metric; XTREME itself reports :func:`pos_f1`.

    Args:
        pred_tags: predicted tag sequences, one list per sentence.
        gold_tags: gold tag sequences, same shape.

    Returns:
        Accuracy in ``[0, 1]``.
    """
    _check_tag_shapes(pred_tags, gold_tags)
    flat_p = [t for s in pred_tags for t in s]
    flat_g = [t for s in gold_tags for t in s]
    return accuracy(flat_p, flat_g)
