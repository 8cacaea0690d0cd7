"""The data-scale study: how much English intermediate data is needed, and do multilingual
intermediate sets do better?

Options ``study.sweep`` (the English intermediate task and its fractions) and ``study.multilingual``
(extra settings, each compared with another); the sweep and multilingual sets are added to the
settings. A saturation curve (:func:`xstilts.stats.fit_saturation`) is fitted to the gains, and the
fraction beyond which gains are within seed noise is reported.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import Field

from ..config import _Strict
from ..errors import ConfigError
from ..grid import Setting
from ..report.render import pyplot, save_figure
from ..stats import (SATURATION_MODELS, describe, fit_saturation, format_ci, saturation_fraction, signed, t_interval,
                     verdict, within_noise_fraction)
from .base import (ZERO_SHOT_RULE, Study, cell_scores, done_summary, errbar, gap_estimates, index_cells, mean_sd,
                   model_label, phase_rows, register, study_settings)


class SweepOptions(_Strict):
    """data-scale: the English intermediate task whose training data is subsampled."""

    task: str
    fractions: list[float] = Field(default_factory=lambda: [0.01, 0.03, 0.1, 0.3, 1.0])
    languages: list[str] | None = Field(None, description="default: the task's training language (English)")


class CompareSetting(Setting):
    """An extra intermediate setting (e.g. a multilingual set) compared with another setting."""

    compare_to: str | None = Field(None, description="setting it is compared with (default: the sweep at 100%)")


def sweep_name(task: str, fraction: float) -> str:
    return f"{task}@{100 * fraction:g}%"


class DataScale(Study):
    name = "data-scale"
    title = "Study: intermediate data scale"
    question = "how much English intermediate data is needed, and do multilingual intermediate sets do better?"
    order = 20
    options = {"sweep": (SweepOptions | None, None),
               "multilingual": (list[CompareSetting], Field(default_factory=list))}

    def settings(self, cfg) -> list[Setting]:
        """The configured settings, plus the baseline, the sweep and the multilingual sets."""
        settings = list(cfg.settings)
        if not any(x.name == cfg.study.baseline for x in settings):
            settings.insert(0, Setting(name=cfg.study.baseline))
        sw = cfg.study.sweep
        if sw is not None:
            settings += [Setting(name=sweep_name(sw.task, f), tasks=[sw.task], fraction=f, languages=sw.languages)
                         for f in sorted(sw.fractions)]
        settings += [Setting(**m.model_dump(exclude={"compare_to"})) for m in cfg.study.multilingual]
        return settings

    def check(self, cfg, path, names) -> None:
        if not cfg.targets:
            raise ConfigError(f"{path}: targets: at least one target task")
        if cfg.study.sweep is None:
            raise ConfigError(f"{path}: study.sweep (task, fractions) is required for data-scale")
        super().check(cfg, path, names)
        for m in cfg.study.multilingual:
            if m.compare_to and m.compare_to not in names:
                raise ConfigError(f"{path}: study.multilingual {m.name!r}: compare_to {m.compare_to!r} is not a setting")

    def analyze(self, cfg, store, cells, section, out_dir):
        scores = cell_scores(store, cells)
        idx = index_cells(cells)
        sw = cfg.study.sweep
        base_name = cfg.study.baseline
        alpha = cfg.study.alpha
        examples = {}
        for c, r in phase_rows(store, cells, "intermediate"):
            if (c.model, c.setting) not in examples:
                summ = done_summary(r.path)
                examples[(c.model, c.setting)] = sum((summ.get("train_examples") or {}).values()) or None
        sweep_settings = {sweep_name(sw.task, f): f for f in sorted(sw.fractions)}
        multi = {m.name: m for m in cfg.study.multilingual}
        table, fits_rows, cmp_rows, concl, data = [], [], [], [], {}
        for model in cfg.models:
            for target in cfg.targets:
                gains, per_fraction = {}, {}
                for s in study_settings(cfg):
                    if s.name == base_name:
                        continue
                    per_seed, _, paired = gap_estimates(cfg, scores, idx, model, s.name, target)
                    if not paired:
                        continue
                    by_seed = {seed: g for (seed, _, _), g in zip(paired, per_seed)}
                    est = t_interval(per_seed, alpha)
                    zs = t_interval([scores[a]["zero_shot"] for _, a, _ in paired])
                    gains[s.name] = {"by_seed": by_seed, "gain": est, "zero_shot": zs}
                    if s.name in sweep_settings:
                        per_fraction[sweep_settings[s.name]] = by_seed
                    langs = ",".join(s.languages) if s.languages else "en"
                    table.append([model_label(model), target, s.name, ", ".join(s.tasks), langs, f"{s.fraction:g}",
                                  str(examples.get((model, s.name)) or "–"), mean_sd(zs), signed(est["mean"]),
                                  format_ci(est), verdict(est["low"], est["high"]), str(est["n"])])
                if not per_fraction:
                    continue
                f_pts = [f for f, d in per_fraction.items() for _ in d]
                g_pts = [g for f, d in per_fraction.items() for g in d.values()]
                variances = [np.var(list(d.values()), ddof=1) for d in per_fraction.values() if len(d) > 1]
                noise = float(math.sqrt(np.mean(variances))) if variances else None
                fits = {m: fit_saturation(f_pts, g_pts, m, alpha) for m in SATURATION_MODELS}
                ok = {m: f for m, f in fits.items() if f["ok"]}
                clean = {m: f for m, f in ok.items() if not f["message"]} or ok  # identified fits first, then AIC
                best = min(clean, key=lambda m: clean[m]["aic"]) if clean else None
                f_emp, diffs = within_noise_fraction(per_fraction, alpha)
                n_full = examples.get((model, sweep_name(sw.task, max(sw.fractions))))
                for m, fit in fits.items():
                    fstar = saturation_fraction(fit, noise)
                    r2 = "–" if fit["r2"] is None else f"{fit['r2']:.3f}".replace("-0.000", "0.000")
                    aic = "–" if fit["aic"] is None else f"{fit['aic']:.1f}"
                    if fit["ok"]:
                        last = _frac(fstar, n_full) + (f" (warning: {fit['message']})" if fit["message"] else "")
                    else:
                        last = fit["message"] or "fit failed"
                    fits_rows.append([model_label(model), target, fit["formula"] + (" (best AIC)" if m == best else ""),
                                      _fit_params(fit), r2, aic, last])
                data[f"{model}|{target}"] = {"gains": {k: {"gain": v["gain"], "by_seed": v["by_seed"]}
                                                         for k, v in gains.items()},
                                             "fits": fits, "best": best, "noise": noise, "within_noise_fraction": f_emp,
                                             "diff_to_full": {str(f): d for f, d in diffs.items()}, "examples_full": n_full}
                full_name = sweep_name(sw.task, max(sw.fractions))
                head = f"{target} ({model_label(model)}): English {sw.task} at 100% gives {describe(gains[full_name]['gain'])}" \
                    if full_name in gains else f"{target} ({model_label(model)}):"
                concl.append(head + ".")
                if best:
                    fit = fits[best]
                    fstar = saturation_fraction(fit, noise)
                    concl.append(f"Saturation fit ({fit['formula']}, chosen by AIC among identified fits, "
                                 f"{fit['n']} per-seed points): "
                                 f"{_fit_params(fit)}; R² = {fit['r2']:.3f}. ".replace("-0.000", "0.000")
                                 + (f"Warning: {fit['message']}. " if fit["message"] else "") + (
                                     f"With seed noise σ = {100 * noise:.2f} points (pooled sd of per-seed gains), the "
                                     f"fitted curve is within σ of its asymptote beyond f* = {_frac(fstar, n_full)}."
                                     if noise else "Seed noise unknown (one seed): no saturation fraction."))
                else:
                    concl.append("No saturation curve could be fitted: " + "; ".join(
                        f"{f['model']}: {f['message']}" for f in fits.values()) + ".")
                if f_emp is not None:
                    concl.append(f"Measured: from {100 * f_emp:g}% of the English data on, every gain is within seed noise "
                                 f"of the 100% gain (paired t-interval of gain(100%) − gain(f) contains zero).")
                for name, m in multi.items():
                    ref = m.compare_to or full_name
                    if name not in gains or ref not in gains:
                        continue
                    a, b = gains[name]["by_seed"], gains[ref]["by_seed"]
                    paired = sorted(set(a) & set(b))
                    d = t_interval([a[k] - b[k] for k in paired], alpha)
                    cmp_rows.append([model_label(model), target, name, ref, signed(gains[name]["gain"]["mean"]),
                                     signed(gains[ref]["gain"]["mean"]), signed(d["mean"]), format_ci(d),
                                     verdict(d["low"], d["high"]), str(d["n"])])
                    concl.append(f"{name} vs {ref}: {describe(d)}.")
        section["data"] = data
        section["test"] = (f"Gain = setting − '{base_name}' zero-shot score, paired by seed, with a "
                           f"{round(100 * (1 - alpha))}% t-interval over seeds ('inconclusive' when it contains zero). "
                           "Saturation curves fitted by least squares (scipy.optimize.curve_fit) to every per-seed "
                           "(fraction, gain) point; parameter uncertainty = standard errors from the fit's covariance, "
                           "95% CI = value ± t(n−k)·se; model chosen by AIC (identified fits first). f* = fraction "
                           "beyond which the fitted curve is "
                           "within one seed-noise sd (pooled sd of per-seed gains) of its asymptote. Multilingual sets: "
                           "paired t-interval over seeds of the gain difference. " + ZERO_SHOT_RULE + ".")
        section["tables"] += [
            {"caption": "Gain per setting (x100; zero-shot mean ± sd over seeds)",
             "header": ["model", "target", "setting", "tasks", "data languages", "fraction", "train examples", "zero-shot",
                        "gain", "95% CI", "verdict", "seeds"], "rows": table},
            {"caption": "Saturation fits (gains in points)",
             "header": ["model", "target", "curve", "parameters ± se [95% CI]", "R²", "AIC", "f* (within seed noise)"],
             "rows": fits_rows},
            {"caption": "Multilingual sets vs their English reference (gain difference, x100)",
             "header": ["model", "target", "setting", "compared with", "gain", "reference gain", "difference", "95% CI",
                        "verdict", "seeds"], "rows": cmp_rows}]
        section["conclusion"] = concl or ["No paired results yet: run the study first."]
        if data:
            section["plots"].append({"caption": "Gain vs English intermediate data fraction, with the fitted curves",
                                     "file": _plot_data_scale(data, cfg, sweep_settings, multi, examples,
                                                              out_dir / "gain-vs-fraction.png").name})


register(DataScale())


def _frac(f, n_full) -> str:
    if f is None:
        return "–"
    if f > 1:
        return "beyond 100% (not saturated)" if f > 10 else f"{100 * f:.3g}% (beyond 100%: not saturated)"
    s = f"{100 * f:.3g}%"
    return s + (f" (~{f * n_full:,.0f} examples)" if n_full else "")


def _fit_params(fit: dict) -> str:
    if not fit["ok"]:
        return fit["message"] or "–"
    parts = []
    for nm, v in fit["params"].items():
        scale = 100 if nm in ("a", "b") else 1
        se = fit["se"][nm]
        lo, hi = fit["ci"][nm]
        unit = " pts" if nm in ("a", "b") else ""
        parts.append(f"{nm} = {scale * v:.3g} ± {scale * se:.2g}{unit} [{scale * lo:.3g}, {scale * hi:.3g}]")
    return "; ".join(parts)


def _plot_data_scale(data, cfg, sweep_settings, multi, examples, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    inv = {f: s for s, f in sweep_settings.items()}
    for key, d in data.items():
        fs = sorted(f for f in inv if inv[f] in d["gains"])
        ests = [d["gains"][inv[f]]["gain"] for f in fs]
        err = np.array([errbar(e) for e in ests]).T
        model, target = key.split("|", 1)
        ax.errorbar(fs, [100 * e["mean"] for e in ests], yerr=err, fmt="o", capsize=3,
                    label=f"{model_label(model)}, {target}: English fractions")
        grid_f = np.logspace(np.log10(min(fs)), 0, 100) if fs else []
        for m, fit in d["fits"].items():
            if fit["ok"]:
                fn = SATURATION_MODELS[m][0]
                ax.plot(grid_f, 100 * fn(grid_f, *fit["params"].values()), lw=1,
                        ls="-" if m == d["best"] else ":", label=f"fit: {m}")
        n_full = d.get("examples_full")
        for name in multi:
            if name in d["gains"]:
                e = d["gains"][name]["gain"]
                n = examples.get((model, name))
                x = (n / n_full) if n and n_full else 1.0
                ax.errorbar([x], [100 * e["mean"]], yerr=np.array([errbar(e)]).T, fmt="s", capsize=3, label=name)
    ax.set_xscale("log")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("English intermediate data fraction (multilingual sets: examples / full English set)")
    ax.set_ylabel(f"gain vs '{cfg.study.baseline}' (points)")
    ax.set_title("Gain vs intermediate data (95% t-interval over seeds)", fontsize=9)
    ax.legend(fontsize=6)
    return save_figure(fig, path)
