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
* ``tagging_f1`` - ``seqeval.metrics`` precision/recall/F1 in the default
  (conlleval-like, non-strict) mode, as XTREME ``evaluate.py`` for PAN-X.
* ``pos_f1`` / ``pos_prf`` - XTREME's UD-POS F1: seqeval **0.0.12** chunking of
  raw UPOS tags, reimplemented here (seqeval >= 1.0 differs on UPOS).
* ``bucc_mine`` / ``bucc_f1`` / ``bucc_best_threshold`` - LASER ``mine_bitext``
  ratio-margin mining (identical texts merged, texts under two ids dropped)
  and XTREME ``bucc_optimize`` / ``bucc_eval`` (``third_party/utils_retrieve.py``).
* ``tatoeba_accuracy`` - XTREME ``similarity_search``: each English sentence's
  nearest source sentence (faiss ``IndexFlatL2`` on L2-normalised vectors).
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
    "xtreme_score",
    "XTREME_CATEGORIES",
    "XTREME_R_CATEGORIES",
    "XTREME_TASKS",
    "XTREME_R_TASKS",
    "QA_TASKS",
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
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):  # stable: ties keep na_probs' order
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

    Deviation (deliberate, documented): a question without a prediction
    scores 0 (as "no answer" for the best-threshold search) and stays in every
    denominator. The official script prints "Missing prediction", drops it
    from ``total`` and then fails with a KeyError on the HasAns/NoAns subsets,
    i.e. a prediction file missing questions is an error there. With every
    question predicted the two agree exactly (differential test in
    ``tests/test_official.py``). Scoring missing questions 0 matches SQuAD
    v1.1 and MLQA.

    Best-threshold ties: ``find_best_thresh`` walks the questions sorted by
    no-answer probability with a stable sort over the ``na_probs`` mapping's
    own order (the official na_prob file's order), so pass ``na_probs`` in
    that order; questions it lacks follow at 0.0.

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

    # evaluate-v2.0.py's best-threshold search sorts its na_prob FILE's keys stably by value, so exact
    # ties keep the file's order: keep the caller's order (then any question it lacks, at 0.0).
    given = [q for q in (na_probs or {}) if q in has_ans]
    order = given + [q for q in references if q not in (na_probs or {})]
    probs = {qid: float((na_probs or {}).get(qid, 0.0)) for qid in order}

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


# --------------------------------------------------------------------------- #
# Retrieval: embeddings, BUCC, Tatoeba, LAReQA / Mewsli-X
# --------------------------------------------------------------------------- #


def _as_matrix(emb: Any, name: str) -> np.ndarray:
    arr = np.asarray(emb, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise XstiltsError(f"{name}: expected a non-empty 2-D embedding matrix, got shape {arr.shape}")
    return arr


def _f32_copy(emb: Any, name: str) -> np.ndarray:
    """A C-contiguous float32 copy of a validated embedding matrix (faiss normalises in place)."""
    return np.array(_as_matrix(emb, name), dtype=np.float32, order="C", copy=True)


def _l2_normalize(emb: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation of a float32 copy (zero rows stay zero)."""
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _faiss():
    """faiss, or a one-line error naming the ``retrieval`` extra."""
    from .extras import require

    return require("faiss", "retrieval scoring (Tatoeba, BUCC, LAReQA, Mewsli-X)")


def _knn_ip(query: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product k-NN with faiss ``IndexFlatIP``: (sims, indices), best first."""
    faiss = _faiss()
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


def _unify_texts(emb: np.ndarray, texts: Sequence[str], name: str) -> tuple[np.ndarray, list[str]]:
    """LASER ``text_load_unify`` + ``unique_embeddings``: one row per distinct text.

    Distinct texts keep their first-occurrence order; each takes the embedding
    of its LAST occurrence (as ``unique_embeddings``' dict comprehension does).
    """
    if len(texts) != emb.shape[0]:
        raise XstiltsError(f"bucc_mine: {len(texts)} {name} texts for {emb.shape[0]} embeddings")
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, t in enumerate(texts):
        first.setdefault(t, len(first))
        last[t] = i
    uniq = list(first)
    return np.ascontiguousarray(emb[[last[t] for t in uniq]]), uniq


def _text_to_id(texts: Sequence[str], ids: Sequence[Hashable]) -> dict[str, Hashable]:
    """XTREME ``read_sent2id``: text -> id, dropping every text that appears under two ids."""
    out: dict[str, Hashable] = {}
    repeated: set[str] = set()
    for t, i in zip(texts, ids):
        if t in out:
            repeated.add(t)
        else:
            out[t] = i
    for t in repeated:
        del out[t]
    return out


def _margin_scores(a: np.ndarray, b: np.ndarray, cand: np.ndarray, a_mean: np.ndarray, b_mean: np.ndarray):
    """LASER ``score_candidates`` with the ratio margin, in its float32 arithmetic.

    ``a[i].dot(b[c]) / ((a_mean[i] + b_mean[c]) / 2)`` per candidate, each term a
    float32 scalar as in the official loop (so thresholds match it to the bit);
    stored in a float64 array like ``np.zeros``.
    """
    scores = np.zeros(cand.shape)
    two = np.float32(2)
    for i in range(cand.shape[0]):
        ai, mi = a[i], a_mean[i]
        for j in range(cand.shape[1]):
            c = cand[i, j]
            scores[i, j] = ai.dot(b[c]) / ((mi + b_mean[c]) / two)
    return scores


def bucc_mine(
    src_emb: Any,
    tgt_emb: Any,
    src_ids: Sequence[Hashable],
    tgt_ids: Sequence[Hashable],
    k: int = 4,
    mode: str = "max",
    src_texts: Sequence[str] | None = None,
    tgt_texts: Sequence[str] | None = None,
) -> list[tuple[Hashable, Hashable, float]]:
    """Ratio-margin bitext mining as XTREME runs it for BUCC (LASER ``mine_bitext`` + ``bucc_eval``).

    Embeddings are L2-normalised (``faiss.normalize_L2``) and compared by cosine. With
    ``NN_k(x)`` the ``min(k, n_tgt)`` nearest targets of ``x`` (and vice versa)::

        margin(x, y) = cos(x, y) / ( sum_{z in NN_k(x)} cos(x, z) / (2k)
                                   + sum_{z in NN_k(y)} cos(y, z) / (2k) )

    Each source's candidates are its k nearest targets (faiss ``IndexFlatIP``,
    exact); its best target is the candidate with the highest margin, and
    symmetrically for targets. Scores are computed in the official float32
    arithmetic.

    With ``src_texts`` / ``tgt_texts`` (what XTREME does): identical sentence
    texts are merged before the nearest-neighbour step (one entry per distinct
    text, LASER ``text_load_unify``), and a mined pair is mapped back to ids
    with ``read_sent2id``, which DROPS every pair whose source or target text
    appears under two ids. Without texts, mining runs over the ids as given
    (not the official procedure when texts repeat).

    Modes: ``forward`` (one pair per source), ``backward`` (one pair per
    target), ``intersection`` (forward pairs whose target's backward best is
    that source; scored by the forward margin), ``max`` (XTREME: forward and
    backward pairs by descending score - ``np.argsort(-scores)`` as LASER -
    greedily kept when neither side has been used; only scores > 0). A pair
    found twice keeps its highest score (``read_candidate2score``).

    Args:
        src_emb: ``(n_src, d)`` source embeddings.
        tgt_emb: ``(n_tgt, d)`` target embeddings.
        src_ids: ``n_src`` source ids.
        tgt_ids: ``n_tgt`` target ids.
        k: neighbourhood size (LASER / XTREME default 4).
        mode: ``max`` (XTREME default), ``forward``, ``backward`` or
            ``intersection`` (``fwd``, ``bwd``, ``intersect`` also accepted).
        src_texts: optional source sentence texts, aligned with ``src_ids``.
        tgt_texts: optional target sentence texts, aligned with ``tgt_ids``.

    Returns:
        List of ``(src_id, tgt_id, score)`` in the order the official candidates
        file lists them.

    Raises:
        XstiltsError: on bad shapes, id/text counts, ``k < 1`` or an unknown mode.
    """
    faiss = _faiss()

    if mode not in _BUCC_MODES:
        raise XstiltsError(f"bucc_mine: unknown mode {mode!r}; expected one of {sorted(_BUCC_MODES)}")
    mode = _BUCC_MODES[mode]
    if k < 1:
        raise XstiltsError(f"bucc_mine: k must be >= 1, got {k}")
    if (src_texts is None) != (tgt_texts is None):
        raise XstiltsError("bucc_mine: give both src_texts and tgt_texts, or neither")
    x = _f32_copy(src_emb, "bucc_mine src_emb")
    y = _f32_copy(tgt_emb, "bucc_mine tgt_emb")
    _check_same_dim(x, y, "bucc_mine")
    if len(src_ids) != x.shape[0] or len(tgt_ids) != y.shape[0]:
        raise XstiltsError(
            f"bucc_mine: {len(src_ids)} src ids for {x.shape[0]} embeddings, "
            f"{len(tgt_ids)} tgt ids for {y.shape[0]} embeddings"
        )
    if src_texts is not None:
        x, src_keys = _unify_texts(x, src_texts, "src")
        y, tgt_keys = _unify_texts(y, tgt_texts, "tgt")
        src_map, tgt_map = _text_to_id(src_texts, src_ids), _text_to_id(tgt_texts, tgt_ids)
    else:
        src_keys, tgt_keys = list(src_ids), list(tgt_ids)
        src_map = tgt_map = None
    faiss.normalize_L2(x)
    faiss.normalize_L2(y)

    x2y_sim, x2y_ind = _knn_ip(x, y, min(k, y.shape[0]))
    y2x_sim, y2x_ind = _knn_ip(y, x, min(k, x.shape[0]))
    x2y_mean, y2x_mean = x2y_sim.mean(axis=1), y2x_sim.mean(axis=1)
    fwd_scores = _margin_scores(x, y, x2y_ind, x2y_mean, y2x_mean)
    bwd_scores = _margin_scores(y, x, y2x_ind, y2x_mean, x2y_mean)
    fwd_best = x2y_ind[np.arange(x.shape[0]), fwd_scores.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(y.shape[0]), bwd_scores.argmax(axis=1)]
    fwd_max, bwd_max = fwd_scores.max(axis=1), bwd_scores.max(axis=1)

    mined: list[tuple[int, int, float]]
    if mode == "forward":
        mined = [(i, int(j), float(fwd_max[i])) for i, j in enumerate(fwd_best)]
    elif mode == "backward":
        mined = [(int(i), j, float(bwd_max[j])) for j, i in enumerate(bwd_best)]
    elif mode == "intersection":
        mined = [(i, int(j), float(fwd_max[i])) for i, j in enumerate(fwd_best) if bwd_best[j] == i]
    else:  # max
        src_idx = np.concatenate((np.arange(x.shape[0]), bwd_best))
        tgt_idx = np.concatenate((fwd_best, np.arange(y.shape[0])))
        scores = np.concatenate((fwd_max, bwd_max))
        seen_src: set[int] = set()
        seen_tgt: set[int] = set()
        mined = []
        for i in np.argsort(-scores):  # LASER's (default-kind) sort
            s, t = int(src_idx[i]), int(tgt_idx[i])
            if s not in seen_src and t not in seen_tgt:
                seen_src.add(s)
                seen_tgt.add(t)
                if scores[i] > 0:
                    mined.append((s, t, float(scores[i])))
    if src_map is None:
        return [(src_keys[s], tgt_keys[t], score) for s, t, score in mined]
    cand: dict[tuple[Hashable, Hashable], float] = {}
    for s, t, score in mined:
        if src_keys[s] in src_map and tgt_keys[t] in tgt_map:
            key = (src_map[src_keys[s]], tgt_map[tgt_keys[t]])
            cand[key] = max(score, cand.get(key, score))
    return [(s, t, score) for (s, t), score in cand.items()]


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


def tatoeba_accuracy(src_emb: Any, tgt_emb: Any, direction: str = "tgt2src") -> float:
    """Tatoeba accuracy: the mean of :func:`tatoeba_hits`."""
    return float(np.mean(tatoeba_hits(src_emb, tgt_emb, direction)))


def tatoeba_predictions(src_emb: Any, tgt_emb: Any, direction: str = "tgt2src") -> np.ndarray:
    """Index of each query's nearest neighbour, exactly as XTREME's ``similarity_search``.

    XTREME (``third_party/evaluate_retrieval.py`` -> ``utils_retrieve.similarity_search(x=src,
    y=eng, normalize=True)``) L2-normalises both sides with ``faiss.normalize_L2``, indexes the
    SOURCE sentences in a ``faiss.IndexFlatL2`` and queries with each ENGLISH sentence. The same
    calls are made here, so exactly tied distances resolve as in the official code (faiss keeps
    the lowest index among equal L2 distances; an inner-product index can order such ties
    differently after rounding).

    Args:
        src_emb: ``(n, d)`` source-language embeddings (sentence ``i`` translates English ``i``).
        tgt_emb: ``(n, d)`` English embeddings.
        direction: ``"tgt2src"`` (default, XTREME: for each English sentence the nearest source
            sentence) or ``"src2tgt"`` (for each source sentence the nearest English one; not
            comparable with published numbers).

    Returns:
        int64 array: for query ``i`` the index of its nearest neighbour.

    Raises:
        XstiltsError: on mismatched shapes or an unknown direction.
    """
    faiss = _faiss()

    x = _f32_copy(src_emb, "tatoeba src_emb")
    y = _f32_copy(tgt_emb, "tatoeba tgt_emb")
    _check_same_dim(x, y, "tatoeba")
    if x.shape[0] != y.shape[0]:
        raise XstiltsError(f"tatoeba: {x.shape[0]} source vs {y.shape[0]} target sentences")
    if direction == "tgt2src":
        database, query = x, y
    elif direction == "src2tgt":
        database, query = y, x
    else:
        raise XstiltsError(f"tatoeba: unknown direction {direction!r}; expected tgt2src or src2tgt")
    faiss.normalize_L2(x)
    faiss.normalize_L2(y)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(database)
    _, ind = index.search(query, 1)
    return ind[:, 0].astype(np.int64)


def tatoeba_hits(src_emb: Any, tgt_emb: Any, direction: str = "tgt2src") -> np.ndarray:
    """Per query: is its nearest neighbour (:func:`tatoeba_predictions`) the aligned sentence?

    Returns:
        Boolean array, one entry per query (per English sentence by default).
    """
    pred = tatoeba_predictions(src_emb, tgt_emb, direction)
    return pred == np.arange(pred.shape[0])


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


def lareqa_rankings(query_emb: Any, cand_emb: Any, k: int = 20, normalize: bool = True) -> np.ndarray:
    """:func:`retrieval_rankings` computed exactly as XTREME-R's LAReQA evaluation ranks.

    ``utils_lareqa.mean_avg_prec_at_k`` scores each question by
    ``np.expand_dims(q, 0).dot(C.T)`` and ranks with ``scores.argsort()[::-1]``
    (exactly tied candidates: highest index first). The same calls are made
    here, so near-ties also order as there. ``normalize``: L2-normalise both
    sides first (``faiss.normalize_L2``, i.e. rank by cosine); the official
    code ranks its encoders' outputs as given. Returns and raises as
    :func:`retrieval_rankings`.
    """
    faiss = _faiss()

    if k < 1:
        raise XstiltsError(f"lareqa_rankings: k must be >= 1, got {k}")
    q = _f32_copy(query_emb, "lareqa_rankings query_emb")
    c = _f32_copy(cand_emb, "lareqa_rankings cand_emb")
    _check_same_dim(q, c, "lareqa_rankings")
    if normalize:
        faiss.normalize_L2(q)
        faiss.normalize_L2(c)
    ct = c.T
    kk = min(k, c.shape[0])
    out = np.empty((q.shape[0], kk), dtype=np.int64)
    for i in range(q.shape[0]):
        out[i] = np.squeeze(np.expand_dims(q[i], 0).dot(ct), 0).argsort()[::-1][:kk]
    return out


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

# Official groups and task lists of google-research/xtreme ``evaluate.py``
# (XTREME_GROUP2TASK / XTREME_R_GROUP2TASK / *_TASK2LANGS keys). LAReQA is an
# XTREME-R task but belongs to no official group.
XTREME_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("pawsx", "xnli"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("bucc2018", "tatoeba"),
}
XTREME_R_CATEGORIES: dict[str, tuple[str, ...]] = {
    "classification": ("xnli", "xcopa"),
    "tagging": ("udpos", "panx"),
    "qa": ("xquad", "mlqa", "tydiqa"),
    "retrieval": ("tatoeba", "mewsli-x"),
    "multi_choice": ("xcopa",),
}
XTREME_TASKS = ("pawsx", "xnli", "panx", "udpos", "bucc2018", "tatoeba", "xquad", "mlqa", "tydiqa")
XTREME_R_TASKS = ("xnli", "panx", "udpos", "tatoeba", "xcopa", "lareqa", "mewsli-x", "xquad", "mlqa", "tydiqa")
_BENCHMARKS = {"xtreme": (XTREME_CATEGORIES, XTREME_TASKS), "xtreme-r": (XTREME_R_CATEGORIES, XTREME_R_TASKS)}
QA_TASKS = frozenset(XTREME_CATEGORIES["qa"])
_TASK_ALIASES = {"bucc": "bucc2018", "mewslix": "mewsli-x", "pos": "udpos", "ner": "panx", "wikiann": "panx"}
# The catalogue's XTREME-R tagging tasks (XTREME-R's wider language lists).
_R_VARIANTS = {"udposr": "udpos", "panxr": "panx"}


def _canonical_task(name: str, known: Iterable[str], bench: str = "xtreme") -> str:
    key = name.lower().replace("-", "").replace("_", "")
    for task in known:
        if key == task.replace("-", ""):
            return task
    if bench == "xtreme-r" and key in _R_VARIANTS:
        return _R_VARIANTS[key]
    alias = _TASK_ALIASES.get(key)
    return alias if alias is not None else name


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _task_score(task: str, by_lang: Mapping[str, Any]) -> float | None:
    """Official ``avg_metric`` of one task from its per-language results.

    Per metric, the plain mean over languages (``sum / len`` as evaluate.py);
    then QA tasks take ``(avg_exact_match + avg_f1) / 2``, the others avg F1,
    else avg accuracy, else avg mAP@20. A per-language value may be a number
    (already the task metric) or a mapping metric -> value.
    """
    if not by_lang:
        return None
    per_metric: dict[str, list[float]] = collections.defaultdict(list)
    for lang, value in by_lang.items():
        if isinstance(value, Mapping):
            for m, v in value.items():
                if v is not None:
                    per_metric[m].append(float(v))
        else:
            per_metric["value"].append(float(value))
    avg = {m: sum(vs) / len(vs) for m, vs in per_metric.items()}
    if task in QA_TASKS and "exact_match" in avg and "f1" in avg:
        return (avg["exact_match"] + avg["f1"]) / 2
    for m in ("value", "f1", "accuracy", "map@20"):
        if m in avg:
            return avg[m]
    return None


def xtreme_score(
    per_task_lang: Mapping[str, Mapping[str, Any]],
    tasks: Iterable[str] | None = None,
    benchmark: str = "xtreme",
) -> dict[str, Any]:
    """XTREME / XTREME-R aggregate scores as google-research/xtreme ``evaluate.py``.

    Task score (``avg_metric``): per metric the unweighted mean over languages;
    QA tasks (XQuAD, MLQA, TyDiQA) score ``(EM + F1) / 2``, the others F1
    (PAN-X, UD-POS, BUCC), accuracy (XNLI, PAWS-X, XCOPA, Tatoeba) or mAP@20
    (Mewsli-X, LAReQA). Group score = mean of its tasks' scores. Overall =
    mean over ALL the benchmark's tasks (9 for XTREME, 10 for XTREME-R), not
    over the groups.

    Groups are the official ones: XTREME classification (pawsx, xnli), tagging
    (udpos, panx), qa (xquad, mlqa, tydiqa), retrieval (bucc2018, tatoeba);
    XTREME-R classification (xnli, xcopa), tagging, qa, retrieval (tatoeba,
    mewsli-x) and multi_choice (xcopa). For XTREME-R the catalogue's
    ``udpos_r`` / ``panx_r`` (XTREME-R's language lists) stand for udpos /
    panx (and win over them when both are given).

    Deviations: the official script needs every language of a task's list;
    here a task is the mean over the languages given. The official XTREME-R
    overall score cannot be computed by evaluate.py (LAReQA has an empty
    language list, so its ``avg_metric`` is missing); here it is the mean over
    the 10 tasks as the official formula intends. A QA task given plain
    numbers (not ``{"exact_match", "f1"}`` mappings) uses those numbers as its
    score, which is NOT the official value; such tasks are listed in
    ``qa_without_em``.

    Args:
        per_task_lang: task -> language -> value, where a value is either the
            task metric (fraction) or a mapping metric -> fraction (e.g.
            ``{"exact_match": .6, "f1": .7}``). Task names are matched case-
            and ``-``/``_``-insensitively (``paws-x``, ``mewslix``, ``bucc``).
        tasks: if given, only these tasks of ``per_task_lang`` are used.
        benchmark: ``"xtreme"`` or ``"xtreme-r"``.

    Returns:
        Dict with ``benchmark``; ``tasks`` (task -> score for every task with
        results, benchmark or not); ``categories`` (group -> mean, None if a
        task of it is missing); ``overall`` (None unless every task of the
        benchmark is present); ``missing_tasks``; ``unscored_tasks`` (given
        tasks outside the benchmark); ``qa_without_em``;
        ``categories_partial`` (group -> mean over its present tasks) and
        ``overall_partial`` (mean over the benchmark tasks present) - partial
        numbers are NOT comparable to published scores.

    Raises:
        XstiltsError: for an unknown benchmark.
    """
    bench = benchmark.lower()
    if bench not in _BENCHMARKS:
        raise XstiltsError(f"xtreme_score: unknown benchmark {benchmark!r}; expected xtreme or xtreme-r")
    categories, known = _BENCHMARKS[bench]

    selected = None if tasks is None else {_canonical_task(t, known, bench) for t in tasks}
    task_scores: dict[str, float] = {}
    from_variant: set[str] = set()
    qa_without_em: list[str] = []
    for name, by_lang in per_task_lang.items():
        task = _canonical_task(name, known, bench)
        if selected is not None and task not in selected:
            continue
        variant = task != name and name.lower().replace("-", "").replace("_", "") in _R_VARIANTS
        if task in from_variant and not variant:
            continue  # udpos_r / panx_r win over udpos / panx under XTREME-R
        score = _task_score(task, by_lang)
        if score is None:
            continue
        task_scores[task] = score
        if variant:
            from_variant.add(task)
        if task in QA_TASKS and not all(
            isinstance(v, Mapping) and "exact_match" in v and "f1" in v for v in by_lang.values()
        ):
            qa_without_em.append(task)

    cat_scores: dict[str, float | None] = {}
    cat_partial: dict[str, float | None] = {}
    for cat, cat_tasks in categories.items():
        present = [task_scores[t] for t in cat_tasks if t in task_scores]
        cat_partial[cat] = sum(present) / len(present) if present else None
        cat_scores[cat] = cat_partial[cat] if len(present) == len(cat_tasks) else None

    in_bench = [task_scores[t] for t in known if t in task_scores]
    return {
        "benchmark": bench,
        "tasks": task_scores,
        "categories": cat_scores,
        "overall": sum(in_bench) / len(known) if len(in_bench) == len(known) else None,
        "missing_tasks": [t for t in known if t not in task_scores],
        "unscored_tasks": sorted(t for t in task_scores if t not in known),
        "qa_without_em": sorted(set(qa_without_em)),
        "categories_partial": cat_partial,
        "overall_partial": sum(in_bench) / len(in_bench) if in_bench else None,
    }
