"""Reports: pure functions of the results store (:mod:`xstilts.store`).

Nothing here trains or loads a model. :func:`summarize` turns the store's
metric rows (and per-example scores, when stored) into the numbers of the
paper's tables; :func:`build_report` renders them as a self-contained HTML
page, a Markdown file, PNG plots, a CSV and a JSON summary;
:func:`export_predictions` copies saved predictions into the
google-research/xtreme submission layout.

How the numbers are aggregated (also written into every report):

* Primary metric per target: ``primary_metrics[target]`` if given, else the
  task's own :attr:`xstilts.tasks.TaskSpec.primary_metric` (the first of its
  ``metrics``; a task defined in a run's config: as that config defines it),
  the same number model selection and studies read.
* Evaluation split per target: ``eval_split`` if given, else ``test`` when
  present, else the most common non-``dev`` split, else ``dev``.
* Score of one (setting, target, seed): the unweighted mean of the primary
  metric over the target's evaluation languages (XTREME-style: every language
  counts the same, whatever its size).
* Table cell: mean +- sample std (``ddof=1``) of those per-seed scores.
* Delta vs the baseline setting: per seed present in both, the mean over the
  languages present in both of (setting - baseline); mean +- std of those.
* Significance: :func:`paired_bootstrap` (see there for what is resampled).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .config import NOT_ZERO_SHOT, selection_mark
from .metrics import QA_TASKS, xtreme_score
from .stats import paired_bootstrap, std as _std  # noqa: F401  (paired_bootstrap: re-exported)
from .store import NO_SEED  # seed of seedless runs (retrieval scored on the encoder) inside frames

BENCHMARKS = ("xtreme", "xtreme-r")


def format_rows(rows: list[dict]) -> str:
    """task/metric x language table; mean ± std over seeds when there are several."""
    if not rows:
        return "(no results)"
    cells = defaultdict(list)
    langs: dict[str, None] = {}
    for r in rows:
        cells[(r["task"], r["metric"], r["lang"])].append(r["value"])
        langs.setdefault(r["lang"])
    keys = sorted({(t, m) for t, m, _ in cells})
    header = f"{'task':<14} {'metric':<12} " + " ".join(f"{x:>13}" for x in langs) + f" {'avg':>13}"
    out = [header]
    for t, m in keys:
        vals = []
        line = f"{t:<14} {m:<12} "
        for lang in langs:
            v = cells.get((t, m, lang))
            if v:
                vals.append(np.mean(v))
                line += f" {100 * np.mean(v):6.2f}±{100 * np.std(v):5.2f}" if len(v) > 1 else f" {100 * v[0]:13.2f}"
            else:
                line += f" {'-':>13}"
        out.append(line + f" {100 * np.mean(vals):13.2f}")
    return "\n".join(out)


# --------------------------------------------------------------------------- statistics


# --------------------------------------------------------------------------- summary


def _open_store(store):
    from .store import Store

    return store if hasattr(store, "metrics_frame") else Store(store)


def _primary_metric(store, target: str, explicit: Mapping[str, str] | None) -> str:
    """``explicit[target]``, else the task's primary metric: the registered task's, else as a stored run's
    config defines the task (``tasks:``); neither is a :class:`ConfigError`."""
    from .errors import ConfigError
    from .tasks import get

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


# --------------------------------------------------------------------------- formatting


def _pct(x, digits: int = 2, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:+.{digits}f}" if sign else f"{100 * x:.{digits}f}"


def _p(p) -> str:
    if p is None:
        return "n/a"
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def format_score(cell: dict) -> str:
    """``"71.23 ± 0.45"`` (x100), or ``"71.23 (1 seed)"``."""
    if cell["std"] is None:
        return f"{_pct(cell['mean'])} ({cell['n_seeds']} seed{'s' if cell['n_seeds'] != 1 else ''})"
    return f"{_pct(cell['mean'])} ± {_pct(cell['std'])}"


def format_delta(cell: dict) -> str:
    """``"Δ +1.20 ± 0.30 †"`` (x100; † when significant)."""
    if cell["delta_mean"] is None:
        return ""
    std = f" ± {_pct(cell['delta_std'])}" if cell["delta_std"] is not None else ""
    return f"Δ {_pct(cell['delta_mean'], sign=True)}{std}{' †' if cell['significant'] else ''}"


def _main_table_rows(summary) -> tuple[list[str], list[list[tuple[str, str, dict | None]]]]:
    cells = {(c["setting"], c["target"]): c for c in summary["table"]}
    header = ["setting"] + [f"{t} ({summary['target_info'][t]['metric']}, {len(summary['target_info'][t]['languages'])} "
                            f"langs)" for t in summary["targets"]]
    rows = []
    for s in summary["settings"]:
        row = []
        for t in summary["targets"]:
            c = cells.get((s, t))
            row.append((format_score(c), format_delta(c), c) if c else ("–", "", None))
        rows.append((s, row))
    return header, rows


def _significance_rows(summary) -> list[list[str]]:
    out = []
    for c in summary["table"]:
        if c["delta_mean"] is None:
            continue
        ci = "–" if c["ci_low"] is None else f"[{_pct(c['ci_low'], sign=True)}, {_pct(c['ci_high'], sign=True)}]"
        out.append([c["setting"], c["target"], f"{_pct(c['delta_mean'], sign=True)}", ci, _p(c["p_value"]),
                    c["bootstrap_unit"] or "–", str(len(c["paired_seeds"])), str(len(c["paired_languages"]))])
    return out


SIG_HEADER = ["setting", "target", "Δ", "95% CI", "p", "resampled", "seeds", "langs"]


def _benchmark_rows(summary) -> list[list[str]]:
    out = []
    for bench, by_setting in summary["benchmarks"].items():
        for setting, v in by_setting.items():
            label = "complete" if not v["partial"] else f"PARTIAL ({len(v['tasks'])} tasks: {', '.join(v['tasks'])})"
            out.append([bench.upper(), setting, _pct(v["score"]), _pct(v["delta"], sign=True), label])
    return out


BENCH_HEADER = ["benchmark", "setting", "score", "Δ vs baseline", "coverage"]


def _selection_rows(summary) -> list[list[str]]:
    out = []
    for t, e in summary["selection"]["targets"].items():
        out.append([t, e["setting"] or "n/a (no dev scores)", _pct(e["dev_score"]), _pct(e["test"]),
                    _pct(e["baseline_test"]), _pct(e["delta"], sign=True), _p(e["p_value"])])
    return out


SEL_HEADER = ["target", "selected setting", "selection dev", "test", "baseline test", "Δ", "p"]


def _selection_bench_rows(summary) -> list[list[str]]:
    return [[b.upper(), _pct(v["selected"]), _pct(v["baseline"]), _pct(v["delta"], sign=True),
             "complete" if not v["partial"] else f"PARTIAL ({', '.join(v['tasks'])})"]
            for b, v in summary["selection"]["benchmarks"].items()]


SEL_BENCH_HEADER = ["benchmark", "selection", "baseline", "Δ", "coverage"]


def _per_language_rows(summary, target) -> tuple[list[str], list[list[str]]]:
    langs = summary["target_info"][target]["languages"]
    rows = []
    for s, by_lang in summary["per_language"][target].items():
        if s == summary["baseline"]:
            rows.append([f"{s} (score)"] + [_pct(by_lang[lang]["mean"]) for lang in langs])
        else:
            rows.append([f"{s} (Δ)"] + [_pct(by_lang[lang]["delta"], sign=True) for lang in langs])
    return ["setting"] + langs, rows


# --------------------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _heatmap(summary, target, path: Path) -> Path | None:
    langs = summary["target_info"][target]["languages"]
    settings = [s for s in summary["per_language"][target] if s != summary["baseline"]]
    if not settings or not langs:
        return None
    data = np.array([[summary["per_language"][target][s][lang]["delta"] for lang in langs] for s in settings],
                    dtype=float) * 100
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(langs) + 2.5), max(2.4, 0.45 * len(settings) + 1.6)))
    finite = data[np.isfinite(data)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    lim = lim if lim > 0 else 1.0
    im = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(langs)), langs, rotation=90 if len(langs) > 12 else 0)
    ax.set_yticks(range(len(settings)), settings)
    if data.size <= 400:
        for i in range(len(settings)):
            for j in range(len(langs)):
                if np.isfinite(data[i, j]):
                    dark = abs(data[i, j]) > 0.6 * lim
                    ax.text(j, i, f"{data[i, j]:+.1f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
    fig.colorbar(im, ax=ax, label=f"Δ {summary['target_info'][target]['metric']} x100")
    ax.set_title(f"{target}: Δ vs '{summary['baseline']}' per language\n(mean over paired seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _delta_plot(summary, path: Path) -> Path | None:
    cells = [c for c in summary["table"] if c["delta_mean"] is not None]
    if not cells:
        return None
    plt = _plt()
    targets = [t for t in summary["targets"] if any(c["target"] == t for c in cells)]
    settings = [s for s in summary["settings"] if any(c["setting"] == s for c in cells)]
    width = 0.8 / max(1, len(settings))
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(targets) + 2), 3.4))
    for i, s in enumerate(settings):
        xs, ys, lo, hi = [], [], [], []
        for j, t in enumerate(targets):
            c = next((c for c in cells if c["setting"] == s and c["target"] == t), None)
            if c is None:
                continue
            xs.append(j + (i - (len(settings) - 1) / 2) * width)
            ys.append(100 * c["delta_mean"])
            lo.append(100 * (c["delta_mean"] - c["ci_low"]) if c["ci_low"] is not None else 0)
            hi.append(100 * (c["ci_high"] - c["delta_mean"]) if c["ci_high"] is not None else 0)
        ax.bar(xs, ys, width, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], capsize=3, label=s)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(targets)), targets)
    ax.set_ylabel(f"Δ vs '{summary['baseline']}' (x100)")
    ax.set_title("Δ over the baseline, 95% paired-bootstrap CI", fontsize=9)
    ax.legend(fontsize=7, ncols=min(4, len(settings)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- rendering

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;
vertical-align:top}th{background:#f2f2f2}td:first-child,th:first-child,td.text{text-align:left}
.delta{color:#555;font-size:.88em}.sig{color:#0a5;font-weight:600}.neg.sig{color:#c22}
.note{color:#555;font-size:.9em}img{max-width:100%;border:1px solid #eee}
.warn{color:#a40;border-left:4px solid #a40;padding:4px 10px;background:#fff6ee}
"""


def _html_table(header, rows, table_id=None) -> str:
    attr = f' id="{html.escape(table_id)}"' if table_id else ""
    out = [f"<table{attr}><thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row in rows:
        tds = [f"<td>{html.escape(str(x))}</td>" if _numeric(x) else f'<td class="text">{html.escape(str(x))}</td>'
               for x in row]
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _html_main_table(summary) -> str:
    header, rows = _main_table_rows(summary)
    out = ['<table id="main-table"><thead><tr>'] + [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for setting, cells in rows:
        out.append(f"<tr><td>{html.escape(setting)}</td>")
        for score, delta, c in cells:
            cls = "delta"
            if c and c["significant"]:
                cls += " sig" + (" neg" if c["delta_mean"] < 0 else "")
            extra = ""
            if c and c["delta_mean"] is not None:
                extra = f"<br><small>p={_p(c['p_value'])}</small>"
            out.append(f'<td><div class="score">{html.escape(score)}</div>'
                       f'<div class="{cls}">{html.escape(delta)}{extra}</div></td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _numeric(x) -> bool:
    return str(x)[:1] in set("0123456789+-–[<") or str(x) == "n/a"


def md_table(header, rows) -> str:
    def esc(x):
        return str(x).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


def _md_main_table(summary) -> str:
    header, rows = _main_table_rows(summary)
    body = []
    for setting, cells in rows:
        body.append([setting] + [score + (f"<br>{delta} (p={_p(c['p_value'])})" if delta else "")
                                 for score, delta, c in cells])
    return md_table(header, body)


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def build_report(store, out_dir: str | os.PathLike, *, baseline: str = "none", selection: str = "en-dev",
                 benchmark: str | Iterable[str] = BENCHMARKS, title: str = "xstilts results", **kwargs) -> dict:
    """Render the paper's tables and figures from the store into ``out_dir``.

    Args:
        store: a :class:`xstilts.store.Store` or the path of its file.
        out_dir: output folder (created).
        baseline, selection, benchmark: see :func:`summarize`.
        title: page title.
        **kwargs: passed to :func:`summarize` (``eval_split``,
            ``primary_metrics``, ``model``, ``n_resamples``, ``bootstrap_seed``,
            ``alpha``, ``ddof``).

    Returns:
        Written paths: ``html`` (self-contained: plots embedded as base64),
        ``markdown`` (plots referenced as files), ``json`` (every number, as
        fractions), ``csv`` (the main table, long form), ``deltas`` (PNG) and
        ``heatmap:<target>`` (PNG) for each target with a non-baseline setting.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(store, baseline=baseline, selection=selection, benchmark=benchmark, **kwargs)
    paths: dict[str, Path] = {}

    plots = []
    p = _delta_plot(summary, out_dir / "deltas.png")
    if p:
        paths["deltas"] = p
        plots.append(("Δ over the baseline", p))
    for t in summary["targets"]:
        p = _heatmap(summary, t, out_dir / f"heatmap-{_safe(t)}.png")
        if p:
            paths[f"heatmap:{t}"] = p
            plots.append((f"{t}: per-language Δ", p))

    csv = out_dir / "table.csv"
    pd.DataFrame([{k: v for k, v in c.items() if k not in ("per_seed",)} for c in summary["table"]]).to_csv(
        csv, index=False)
    paths["csv"] = csv
    js = out_dir / "summary.json"
    js.write_text(json.dumps(summary, indent=1, default=_json_default), encoding="utf-8")
    paths["json"] = js

    sections = _sections(summary)
    studies = _study_sections(store)
    for sec, folder in studies:
        paths[f"study:{sec.get('name')}"] = folder / "section.json"
    md = out_dir / "report.md"
    md.write_text(_render_md(title, summary, sections, plots, out_dir, studies), encoding="utf-8")
    paths["markdown"] = md
    page = out_dir / "report.html"
    page.write_text(_render_html(title, summary, sections, plots, studies), encoding="utf-8")
    paths["html"] = page
    return paths


def _study_sections(store) -> list:
    """Study sections (``xstilts study``) found under ``<store folder>/studies/*/section.json``."""
    from .studies import load_sections

    return load_sections(Path(_open_store(store).path).parent / "studies")


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _sections(summary) -> list[tuple[str, list[str], list[list[str]]]]:
    """(heading, header, rows) of every secondary table."""
    out = [("Significance (paired bootstrap)", SIG_HEADER, _significance_rows(summary))]
    out.append(("XTREME / XTREME-R scores", BENCH_HEADER, _benchmark_rows(summary)))
    rule = summary["selection"]["rule"] + ("" if summary["selection"]["rule"] == "en-dev" else f", {NOT_ZERO_SHOT}")
    out.append((f"Selection ({rule}) per target", SEL_HEADER, _selection_rows(summary)))
    out.append((f"Selection ({rule}): benchmark score vs baseline", SEL_BENCH_HEADER,
                _selection_bench_rows(summary)))
    for t in summary["targets"]:
        header, rows = _per_language_rows(summary, t)
        info = summary["target_info"][t]
        out.append((f"{t}: per language ({info['metric']}, split {info['split']})", header, rows))
    return out


def _render_md(title, summary, sections, plots, out_dir, studies=()) -> str:
    lines = [f"# {title}", ""] + [f"> **{w}**\n" for w in summary["not_zero_shot"]]
    lines += [f"Baseline: `{summary['baseline']}`. Scores x100.", "", "## Main table", "",
             _md_main_table(summary) if summary["table"] else "(no results)", ""]
    for heading, header, rows in sections:
        lines += [f"## {heading}", "", md_table(header, rows) if rows else "(none)", ""]
    if plots:
        lines += ["## Figures", ""]
        lines += [f"![{cap}]({os.path.relpath(p, out_dir)})" for cap, p in plots]
        lines.append("")
    if studies:
        from .studies import section_markdown

        lines += [section_markdown(sec, folder, out_dir) for sec, folder in studies]
    lines += ["## How this report aggregates", ""] + [f"- {m}" for m in summary["method"]] + [""]
    if summary["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    lines += ["## Provenance", "", "```", json.dumps(summary["provenance"], indent=1, default=str), "```", ""]
    return "\n".join(lines)


def _render_html(title, summary, sections, plots, studies=()) -> str:
    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
             f"</head><body><h1>{e(title)}</h1>",
             *[f"<p class='warn'><strong>{e(w)}</strong></p>" for w in summary["not_zero_shot"]],
             f"<p>Baseline: <code>{e(summary['baseline'])}</code>. Scores x100; † = significant.</p>",
             "<h2>Main table</h2>", _html_main_table(summary) if summary["table"] else "<p>(no results)</p>"]
    for heading, header, rows in sections:
        parts += [f"<h2>{e(heading)}</h2>", _html_table(header, rows) if rows else "<p>(none)</p>"]
    if plots:
        parts.append("<h2>Figures</h2>")
        parts += [f"<figure><img alt='{e(cap)}' src='data:image/png;base64,{_b64(p)}'><figcaption>{e(cap)}"
                  "</figcaption></figure>" for cap, p in plots]
    if studies:
        from .studies import section_html

        parts += [section_html(sec, folder) for sec, folder in studies]
    parts += ["<h2>How this report aggregates</h2><ul>"] + [f"<li>{e(m)}</li>" for m in summary["method"]]
    parts.append("</ul>")
    if summary["notes"]:
        parts += ["<h2>Notes</h2><ul class='note'>"] + [f"<li>{e(n)}</li>" for n in summary["notes"]] + ["</ul>"]
    parts += ["<h2>Provenance</h2><pre>", e(json.dumps(summary["provenance"], indent=1, default=str)), "</pre>",
              "</body></html>"]
    return "\n".join(parts)


# --------------------------------------------------------------------------- predictions


def _eval_config(stored: dict | None, phase_dir: Path) -> dict:
    """The eval phase's resolved config: as the store recorded it, else the phase folder's ``config.json``.

    Both hold ``{"kind", "config", "input"}`` as the pipeline writes them; the eval config
    names the target, its family and the evaluated split. Neither: a :class:`ConfigError`.
    """
    from .errors import ConfigError

    cfg = (stored or {}).get("config") or {}
    file = phase_dir / "config.json"
    if not {"target", "family", "split"} <= set(cfg) and file.is_file():
        cfg = json.loads(file.read_text(encoding="utf-8")).get("config") or {}
    missing = sorted({"target", "family", "split"} - set(cfg))
    if missing:
        raise ConfigError(f"{phase_dir}: no eval config names its {', '.join(missing)} (neither the results store "
                          f"nor {file.name}); not an eval phase written by xstilts")
    return cfg


def _write_predictions(phase_dir: Path, dest: Path, cfg: dict) -> list[dict]:
    task, split, family = cfg["target"], cfg["split"], cfg["family"]
    written = []
    pred_dir = phase_dir / "predictions"
    for f in sorted(pred_dir.glob("*.json")) if pred_dir.is_dir() else []:
        if f.stem.startswith("ids-"):
            continue
        lang = f.stem
        preds = json.loads(f.read_text(encoding="utf-8"))
        (dest / task).mkdir(parents=True, exist_ok=True)
        warning = None
        if family == "span_qa":
            if isinstance(preds, dict):
                answers = preds
            else:
                ids_file = pred_dir / f"ids-{lang}.json"
                if ids_file.exists():
                    answers = dict(zip(json.loads(ids_file.read_text(encoding="utf-8")), preds))
                else:
                    answers = {str(i): a for i, a in enumerate(preds)}
                    warning = "no example ids saved: keys are example positions"
            out = dest / task / f"{split}-{lang}.json"
            out.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
        elif family == "tagging":
            out = dest / task / f"{split}-{lang}.tsv"
            out.write_text("".join("".join(f"{t}\n" for t in sent) + "\n" for sent in preds), encoding="utf-8")
        else:
            out = dest / task / f"{split}-{lang}.tsv"
            out.write_text("".join(f"{p}\n" for p in preds), encoding="utf-8")
        written.append({"task": task, "lang": lang, "family": family, "path": str(out), "n": len(preds),
                        "warning": warning})
    return written


def export_predictions(source, out_dir: str | os.PathLike, *, setting: str | None = None,
                       seed: int | None = None) -> list[dict]:
    """Write saved predictions in the google-research/xtreme submission layout.

    Layout: ``<task>/test-<lang>.tsv`` with one label per line (classification),
    one label per token line and a blank line after each sentence (tagging,
    as xtreme's ``read_tag``), or ``<task>/test-<lang>.json`` mapping example
    id -> answer (QA). The split in the name is the eval phase's split.

    Args:
        source: a :class:`xstilts.store.Store` (or its path): the eval phases
            in its ``phases`` table with a ``path`` are read from
            ``<path>/predictions/<lang>.json``; or an iterable of eval phase
            folders (each with ``config.json`` as written by the pipeline).
        out_dir: output folder.
        setting, seed: with a store, only these runs. With a store and both
            given, files go straight under ``out_dir``; otherwise under
            ``out_dir/<setting>/seed<seed>/`` (one submission folder per
            setting and seed).

    Returns:
        One dict per written file: task, lang, family, path, n, warning.
    """
    out_dir = Path(out_dir)
    written: list[dict] = []
    if hasattr(source, "metrics_frame") or (isinstance(source, (str, os.PathLike)) and Path(source).is_file()):
        store = _open_store(source)
        ph = store.query(
            """SELECT p.run_id, p.phase_key, p.config, p.path, r.setting, COALESCE(p.seed, r.seed) AS seed
               FROM phases p JOIN runs r ON r.run_id = p.run_id WHERE p.kind = 'eval' AND p.path IS NOT NULL
               ORDER BY r.setting, seed, p.phase_key""")
        flat = setting is not None and seed is not None
        for r in ph.itertuples(index=False):
            if setting is not None and r.setting != setting:
                continue
            run_seed = None if _isna(r.seed) else int(r.seed)
            if seed is not None and run_seed != seed:
                continue
            cfg = _eval_config(json.loads(r.config) if r.config else None, Path(r.path))
            dest = out_dir if flat else out_dir / _safe(r.setting) / f"seed{run_seed if run_seed is not None else 'none'}"
            written += _write_predictions(Path(r.path), dest, cfg)
    else:
        for folder in source:
            written += _write_predictions(Path(folder), out_dir, _eval_config(None, Path(folder)))
    return written
