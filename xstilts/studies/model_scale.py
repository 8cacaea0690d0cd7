"""The model-scale study: does the gap between intermediate-then-target and direct target training
persist as models grow?

Gap per model, target and language (setting minus ``study.baseline``, paired by seed) with a
t-interval over seeds and a paired bootstrap over seeds and examples; a Welch interval compares the
largest model's gap with the smallest's. Options: the shared ``study:`` block only
(``n_resamples``, ``decoder_overrides``...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report.render import pyplot, save_figure
from ..stats import describe, format_ci, paired_bootstrap, signed, t_interval, verdict, welch_interval
from .base import (ZERO_SHOT_RULE, Study, cell_scores, errbar, gap_estimates, index_cells, mean_sd, model_label,
                   params_text, phase_rows, register, study_settings, target_info)


class ModelScale(Study):
    name = "model-scale"
    title = "Study: model scale"
    question = "does the gap between intermediate-then-target and direct target training persist as models grow?"
    order = 10

    def analyze(self, cfg, store, cells, section, out_dir):
        from .. import grid

        scores = cell_scores(store, cells)
        idx = index_cells(cells)
        base_name = cfg.study.baseline
        settings = [s.name for s in study_settings(cfg) if s.name != base_name]
        params = {m: grid.model_params(m) for m in cfg.models}
        models = sorted(cfg.models, key=lambda m: (params[m] is None, params[m] or 0, cfg.models.index(m)))
        inter_s = {}
        for c, r in phase_rows(store, cells, "intermediate"):
            inter_s.setdefault((c.model, c.setting), r.wall_s)
        ex_cache: dict = {}
        rows, lang_rows, data = [], [], []
        for target in cfg.targets:
            for setting in settings:
                for model in models:
                    per_seed, per_lang, paired = gap_estimates(cfg, scores, idx, model, setting, target)
                    if not paired:
                        continue
                    c0 = idx[(model, setting, target, paired[0][0])]
                    metric, split = target_info(c0)
                    est = t_interval(per_seed, cfg.study.alpha)
                    langs = sorted(set.intersection(*[set(scores[a]["langs"]) & set(scores[b]["langs"])
                                                      for _, a, b in paired]))
                    xx = [x for x in langs if x != "en"] or langs
                    boot = _bootstrap(store, cfg, scores, paired, target, metric, split, xx, ex_cache)
                    direct = [scores[b]["zero_shot"] for _, _, b in paired]
                    withi = [scores[a]["zero_shot"] for _, a, _ in paired]
                    entry = {"model": model, "params": params[model], "target": target, "setting": setting,
                             "metric": metric, "split": split, "gap": est, "direct": t_interval(direct),
                             "with_intermediate": t_interval(withi), "bootstrap_p": boot.get("p_value"),
                             "bootstrap_unit": boot.get("unit"), "languages": langs,
                             "per_language": {lang: t_interval(v, cfg.study.alpha) for lang, v in per_lang.items()},
                             "intermediate_s": inter_s.get((model, setting))}
                    data.append(entry)
                    rows.append([model_label(model), params_text(params[model]), f"{target} ({metric}, {split})", setting,
                                 mean_sd(entry["direct"]), mean_sd(entry["with_intermediate"]), signed(est["mean"]),
                                 format_ci(est), verdict(est["low"], est["high"]),
                                 "n/a" if boot.get("p_value") is None else f"{boot['p_value']:.3f}", str(est["n"]),
                                 "–" if entry["intermediate_s"] is None else f"{entry['intermediate_s']:.0f}"])
                    for lang in langs:
                        e = entry["per_language"][lang]
                        lang_rows.append([model_label(model), target, setting, lang, signed(e["mean"]), format_ci(e),
                                          verdict(e["low"], e["high"])])
        section["data"] = {"gaps": data, "models": models, "params": params}
        section["test"] = (f"Gap = (intermediate setting − direct '{base_name}') zero-shot score, paired by target seed; "
                           f"{round(100 * (1 - cfg.study.alpha))}% Student-t interval over seeds (mean ± t·sd/√n), per "
                           "model, target and language; 'inconclusive' when the interval contains zero. Change with scale: "
                           "Welch t-interval of the largest minus the smallest model's per-seed gaps. Also reported: the "
                           f"paired bootstrap p-value of xstilts.report.paired_bootstrap ({cfg.study.n_resamples} resamples "
                           "over seeds and test examples) where per-example scores are stored. " + ZERO_SHOT_RULE + ".")
        section["tables"].append({"caption": "Gap per model and target (x100; direct and with-intermediate: mean ± sd "
                                             "over seeds)",
                                  "header": ["model", "size", "target", "setting", "direct", "with intermediate", "gap",
                                             "95% CI", "verdict", "bootstrap p", "seeds", "intermediate train (s)"],
                                  "rows": rows})
        section["tables"].append({"caption": "Gap per language (x100)",
                                  "header": ["model", "target", "setting", "language", "gap", "95% CI", "verdict"],
                                  "rows": lang_rows})
        concl, at_largest = [], []
        for target in cfg.targets:
            for setting in settings:
                es = [e for e in data if e["target"] == target and e["setting"] == setting]
                if not es:
                    continue
                parts = [f"{model_label(e['model'])}: {describe(e['gap'])}" for e in es]
                concl.append(f"{target}, {setting} vs direct training — gap at " + "; at ".join(parts) + ".")
                big = es[-1]
                v_big = verdict(big["gap"]["low"], big["gap"]["high"])
                at_largest.append((target, setting, model_label(big["model"]), v_big))
                persists = {"positive": "persists (positive)", "negative": "reverses (negative)",
                            "inconclusive": "is inconclusive"}[v_big]
                line = f"At the largest model ({model_label(big['model'])}, {params_text(big['params'])}) the {target} gap {persists}"
                if len(es) > 1:
                    small = es[0]
                    pa = _per_seed_gaps(cfg, scores, idx, big["model"], setting, target)
                    pb = _per_seed_gaps(cfg, scores, idx, small["model"], setting, target)
                    ch = welch_interval(pa, pb, cfg.study.alpha)
                    line += (f"; from {model_label(small['model'])} to {model_label(big['model'])} the gap changes by "
                             f"{describe(ch, over='seeds')}")
                concl.append(line + ".")
        if at_largest:
            counts = {v: [f"{t} ({st}, {m})" for t, st, m, vv in at_largest if vv == v]
                      for v in ("positive", "negative", "inconclusive")}
            concl.insert(0, f"Answer: at the largest model, the gap is positive for {len(counts['positive'])}, negative "
                            f"for {len(counts['negative'])} and inconclusive for {len(counts['inconclusive'])} of "
                            f"{len(at_largest)} target/setting pairs" + "".join(
                                f"; {v}: {', '.join(x)}" for v, x in counts.items() if x) + ".")
        if not concl:
            concl.append("No paired results yet: run the study first.")
        section["conclusion"] = concl
        if data:
            section["plots"].append({"caption": "Gap vs model size (95% t-interval over seeds)",
                                     "file": _plot_model_scale(data, cfg, out_dir / "gap-vs-size.png").name})


register(ModelScale())


def _bootstrap(store, cfg, scores, paired, target, metric, split, langs, ex_cache) -> dict:
    """report.paired_bootstrap over (seed, language): per-example differences when stored for every pair,
    else the per-seed metric differences of each language."""
    if not paired or not langs:
        return {"p_value": None, "unit": None}
    key = (target, split)
    if key not in ex_cache:
        ex = store.example_scores(task=target, split=split)
        ex_cache[key] = {(r.run_id, r.lang): r.scores for r in ex[ex["metric"] == metric].itertuples(index=False)}
    ex = ex_cache[key]
    use_ex = all((a, lang) in ex and (b, lang) in ex for _, a, b in paired for lang in langs) and all(
        len({len(ex[(x, lang)]) for _, a, b in paired for x in (a, b)}) == 1 for lang in langs)
    cells = {}
    for lang in langs:
        if use_ex:
            cells[lang] = np.stack([ex[(a, lang)].astype(np.float64) - ex[(b, lang)] for _, a, b in paired])
        else:
            cells[lang] = np.array([scores[a]["langs"][lang] - scores[b]["langs"][lang] for _, a, b in paired])
    return paired_bootstrap(cells, n_resamples=cfg.study.n_resamples, seed=0)


def _per_seed_gaps(cfg, scores, idx, model, setting, target):
    return gap_estimates(cfg, scores, idx, model, setting, target)[0]


def _plot_model_scale(data, cfg, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    xs_known = all(e["params"] for e in data)
    models = []
    for e in data:
        if e["model"] not in models:
            models.append(e["model"])
    for key in dict.fromkeys((e["target"], e["setting"]) for e in data):
        es = [e for e in data if (e["target"], e["setting"]) == key]
        x = [e["params"] if xs_known else models.index(e["model"]) for e in es]
        y = [100 * e["gap"]["mean"] for e in es]
        err = np.array([errbar(e["gap"]) for e in es]).T
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{key[0]}: {key[1]}")
        for xi, yi, e in zip(x, y, es):
            ax.annotate(model_label(e["model"])[-24:], (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if xs_known:
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    else:
        ax.set_xticks(range(len(models)), [model_label(m)[-20:] for m in models], fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"gap vs '{cfg.study.baseline}' (points)")
    ax.set_title("Intermediate-task gap vs model size", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
