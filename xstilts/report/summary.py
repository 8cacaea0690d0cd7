"""The report's numbers: pure functions of the results store (:mod:`xstilts.store`).

:func:`summarize` turns the store's metric rows (and per-example scores, when stored) into the
numbers of the paper's tables: per (setting, target) cells, deltas against the baseline with the
paired bootstrap (:func:`xstilts.stats.paired_bootstrap`), per-language deltas, XTREME / XTREME-R
scores and model selection. Nothing here trains, loads a model or writes a file; see
:mod:`xstilts.report` for how the numbers are aggregated and :mod:`xstilts.report.render` for how
they are drawn.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from ..config import NOT_ZERO_SHOT, selection_mark
from ..tasks.benchmarks import QA_TASKS, xtreme_score
from ..stats import paired_bootstrap
from ..stats import std as _std
from ..store import NO_SEED  # seed of seedless runs (retrieval scored on the encoder) inside frames

BENCHMARKS = ("xtreme", "xtreme-r")


def _open_store(store):
    from ..store import Store

    return store if hasattr(store, "metrics_frame") else Store(store)


def _primary_metric(store, target: str, explicit: Mapping[str, str] | None) -> str:
    """``explicit[target]``, else the task's primary metric: the registered task's, else as a stored run's
    config defines the task (``tasks:``); neither is a :class:`ConfigError`."""
    from ..errors import ConfigError
    from ..tasks import get

    if explicit and target in explicit:
        return explicit[target]
    try:
        return get(target).primary_metric
    except ConfigError:
        pass
    for cfg in store.query("SELECT config FROM runs WHERE config IS NOT NULL")["config"]:
        for t in json.loads(cfg).get("tasks") or []:
            if t.get("name") == target and t.get("metrics"):
                return t["metrics"][0]
    raise ConfigError(f"target {target!r}: not a registered task and no run in the store defines it; "
                      f"name its metric with primary_metrics={{{target!r}: ...}}")


def _eval_split(splits: Iterable[str], explicit: str | None) -> str:
    splits = list(splits)
    if explicit:
        return explicit
    if "test" in splits:
        return "test"
    others = [s for s in splits if s != "dev"]
    if others:
        return max(sorted(set(others)), key=others.count)
    return "dev"


def _lang_order(langs) -> list[str]:
    """English first (the source language), then alphabetical."""
    langs = sorted(set(langs))
    return (["en"] if "en" in langs else []) + [x for x in langs if x != "en"]


def _settings_order(settings: Iterable[str], baseline: str) -> list[str]:
    settings = sorted(set(settings))
    return ([baseline] if baseline in settings else []) + [s for s in settings if s != baseline]


def _seed_lang_matrix(rows, notes: list[str]) -> dict[str, dict[int, dict[str, float]]]:
    """setting -> seed -> lang -> value; several runs with the same key are averaged (and noted)."""
    acc: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows.itertuples(index=False):
        acc[r.setting][int(r.seed)][r.lang].append(float(r.value))
    for s, seeds in acc.items():
        dup = sorted({k for k, by_lang in seeds.items() if any(len(v) > 1 for v in by_lang.values())})
        if dup:
            notes.append(f"{s} / {rows['task'].iloc[0]}: several runs for seeds {dup}; their values are averaged")
    return {s: {k: {lang: float(np.mean(v)) for lang, v in by_lang.items()} for k, by_lang in seeds.items()}
            for s, seeds in acc.items()}


def summarize(store, *, baseline: str = "none", selection: str = "en-dev",
              benchmark: str | Iterable[str] = BENCHMARKS, eval_split: str | None = None,
              primary_metrics: Mapping[str, str] | None = None, model: str | None = None,
              n_resamples: int = 1000, bootstrap_seed: int = 0, alpha: float = 0.05, ddof: int = 1) -> dict:
    """All numbers of a report, computed from the store alone (JSON-serialisable).

    Args:
        store: a :class:`xstilts.store.Store` or the path of its file.
        baseline: the setting deltas are taken against (``"none"``: no
            intermediate training).
        selection: ``"en-dev"`` (the paper's: per target, the intermediate
            setting with the best English dev score) or ``"target-dev"``
            (best mean over the target's non-English dev languages; all dev
            languages if it has only English).
        benchmark: ``"xtreme"``, ``"xtreme-r"`` or several.
        eval_split: evaluation split for every target (default: see module doc).
        primary_metrics: target -> metric, overriding the default choice.
        model: which model's runs to use when the store holds several.
        n_resamples, bootstrap_seed: of :func:`paired_bootstrap`.
        alpha: significance level of the ``significant`` flags.
        ddof: delta degrees of freedom of the reported stds.

    Returns:
        ``{"baseline", "settings", "targets", "target_info", "table",
        "per_language", "benchmarks", "selection", "method", "provenance",
        "notes"}`` with scores as fractions (as stored).

    Raises:
        ValueError: for an unknown ``selection`` or a store with several
            models and no ``model``.
    """
    if selection not in ("en-dev", "target-dev"):
        raise ValueError(f"selection must be 'en-dev' or 'target-dev', not {selection!r}")
    benchmarks = [benchmark] if isinstance(benchmark, str) else list(benchmark)
    store = _open_store(store)
    mf = store.metrics_frame()
    notes: list[str] = []
    if model is not None:
        mf = mf[mf["model"] == model]
    models = sorted(mf["model"].dropna().unique())
    if len(models) > 1:
        raise ValueError(f"the store holds results of {len(models)} models ({', '.join(models)}); pass model=")
    mf = mf[mf["target"].notna() & (mf["task"] == mf["target"])].copy()
    mf["seed"] = mf["seed"].fillna(NO_SEED).astype(int)
    if baseline not in set(mf["setting"]) and baseline + selection_mark("target-dev") in set(mf["setting"]):
        baseline += selection_mark("target-dev")  # every run of the store selected on target-language dev
    settings = _settings_order(mf["setting"], baseline)
    targets = sorted(mf["target"].unique())
    if targets and baseline not in settings:
        notes.append(f"baseline setting {baseline!r} has no results: no deltas")

    target_info, table, per_language = {}, [], {}
    test_means: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)  # setting -> target -> lang -> mean
    for target in targets:
        t_rows = mf[mf["task"] == target]
        metric = _primary_metric(store, target, primary_metrics)
        if metric not in set(t_rows["metric"]):
            notes.append(f"{target}: no '{metric}' rows (its primary metric) in the store; not reported")
        split = _eval_split(t_rows["split"], eval_split)
        rows = t_rows[(t_rows["metric"] == metric) & (t_rows["split"] == split)]
        langs = _lang_order(rows["lang"].unique())
        target_info[target] = {"metric": metric, "split": split, "languages": langs}
        values = _seed_lang_matrix(rows, notes)
        base = values.get(baseline, {})
        ex_frame = store.example_scores(task=target, split=split)
        if model is not None:
            ex_frame = ex_frame[ex_frame["model"] == model]
        ex = {(r.setting, NO_SEED if _isna(r.seed) else int(r.seed), r.lang): r.scores
              for r in ex_frame[ex_frame["metric"] == metric].itertuples(index=False)}
        per_language[target] = {}
        for setting in settings:
            if setting not in values:
                continue
            seeds = values[setting]
            per_seed = {k: float(np.mean(list(v.values()))) for k, v in sorted(seeds.items())}
            incomplete = sorted(k for k, v in seeds.items() if set(v) != set(langs))
            if incomplete:
                notes.append(f"{setting} / {target}: seeds {incomplete} lack some of {len(langs)} languages; "
                             "their scores average the languages present")
            lang_means = {lang: float(np.mean([v[lang] for v in seeds.values() if lang in v]))
                          for lang in langs if any(lang in v for v in seeds.values())}
            test_means[setting][target] = _with_exact_match(target, metric, split, setting, t_rows, lang_means)
            cell = {"setting": setting, "target": target, "metric": metric, "split": split,
                    "seeds": sorted(per_seed), "n_seeds": len(per_seed), "n_languages": len(lang_means),
                    "per_seed": {str(k): v for k, v in per_seed.items()},
                    "mean": float(np.mean(list(per_seed.values()))), "std": _std(list(per_seed.values()), ddof),
                    "delta_mean": None, "delta_std": None, "paired_seeds": [], "paired_languages": [],
                    "p_value": None, "ci_low": None, "ci_high": None, "bootstrap_unit": None,
                    "bootstrap_delta": None, "significant": None}
            lang_delta = {}
            if setting != baseline and base:
                paired = sorted(set(seeds) & set(base))
                common = [lang for lang in langs if all(lang in seeds[k] and lang in base[k] for k in paired)]
                if paired and common:
                    d = np.array([[seeds[k][lang] - base[k][lang] for lang in common] for k in paired])
                    per_seed_delta = d.mean(axis=1)
                    lang_delta = dict(zip(common, d.mean(axis=0).tolist()))
                    cells = {}
                    # per-example scores only when every paired (seed, language) has them for both settings,
                    # over the same number of examples in every seed of a language
                    use_examples = all(
                        all((x, k, lang) in ex for x in (setting, baseline) for k in paired)
                        and len({len(ex[(x, k, lang)]) for x in (setting, baseline) for k in paired}) == 1
                        for lang in common)
                    for j, lang in enumerate(common):
                        if use_examples:
                            cells[lang] = np.stack([ex[(setting, k, lang)].astype(np.float64)
                                                    - ex[(baseline, k, lang)] for k in paired])
                        else:
                            cells[lang] = d[:, j]
                    boot = paired_bootstrap(cells, n_resamples=n_resamples, seed=bootstrap_seed)
                    cell.update(delta_mean=float(per_seed_delta.mean()), delta_std=_std(per_seed_delta, ddof),
                                paired_seeds=paired, paired_languages=common, p_value=boot["p_value"],
                                ci_low=boot["ci_low"], ci_high=boot["ci_high"], bootstrap_unit=boot["unit"],
                                bootstrap_delta=boot["delta"],
                                significant=None if boot["p_value"] is None else bool(boot["p_value"] < alpha))
                    if len(common) < len(langs):
                        notes.append(f"{setting} / {target}: delta over {len(common)} of {len(langs)} languages "
                                     "(the ones both settings have for every paired seed)")
            per_language[target][setting] = {lang: {"mean": lang_means.get(lang), "delta": lang_delta.get(lang)}
                                             for lang in langs}
            table.append(cell)

    bench_out = {b: _benchmark_scores(test_means, settings, baseline, b) for b in benchmarks}
    sel = _selection(mf, targets, settings, baseline, selection, target_info, test_means, table, benchmarks)
    return {
        "baseline": baseline,
        "settings": settings,
        "targets": targets,
        "target_info": target_info,
        "table": table,
        "per_language": per_language,
        "benchmarks": bench_out,
        "selection": sel,
        "method": _method_text(baseline, selection, n_resamples, bootstrap_seed, alpha, ddof),
        "provenance": _provenance(store, mf),
        "notes": notes,
        "not_zero_shot": _not_zero_shot(settings, selection),
    }


def _not_zero_shot(settings, selection: str) -> list[str]:
    """The report's warnings: which numbers used target-language dev data (so are not zero-shot)."""
    out = []
    marked = [s for s in settings if NOT_ZERO_SHOT in s]
    if marked:
        out.append(f"NOT zero-shot: {', '.join(marked)}: target checkpoints picked on target-language dev sets "
                   "(selection: target-dev), not on English dev as the XTREME zero-shot protocol does.")
    if selection == "target-dev":
        out.append("NOT zero-shot: the selection tables pick each target's intermediate setting by its "
                   "target-language dev scores (report --selection target-dev).")
    return out


def _isna(x) -> bool:
    return x is None or bool(pd.isna(x))


def _with_exact_match(target, metric, split, setting, t_rows, lang_means) -> dict:
    """XTREME scores a QA task by (EM + F1) / 2: give xtreme_score both where the store has EM."""
    if target not in QA_TASKS or metric != "f1":
        return lang_means
    em = t_rows[(t_rows["metric"] == "exact_match") & (t_rows["split"] == split) & (t_rows["setting"] == setting)]
    em_means = em.groupby("lang")["value"].mean().to_dict()
    if set(em_means) < set(lang_means):
        return lang_means
    return {lang: {"f1": v, "exact_match": float(em_means[lang])} for lang, v in lang_means.items()}


def _benchmark_scores(test_means, settings, baseline, bench) -> dict:
    out = {}
    for setting in settings:
        per_task = test_means.get(setting, {})
        if not per_task:
            continue
        s = xtreme_score(per_task, benchmark=bench)
        in_bench = sorted(set(s["tasks"]) - set(s["unscored_tasks"]))
        if not in_bench:
            continue
        out[setting] = {"overall": s["overall"], "overall_partial": s["overall_partial"],
                        "partial": s["overall"] is None, "tasks": in_bench, "missing_tasks": s["missing_tasks"],
                        "categories": s["categories_partial"], "score": s["overall"] if s["overall"] is not None
                        else s["overall_partial"]}
    base = out.get(baseline)
    for setting, v in out.items():
        v["delta"] = (v["score"] - base["score"]) if base and setting != baseline and base["tasks"] == v["tasks"] \
            and v["score"] is not None and base["score"] is not None else None
    return out


def _selection(mf, targets, settings, baseline, rule, target_info, test_means, table, benchmarks) -> dict:
    cells = {(c["setting"], c["target"]): c for c in table}
    chosen = {}
    for target in targets:
        metric = target_info[target]["metric"]
        dev = mf[(mf["task"] == target) & (mf["split"] == "dev") & (mf["metric"] == metric)]
        if rule == "en-dev":
            dev = dev[dev["lang"] == "en"]
        elif (dev["lang"] != "en").any():
            dev = dev[dev["lang"] != "en"]
        scores = {}
        for setting in settings:
            if setting == baseline:
                continue
            d = dev[dev["setting"] == setting]
            if len(d):
                # per seed: mean over the selection languages; then mean over seeds
                scores[setting] = float(d.groupby("seed")["value"].mean().mean())
        entry = {"candidates": scores, "setting": None, "dev_score": None, "test": None, "baseline_test": None,
                 "delta": None, "p_value": None, "languages": sorted(dev["lang"].unique())}
        if scores:
            best = max(scores, key=lambda s: (scores[s], -settings.index(s)))
            cell, base_cell = cells.get((best, target)), cells.get((baseline, target))
            entry.update(setting=best, dev_score=scores[best], test=cell["mean"] if cell else None,
                         baseline_test=base_cell["mean"] if base_cell else None,
                         delta=cell["delta_mean"] if cell else None, p_value=cell["p_value"] if cell else None)
        chosen[target] = entry
    out = {"rule": rule, "targets": chosen, "benchmarks": {}}
    picked = {t: e["setting"] for t, e in chosen.items() if e["setting"] and t in test_means.get(e["setting"], {})}
    both = {t: s for t, s in picked.items() if t in test_means.get(baseline, {})}
    for bench in benchmarks:
        sel = xtreme_score({t: test_means[s][t] for t, s in both.items()}, benchmark=bench)
        base = xtreme_score({t: test_means[baseline][t] for t in both}, benchmark=bench)
        in_bench = sorted(set(sel["tasks"]) - set(sel["unscored_tasks"]))
        if not in_bench:
            continue

        def score(s):
            return s["overall"] if s["overall"] is not None else s["overall_partial"]

        out["benchmarks"][bench] = {"selected": score(sel), "baseline": score(base),
                                    "delta": score(sel) - score(base), "partial": sel["overall"] is None,
                                    "tasks": in_bench, "missing_tasks": sel["missing_tasks"],
                                    "selected_settings": dict(both)}
    return out


def _method_text(baseline, selection, n_resamples, seed, alpha, ddof) -> list[str]:
    sel = ("the intermediate setting with the best English dev score (split 'dev', lang 'en', mean over seeds)"
           if selection == "en-dev" else
           "the intermediate setting with the best target-language dev score (split 'dev', unweighted mean "
           "over the non-English dev languages, then over seeds)")
    return [
        "Scores are the target's primary metric (the first metric of its task definition, unless set) on its "
        "evaluation split, shown x100.",
        "A run's score is the UNWEIGHTED mean over the target's evaluation languages (XTREME-style: every "
        "language counts the same regardless of its test-set size).",
        f"Cells: mean ± std over seeds (std with ddof={ddof}).",
        f"Δ: per seed present for both, the setting's minus the baseline ('{baseline}') score over the languages "
        "both have; mean ± std of these per-seed deltas.",
        f"Significance: paired bootstrap, {n_resamples} resamples, numpy default_rng({seed}). Pairs are "
        "(seed, language). In each resample and for each language, the paired seeds are drawn with replacement; "
        "when per-example scores are stored for both settings, the language's test examples are also drawn "
        "with replacement (the same draw for every seed and both settings) and each seed is scored by the mean "
        "of its per-example score differences; otherwise the metric-level differences are used. The statistic "
        "is the mean over drawn seeds, then the unweighted mean over languages. p: two-sided, "
        "min(1, 2·min(P*(Δ*≤0), P*(Δ*≥0))) with P*(A) = (1+#A)/(1+resamples); CI: 2.5/97.5 percentiles of Δ*; "
        f"† marks p < {alpha}.",
        f"Selection ({selection}): per target, {sel}; the baseline is not a candidate.",
        "XTREME / XTREME-R scores: xstilts.metrics.xtreme_score on per-language means over seeds, as the official "
        "evaluate.py: task = unweighted mean over languages (QA: (EM + F1) / 2), group = mean of its tasks, "
        "overall = mean over all the benchmark's tasks. "
        "'partial' marks an average over the benchmark tasks present only: NOT comparable with published scores.",
    ]


def _provenance(store, mf) -> dict:
    runs = store.query("SELECT run_id, model, config_hash, xstilts_version, created FROM runs")
    env = store.query("SELECT DISTINCT git_rev, xstilts_version, torch, transformers, gpu FROM environment")
    versions = sorted(set(store.query("SELECT DISTINCT xstilts_version FROM metrics")["xstilts_version"].dropna()))
    return {
        "store": str(store.path),
        "runs": int(len(runs)),
        "metric_rows": int(len(mf)),
        "models": sorted(runs["model"].dropna().unique().tolist()),
        "config_hashes": int(runs["config_hash"].nunique()),
        "xstilts_versions": versions,
        "git_revs": sorted(env["git_rev"].dropna().unique().tolist()),
        "gpus": sorted(env["gpu"].dropna().unique().tolist()),
        "created": [runs["created"].min(), runs["created"].max()] if len(runs) else None,
    }
