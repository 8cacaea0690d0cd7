"""Span-QA metrics matching the official scripts.

* ``squad_v1`` - SQuAD v1.1 ``evaluate-v1.1.py`` (used by XTREME for XQuAD and
  TyDiQA-GoldP).
* ``squad_v2`` - SQuAD v2.0 ``evaluate-v2.0.py`` (optional ``na_probs``
  thresholding and best-threshold search included).
* ``mlqa`` - MLQA ``mlqa_evaluation_v1.py`` (language-aware normalisation).

Missing predictions score 0 and still count in the denominator (SQuAD v1.1 and
MLQA behaviour; see :func:`squad_v2` for the one place this deviates from the
official script).
"""

from __future__ import annotations

import collections
import functools
import re
import string
import sys
import unicodedata
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from xstilts.errors import XstiltsError


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
