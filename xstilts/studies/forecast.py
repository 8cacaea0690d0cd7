"""The forecast study: which cheap rule picks the intermediate task that helps the target most?

The study's grid (models x candidate settings, with the baseline ``none``, x targets x seeds) gives every
candidate's zero-shot score; each selector of :mod:`xstilts.forecast` ranks the candidates from cheap signals
(dataset embeddings, LogME, size) and the English-dev rule from the grid's own English dev scores.
Regret@1/@3, share of the oracle's gain, beats-none, Spearman and NDCG@3 per selector with bootstrap
intervals over seeds; each selector's regret@1 against the English-dev rule's, paired over the same
resamples; cost in seconds against the grid's. Options ``study.forecast`` (examples per data set, selectors).
Candidates are the settings that train one intermediate task (mixtures and MLM settings are not ranked).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field

from ..config import _Strict
from ..forecast import SELECTORS
from ..report.render import pyplot, save_figure
from ..stats import format_ci, signed
from .base import Study, model_label, register, study_settings


class ForecastOptions(_Strict):
    examples: int = Field(256, ge=8, description="examples read per data set by the forecast selectors")
    selectors: list[str] = Field(default_factory=lambda: list(SELECTORS))
    short_fraction: float = Field(0.25, gt=0, le=1, description="en-dev-short: share of the target phase's epochs")


class Forecast(Study):
    name = "forecast"
    title = "Study: forecasting the intermediate task"
    question = "which selector picks the best intermediate task for a target, at what cost, and does any beat English dev?"
    order = 50
    options = {"forecast": (ForecastOptions, Field(default_factory=ForecastOptions))}

    def plan_notes(self, cfg) -> list[str]:
        return [f"forecast: selectors {', '.join(cfg.study.forecast.selectors)} on {cfg.study.forecast.examples} "
                "examples per data set, run after the grid (minutes; not counted above)"]

    def analyze(self, cfg, store, cells, section, out_dir):
        from ..forecast.evaluate import en_dev_selector, evaluate_grid, grids_from_store, size_selector
        from ..forecast.select import forecast

        opts = cfg.study.forecast
        base = cfg.study.baseline
        candidates = {s.name: s.tasks[0] for s in study_settings(cfg)
                      if s.name != base and len(s.tasks or []) == 1 and s.mlm == "off"}
        slices = grids_from_store(store, baseline=base, run_ids=[c.run_id for c in cells])
        cache_file = out_dir / "forecasts.json"
        cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        table, vs_rows, concl, data, plot_rows = [], [], [], {}, []
        for model in cfg.models:
            for target in cfg.targets:
                sl = slices.get((model, target))
                cell = next((c for c in cells if c.model == model and c.target == target), None)
                if sl is None or cell is None:
                    continue
                names = {s: t for s, t in candidates.items() if s in sl["grid"]}
                key = json.dumps([model, target, sorted(names.items()), opts.model_dump()], sort_keys=True)
                if key not in cache:
                    phase_cfgs = {t: next(c.cfg for c in cells if (c.model, c.setting, c.target) == (model, s, target))
                                  for s, t in names.items()}
                    fc = forecast(cell.cfg, target, list(names.values()), examples=opts.examples,
                                  selectors=tuple(opts.selectors), phase_configs=phase_cfgs,
                                  short_fraction=opts.short_fraction, log=lambda m: None)
                    back = {t: s for s, t in names.items()}
                    cache[key] = {n: {"scores": {back.get(c, c): v for c, v in s["scores"].items()},
                                      "seconds": s["seconds"], "notes": s.get("notes", "")}
                                  for n, s in fc["selectors"].items()}
                    cache_file.write_text(json.dumps(cache, indent=1))
                fc = cache[key]
                selectors = {"en-dev": en_dev_selector}
                if all(v is not None for v in sl["sizes"].values()):
                    selectors["largest-first"] = size_selector(sl["sizes"])
                for n, s in fc.items():  # largest-first: the files' full sizes (what a user knows beforehand)
                    selectors[n] = (lambda sc: (lambda grid, seeds: sc))(s["scores"])
                # in the study's order (baseline first): ties between candidates go to the one listed first
                sub = {c: sl["grid"][c] for c in [base, *names] if c in sl["grid"]}
                r = evaluate_grid(sub, selectors, baseline=base, n_resamples=cfg.study.n_resamples,
                                  alpha=cfg.study.alpha)
                grid_s = sum(v["total"] for c, v in sl["seconds"].items() if c in sub)
                train_s = sum(v["train"] for c, v in sl["seconds"].items() if c in sub)
                cost = {"en-dev": train_s, "random": 0.0, **{n: s["seconds"] for n, s in fc.items()}}
                data[f"{model} / {target}"] = {**r, "grid_seconds": grid_s, "cost_seconds": cost}
                for n, s in r["selectors"].items():
                    c = cost.get(n)
                    table.append([model_label(model), target, n, s["pick"] or "(expected)", signed(s["regret@1"]["value"]),
                                  format_ci(s["regret@1"]), signed(s["regret@3"]["value"]),
                                  "-" if s["share"]["value"] is None else f"{100 * s['share']['value']:.0f}%",
                                  "-" if s["beats_none"]["value"] is None else f"{s['beats_none']['value']:.2f}",
                                  "-" if s["spearman"]["value"] is None else f"{s['spearman']['value']:+.2f}",
                                  "-" if c is None else f"{c:.0f} s ({c / grid_s:.1%})" if grid_s else f"{c:.0f} s"])
                    plot_rows.append((f"{target}\n{n}", s["regret@1"]))
                    v = s.get("vs_reference")
                    if v and v["value"] is not None:
                        vs_rows.append([model_label(model), target, n, signed(v["value"]), format_ci(v)])
                better = [n for n, s in r["selectors"].items()
                          if s.get("vs_reference", {}).get("high") is not None and s["vs_reference"]["high"] < 0]
                dev = r["selectors"]["en-dev"]
                concl.append(f"{model_label(model)} / {target} (seeds {r['seeds']}; oracle {r['oracle']}): English dev "
                             f"picks {dev['pick']} (regret@1 {signed(dev['regret@1']['value'])} points); "
                             + (f"{', '.join(better)} pick better than English dev (regret interval below it)"
                                if better else "no selector beats English dev outside the intervals") + ".")
        section["data"] = data
        section["test"] = ("Selectors rank the candidates (and 'none'); the oracle is the best mean zero-shot score "
                           "over seeds. Regret@k = oracle - best of the top k, in points; share = gain of the pick "
                           "over 'none' / the oracle's; random = the exact expectation over orderings. Intervals: "
                           f"{round(100 * (1 - cfg.study.alpha))}% percentile bootstrap over seeds "
                           f"({cfg.study.n_resamples} resamples, seeds resampled jointly; the English-dev rule "
                           "re-reads the resampled seeds). Cost: selector seconds against the grid's (en-dev: "
                           "the grid's training time, as it needs every candidate trained and fine-tuned).")
        section["tables"] += [
            {"caption": "Selectors against the grid (points x100; cost vs the whole grid)",
             "header": ["model", "target", "selector", "pick", "regret@1", "95% CI", "regret@3", "share of gain",
                        "beats none", "spearman", "cost"], "rows": table},
            {"caption": "Regret@1 minus the English-dev rule's (negative = picks better)",
             "header": ["model", "target", "selector", "difference", "95% CI"], "rows": vs_rows}]
        section["conclusion"] = concl or ["No results yet: run the study first."]
        if plot_rows:
            section["plots"].append({"caption": "Regret@1 by selector (95% bootstrap interval over seeds)",
                                     "file": _plot(plot_rows, out_dir / "regret.png").name})


def _plot(rows, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(rows)), 3.6))
    for i, (label, est) in enumerate(rows):
        v = 100 * est["value"]
        lo = hi = 0.0
        if est["low"] is not None:
            lo, hi = v - 100 * est["low"], 100 * est["high"] - v
        ax.errorbar([i], [v], yerr=[[max(lo, 0)], [max(hi, 0)]], fmt="o", capsize=3)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r[0] for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("regret@1 (points)")
    ax.axhline(0, color="grey", lw=0.8)
    return save_figure(fig, path)


register(Forecast())
