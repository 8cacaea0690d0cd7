"""Retrieval metrics: BUCC mining, Tatoeba, LAReQA / Mewsli-X rankings and mAP@k.

* ``bucc_mine`` / ``bucc_f1`` / ``bucc_best_threshold`` - LASER ``mine_bitext``
  ratio-margin mining (identical texts merged, texts under two ids dropped)
  and XTREME ``bucc_optimize`` / ``bucc_eval`` (``third_party/utils_retrieve.py``).
* ``tatoeba_accuracy`` - XTREME ``similarity_search``: each English sentence's
  nearest source sentence (faiss ``IndexFlatL2`` on L2-normalised vectors).
* ``map_at_k`` - ``average_precision_at_k`` of XTREME-R's ``utils_lareqa.py``
  (LAReQA mAP@20; with a single relevant item it equals Mewsli-X's MRR@20).

``_knn_ip`` (faiss ``IndexFlatIP``) is looked up at call time in this module, so a
benchmark may swap it (``xstilts.metrics.retrieval._knn_ip``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np

from xstilts.errors import XstiltsError


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
    from ..extras import require

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
