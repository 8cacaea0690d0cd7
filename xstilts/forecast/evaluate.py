"""Scoring a forecast against a real grid: did the selector pick the intermediate task that was best?

A *grid* here is one (model, target) slice of a results store: for each candidate setting (intermediate
task, or ``none`` for direct fine-tuning) and each target fine-tuning seed, the zero-shot score
(:data:`xstilts.studies.base.ZERO_SHOT_RULE`) and the English dev score. A *forecast* is a score per
candidate (higher = predicted better); its ranking is the candidates sorted by it.

Measures (absolute points on the target's metric; the oracle is the candidate with the best mean zero-shot
score over seeds):

* ``regret@k`` = oracle score - the best score among the forecast's top k (0 when the oracle is among them);
* ``share`` = (score of the top pick - score of ``none``) / (oracle score - score of ``none``): the share of
  the best achievable gain the pick captures (undefined when no candidate beats ``none``);
* ``beats_none``: the top pick scores above ``none``;
* ``spearman``: rank correlation of the forecast scores with the true scores over all candidates;
* ``ndcg@k``: normalised discounted cumulative gain of the ranking, relevance = score - the worst score.

Each comes with a bootstrap interval over seeds (the seed set is resampled jointly across candidates, and
a selector that itself reads per-seed numbers, like the English dev rule, reads the same resample).
The random baseline's expectation is exact (over all orderings), not sampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..stats import percentile_interval

MEASURES = ("regret@1", "regret@3", "share", "beats_none", "spearman", "ndcg@3")


def ranking(scores: Mapping[str, float | None], order: Sequence[str] | None = None) -> list[str]:
    """Candidates by descending forecast score, unscored (None) ones last; ties keep ``order`` (default: the
    mapping's order)."""
    order = list(order or scores)
    return sorted(scores, key=lambda c: (scores[c] is None, -(scores[c] or 0.0),
                                         order.index(c) if c in order else len(order)))


def regret_at_k(true: Mapping[str, float], ranked: Sequence[str], k: int) -> float:
    """Best true score over all candidates minus the best among the first ``k`` of ``ranked``."""
    top = [true[c] for c in ranked[:k] if c in true]
    if not top:
        raise ValueError("none of the ranked candidates has a true score")
    return max(true.values()) - max(top)


def gain_share(true: Mapping[str, float], pick: str, baseline: str = "none") -> float | None:
    """(true[pick] - true[baseline]) / (oracle - true[baseline]); None when nothing beats the baseline."""
    if baseline not in true:
        return None
    room = max(true.values()) - true[baseline]
    return None if room <= 0 else (true[pick] - true[baseline]) / room


def ndcg_at_k(true: Mapping[str, float], ranked: Sequence[str], k: int) -> float:
    """NDCG@k with relevance = true score - the lowest true score (so the worst candidate counts 0)."""
    low = min(true.values())
    rel = {c: v - low for c, v in true.items()}
    dcg = sum(rel[c] / math.log2(i + 2) for i, c in enumerate(ranked[:k]))
    ideal = sum(v / math.log2(i + 2) for i, v in enumerate(sorted(rel.values(), reverse=True)[:k]))
    return 1.0 if ideal == 0 else dcg / ideal


def spearman(true: Mapping[str, float], predicted: Mapping[str, float]) -> float | None:
    """Spearman's rho between forecast and true scores over the shared candidates (None if undefined)."""
    from scipy.stats import spearmanr

    cands = [c for c in true if predicted.get(c) is not None]
    a, b = [true[c] for c in cands], [predicted[c] for c in cands]
    if len(cands) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return float(spearmanr(a, b).statistic)


def measures(true: Mapping[str, float], predicted: Mapping[str, float], baseline: str = "none") -> dict:
    """Every measure of one forecast on one grid (true = mean zero-shot per candidate)."""
    ranked = [c for c in ranking(predicted, list(true)) if c in true]
    ranked += [c for c in true if c not in ranked]  # candidates the forecast did not name: last
    return {"regret@1": regret_at_k(true, ranked, 1), "regret@3": regret_at_k(true, ranked, 3),
            "share": gain_share(true, ranked[0], baseline),
            "beats_none": (float(true[ranked[0]] > true[baseline]) if baseline in true else None),
            "spearman": spearman(true, predicted), "ndcg@3": ndcg_at_k(true, ranked, 3), "pick": ranked[0]}


def random_expectation(true: Mapping[str, float], baseline: str = "none") -> dict:
    """The exact expected measures of a uniformly random ranking (regret, share, beats_none, ndcg@3).

    ``E[max of a random k-subset]``: with scores sorted ascending s_1..s_N, the maximum is s_i with
    probability C(i-1, k-1) / C(N, k). NDCG@3 is averaged over the N! orderings' first three positions
    (position j holds each candidate with probability 1/N, so E[DCG] = mean(rel) * sum_j 1/log2(j+1)).
    Spearman's expectation is 0.
    """
    vals = sorted(true.values())
    n = len(vals)

    def e_max(k):
        k = min(k, n)
        return sum(vals[i] * math.comb(i, k - 1) for i in range(k - 1, n)) / math.comb(n, k)

    best = vals[-1]
    out = {"regret@1": best - e_max(1), "regret@3": best - e_max(3), "spearman": 0.0}
    if baseline in true:
        room = best - true[baseline]
        out["share"] = None if room <= 0 else (float(np.mean(vals)) - true[baseline]) / room
        out["beats_none"] = sum(v > true[baseline] for v in vals) / n
    else:
        out["share"] = out["beats_none"] = None
    low = vals[0]
    rel = [v - low for v in vals]
    ideal = sum(v / math.log2(i + 2) for i, v in enumerate(sorted(rel, reverse=True)[:3]))
    edcg = float(np.mean(rel)) * sum(1 / math.log2(j + 2) for j in range(min(3, n)))
    out["ndcg@3"] = 1.0 if ideal == 0 else edcg / ideal
    return out


Selector = Callable[[Mapping[str, Mapping[int, dict]], Sequence[int]], Mapping[str, float]]


def evaluate_grid(grid: Mapping[str, Mapping[int, dict]], selectors: Mapping[str, Selector], *,
                  baseline: str = "none", n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05,
                  reference: str = "en-dev") -> dict:
    """Score each selector on one grid, with bootstrap intervals over seeds.

    Args:
        grid: candidate -> seed -> ``{"zero_shot": float, "en_dev": float | None}``.
        selectors: name -> function(grid, seeds) returning candidate -> forecast score; it is called with the
            seeds of each resample (a selector that ignores per-seed data returns the same scores each time).
            ``"random"`` is added with its exact expectation.

    Returns:
        ``{"seeds", "true": candidate -> mean zero-shot, "oracle", "selectors": name -> {"pick", "scores",
        measure -> {"value", "low", "high"}, "vs_reference": regret@1 minus the ``reference`` selector's,
        paired over the same resamples (negative = this selector picks better)}}``.
    """
    seeds = sorted(set.intersection(*(set(v) for v in grid.values())))
    if not seeds:
        raise ValueError("no seed is shared by every candidate of the grid")
    rng = np.random.default_rng(seed)

    def true_of(sample):
        return {c: float(np.mean([grid[c][s]["zero_shot"] for s in sample])) for c in grid}

    true = true_of(seeds)
    out = {"seeds": seeds, "true": true, "oracle": max(true, key=true.get), "selectors": {}}
    samples = [list(rng.choice(seeds, size=len(seeds), replace=True)) for _ in range(n_resamples)]
    sample_true = [true_of(s) for s in samples]
    points, boots, scores = {}, {}, {}
    for name, fn in selectors.items():
        scores[name] = dict(fn(grid, seeds))
        points[name] = measures(true, scores[name], baseline)
        boots[name] = [measures(t, dict(fn(grid, s)), baseline) for t, s in zip(sample_true, samples)]
    points["random"], scores["random"] = {**random_expectation(true, baseline), "pick": None}, {}
    boots["random"] = [random_expectation(t, baseline) for t in sample_true]
    for name, point in points.items():
        out["selectors"][name] = {"pick": point["pick"], "scores": scores[name],
                                  **{m: percentile_interval(point[m], [b[m] for b in boots[name]], alpha)
                                     for m in MEASURES}}
        if reference in points and name != reference:
            out["selectors"][name]["vs_reference"] = {"reference": reference, **percentile_interval(
                point["regret@1"] - points[reference]["regret@1"],
                [b["regret@1"] - r["regret@1"] for b, r in zip(boots[name], boots[reference])], alpha)}
    return out


# ---------------------------------------------------------------------------- grids from a results store


def grids_from_store(store, *, baseline: str = "none", run_ids=None) -> dict[tuple[str, str], dict]:
    """(model, target) -> {"grid": candidate -> seed -> {"zero_shot", "en_dev"}, "metric", "split",
    "sizes": candidate -> intermediate training rows, "seconds": candidate -> {"train", "total"}} (wall
    seconds of the candidate's unique phases: training phases, and all including evaluation).

    Zero-shot and English dev follow the studies' rule (:data:`xstilts.studies.base.ZERO_SHOT_RULE`); only
    runs whose setting is zero-shot (not picked on target-language dev sets) and seeded are read. A slice
    needs at least two candidates with a shared seed; others are left out. ``run_ids``: read only these runs
    (a study's cells: a store that also holds runs of an earlier config of the same grid, under the same
    setting names, would otherwise mix them into one seed's scores).
    """
    import json

    from ..report.summary import _eval_split, _open_store, _primary_metric

    store = _open_store(store)
    mf = store.metrics_frame()
    mf = mf[mf["seed"].notna() & (mf["task"] == mf["target"]) & ~mf["setting"].str.contains("[", regex=False)]
    tf = store.timings_frame()
    if run_ids is not None:
        mf, tf = mf[mf["run_id"].isin(set(run_ids))], tf[tf["run_id"].isin(set(run_ids))]
    out = {}
    for (model, target), rows in mf.groupby(["model", "target"], sort=False):
        metric = _primary_metric(store, target, None)
        rows = rows[rows["metric"] == metric]
        split = _eval_split(rows["split"], None)
        grid: dict[str, dict[int, dict]] = {}
        for (setting, seed), g in rows.groupby(["setting", "seed"], sort=False):
            ev = g[(g["split"] == split) & (g["lang"] != "en")]
            if not len(ev):
                continue
            dev = g[(g["split"] == "dev") & (g["lang"] == "en")]
            grid.setdefault(setting, {})[int(seed)] = {
                "zero_shot": float(ev.groupby("lang")["value"].mean().mean()),
                "en_dev": float(dev["value"].mean()) if len(dev) else None}
        if len(grid) < 2 or not set.intersection(*(set(v) for v in grid.values())):
            continue
        grid = {c: grid[c] for c in sorted(grid, key=lambda c: (c != baseline, c))}  # ties: baseline, then by name
        t = tf[(tf["model"] == model) & (tf["target"] == target)]
        sizes, seconds = {}, {}
        for setting in grid:
            # a phase shared by several runs (the intermediate phase of every seed) is paid for once
            ts = t[t["setting"] == setting].drop_duplicates("phase_key")
            seconds[setting] = {"train": float(ts[ts["kind"].isin(["mlm", "intermediate", "target"])]["wall_s"].sum()),
                                "total": float(ts["wall_s"].sum())}
            size = 0
            for p in ts[ts["kind"] == "intermediate"]["path"].dropna().unique():
                try:
                    size += sum(json.loads((Path(p) / "done.json").read_text())["summary"]["train_examples"].values())
                except (OSError, KeyError, ValueError, TypeError):
                    size = None
                    break
            sizes[setting] = 0 if setting == baseline else size
        out[(model, target)] = {"grid": grid, "metric": metric, "split": split, "sizes": sizes, "seconds": seconds}
    return out


def en_dev_selector(grid, seeds) -> dict[str, float]:
    """The latency study's rule: the candidate's mean English dev score after target fine-tuning."""
    out = {}
    for c, by_seed in grid.items():
        vals = [by_seed[s]["en_dev"] for s in seeds if by_seed[s]["en_dev"] is not None]
        if vals:
            out[c] = float(np.mean(vals))
    return out


def size_selector(sizes: Mapping[str, int | None]) -> Selector:
    """"Largest dataset first": the candidate's intermediate training rows (``none`` = 0)."""
    known = {c: float(v) for c, v in sizes.items() if v is not None}
    return lambda grid, seeds: known


def evaluate_store(store, *, baseline: str = "none", forecasts: Mapping[tuple[str, str], Mapping[str, Mapping]] | None = None,
                   n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> dict:
    """Every (model, target) slice of ``store`` scored for the English dev rule, largest-first, random and
    any ``forecasts[(model, target)][selector] = {candidate: score}`` (e.g. from ``xstilts forecast``)."""
    slices = grids_from_store(store, baseline=baseline)
    out = {}
    for key, sl in slices.items():
        selectors: dict[str, Selector] = {"en-dev": en_dev_selector}
        if all(v is not None for v in sl["sizes"].values()):
            selectors["largest-first"] = size_selector(sl["sizes"])
        for name, scores in (forecasts or {}).get(key, {}).items():
            selectors[name] = (lambda s: (lambda grid, seeds: s))(dict(scores))
        out[key] = {**evaluate_grid(sl["grid"], selectors, baseline=baseline, n_resamples=n_resamples, seed=seed,
                                    alpha=alpha),
                    "metric": sl["metric"], "split": sl["split"], "seconds": sl["seconds"]}
    return out


def format_evaluation(result: Mapping[tuple[str, str], dict], scale: float = 100.0) -> str:
    """A plain-text table per slice: each selector's pick and measures with intervals (scores x ``scale``)."""

    def ci(v: dict, k: float) -> str:
        if v["value"] is None:
            return "-"
        txt = f"{k * v['value']:.2f}"
        return txt + (f" [{k * v['low']:.2f}, {k * v['high']:.2f}]" if v["low"] is not None else "")

    lines = []
    for (model, target), r in result.items():
        grid_s = sum(v["total"] for v in r["seconds"].values())
        lines.append(f"{model} / {target} ({r['metric']} on {r['split']}, zero-shot; seeds {r['seeds']}; oracle "
                     f"{r['oracle']} {scale * r['true'][r['oracle']]:.2f}; grid {grid_s / 60:.1f} min)")
        lines.append(f"  {'selector':<16} {'pick':<14} {'regret@1':>22} {'regret@3':>22} {'share of gain %':>22} "
                     f"{'beats none':>22} {'spearman':>22} {'ndcg@3':>22}")
        for name, s in r["selectors"].items():
            lines.append(f"  {name:<16} {str(s['pick'] or '(expected)'):<14} {ci(s['regret@1'], scale):>22} "
                         f"{ci(s['regret@3'], scale):>22} {ci(s['share'], 100):>22} {ci(s['beats_none'], 1):>22} "
                         f"{ci(s['spearman'], 1):>22} {ci(s['ndcg@3'], 1):>22}")
        lines.append("")
    return "\n".join(lines) if lines else "no (model, target) slice with two or more candidates sharing a seed"
