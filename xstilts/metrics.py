"""Evaluation metrics matching the official XTREME / XTREME-R definitions.

Every function here is pure: it takes plain Python / numpy data and returns
plain Python numbers (``float`` fractions in ``[0, 1]``; XTREME reports the
same numbers multiplied by 100).

Sources reproduced (and where this module deliberately deviates):

* ``squad_v1`` - SQuAD v1.1 ``evaluate-v1.1.py`` (used by XTREME for XQuAD and
  TyDiQA-GoldP).
* ``squad_v2`` - SQuAD v2.0 ``evaluate-v2.0.py`` (optional ``na_probs``
  thresholding and best-threshold search included).
* ``mlqa`` - MLQA ``mlqa_evaluation_v1.py`` (language-aware normalisation).
* ``tagging_f1`` / ``pos_f1`` - ``seqeval.metrics`` precision/recall/F1 in the
  default (conlleval-like, non-strict) mode, as in XTREME ``run_tag.py``, which
  uses it for both PAN-X and UD-POS.
* ``bucc_mine`` / ``bucc_f1`` / ``bucc_best_threshold`` - LASER ``mine_bitext``
  ratio-margin mining and XTREME ``bucc_optimize`` / ``bucc_eval``
  (``third_party/utils_retrieve.py``).
* ``tatoeba_accuracy`` - nearest neighbour by cosine similarity.
* ``map_at_k`` - ``average_precision_at_k`` of XTREME-R's ``utils_lareqa.py``
  (LAReQA mAP@20; with a single relevant item it equals Mewsli-X's MRR@20).
* ``xtreme_score`` - per-task language means, category means, overall mean.

Missing predictions score 0 and still count in the denominator (SQuAD v1.1 and
MLQA behaviour; see :func:`squad_v2` for the one place this deviates from the
official script).
"""

from __future__ import annotations

import collections
import functools
import math
import re
import string
import sys
import unicodedata
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from xstilts.errors import XstiltsError

__all__ = [
    "accuracy",
    "normalize_squad_answer",
    "squad_v1",
    "squad_v2",
    "normalize_mlqa_answer",
    "mlqa_tokens",
    "mlqa",
    "MLQA_LANGUAGES",
    "tagging_f1",
    "pos_f1",
    "pos_accuracy",
    "bucc_mine",
    "bucc_f1",
    "bucc_best_threshold",
    "tatoeba_accuracy",
    "retrieval_rankings",
    "average_precision_at_k",
    "map_at_k",
    "xtreme_score",
    "XTREME_CATEGORIES",
    "XTREME_R_CATEGORIES",
]


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


# --------------------------------------------------------------------------- #
# SQuAD v1.1 / v2.0
# --------------------------------------------------------------------------- #

_SQUAD_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_squad_answer(s: str) -> str:
    """SQuAD ``normalize_answer``: lower, drop ASCII punctuation, drop a/an/the, fix spaces.

    Args:
        s: answer text.

    Returns:
        The normalised answer (tokens joined by single spaces).
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _SQUAD_PUNCT)
    s = _EN_ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _token_f1(pred_tokens: list[str], gold_tokens: list[str]) -> float:
    """SQuAD v1.1 / MLQA bag-of-tokens F1 (0 when nothing overlaps)."""
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _check_references(references: Mapping[Any, Any], name: str) -> None:
    if not references:
        raise XstiltsError(f"{name}: no reference questions to score")


def squad_v1(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> dict[str, float]:
    """Official SQuAD v1.1 exact match and F1 (max over gold answers).

    Args:
        predictions: question id -> predicted answer text.
        references: question id -> list of gold answer texts. Every question in
            ``references`` is scored; a question without a prediction scores 0.
            Predictions for ids not in ``references`` are ignored.

    Returns:
        ``{"exact_match": float, "f1": float}`` as fractions.

    Raises:
        XstiltsError: if ``references`` is empty or a question has no gold answer.
    """
    _check_references(references, "squad_v1")
    em_total = f1_total = 0.0
    for qid, golds in references.items():
        if not golds:
            raise XstiltsError(f"squad_v1: question {qid!r} has no gold answer")
        if qid not in predictions:
            continue
        pred_norm = normalize_squad_answer(predictions[qid])
        pred_toks = pred_norm.split()
        em_total += max(float(pred_norm == normalize_squad_answer(g)) for g in golds)
        f1_total += max(_token_f1(pred_toks, normalize_squad_answer(g).split()) for g in golds)
    n = len(references)
    return {"exact_match": em_total / n, "f1": f1_total / n}


def _v2_tokens(s: str) -> list[str]:
    return normalize_squad_answer(s).split() if s else []


def _v2_f1(gold: str, pred: str) -> float:
    gold_toks, pred_toks = _v2_tokens(gold), _v2_tokens(pred)
    if not gold_toks or not pred_toks:
        # If either is no-answer, F1 is 1 if they agree, 0 otherwise.
        return float(gold_toks == pred_toks)
    return _token_f1(pred_toks, gold_toks)


def _v2_find_best_thresh(
    preds: Mapping[Hashable, str],
    scores: Mapping[Hashable, float],
    na_probs: Mapping[Hashable, float],
    has_ans: Mapping[Hashable, bool],
) -> tuple[float, float]:
    """``find_best_thresh`` of evaluate-v2.0.py, returning a fraction."""
    cur = best = float(sum(1 for v in has_ans.values() if not v))
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1.0 if preds[qid] else 0.0
        cur += diff
        if cur > best:
            best, best_thresh = cur, float(na_probs[qid])
    return best / len(scores), best_thresh


def squad_v2(
    predictions: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    na_probs: Mapping[Hashable, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, Any]:
    """Official SQuAD v2.0 scores, including the HasAns / NoAns breakdown.

    A question whose gold list is empty is unanswerable (``HasAns`` is decided
    on the raw list, as the official ``make_qid_to_has_ans`` does). Gold
    answers that normalise to the empty string are dropped and, if none is
    left, the only gold answer is ``""``. An empty prediction (or one that
    normalises to empty, e.g. ``"The"``) means "no answer". F1 of no-answer
    against no-answer is 1, against a real answer 0.

    Deviation: a question without a prediction scores 0 and stays in every
    denominator (the official script drops it from ``total`` but then fails on
    the HasAns/NoAns subsets); this matches SQuAD v1.1 and MLQA.

    Args:
        predictions: question id -> predicted answer ("" = no answer).
        references: question id -> list of gold answer texts ([] = unanswerable).
        na_probs: optional question id -> probability of no answer. When given,
            the result also holds ``best_exact``, ``best_exact_thresh``,
            ``best_f1`` and ``best_f1_thresh`` (official ``find_best_thresh``).
            Missing ids count as 0.0.
        na_prob_thresh: questions with ``na_prob > na_prob_thresh`` are scored
            as if "no answer" had been predicted (official ``--na-prob-thresh``,
            default 1.0, i.e. no effect).

    Returns:
        Dict with ``exact``, ``f1``, ``total``, ``HasAns_exact``, ``HasAns_f1``,
        ``HasAns_total``, ``NoAns_exact``, ``NoAns_f1``, ``NoAns_total`` (the
        subset scores are None when the subset is empty), plus the ``best_*``
        keys when ``na_probs`` is given. Scores are fractions.

    Raises:
        XstiltsError: if ``references`` is empty.
    """
    _check_references(references, "squad_v2")
    has_ans = {qid: bool(golds) for qid, golds in references.items()}
    exact_raw: dict[Hashable, float] = {}
    f1_raw: dict[Hashable, float] = {}
    for qid, golds in references.items():
        gold_answers = [g for g in golds if normalize_squad_answer(g)] or [""]
        if qid not in predictions:
            continue
        pred = predictions[qid]
        exact_raw[qid] = max(
            float(normalize_squad_answer(g) == normalize_squad_answer(pred)) for g in gold_answers
        )
        f1_raw[qid] = max(_v2_f1(g, pred) for g in gold_answers)

    probs = {qid: float((na_probs or {}).get(qid, 0.0)) for qid in references}

    def thresholded(raw: Mapping[Hashable, float]) -> dict[Hashable, float]:
        out = {}
        for qid in references:
            if probs[qid] > na_prob_thresh:
                out[qid] = float(not has_ans[qid])
            else:
                out[qid] = raw.get(qid, 0.0)
        return out

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)

    def mean_over(scores: Mapping[Hashable, float], qids: list[Hashable]) -> float | None:
        return sum(scores[q] for q in qids) / len(qids) if qids else None

    all_q = list(references)
    has_q = [q for q in all_q if has_ans[q]]
    no_q = [q for q in all_q if not has_ans[q]]
    result: dict[str, Any] = {
        "exact": mean_over(exact, all_q),
        "f1": mean_over(f1, all_q),
        "total": len(all_q),
        "HasAns_exact": mean_over(exact, has_q),
        "HasAns_f1": mean_over(f1, has_q),
        "HasAns_total": len(has_q),
        "NoAns_exact": mean_over(exact, no_q),
        "NoAns_f1": mean_over(f1, no_q),
        "NoAns_total": len(no_q),
    }
    if na_probs is not None:
        # Official find_best_thresh works on the raw scores of predicted qids;
        # we fill missing predictions with "" / 0 so every question counts.
        preds_full = {q: predictions.get(q, "") for q in all_q}
        full_exact = {q: exact_raw.get(q, 0.0) for q in all_q}
        full_f1 = {q: f1_raw.get(q, 0.0) for q in all_q}
        result["best_exact"], result["best_exact_thresh"] = _v2_find_best_thresh(
            preds_full, full_exact, probs, has_ans
        )
        result["best_f1"], result["best_f1_thresh"] = _v2_find_best_thresh(
            preds_full, full_f1, probs, has_ans
        )
    return result


# --------------------------------------------------------------------------- #
# MLQA
# --------------------------------------------------------------------------- #

MLQA_LANGUAGES = ("en", "es", "hi", "vi", "de", "ar", "zh")

_MLQA_ARTICLES = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    # Verbatim from mlqa_evaluation_v1.py. The first alternative can never
    # match ('^' after consumed characters), so in effect EVERY occurrence of
    # 'ال' is replaced by a space, also inside words.
    "ar": re.compile(r"\sال^|ال"),
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


@functools.lru_cache(maxsize=1)
def _mlqa_punct() -> frozenset[str]:
    """MLQA's PUNCT: every unicode category-P character plus string.punctuation."""
    chars = {
        chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")
    }
    return frozenset(chars.union(string.punctuation))


def _mixed_segmentation(text: str, punct: frozenset[str]) -> list[str]:
    """MLQA ``mixed_segmentation``: CJK chars and punctuation are single tokens."""
    segs: list[str] = []
    temp = ""
    for char in text:
        if _CJK.search(char) or char in punct:
            if temp:
                segs.extend(temp.split())
                temp = ""
            segs.append(char)
        else:
            temp += char
    if temp:
        segs.extend(temp.split())
    return segs


def _check_lang(lang: str) -> None:
    if lang not in MLQA_LANGUAGES:
        raise XstiltsError(
            f"mlqa: unknown language {lang!r}; expected one of {', '.join(MLQA_LANGUAGES)}"
        )


def normalize_mlqa_answer(s: str, lang: str) -> str:
    """MLQA ``normalize_answer``: lower, remove unicode punctuation, articles, fix spaces.

    Order as in the official script: lower -> remove punctuation -> remove
    articles (per language; none for hi and zh) -> whitespace tokenisation (or
    mixed segmentation for zh, i.e. one token per CJK character) re-joined
    with single spaces.

    Args:
        s: answer text.
        lang: MLQA answer language, one of :data:`MLQA_LANGUAGES`.

    Returns:
        The normalised answer.

    Raises:
        XstiltsError: for an unknown language.
    """
    _check_lang(lang)
    punct = _mlqa_punct()
    s = s.lower()
    s = "".join(ch for ch in s if ch not in punct)
    if lang in _MLQA_ARTICLES:
        s = _MLQA_ARTICLES[lang].sub(" ", s)
    tokens = _mixed_segmentation(s, punct) if lang == "zh" else s.split()
    return " ".join(t for t in tokens if t.strip() != "")


def mlqa_tokens(s: str, lang: str) -> list[str]:
    """Tokens MLQA's F1 counts: ``normalize_mlqa_answer(s, lang).split()``."""
    return normalize_mlqa_answer(s, lang).split()


def mlqa(
    predictions: Mapping[Hashable, str],
    references: Mapping[Hashable, Sequence[str]],
    lang: str,
) -> dict[str, float]:
    """Official MLQA exact match and F1 for one answer language.

    Args:
        predictions: question id -> predicted answer text.
        references: question id -> list of gold answer texts. Questions without
            a prediction score 0 and count in the denominator.
        lang: answer language (``en es hi vi de ar zh``).

    Returns:
        ``{"exact_match": float, "f1": float}`` as fractions.

    Raises:
        XstiltsError: for an unknown language, empty references or a question
            with no gold answer.
    """
    _check_lang(lang)
    _check_references(references, "mlqa")
    em_total = f1_total = 0.0
    for qid, golds in references.items():
        if not golds:
            raise XstiltsError(f"mlqa: question {qid!r} has no gold answer")
        if qid not in predictions:
            continue
        pred_norm = normalize_mlqa_answer(predictions[qid], lang)
        gold_norms = [normalize_mlqa_answer(g, lang) for g in golds]
        em_total += max(float(pred_norm == g) for g in gold_norms)
        f1_total += max(_token_f1(pred_norm.split(), g.split()) for g in gold_norms)
    n = len(references)
    return {"exact_match": em_total / n, "f1": f1_total / n}


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


def pos_f1(pred_tags: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]]) -> float:
    """What XTREME reports for UD-POS: ``seqeval.metrics.f1_score`` on raw UPOS tags.

    XTREME's ``run_tag.py`` feeds UPOS tags (no ``B-``/``I-`` prefixes) to
    ``seqeval``. seqeval then reads the first character as the chunk tag and
    the rest as the type, so runs of the same tag merge into one chunk
    (``NOUN NOUN`` is a single 2-token chunk) and tags starting with ``I``
    (INTJ), ``S`` (SCONJ, SYM), ``B``/``E``/``O`` get IOBES semantics. The
    result therefore differs from token accuracy (see :func:`pos_accuracy`).
    Note: with seqeval >= 1.0 (installed here) CCONJ and SCONJ share the
    chunk type ``CONJ``; seqeval 0.0.12 (XTREME's era) kept them apart.
    Precision and recall on the same chunks: :func:`tagging_f1` (identical
    computation, returns all three).

    Args:
        pred_tags: predicted UPOS sequences, one list per sentence.
        gold_tags: gold UPOS sequences, same shape.

    Returns:
        The seqeval F1 as a fraction.
    """
    _check_tag_shapes(pred_tags, gold_tags)
    return _seqeval_prf(pred_tags, gold_tags)["f1"]


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


# --------------------------------------------------------------------------- #
# Retrieval: embeddings, BUCC, Tatoeba, LAReQA / Mewsli-X
# --------------------------------------------------------------------------- #


def _as_matrix(emb: Any, name: str) -> np.ndarray:
    arr = np.asarray(emb, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise XstiltsError(f"{name}: expected a non-empty 2-D embedding matrix, got shape {arr.shape}")
    return arr


def _l2_normalize(emb: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation of a float32 copy (zero rows stay zero)."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _knn_ip(query: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN with faiss ``IndexFlatIP``: (sims, indices), best first."""
    from .extras import require

    faiss = require("faiss", "retrieval scoring (Tatoeba, BUCC, LAReQA, Mewsli-X)")
    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    sims, inds = index.search(query, k)
    return sims, inds


def _check_same_dim(a: np.ndarray, b: np.ndarray, name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise XstiltsError(f"{name}: embedding sizes differ ({a.shape[1]} vs {b.shape[1]})")


_BUCC_MODES = {
    "max": "max",
    "forward": "forward",
    "fwd": "forward",
    "backward": "backward",
    "bwd": "backward",
    "intersection": "intersection",
    "intersect": "intersection",
}


def bucc_mine(
    src_emb: Any,
    tgt_emb: Any,
    src_ids: Sequence[Hashable],
    tgt_ids: Sequence[Hashable],
    k: int = 4,
    mode: str = "max",
) -> list[tuple[Hashable, Hashable, float]]:
    """Ratio-margin bitext mining (LASER ``mine_bitext`` as used by XTREME for BUCC).

    Embeddings are L2-normalised and compared by cosine. With ``NN_k(x)`` the
    ``min(k, n_tgt)`` nearest targets of ``x`` (and vice versa)::

        margin(x, y) = cos(x, y) / ( sum_{z in NN_k(x)} cos(x, z) / (2k)
                                   + sum_{z in NN_k(y)} cos(y, z) / (2k) )

    Each source's candidates are its k nearest targets (faiss ``IndexFlatIP``,
    exact); its best target is the candidate with the highest margin (not the
    best over all targets), and symmetrically for targets.

    Modes: ``forward`` (one pair per source), ``backward`` (one pair per
    target), ``intersection`` (forward pairs whose target's backward best is
    that source; scored by the forward margin), ``max`` (forward and backward
    pairs sorted by score descending, greedily kept when neither the source nor
    the target has been used; as in LASER only pairs with score > 0 are
    emitted). Exact score ties are broken by a stable sort (LASER's default
    argsort is not stable). LASER's de-duplication of identical sentence texts
    is left to the caller.

    Args:
        src_emb: ``(n_src, d)`` source embeddings.
        tgt_emb: ``(n_tgt, d)`` target embeddings.
        src_ids: ``n_src`` source ids.
        tgt_ids: ``n_tgt`` target ids.
        k: neighbourhood size (LASER / XTREME default 4).
        mode: ``max`` (XTREME default), ``forward``, ``backward`` or
            ``intersection`` (``fwd``, ``bwd``, ``intersect`` also accepted).

    Returns:
        List of ``(src_id, tgt_id, score)``: in source order for forward and
        intersection, target order for backward, descending score for max.

    Raises:
        XstiltsError: on bad shapes, id counts, ``k < 1`` or an unknown mode.
    """
    if mode not in _BUCC_MODES:
        raise XstiltsError(f"bucc_mine: unknown mode {mode!r}; expected one of {sorted(_BUCC_MODES)}")
    mode = _BUCC_MODES[mode]
    if k < 1:
        raise XstiltsError(f"bucc_mine: k must be >= 1, got {k}")
    x = _l2_normalize(_as_matrix(src_emb, "bucc_mine src_emb"))
    y = _l2_normalize(_as_matrix(tgt_emb, "bucc_mine tgt_emb"))
    _check_same_dim(x, y, "bucc_mine")
    if len(src_ids) != x.shape[0] or len(tgt_ids) != y.shape[0]:
        raise XstiltsError(
            f"bucc_mine: {len(src_ids)} src ids for {x.shape[0]} embeddings, "
            f"{len(tgt_ids)} tgt ids for {y.shape[0]} embeddings"
        )

    x2y_sim, x2y_ind = _knn_ip(x, y, min(k, y.shape[0]))
    y2x_sim, y2x_ind = _knn_ip(y, x, min(k, x.shape[0]))
    x2y_mean = x2y_sim.astype(np.float64).mean(axis=1)
    y2x_mean = y2x_sim.astype(np.float64).mean(axis=1)
    xd, yd = x.astype(np.float64), y.astype(np.float64)

    def score_candidates(a, b, cand, a_mean, b_mean):
        cos = np.einsum("id,ijd->ij", a, b[cand])
        return cos / ((a_mean[:, None] + b_mean[cand]) / 2)

    fwd_scores = score_candidates(xd, yd, x2y_ind, x2y_mean, y2x_mean)
    bwd_scores = score_candidates(yd, xd, y2x_ind, y2x_mean, x2y_mean)
    fwd_best = x2y_ind[np.arange(x.shape[0]), fwd_scores.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(y.shape[0]), bwd_scores.argmax(axis=1)]
    fwd_max = fwd_scores.max(axis=1)
    bwd_max = bwd_scores.max(axis=1)

    if mode == "forward":
        return [(src_ids[i], tgt_ids[j], float(fwd_max[i])) for i, j in enumerate(fwd_best)]
    if mode == "backward":
        return [(src_ids[i], tgt_ids[j], float(bwd_max[j])) for j, i in enumerate(bwd_best)]
    if mode == "intersection":
        return [
            (src_ids[i], tgt_ids[j], float(fwd_max[i]))
            for i, j in enumerate(fwd_best)
            if bwd_best[j] == i
        ]
    # mode == "max"
    src_idx = np.concatenate((np.arange(x.shape[0]), bwd_best))
    tgt_idx = np.concatenate((fwd_best, np.arange(y.shape[0])))
    scores = np.concatenate((fwd_max, bwd_max))
    seen_src: set[int] = set()
    seen_tgt: set[int] = set()
    out = []
    for i in np.argsort(-scores, kind="stable"):
        s, t = int(src_idx[i]), int(tgt_idx[i])
        if s not in seen_src and t not in seen_tgt:
            seen_src.add(s)
            seen_tgt.add(t)
            if scores[i] > 0:
                out.append((src_ids[s], tgt_ids[t], float(scores[i])))
    return out


def _candidate_scores(
    pairs_with_scores: Iterable[tuple[Hashable, Hashable, float]],
) -> dict[tuple[Hashable, Hashable], float]:
    """(src, tgt) -> score, keeping the max score of repeated pairs (XTREME)."""
    cand: dict[tuple[Hashable, Hashable], float] = {}
    for src, tgt, score in pairs_with_scores:
        key = (src, tgt)
        cand[key] = max(float(score), cand.get(key, float(score)))
    return cand


def _gold_set(gold_pairs: Iterable[tuple[Hashable, Hashable]]) -> set[tuple[Hashable, Hashable]]:
    gold = {(s, t) for s, t in gold_pairs}
    if not gold:
        raise XstiltsError("bucc: no gold pairs")
    return gold


def bucc_f1(
    pairs_with_scores: Iterable[tuple[Hashable, Hashable, float]],
    gold_pairs: Iterable[tuple[Hashable, Hashable]],
    threshold: float,
) -> dict[str, float]:
    """Precision / recall / F1 of the candidate pairs with ``score >= threshold``.

    As XTREME ``bucc_extract`` + ``bucc_eval``; a pair listed twice keeps its
    highest score. All three values are 0 when no extracted pair is gold.

    Args:
        pairs_with_scores: ``(src_id, tgt_id, score)`` candidates (e.g. from
            :func:`bucc_mine`).
        gold_pairs: gold ``(src_id, tgt_id)`` pairs.
        threshold: minimum score of an extracted pair (inclusive).

    Returns:
        ``{"precision", "recall", "f1"}`` as fractions.
    """
    cand = _candidate_scores(pairs_with_scores)
    gold = _gold_set(gold_pairs)
    extracted = [pair for pair, score in cand.items() if score >= threshold]
    ncorrect = sum(1 for pair in extracted if pair in gold)
    if ncorrect == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    precision = ncorrect / len(extracted)
    recall = ncorrect / len(gold)
    return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / (precision + recall)}


def bucc_best_threshold(
    pairs_with_scores: Iterable[tuple[Hashable, Hashable, float]],
    gold_pairs: Iterable[tuple[Hashable, Hashable]],
) -> tuple[float, float]:
    """XTREME ``bucc_optimize``: the score threshold that maximises F1 (use on dev).

    Candidates are sorted by descending score; after each candidate the F1 of
    "extract everything so far" is computed, and the first strict maximum sets
    the threshold to the midpoint between that candidate's score and the next
    one. Deviation: when the best cut is after the last candidate (the
    official code raises IndexError there) the threshold is that candidate's
    score. With no correct candidate the threshold is 0.0.

    Args:
        pairs_with_scores: ``(src_id, tgt_id, score)`` candidates.
        gold_pairs: gold ``(src_id, tgt_id)`` pairs.

    Returns:
        ``(threshold, f1)`` where ``f1`` is ``bucc_f1(..., threshold)["f1"]``
        on the same candidates (equal to the best swept F1 unless scores tie
        at the cut).
    """
    cand = _candidate_scores(pairs_with_scores)
    gold = _gold_set(gold_pairs)
    items = sorted(cand.items(), key=lambda kv: -kv[1])
    nextract = ncorrect = 0
    threshold = 0.0
    best_f1 = 0.0
    for i, (pair, score) in enumerate(items):
        nextract += 1
        if pair in gold:
            ncorrect += 1
        if ncorrect > 0:
            precision = ncorrect / nextract
            recall = ncorrect / len(gold)
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    triples = [(s, t, score) for (s, t), score in cand.items()]
    return threshold, bucc_f1(triples, gold, threshold)["f1"]


def tatoeba_accuracy(src_emb: Any, tgt_emb: Any, direction: str = "src2tgt") -> float:
    """Tatoeba accuracy: the mean of :func:`tatoeba_hits`."""
    return float(np.mean(tatoeba_hits(src_emb, tgt_emb, direction)))


def tatoeba_hits(src_emb: Any, tgt_emb: Any, direction: str = "src2tgt") -> np.ndarray:
    """Per query: is the nearest neighbour by cosine similarity the aligned sentence?

    Sentence ``i`` of ``src_emb`` is the translation of sentence ``i`` of
    ``tgt_emb``. Vectors are L2-normalised and searched exactly with faiss
    ``IndexFlatIP``.

    Args:
        src_emb: ``(n, d)`` source-language embeddings.
        tgt_emb: ``(n, d)`` target-language (English in XTREME) embeddings.
        direction: ``"src2tgt"`` - for each source find the nearest target
            (default); ``"tgt2src"`` - for each target find the nearest source,
            which is what XTREME's ``similarity_search(x=src, y=tgt)`` does
            (it indexes the sources and queries with the English side).

    Returns:
        Boolean array, one per query: its nearest neighbour has the same index.

    Raises:
        XstiltsError: on mismatched shapes or an unknown direction.
    """
    x = _l2_normalize(_as_matrix(src_emb, "tatoeba src_emb"))
    y = _l2_normalize(_as_matrix(tgt_emb, "tatoeba tgt_emb"))
    _check_same_dim(x, y, "tatoeba")
    if x.shape[0] != y.shape[0]:
        raise XstiltsError(f"tatoeba: {x.shape[0]} source vs {y.shape[0]} target sentences")
    if direction == "src2tgt":
        query, database = x, y
    elif direction == "tgt2src":
        query, database = y, x
    else:
        raise XstiltsError(f"tatoeba: unknown direction {direction!r}; expected src2tgt or tgt2src")
    _, ind = _knn_ip(query, database, 1)
    return ind[:, 0] == np.arange(query.shape[0])


def retrieval_rankings(query_emb: Any, cand_emb: Any, k: int) -> np.ndarray:
    """Indices of the top-``k`` candidates per query by cosine similarity.

    Args:
        query_emb: ``(n_q, d)`` query embeddings.
        cand_emb: ``(n_c, d)`` candidate embeddings.
        k: number of candidates to return (capped at ``n_c``).

    Returns:
        ``(n_q, min(k, n_c))`` int64 array of candidate indices, best first.

    Raises:
        XstiltsError: on bad shapes or ``k < 1``.
    """
    if k < 1:
        raise XstiltsError(f"retrieval_rankings: k must be >= 1, got {k}")
    q = _l2_normalize(_as_matrix(query_emb, "retrieval_rankings query_emb"))
    c = _l2_normalize(_as_matrix(cand_emb, "retrieval_rankings cand_emb"))
    _check_same_dim(q, c, "retrieval_rankings")
    _, ind = _knn_ip(q, c, min(k, c.shape[0]))
    return ind.astype(np.int64)


def average_precision_at_k(ranking: Sequence[Hashable], relevant: Iterable[Hashable], k: int = 20) -> float:
    """AP@k exactly as XTREME-R ``utils_lareqa.average_precision_at_k``.

    ``AP@k = (1 / min(|relevant|, k)) * sum_{r <= k, item_r relevant} precision@r``,
    where an item repeated in the ranking only counts the first time.

    Args:
        ranking: ranked candidate ids, best first (e.g. a row of
            :func:`retrieval_rankings`).
        relevant: the relevant ids (non-empty).
        k: cutoff.

    Returns:
        AP@k in ``[0, 1]``.

    Raises:
        XstiltsError: if ``relevant`` is empty or ``k < 1``.
    """
    if k < 1:
        raise XstiltsError(f"map_at_k: k must be >= 1, got {k}")
    rel = set(relevant.tolist() if isinstance(relevant, np.ndarray) else relevant)
    if not rel:
        raise XstiltsError("map_at_k: a query has no relevant item")
    ranked = ranking.tolist() if isinstance(ranking, np.ndarray) else list(ranking)
    ranked = ranked[:k]
    score = hits = 0.0
    seen: set[Hashable] = set()
    for i, item in enumerate(ranked):
        if item in rel and item not in seen:
            hits += 1.0
            score += hits / (i + 1.0)
        seen.add(item)
    return score / min(len(rel), k)


def map_at_k(
    rankings: Sequence[Sequence[Hashable]], relevant: Sequence[Iterable[Hashable]], k: int = 20
) -> float:
    """Mean AP@k over queries (LAReQA / XTREME-R mAP@20).

    Denominator convention: ``min(|relevant|, k)``, as in XTREME-R's
    ``utils_lareqa.average_precision_at_k`` (not ``|relevant|``), so a query
    with more than ``k`` relevant items can still reach AP 1.

    Args:
        rankings: one ranked id list per query.
        relevant: one set of relevant ids per query.
        k: cutoff (20 in XTREME-R).

    Returns:
        mAP@k in ``[0, 1]``.

    Raises:
        XstiltsError: on length mismatch, no queries, or an empty relevant set.
    """
    if len(rankings) != len(relevant):
        raise XstiltsError(f"map_at_k: {len(rankings)} rankings for {len(relevant)} relevant sets")
    if len(rankings) == 0:
        raise XstiltsError("map_at_k: no queries to score")
    aps = [average_precision_at_k(r, rel, k) for r, rel in zip(rankings, relevant)]
    return sum(aps) / len(aps)


# --------------------------------------------------------------------------- #
# Benchmark aggregate scores
# --------------------------------------------------------------------------- #

XTREME_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("xnli", "pawsx"),
    "structured_prediction": ("udpos", "panx"),
    "question_answering": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("bucc2018", "tatoeba"),
}
XTREME_R_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("xnli", "xcopa"),
    "structured_prediction": ("udpos", "panx"),
    "question_answering": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("tatoeba", "mewsli-x", "lareqa"),
}
_BENCHMARKS = {"xtreme": XTREME_CATEGORIES, "xtreme-r": XTREME_R_CATEGORIES}
_TASK_ALIASES = {"bucc": "bucc2018", "mewslix": "mewsli-x", "pos": "udpos", "ner": "panx", "wikiann": "panx"}


def _canonical_task(name: str, known: Iterable[str]) -> str:
    key = name.lower().replace("-", "").replace("_", "")
    for task in known:
        if key == task.replace("-", ""):
            return task
    alias = _TASK_ALIASES.get(key)
    return alias if alias is not None else name


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def xtreme_score(
    per_task_lang: Mapping[str, Mapping[str, float]],
    tasks: Iterable[str] | None = None,
    benchmark: str = "xtreme",
) -> dict[str, Any]:
    """XTREME / XTREME-R aggregate score from per-task, per-language results.

    Each per-language value must already be the task's primary metric (accuracy
    for XNLI/PAWS-X/XCOPA, F1 for UD-POS/PAN-X/XQuAD/MLQA/TyDiQA/BUCC,
    accuracy for Tatoeba, mAP@20 for LAReQA/Mewsli-X), as a fraction.

    Task score = unweighted mean over its languages. Category score = mean of
    its task scores. Overall = mean of the four category scores.

    XTREME categories: classification (xnli, pawsx), structured prediction
    (udpos, panx), question answering (xquad, mlqa, tydiqa), retrieval
    (bucc2018, tatoeba). XTREME-R: classification (xnli, xcopa), structured
    prediction (udpos, panx), QA (xquad, mlqa, tydiqa), retrieval (tatoeba,
    mewsli-x, lareqa).

    Args:
        per_task_lang: task -> language -> score. Task names are matched case-
            and ``-``/``_``-insensitively (``paws-x``, ``mewslix``, ``bucc``
            are accepted).
        tasks: if given, only these tasks of ``per_task_lang`` are used; the
            rest of the benchmark's tasks count as missing.
        benchmark: ``"xtreme"`` or ``"xtreme-r"``.

    Returns:
        Dict with ``benchmark``; ``tasks`` (task -> mean over languages, for
        every task with at least one language, benchmark or not);
        ``categories`` (category -> mean, or None if any of its tasks is
        missing); ``overall`` (None unless every category is complete);
        ``missing_tasks`` (benchmark tasks without results); ``unscored_tasks``
        (given tasks that belong to no category of this benchmark);
        ``categories_partial`` (category -> mean over its present tasks, None
        if none) and ``overall_partial`` (mean of the non-None partial
        categories, None if none) - the partial numbers are NOT comparable to
        published scores.

    Raises:
        XstiltsError: for an unknown benchmark.
    """
    bench = benchmark.lower()
    if bench not in _BENCHMARKS:
        raise XstiltsError(f"xtreme_score: unknown benchmark {benchmark!r}; expected xtreme or xtreme-r")
    categories = _BENCHMARKS[bench]
    known = [t for ts in categories.values() for t in ts]

    selected = None if tasks is None else {_canonical_task(t, known) for t in tasks}
    task_scores: dict[str, float] = {}
    for name, by_lang in per_task_lang.items():
        task = _canonical_task(name, known)
        if selected is not None and task not in selected:
            continue
        values = [float(v) for v in by_lang.values()]
        if values:
            task_scores[task] = _mean(values)

    cat_scores: dict[str, float | None] = {}
    cat_partial: dict[str, float | None] = {}
    for cat, cat_tasks in categories.items():
        present = [task_scores[t] for t in cat_tasks if t in task_scores]
        cat_partial[cat] = _mean(present) if present else None
        cat_scores[cat] = _mean(present) if len(present) == len(cat_tasks) else None

    complete = [v for v in cat_scores.values() if v is not None]
    partial = [v for v in cat_partial.values() if v is not None]
    return {
        "benchmark": bench,
        "tasks": task_scores,
        "categories": cat_scores,
        "overall": _mean(complete) if len(complete) == len(categories) else None,
        "missing_tasks": [t for t in known if t not in task_scores],
        "unscored_tasks": sorted(t for t in task_scores if t not in known),
        "categories_partial": cat_partial,
        "overall_partial": _mean(partial) if partial else None,
    }
