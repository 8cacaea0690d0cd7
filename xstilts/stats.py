"""Statistics: the one home for intervals, the paired bootstrap, verdicts and saturation fits.

Pure functions over numbers (numpy and scipy, no store, no files), used by the report
(:mod:`xstilts.report`), the studies (:mod:`xstilts.studies`), the quickstart and the exports:

* :func:`t_quantile`, :func:`t_interval`, :func:`welch_interval`: Student-t intervals (``scipy.stats.t``);
  :func:`normal_interval`: a normal-approximation interval over examples (exports);
* :func:`paired_arms`, :func:`gain_verdict`: both arms' mean/std, a paired t-interval on the per-seed gain
  and the sentence saying whether intermediate training helped (quickstart);
* :func:`paired_bootstrap`: the hierarchical paired bootstrap over seeds and examples (report, studies);
  :func:`percentile_interval`: an estimate with the percentile interval of its bootstrap draws (forecast);
* :func:`verdict`, :func:`describe`, :func:`format_ci`: the wording of an estimate and its interval;
* :func:`fit_saturation`, :func:`saturation_fraction`, :func:`within_noise_fraction`: saturation curves
  (the data-scale study); :func:`linear_fit`: a least-squares line (the efficiency study).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np


def t_quantile(dof, q: float = 0.975) -> float:
    """Student-t quantile ``q`` with ``dof`` degrees of freedom (``scipy.stats.t.ppf``)."""
    from scipy import stats

    return float(stats.t.ppf(q, dof))


def t_interval(values, alpha: float = 0.05) -> dict:
    """Mean and two-sided ``1 - alpha`` Student-t interval of ``values`` (e.g. one gap per seed).

    Returns:
        ``{"mean", "sd", "n", "df", "low", "high", "level"}``; ``sd``, ``low`` and ``high`` are
        None with fewer than two finite values (nothing to estimate the spread from).
    """
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    n = int(x.size)
    out = {"mean": float(x.mean()) if n else None, "sd": None, "n": n, "df": None, "low": None, "high": None,
           "level": 1 - alpha}
    if n > 1:
        sd = float(x.std(ddof=1))
        half = t_quantile(n - 1, 1 - alpha / 2) * sd / math.sqrt(n)
        out.update(sd=sd, df=n - 1, low=out["mean"] - half, high=out["mean"] + half)
    return out


def welch_interval(a, b, alpha: float = 0.05) -> dict:
    """``mean(a) - mean(b)`` with a Welch t-interval (independent samples, unequal variances)."""
    a = np.asarray([v for v in a if v is not None and np.isfinite(v)], dtype=np.float64)
    b = np.asarray([v for v in b if v is not None and np.isfinite(v)], dtype=np.float64)
    out = {"mean": float(a.mean() - b.mean()) if a.size and b.size else None, "n": (int(a.size), int(b.size)),
           "df": None, "low": None, "high": None, "level": 1 - alpha}
    if a.size > 1 and b.size > 1:
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = math.sqrt(va + vb)
        if se == 0:
            out.update(low=out["mean"], high=out["mean"], df=float("inf"))
        else:
            df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
            half = t_quantile(df, 1 - alpha / 2) * se
            out.update(df=float(df), low=out["mean"] - half, high=out["mean"] + half)
    return out


def verdict(low, high, null: float = 0.0) -> str:
    """``"positive"`` (interval above ``null``), ``"negative"`` (below) or ``"inconclusive"`` (crosses it,
    or no interval)."""
    if low is None or high is None:
        return "inconclusive"
    if low > null:
        return "positive"
    if high < null:
        return "negative"
    return "inconclusive"


def signed(x, scale: float = 100.0, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{scale * x:+.{digits}f}"


def plain(x, scale: float = 100.0, digits: int = 2) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{scale * x:.{digits}f}"


def format_ci(est: dict, scale: float = 100.0, digits: int = 2) -> str:
    """``"[+0.40, +2.06]"`` (x ``scale``), or ``"–"`` without an interval."""
    if est.get("low") is None:
        return "–"
    return f"[{signed(est['low'], scale, digits)}, {signed(est['high'], scale, digits)}]"


def describe(est: dict, *, unit: str = "points", scale: float = 100.0, digits: int = 2, over: str = "seeds") -> str:
    """One sentence fragment quoting an estimate, its interval and the verdict.

    Example: ``"+1.23 points (95% CI [+0.40, +2.06], t-interval over 3 seeds): positive"``; an interval
    that contains zero reads ``"...: inconclusive (the interval crosses zero)"``.
    """
    if est.get("mean") is None:
        return "no paired results"
    head = f"{signed(est['mean'], scale, digits)} {unit}"
    if est.get("low") is None:
        n = est.get("n")
        return f"{head} ({n} {over[:-1] if n == 1 else over}: no interval): inconclusive"
    level = round(100 * est.get("level", 0.95))
    n = est["n"] if not isinstance(est["n"], tuple) else "+".join(map(str, est["n"]))
    kind = "Welch t-interval" if isinstance(est["n"], tuple) else "t-interval"
    v = verdict(est["low"], est["high"])
    tail = " (the interval crosses zero)" if v == "inconclusive" else ""
    return f"{head} ({level}% CI {format_ci(est, scale, digits)}, {kind} over {n} {over}): {v}{tail}"


def percentile_interval(value, draws, alpha: float = 0.05) -> dict:
    """``value`` with the ``1 - alpha`` percentile interval of its bootstrap ``draws`` (None and non-finite
    draws dropped); ``low``/``high`` are None with no value or fewer than two draws."""
    x = np.asarray([d for d in draws if d is not None and np.isfinite(d)], dtype=np.float64)
    if value is None or x.size < 2:
        return {"value": value, "low": None, "high": None}
    return {"value": float(value), "low": float(np.quantile(x, alpha / 2)), "high": float(np.quantile(x, 1 - alpha / 2))}


def normal_interval(values, alpha: float = 0.05) -> dict:
    """Mean of ``values`` (e.g. one run's per-example scores) with a normal-approximation interval
    (``mean ± half``, ``half = z_{1-alpha/2} · sd / sqrt(n)``): ``{"mean", "se", "half", "n", "low", "high",
    "level"}``, the spread None with fewer than two values."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    out = {"mean": float(x.mean()) if n else None, "se": None, "half": None, "n": n, "low": None, "high": None,
           "level": 1 - alpha}
    if n > 1:
        se = float(x.std(ddof=1) / math.sqrt(n))
        half = float(stats.norm.ppf(1 - alpha / 2)) * se
        out.update(se=se, half=half, low=out["mean"] - half, high=out["mean"] + half)
    return out


def paired_arms(direct: list[float], inter: list[float]) -> dict:
    """Mean/std of both arms and of the per-seed differences, with a 95% t-interval on the gain."""
    d, i = np.asarray(direct, float), np.asarray(inter, float)
    diff = i - d
    n = len(diff)
    sd = lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else float("nan")  # noqa: E731
    out = {"n": n, "direct_mean": float(d.mean()), "direct_std": sd(d), "inter_mean": float(i.mean()),
           "inter_std": sd(i), "gain_mean": float(diff.mean()), "gain_std": sd(diff),
           "ci_low": float("nan"), "ci_high": float("nan")}
    if n > 1:
        half = t_quantile(n - 1) * out["gain_std"] / math.sqrt(n)
        out["ci_low"], out["ci_high"] = out["gain_mean"] - half, out["gain_mean"] + half
    return out


def gain_verdict(avg: dict, n_langs: int, unit: str = "seed", metric: str = "accuracy") -> str:
    """One plain sentence on whether intermediate training helped, from the zero-shot average of
    :func:`paired_arms` rows (the quickstart's verdict)."""
    g = 100 * avg["gain_mean"]
    what = f"averaged over {n_langs} zero-shot languages"
    if unit == "sentence":
        lo, hi = 100 * avg["ci_low"], 100 * avg["ci_high"]
        ci = f"(95% CI {lo:+.1f} to {hi:+.1f} points, paired bootstrap over sentences; one encoder per arm)"
        if lo > 0:
            return f"Intermediate training HELPED: {g:+.1f} {metric} points {what} {ci}."
        if hi < 0:
            return f"Intermediate training HURT: {g:+.1f} {metric} points {what} {ci}."
        return f"Inconclusive: the difference ({g:+.1f} points {what}) is within sampling noise {ci}."
    diffs = [i - d for d, i in zip(avg.get("direct", []), avg.get("intermediate", []))]
    signs = f"; it was positive for {sum(x > 0 for x in diffs)} of {len(diffs)} seeds" if len(diffs) > 1 else ""
    if avg["n"] < 2:
        return (f"Intermediate training changed zero-shot accuracy by {g:+.1f} points {what}, "
                f"from a single seed: no confidence interval; run more seeds before concluding anything.")
    lo, hi = 100 * avg["ci_low"], 100 * avg["ci_high"]
    ci = f"(95% CI {lo:+.1f} to {hi:+.1f} points over {avg['n']} paired seeds{signs})"
    if lo > 0:
        return f"Intermediate training HELPED: {g:+.1f} accuracy points {what} {ci}."
    if hi < 0:
        return f"Intermediate training HURT: {g:+.1f} accuracy points {what} {ci}."
    return (f"Inconclusive: the difference ({g:+.1f} points {what}) is within seed noise {ci}; "
            f"more seeds (--seeds) narrow the interval.")


def linear_fit(x, y) -> dict:
    """Least-squares line ``y = intercept + slope x`` (``scipy.stats.linregress``):
    ``{"n", "slope", "slope_se", "intercept", "r2", "p"}``, all None but ``n`` with fewer than three points
    or no spread in ``x``."""
    from scipy import stats

    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.ptp(x) == 0:
        return {"n": int(x.size), "slope": None, "slope_se": None, "intercept": None, "r2": None, "p": None}
    r = stats.linregress(x, y)
    return {"n": int(x.size), "slope": float(r.slope), "slope_se": float(r.stderr), "intercept": float(r.intercept),
            "r2": float(r.rvalue ** 2), "p": float(r.pvalue)}


# ---------------------------------------------------------------- paired bootstrap


def std(values, ddof: int = 1) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    return float(np.std(values, ddof=ddof)) if values.size > ddof else None


def paired_bootstrap(cells: Mapping[str, object], *, n_resamples: int = 1000, seed: int = 0) -> dict:
    """Paired bootstrap of the language-averaged difference between two settings.

    The statistic is ``delta = mean over languages l of mean over seeds k of
    d[k, l]``, where ``d[k, l]`` is the setting's score minus the baseline's
    for seed ``k`` in language ``l`` (pairs: same seed, same language).

    Each of ``n_resamples`` resamples, independently per language:

    * draws ``K`` of the language's ``K`` paired seeds with replacement, and
    * when ``cells[l]`` is a ``(K, n_l)`` matrix of per-example differences
      (setting's per-example score minus the baseline's on the same example),
      also draws ``n_l`` of its examples with replacement, the same examples
      for every seed (the example is the unit: both settings see the same
      draw), and scores each seed by the mean of its drawn differences;
      a length-``K`` vector (metric-level differences) resamples seeds only;

    and averages the drawn seeds, then the languages (unweighted). The RNG is
    ``numpy.random.default_rng(seed)``, languages in sorted order, so a report
    is reproducible and one cell's result does not depend on the others.

    Args:
        cells: language -> ``(K,)`` per-seed differences or ``(K, n_l)``
            per-example differences.
        n_resamples: number of bootstrap resamples (1000 in reports).
        seed: RNG seed.

    Returns:
        ``{"delta", "ci_low", "ci_high", "p_value", "unit", "n_resamples"}``:
        ``delta`` is the statistic on the original data; ``ci_*`` the 2.5 and
        97.5 percentiles of the resampled statistic; ``p_value`` the
        two-sided bootstrap p-value ``min(1, 2 min(P*(delta* <= 0), P*(delta* >= 0)))``
        with ``P*(A) = (1 + #A) / (1 + n_resamples)``; ``unit`` is
        ``"seeds+examples"`` or ``"seeds"``. With one seed and no per-example
        scores nothing can be resampled: ``ci_*`` and ``p_value`` are None.
    """
    langs = sorted(cells)
    if not langs:
        return {"delta": None, "ci_low": None, "ci_high": None, "p_value": None, "unit": None,
                "n_resamples": n_resamples}
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    observed = []
    examples = all(np.ndim(cells[lang]) == 2 for lang in langs)
    resampled_anything = False
    for lang in langs:
        d = np.asarray(cells[lang], dtype=np.float64)
        if d.ndim == 1:
            d = d[:, None]  # one "example" per seed: the metric-level difference
            draw_examples = False
        else:
            draw_examples = True
        k, n = d.shape
        observed.append(d.mean(axis=1).mean())
        if draw_examples and n > 1:
            per_seed = np.empty((n_resamples, k))
            chunk = max(1, int(4_000_000 // max(1, n * k)))
            for start in range(0, n_resamples, chunk):
                stop = min(n_resamples, start + chunk)
                idx = rng.integers(0, n, size=(stop - start, n))
                per_seed[start:stop] = d[:, idx].mean(axis=2).T
            resampled_anything = True
        else:
            per_seed = np.broadcast_to(d.mean(axis=1), (n_resamples, k))
        draws = rng.integers(0, k, size=(n_resamples, k))
        resampled_anything |= k > 1
        total += np.take_along_axis(per_seed, draws, axis=1).mean(axis=1)
    delta = float(np.mean(observed))
    unit = "seeds+examples" if examples else "seeds"
    if not resampled_anything:
        return {"delta": delta, "ci_low": None, "ci_high": None, "p_value": None, "unit": unit,
                "n_resamples": n_resamples}
    stats = total / len(langs)
    below = (1 + np.count_nonzero(stats <= 0)) / (1 + n_resamples)
    above = (1 + np.count_nonzero(stats >= 0)) / (1 + n_resamples)
    low, high = np.percentile(stats, [2.5, 97.5])
    return {"delta": delta, "ci_low": float(low), "ci_high": float(high),
            "p_value": float(min(1.0, 2 * min(below, above))), "unit": unit, "n_resamples": n_resamples}


# ---------------------------------------------------------------- saturation curves


def _exp_model(f, a, tau):
    return a * (1.0 - np.exp(-np.asarray(f, dtype=np.float64) / tau))


def _power_model(f, a, b, c):
    return a - b * np.power(np.asarray(f, dtype=np.float64), -c)


SATURATION_MODELS = {
    "exp": (_exp_model, ("a", "tau"), "gain(f) = a * (1 - exp(-f / tau))"),
    "power": (_power_model, ("a", "b", "c"), "gain(f) = a - b * f^(-c)"),
}


def fit_saturation(fractions, gains, model: str = "exp", alpha: float = 0.05) -> dict:
    """Least-squares fit of a saturation curve to (fraction, gain) points (``scipy.optimize.curve_fit``).

    Args:
        fractions: the intermediate-data fraction of each point (0 < f <= 1); several points may share
            a fraction (one per seed).
        gains: the gain of each point (any unit).
        model: ``"exp"`` (a (1 - exp(-f/tau))) or ``"power"`` (a - b f^-c).

    Returns:
        ``{"model", "formula", "ok", "params", "se", "ci", "rss", "r2", "aic", "n", "message"}``;
        ``se`` from the covariance of the fit, ``ci`` = value ± t_{1-alpha/2, n-k} se.
    """
    from scipy import optimize

    fn, names, formula = SATURATION_MODELS[model]
    f = np.asarray(fractions, dtype=np.float64)
    y = np.asarray(gains, dtype=np.float64)
    out = {"model": model, "formula": formula, "ok": False, "params": {}, "se": {}, "ci": {}, "rss": None,
           "r2": None, "aic": None, "n": int(f.size), "message": ""}
    if f.size <= len(names) or len(set(f.tolist())) < len(names):
        out["message"] = f"needs more than {len(names)} points at {len(names)} distinct fractions"
        return out
    top = y[f == f.max()].mean()
    if model == "exp":
        p0 = (top if top != 0 else 1e-3, float(np.median(f)))
        bounds = ([-np.inf, 1e-6], [np.inf, 1e3])
    else:
        low = y[f == f.min()].mean()
        p0 = (top, max(1e-6, (top - low) * f.min() ** 0.5), 0.5)
        bounds = ([-np.inf, -np.inf, 1e-3], [np.inf, np.inf, 5.0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            popt, pcov = optimize.curve_fit(fn, f, y, p0=p0, bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError) as e:
        out["message"] = f"fit failed: {e}"
        return out
    resid = y - fn(f, *popt)
    rss = float(resid @ resid)
    tss = float(((y - y.mean()) ** 2).sum())
    k, n = len(names), f.size
    se = np.sqrt(np.clip(np.diag(pcov), 0, np.inf)) if np.all(np.isfinite(pcov)) else np.full(k, np.nan)
    tq = t_quantile(n - k, 1 - alpha / 2)
    lo_b, hi_b = bounds
    at_bound = [nm for nm, v, lo, hi in zip(names, popt, lo_b, hi_b)
                if np.isclose(v, lo, rtol=1e-3, atol=1e-9) or np.isclose(v, hi, rtol=1e-3, atol=1e-9)]
    if model == "exp" and popt[1] < f.min() / 3:
        at_bound.append("tau")  # the rise happens before the smallest measured fraction: tau is not identified
    shape = len(names) - 1  # tau or c: a relative standard error above 100% leaves the curve's shape open
    if np.isfinite(se[shape]) and se[shape] > abs(popt[shape]):
        at_bound.append(names[shape])
    bad_se = not np.all(np.isfinite(se)) or np.any(se == 0)
    if at_bound or bad_se:
        what = ", ".join(dict.fromkeys(at_bound)) or "the covariance"
        out["message"] = (f"{what} not identified (at the edge of its range, or no rise over the measured "
                          "fractions): the curve and its uncertainty are not reliable")
    out.update(ok=True, params=dict(zip(names, map(float, popt))), se=dict(zip(names, map(float, se))),
               ci={nm: (float(p - tq * s), float(p + tq * s)) for nm, p, s in zip(names, popt, se)},
               rss=rss, r2=1 - rss / tss if tss > 0 else None,
               aic=float(n * math.log(max(rss, 1e-300) / n) + 2 * k))
    return out


def saturation_fraction(fit: dict, noise: float) -> float | None:
    """The fraction beyond which the fitted curve is within ``noise`` of its asymptote.

    exp: ``a exp(-f/tau) <= noise`` gives ``f* = tau ln(|a| / noise)``; power: ``|b| f^-c <= noise``
    gives ``f* = (|b| / noise)^(1/c)``. 0 when the whole curve is within noise of its asymptote;
    a value above 1 means the gains had not saturated at 100 %. None without a fit or a noise level.
    """
    if not fit.get("ok") or noise is None or not np.isfinite(noise) or noise <= 0:
        return None
    p = fit["params"]
    if fit["model"] == "exp":
        return 0.0 if abs(p["a"]) <= noise else float(p["tau"] * math.log(abs(p["a"]) / noise))
    if abs(p["b"]) <= noise:
        return 0.0
    log_f = math.log(abs(p["b"]) / noise) / p["c"]
    return float("inf") if log_f > 700 else math.exp(log_f)


def within_noise_fraction(gains_by_fraction: dict[float, dict[int, float]], alpha: float = 0.05):
    """Smallest measured fraction from which on every gain is indistinguishable from the largest fraction's.

    For each fraction f, the paired difference ``gain(f_max, seed) - gain(f, seed)`` gets a t-interval
    over seeds; f qualifies when that interval contains zero (or lies below it) for f and every larger
    fraction. Returns ``(fraction or None, {f: interval})``.
    """
    fs = sorted(gains_by_fraction)
    if not fs:
        return None, {}
    full = gains_by_fraction[fs[-1]]
    diffs = {}
    for f in fs:
        paired = sorted(set(full) & set(gains_by_fraction[f]))
        diffs[f] = t_interval([full[k] - gains_by_fraction[f][k] for k in paired], alpha)
    answer = None
    for f in reversed(fs):
        d = diffs[f]
        if f == fs[-1] or (d["low"] is not None and d["low"] <= 0):
            answer = f
        else:
            break
    return answer, diffs

