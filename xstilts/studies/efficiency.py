"""The efficiency study: time per epoch, examples/s, tokens/s and subword fertility of English vs
non-English intermediate data at matched example counts (XNLI dev is parallel), and how much of the
difference token counts explain.

Option ``study.efficiency`` (the parallel task, languages, repeats, warm-up runs). Its cells are
intermediate-only: one per language and repeat, plus untimed warm-up runs, no target phase.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import Field

from ..config import _Strict, merge, validate
from ..errors import ConfigError
from ..grid import Cell
from ..report.render import pyplot, save_figure
from ..stats import linear_fit, t_interval, verdict
from .base import Study, model_base, model_label, phase_rows, register

CHAR_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my")


WARMUP_SEED = 2**31 - 1  # intermediate seed of the efficiency study's untimed warm-up runs (not a repeat)


XNLI_LANGUAGES = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()


class EfficiencyOptions(_Strict):
    task: str = Field("xnli_parallel", description="a parallel task: the same examples in every language")
    languages: list[str] = Field(default_factory=lambda: list(XNLI_LANGUAGES))
    repeats: list[int] = Field(default_factory=lambda: [0, 1, 2], description="intermediate seeds (repeats)")
    reference: str = "en"
    warmup_runs: int = Field(1, ge=0, description="untimed runs first (CUDA context, kernel selection)")
    char_languages: list[str] = Field(default_factory=lambda: list(CHAR_LANGUAGES))


class Efficiency(Study):
    name = "efficiency"
    title = "Study: training efficiency by language"
    question = "training time per epoch of non-English vs English intermediate data at matched example counts"
    order = 40
    options = {"efficiency": (EfficiencyOptions, Field(default_factory=EfficiencyOptions))}

    def check(self, cfg, path, names) -> None:
        eff = cfg.study.efficiency
        if eff.reference not in eff.languages:
            raise ConfigError(f"{path}: study.efficiency.reference {eff.reference!r} is not in its languages")

    def cells(self, cfg) -> list[Cell]:
        """Intermediate-only cells: one per language and repeat, after the untimed warm-up runs."""
        from ..pipeline import run_id_for

        cells: list[Cell] = []
        eff = cfg.study.efficiency
        for model in cfg.models:
            base = merge(model_base(cfg, model), {"model": model})
            langs = list(eff.languages)
            plan = [(WARMUP_SEED - i, eff.reference, "warmup") for i in range(eff.warmup_runs)]
            for r_i, r in enumerate(eff.repeats):  # rotate the language order so no language is always first
                k = r_i % len(langs)
                plan += [(r, lang, f"{eff.task}[{lang}]") for lang in langs[k:] + langs[:k]]
            for seed, lang, setting in plan:
                # keep_weights: false -- a timing run keeps its done.json, not ~1 GB of encoder and checkpoints
                raw = merge(base, {"intermediate": {"tasks": [eff.task], "languages": [lang], "seed": seed,
                                                    "keep_weights": False},
                                   "target": {"tasks": []}})
                run_cfg = validate(raw, f"efficiency cell {model}/{lang}/{seed}")
                cells.append(Cell(run_id_for(run_cfg), model, setting, None, seed, run_cfg))
        return cells

    def plan_lines(self, cfg) -> list[str]:
        eff = cfg.study.efficiency
        return [f"intermediate data: {eff.task} in {len(eff.languages)} languages ({', '.join(eff.languages)}), "
                f"repeats {eff.repeats} (+{eff.warmup_runs} warm-up run(s)), no target phase"]

    def analyze(self, cfg, store, cells, section, out_dir):
        eff = cfg.study.efficiency
        alpha = cfg.study.alpha
        by_run = {c.run_id: r for c, r in phase_rows(store, cells, "intermediate")}
        table, fit_rows, concl, data = [], [], [], {}
        for model in cfg.models:
            runs = {}
            for c in cells:
                if c.model != model or c.setting == "warmup" or c.run_id not in by_run:
                    continue
                r = by_run[c.run_id]
                if not r.s_per_epoch:
                    continue
                lang = c.cfg.intermediate.languages[0]
                runs.setdefault(lang, {})[c.seed] = {"s_per_epoch": r.s_per_epoch, "examples_per_s": r.examples_per_s,
                                                     "tokens_per_s": r.tokens_per_s,
                                                     "tokens_per_epoch": r.tokens_per_s * r.s_per_epoch,
                                                     "examples_per_epoch": r.examples_per_s * r.s_per_epoch}
            if eff.reference not in runs:
                continue
            ref = runs[eff.reference]
            fert = {}
            cell_of = {c.cfg.intermediate.languages[0]: c for c in cells if c.model == model and c.setting != "warmup"}
            for lang in runs:
                fert[lang] = language_fertility(cell_of[lang], lang, eff.char_languages)
            per_lang = {}
            for lang in [x for x in eff.languages if x in runs]:
                rr = runs[lang]
                paired = sorted(set(rr) & set(ref))
                log_ratio = t_interval([math.log(rr[k]["s_per_epoch"] / ref[k]["s_per_epoch"]) for k in paired], alpha)
                tok_ratio = np.mean([rr[k]["tokens_per_epoch"] / ref[k]["tokens_per_epoch"] for k in paired])
                mean = {k: float(np.mean([v[k] for v in rr.values()])) for k in next(iter(rr.values()))}
                sd = float(np.std([v["s_per_epoch"] for v in rr.values()], ddof=1)) if len(rr) > 1 else None
                ratio = {"mean": math.exp(log_ratio["mean"]), "low": _exp(log_ratio["low"]), "high": _exp(log_ratio["high"]),
                         "verdict": {"positive": "slower", "negative": "faster", "inconclusive": "inconclusive"}[
                             verdict(log_ratio["low"], log_ratio["high"])], "n": log_ratio["n"]}
                per_lang[lang] = {**mean, "s_per_epoch_sd": sd, "time_ratio": ratio, "token_ratio": float(tok_ratio),
                                  "fertility": fert[lang], "repeats": len(rr)}
                table.append([model_label(model), lang, str(fert[lang]["examples"]),
                              f"{fert[lang]['fertility']:.2f} /{fert[lang]['unit'][:4]}",
                              f"{mean['tokens_per_epoch']:,.0f}",
                              f"{mean['s_per_epoch']:.3g}" + (f" ± {sd:.2g}" if sd is not None else ""),
                              f"{mean['examples_per_s']:.1f}", f"{mean['tokens_per_s']:,.0f}",
                              "reference" if lang == eff.reference else
                              f"{ratio['mean']:.2f} [{_fmt(ratio['low'])}, {_fmt(ratio['high'])}]",
                              "–" if lang == eff.reference else ratio["verdict"],
                              f"{tok_ratio:.2f}", f"{ratio['mean'] / tok_ratio:.2f}", str(len(rr))])
            # how much of the between-language difference do token counts explain?
            x_all = [v["tokens_per_epoch"] for rr in runs.values() for v in rr.values()]
            y_all = [v["s_per_epoch"] for rr in runs.values() for v in rr.values()]
            langs = list(per_lang)
            x_m = [per_lang[lang]["tokens_per_epoch"] for lang in langs]
            y_m = [per_lang[lang]["s_per_epoch"] for lang in langs]
            fit_m = linear_fit(x_m, y_m)
            fit_all = linear_fit(x_all, y_all)
            for label, f in (("language means", fit_m), ("all runs", fit_all)):
                fit_rows.append([model_label(model), label, str(f["n"]), "–" if f["slope"] is None else
                                 f"{1000 * f['slope']:.3g} ± {1000 * f['slope_se']:.2g}",
                                 "–" if f["intercept"] is None else f"{f['intercept']:.3g}",
                                 "–" if f["r2"] is None else f"{f['r2']:.3f}",
                                 "–" if f["p"] is None else f"{f['p']:.3g}"])
            data[model] = {"languages": per_lang, "fit_language_means": fit_m, "fit_all_runs": fit_all,
                           "reference": eff.reference}
            others = [lang for lang in langs if lang != eff.reference]
            if others:
                tr = {lang: per_lang[lang]["time_ratio"]["mean"] for lang in others}
                kr = {lang: per_lang[lang]["token_ratio"] for lang in others}
                lo, hi = min(tr, key=tr.get), max(tr, key=tr.get)
                slower = [lang for lang in others if per_lang[lang]["time_ratio"]["verdict"] == "slower"]
                faster = [lang for lang in others if per_lang[lang]["time_ratio"]["verdict"] == "faster"]
                n_ex = per_lang[eff.reference]["fertility"]["examples"]
                spread = (f"ranges from {tr[lo]:.2f}x ({lo}) to {tr[hi]:.2f}x ({hi}), median "
                          f"{np.median(list(tr.values())):.2f}x; tokens per epoch from {min(kr.values()):.2f}x to "
                          f"{max(kr.values()):.2f}x (median {np.median(list(kr.values())):.2f}x)" if len(others) > 1 else
                          f"is {tr[lo]:.2f}x ({lo}) at {kr[lo]:.2f}x the tokens per epoch")
                concl.append(
                    f"{model_label(model)}, {n_ex} matched examples per language: time per epoch relative to {eff.reference} "
                    f"{spread}. Significantly slower than {eff.reference}: "
                    f"{', '.join(slower) or 'none'}; faster: {', '.join(faster) or 'none'}; the rest inconclusive.")
                if fit_m["r2"] is not None:
                    concl.append(
                        f"Token counts explain R² = {fit_m['r2']:.2f} of the between-language variance in time per epoch "
                        f"(linear fit over {fit_m['n']} language means: {1000 * fit_m['slope']:.3g} s per 1000 tokens, "
                        f"p = {fit_m['p']:.3g}; over all {fit_all['n']} runs R² = {fit_all['r2']:.2f}). Time per token "
                        f"relative to {eff.reference} (time ratio / token ratio) ranges "
                        f"{min(tr[x] / kr[x] for x in others):.2f}–{max(tr[x] / kr[x] for x in others):.2f}: values near 1 "
                        "mean the token count alone accounts for the difference.")
        section["data"] = data
        section["test"] = (f"Per language, repeated runs (intermediate seeds {eff.repeats}, language order rotated per "
                           f"repeat, {eff.warmup_runs} untimed warm-up run(s) first) on the same {eff.task} examples "
                           f"translated (matched counts). Time per epoch = training-loop time (no evaluation or "
                           f"checkpointing) / epochs; tokens = non-padding tokens the loop processed. Time ratio vs "
                           f"{eff.reference}: {round(100 * (1 - alpha))}% t-interval over repeats of log(time / "
                           f"{eff.reference} time) paired by repeat, exponentiated; 'inconclusive' when it contains 1. "
                           "Share explained by token counts: R² of an ordinary least-squares fit of time per epoch on tokens "
                           "per epoch (scipy.stats.linregress). Fertility: subwords (model tokenizer, no special tokens) per "
                           f"whitespace word; per non-space character for {', '.join(eff.char_languages)}.")
        section["tables"] += [
            {"caption": "Per language (time ratio and token ratio relative to " + eff.reference + ")",
             "header": ["model", "language", "examples", "fertility", "tokens/epoch", "s/epoch (± sd)", "examples/s",
                        "tokens/s", "time ratio [95% CI]", "verdict", "token ratio", "time per token ratio", "repeats"],
             "rows": table},
            {"caption": "Linear fit: time per epoch on tokens per epoch",
             "header": ["model", "points", "n", "s per 1000 tokens ± se", "intercept (s)", "R²", "p"], "rows": fit_rows}]
        section["conclusion"] = concl or ["No timed runs yet: run the study first."]
        if data:
            section["plots"].append({"caption": "Time per epoch vs tokens per epoch, per language, with the linear fit",
                                     "file": _plot_efficiency(data, out_dir / "time-vs-tokens.png").name})


register(Efficiency())


def fertility(texts, tokenize, lang: str, char_languages=CHAR_LANGUAGES) -> dict:
    """Subwords per whitespace word (per non-space character for ``char_languages``).

    Args:
        texts: raw strings.
        tokenize: ``str -> list`` of subwords (no special tokens).
        lang: the texts' language.

    Returns:
        ``{"fertility", "subwords", "units", "unit"}`` with unit ``"word"`` or ``"character"``.
    """
    subwords = units = 0
    per_char = lang in char_languages
    for t in texts:
        subwords += len(tokenize(t))
        units += len("".join(t.split())) if per_char else len(t.split())
    return {"fertility": subwords / units if units else None, "subwords": subwords, "units": units,
            "unit": "character" if per_char else "word"}


def example_texts(example: dict) -> list[str]:
    """The text fields of an example in any family layout (labels, ids and COPA's cause/effect skipped)."""
    out = []
    for key, v in example.items():
        if key in ("label", "id", "idx", "tags", "answers") or (key == "question" and v in ("cause", "effect")):
            continue
        if isinstance(v, str) and v.strip():
            out.append(v)
        elif isinstance(v, list):
            words = [x for x in v if isinstance(x, str)]
            if words and key == "tokens":
                out.append(" ".join(words))
            else:
                out += [x for x in words if x.strip()]
    return out


def language_fertility(cell: Cell, lang: str, char_languages=CHAR_LANGUAGES) -> dict:
    """Fertility of the model's tokenizer on the training examples a cell uses in ``lang``."""
    from ..data import load_examples
    from ..model import load_tokenizer
    from ..pipeline import register_config_tasks
    from ..tasks import get

    register_config_tasks(cell.cfg)
    spec = get(cell.cfg.intermediate.tasks[0])
    examples = load_examples(spec, "train", lang, cell.cfg.data_dir, limit=cell.cfg.intermediate.train.limit)
    tok = load_tokenizer(cell.cfg.model)
    texts = [t for e in examples for t in example_texts(e)]
    res = fertility(texts, lambda s: tok(s, add_special_tokens=False)["input_ids"], lang, char_languages)
    res["examples"] = len(examples)
    return res


def _exp(x):
    return None if x is None else math.exp(x)


def _fmt(x):
    return "–" if x is None else f"{x:.2f}"


def _plot_efficiency(data, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for model, d in data.items():
        langs = d["languages"]
        x = [v["tokens_per_epoch"] for v in langs.values()]
        y = [v["s_per_epoch"] for v in langs.values()]
        ax.scatter(x, y, label=model_label(model)[-30:])
        for lang, xi, yi in zip(langs, x, y):
            ax.annotate(lang, (xi, yi), fontsize=7, xytext=(3, 2), textcoords="offset points")
        f = d["fit_language_means"]
        if f["slope"] is not None:
            xs = np.linspace(min(x), max(x), 10)
            ax.plot(xs, f["intercept"] + f["slope"] * xs, lw=1, label=f"fit, R² = {f['r2']:.2f}")
    ax.set_xlabel("tokens per epoch")
    ax.set_ylabel("seconds per epoch")
    ax.set_title("Time per epoch vs tokens per epoch (mean over repeats)", fontsize=9)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
