"""Studies: a named grid plus its analysis, rendered as one section of the report.

    xstilts study model-scale [--config FILE] [--models base large 7b 70b] [--dry-run] [key=value ...]

A study config is a grid config (``base``, ``models``, ``settings``, ``targets``, ``seeds``, see
:mod:`xstilts.grid`) plus a ``study:`` block with the study's options; ``configs/studies/<name>.yaml``
holds the real-scale config of each study (the default of ``--config``). Every cell is an ordinary
grid cell: phases are hashed and reused, and every cell is recorded in ``<workdir>/results.sqlite``.
The analysis reads the store (only the study's own cells) and writes
``<workdir>/studies/<name>/section.json`` (+ ``section.md``, ``table.csv``, plots), which
``xstilts report`` appends to the report.

Studies (``study.name``):

* ``model-scale``: does the gap between intermediate-then-target and direct target training persist
  as models grow? Gap per model, target and language, with a t-interval over seeds.
* ``data-scale``: English intermediate data fractions against multilingual intermediate sets; a
  saturation curve fitted to the gains, and the fraction beyond which gains are within seed noise.
* ``latency``: zero-shot accuracy against inference latency (base vs large), with intermediate tasks
  picked by English dev accuracy; the regret of that choice; a Pareto plot.
* ``efficiency``: time per epoch, examples/s, tokens/s and subword fertility of English vs
  non-English intermediate data at matched example counts (XNLI dev is parallel), and how much of
  the difference token counts explain.

Conventions shared by every study (and written into each section):

* A run's *zero-shot score* is the target's primary metric (its first metric) on its evaluation
  split, averaged unweighted over the evaluation languages other than English.
* A *gap* or *gain* is the setting's score minus the baseline's (``study.baseline``, default
  ``none``: direct target training), paired by target seed.
* Intervals are 95 % t-intervals over seeds (``mean ± t_{0.975, n-1} · sd / sqrt(n)``); a result
  whose interval contains zero is called *inconclusive*.

Example:
    >>> cfg = load_study("model-scale", models=["base", "large", "7b"])
    >>> print(dry_run(cfg))              # phases, PFLOPs, A100-hours, memory and 80 GB GPUs per model
    >>> run_study(cfg)                    # trains what is missing, records every cell
    >>> section = analyze(cfg)            # numbers, tables, conclusion
    >>> write_section(section, section_dir(cfg))
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from pydantic import Field, ValidationError

from .config import _Strict, invalid, merge, parse_overrides, read_yaml, validate
from .errors import ConfigError
from .report import md_table
from .stats import (describe, fit_saturation, format_ci, plain as _plain, saturation_fraction,  # noqa: F401
                    signed as _signed, t_interval, verdict, welch_interval, within_noise_fraction)
from .grid import Cell, GridConfig, Resources, Setting

STUDIES = ("model-scale", "data-scale", "latency", "efficiency")
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "studies"

# Short names for --models. Decoders get study.decoder_overrides (LoRA, gradient checkpointing).
MODEL_PRESETS = {
    "base": "xlm-roberta-base", "large": "xlm-roberta-large", "xl": "facebook/xlm-roberta-xl",
    "xxl": "facebook/xlm-roberta-xxl", "7b": "meta-llama/Llama-3.1-8B", "8b": "meta-llama/Llama-3.1-8B",
    "70b": "meta-llama/Llama-3.1-70B",
}
DECODER_NAME_HINTS = ("llama", "mistral", "mixtral", "qwen", "gemma", "phi-", "gpt", "falcon", "olmo", "bloom",
                      "granite", "stablelm", "deepseek")
DEFAULT_DECODER_OVERRIDES = {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "gradient_checkpointing": True}
# Languages written without spaces between words: fertility is per character there.
CHAR_LANGUAGES = ("zh", "ja", "th", "lo", "km", "my")
WARMUP_SEED = 2**31 - 1  # intermediate seed of the efficiency study's untimed warm-up runs (not a repeat)
XNLI_LANGUAGES = "ar bg de el en es fr hi ru sw th tr ur vi zh".split()
ZERO_SHOT_RULE = ("zero-shot score = the target's primary metric on its evaluation split, unweighted mean over the "
                  "evaluation languages other than English")


# ---------------------------------------------------------------- fertility, selection, Pareto


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


def selection_regret(rows, baseline: str = "none", alpha: float = 0.05) -> dict:
    """Regret of picking the intermediate setting by English dev rather than by zero-shot score.

    Args:
        rows: records (dicts or a DataFrame) with ``model``, ``setting``, ``seed``, ``en_dev``,
            ``zero_shot``. The baseline is not a candidate.

    Returns:
        Per model: ``chosen`` (best mean English dev), ``oracle`` (best mean zero-shot), their mean
        scores, ``regret`` = zero-shot(oracle) - zero-shot(chosen) (>= 0), ``regret_ci`` (t-interval over
        seeds of the paired per-seed differences), ``gain`` (chosen minus baseline, t-interval) and the
        per-setting means. Ties go to the setting listed first.
    """
    import pandas as pd

    df = pd.DataFrame(rows)
    out = {}
    for model in dict.fromkeys(df["model"]):
        m = df[df["model"] == model]
        order = [s for s in dict.fromkeys(m["setting"]) if s != baseline]
        if not order:
            continue
        means = m.groupby("setting")[["en_dev", "zero_shot"]].mean()
        dev = {s: means.loc[s, "en_dev"] for s in order if np.isfinite(means.loc[s, "en_dev"])}
        zs = {s: means.loc[s, "zero_shot"] for s in order}
        chosen = max(dev, key=lambda s: (dev[s], -order.index(s))) if dev else None
        oracle = max(zs, key=lambda s: (zs[s], -order.index(s)))
        by_seed = {s: dict(zip(m[m["setting"] == s]["seed"], m[m["setting"] == s]["zero_shot"]))
                   for s in dict.fromkeys(m["setting"])}
        entry = {"chosen": chosen, "oracle": oracle, "candidates": order,
                 "en_dev": {s: float(means.loc[s, "en_dev"]) for s in order},
                 "zero_shot": {s: float(zs[s]) for s in order},
                 "chosen_zero_shot": float(zs[chosen]) if chosen else None, "oracle_zero_shot": float(zs[oracle]),
                 "regret": float(zs[oracle] - zs[chosen]) if chosen else None, "regret_ci": t_interval([], alpha),
                 "gain": t_interval([], alpha), "baseline_zero_shot": None}
        if chosen:
            paired = sorted(set(by_seed[oracle]) & set(by_seed[chosen]))
            entry["regret_ci"] = t_interval([by_seed[oracle][k] - by_seed[chosen][k] for k in paired], alpha)
            if baseline in by_seed:
                base = by_seed[baseline]
                entry["baseline_zero_shot"] = float(np.mean(list(base.values())))
                paired = sorted(set(base) & set(by_seed[chosen]))
                entry["gain"] = t_interval([by_seed[chosen][k] - base[k] for k in paired], alpha)
        out[model] = entry
    return out


def pareto_front(points) -> list[bool]:
    """For (cost, value) points (lower cost and higher value are better): is each point Pareto-optimal?"""
    pts = [(float(c), float(v)) for c, v in points]
    return [not any((c2 <= c and v2 >= v) and (c2 < c or v2 > v) for j, (c2, v2) in enumerate(pts) if j != i)
            for i, (c, v) in enumerate(pts)]


# ---------------------------------------------------------------- latency


def measure_latency(model, task: str, family: str, rows: list[dict], tokenizer, *, device: str = "cpu",
                    examples: int = 64, batch_size: int = 32, batches: int = 4, warmup: int = 3) -> dict:
    """Inference latency of ``model`` on featurized ``rows`` (one row = one example).

    Batch 1: each of the first ``examples`` rows timed alone (forward pass, collate and host-to-device
    copy included; ``torch.cuda.synchronize`` before reading the clock on GPU). Throughput: ``batches``
    batches of ``batch_size`` rows (cycling through the rows), examples per second. fp32 on CPU; bf16
    autocast on GPUs that support it. ``warmup`` untimed passes first.

    Returns:
        ``{"device", "dtype", "p50_ms", "p95_ms", "mean_ms", "n", "throughput", "batch_size", "threads"}``.
    """
    import torch

    from .data import TokenIds
    from .families import get_family

    if not rows:
        raise ValueError("measure_latency: no rows")
    tok, fam = TokenIds.of(tokenizer), get_family(family)
    model = model.to(device).eval()
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else None

    def forward(batch_rows):
        batch = {k: v.to(device) for k, v in fam.collate(batch_rows, tok).items()}
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None) if cuda else _nullcontext():
            model(task, batch)
        if cuda:
            torch.cuda.synchronize()

    sample = [rows[i % len(rows)] for i in range(max(examples, 1))]
    with torch.inference_mode():
        for i in range(warmup):
            forward([sample[i % len(sample)]])
        times = []
        for r in sample:
            t0 = time.perf_counter()
            forward([r])
            times.append(1000 * (time.perf_counter() - t0))
        big = [rows[i % len(rows)] for i in range(batch_size * max(batches, 1))]
        forward(big[:batch_size])  # warm the batched kernels
        t0 = time.perf_counter()
        for i in range(0, len(big), batch_size):
            forward(big[i:i + batch_size])
        elapsed = time.perf_counter() - t0
    p50, p95 = np.percentile(times, [50, 95])
    return {"device": device, "dtype": "bf16" if dtype is not None else "fp32", "p50_ms": float(p50),
            "p95_ms": float(p95), "mean_ms": float(np.mean(times)), "n": len(times),
            "throughput": len(big) / elapsed if elapsed > 0 else None, "batch_size": batch_size,
            "threads": torch.get_num_threads() if not cuda else None}


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def load_target_model(phase_dir, spec):
    """The trained target model of a ``target-*`` phase folder (encoder + heads)."""
    from .model import MultiTaskModel, load_encoder

    phase_dir = Path(phase_dir)
    model = MultiTaskModel(load_encoder(str(phase_dir / "encoder")))
    model.add_task(spec)
    model.load_heads(phase_dir)
    return model.eval()


# =========================================================================== config


class SweepOptions(_Strict):
    """data-scale: the English intermediate task whose training data is subsampled."""

    task: str
    fractions: list[float] = Field(default_factory=lambda: [0.01, 0.03, 0.1, 0.3, 1.0])
    languages: list[str] | None = Field(None, description="default: the task's training language (English)")


class CompareSetting(Setting):
    """An extra intermediate setting (e.g. a multilingual set) compared with another setting."""

    compare_to: str | None = Field(None, description="setting it is compared with (default: the sweep at 100%)")


class LatencyOptions(_Strict):
    examples: int = Field(64, ge=1, description="examples timed one by one (batch 1)")
    batch_size: int = Field(32, ge=1, description="batch size of the throughput measurement")
    batches: int = Field(4, ge=1, description="batches timed for throughput")
    warmup: int = Field(3, ge=0)
    devices: list[str] = Field(default_factory=lambda: ["cpu", "cuda"], description="cuda is skipped when absent")
    language: str | None = Field(None, description="eval language the timed examples come from (default: "
                                                   "the first non-English one)")


class EfficiencyOptions(_Strict):
    task: str = Field("xnli_parallel", description="a parallel task: the same examples in every language")
    languages: list[str] = Field(default_factory=lambda: list(XNLI_LANGUAGES))
    repeats: list[int] = Field(default_factory=lambda: [0, 1, 2], description="intermediate seeds (repeats)")
    reference: str = "en"
    warmup_runs: int = Field(1, ge=0, description="untimed runs first (CUDA context, kernel selection)")
    char_languages: list[str] = Field(default_factory=lambda: list(CHAR_LANGUAGES))


class StudyOptions(_Strict):
    name: str | None = Field(None, description="one of " + ", ".join(STUDIES) + " (default: the CLI's NAME)")
    baseline: str = Field("none", description="the direct-training setting gaps are taken against")
    alpha: float = Field(0.05, gt=0, lt=1)
    n_resamples: int = Field(1000, ge=10, description="paired bootstrap resamples (model-scale)")
    decoder_overrides: dict = Field(default_factory=lambda: dict(DEFAULT_DECODER_OVERRIDES),
                                    description="RunConfig fields merged into base for decoder LLMs")
    model_overrides: dict[str, dict] = Field(default_factory=dict, description="model -> RunConfig fields")
    target_overrides: dict[str, dict] = Field(default_factory=dict, description="target -> RunConfig fields")
    sweep: SweepOptions | None = None
    multilingual: list[CompareSetting] = Field(default_factory=list)
    latency: LatencyOptions = Field(default_factory=LatencyOptions)
    efficiency: EfficiencyOptions = Field(default_factory=EfficiencyOptions)


class StudyConfig(_Strict):
    study: StudyOptions = Field(default_factory=StudyOptions)
    base: dict = Field(default_factory=dict)
    models: list[str] | None = None
    settings: list[Setting] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    seeds: list[int] = Field(default_factory=lambda: [0])
    retries: int = Field(2, ge=0)
    resources: Resources = Field(default_factory=Resources)

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def workdir(self) -> Path:
        return Path(self.base.get("workdir", "runs"))


def resolve_model(name: str) -> str:
    return MODEL_PRESETS.get(name.lower(), name)


def is_decoder_model(name: str) -> bool:
    """Causal LM? From a local folder's config.json, else from the name (no download)."""
    cfg = Path(name) / "config.json"
    if cfg.exists():
        from .model import DECODER_TYPES

        c = json.loads(cfg.read_text())
        return bool(c.get("is_decoder")) or c.get("model_type") in DECODER_TYPES
    low = name.lower()
    return any(h in low for h in DECODER_NAME_HINTS)


def default_config_path(name: str) -> Path:
    for root in (Path("configs") / "studies", CONFIG_DIR):
        if (root / f"{name}.yaml").exists():
            return root / f"{name}.yaml"
    raise ConfigError(f"no config for study {name!r}: pass --config FILE (looked in configs/studies/ and {CONFIG_DIR})")


def load_study(name: str, path=None, overrides=(), *, models=None, update: dict | None = None) -> StudyConfig:
    """Read a study config (default ``configs/studies/<name>.yaml``), apply overrides, validate.

    Args:
        name: the study (``model-scale``, ``data-scale``, ``latency``, ``efficiency``).
        path: the YAML file.
        overrides: ``key=value`` strings (e.g. ``seeds=[0,1]``, ``base.target.train.epochs=2``).
        models: replaces ``models`` (presets: base, large, xl, xxl, 7b, 8b, 70b).
        update: a dict merged last (tests).

    Raises:
        ConfigError: unknown study, missing file, invalid YAML or key.
    """
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; one of {', '.join(STUDIES)}")
    path = Path(path) if path else default_config_path(name)
    raw = read_yaml(path, "study config")
    raw = merge(raw, parse_overrides(list(overrides)))
    if update:
        raw = merge(raw, update)
    base = raw.setdefault("base", {})
    if base.get("data_dir") and not Path(base["data_dir"]).is_absolute():
        base["data_dir"] = str((path.parent / base["data_dir"]).resolve())
    if models:
        raw["models"] = list(models)
    raw.setdefault("study", {})
    if raw["study"].get("name") not in (None, name):
        raise ConfigError(f"{path}: study.name is {raw['study']['name']!r}, not {name!r}")
    raw["study"]["name"] = name
    try:
        cfg = StudyConfig.model_validate(raw)
    except ValidationError as e:
        raise invalid(e, str(path), "study config") from None
    cfg.models = [resolve_model(m) for m in (cfg.models or [cfg.base.get("model", "me5-small")])]
    _check(cfg, path)
    return cfg


def _check(cfg: StudyConfig, path) -> None:
    s = cfg.study
    names = [x.name for x in study_settings(cfg)]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: setting names must be unique (got {names})")
    if cfg.name == "efficiency":
        if s.efficiency.reference not in s.efficiency.languages:
            raise ConfigError(f"{path}: study.efficiency.reference {s.efficiency.reference!r} is not in its languages")
        return
    if not cfg.targets:
        raise ConfigError(f"{path}: targets: at least one target task")
    if cfg.name == "data-scale" and s.sweep is None:
        raise ConfigError(f"{path}: study.sweep (task, fractions) is required for data-scale")
    if s.baseline not in names:
        raise ConfigError(f"{path}: the baseline setting {s.baseline!r} is not among the settings ({names})")
    if len(names) < 2:
        raise ConfigError(f"{path}: settings: at least one setting besides the baseline")
    if cfg.name == "data-scale":
        for m in s.multilingual:
            if m.compare_to and m.compare_to not in names:
                raise ConfigError(f"{path}: study.multilingual {m.name!r}: compare_to {m.compare_to!r} is not a setting")


# =========================================================================== cells


def sweep_name(task: str, fraction: float) -> str:
    return f"{task}@{100 * fraction:g}%"


def study_settings(cfg: StudyConfig) -> list[Setting]:
    """The settings of a study: the configured ones, plus (data-scale) the sweep and multilingual sets."""
    settings = list(cfg.settings)
    if cfg.name == "data-scale":
        if not any(x.name == cfg.study.baseline for x in settings):
            settings.insert(0, Setting(name=cfg.study.baseline))
        sw = cfg.study.sweep
        if sw is not None:
            settings += [Setting(name=sweep_name(sw.task, f), tasks=[sw.task], fraction=f, languages=sw.languages)
                         for f in sorted(sw.fractions)]
        settings += [Setting(**m.model_dump(exclude={"compare_to"})) for m in cfg.study.multilingual]
    return settings


def model_base(cfg: StudyConfig, model: str) -> dict:
    """``base`` for one model: + decoder overrides (LoRA...) for causal LMs, + model_overrides[model]."""
    base = dict(cfg.base)
    if is_decoder_model(model):
        base = merge(base, cfg.study.decoder_overrides)
    for key, extra in cfg.study.model_overrides.items():
        if resolve_model(key) == model:
            base = merge(base, extra)
    return base


def study_cells(cfg: StudyConfig) -> list[Cell]:
    """Every cell of the study (grid cells; efficiency: intermediate-only cells, one per language and repeat)."""
    from . import grid
    from .pipeline import run_id_for

    cells: list[Cell] = []
    if cfg.name == "efficiency":
        eff = cfg.study.efficiency
        for model in cfg.models:
            base = merge(model_base(cfg, model), {"model": model})
            langs = list(eff.languages)
            plan = [(WARMUP_SEED - i, eff.reference, "warmup") for i in range(eff.warmup_runs)]
            for r_i, r in enumerate(eff.repeats):  # rotate the language order so no language is always first
                k = r_i % len(langs)
                plan += [(r, lang, f"{eff.task}[{lang}]") for lang in langs[k:] + langs[:k]]
            for seed, lang, setting in plan:
                raw = merge(base, {"intermediate": {"tasks": [eff.task], "languages": [lang], "seed": seed},
                                   "target": {"tasks": []}})
                run_cfg = validate(raw, f"efficiency cell {model}/{lang}/{seed}")
                cells.append(Cell(run_id_for(run_cfg), model, setting, None, seed, run_cfg))
        return cells
    settings = study_settings(cfg)
    for model in cfg.models:
        base_m = model_base(cfg, model)
        for target in cfg.targets:
            base_mt = merge(base_m, cfg.study.target_overrides.get(target, {}))
            g = GridConfig(base=base_mt, models=[model], settings=settings, targets=[target], seeds=cfg.seeds,
                           retries=cfg.retries, resources=cfg.resources)
            cells += grid.expand(g)
    return cells


def section_dir(cfg: StudyConfig) -> Path:
    return cfg.workdir / "studies" / cfg.name


# =========================================================================== dry run


def dry_run(cfg: StudyConfig) -> str:
    """The study's plan: cells, unique phases, compute (PFLOPs, A100-hours) and memory per model and phase."""
    from . import grid

    cells = study_cells(cfg)
    lines = [f"study {cfg.name}: {QUESTIONS[cfg.name]}"]
    kinds = []
    for m in cfg.models:
        params = grid.model_params(m)
        kind = "decoder" if is_decoder_model(m) else "encoder"
        mb = model_base(cfg, m)
        if mb.get("lora"):
            kind += f", LoRA r={mb['lora'].get('r', 8)}"
        if mb.get("gradient_checkpointing"):
            kind += ", gradient checkpointing"
        kinds.append(f"{m} ({_params(params)}, {kind})")
    lines.append("models: " + "; ".join(kinds))
    if cfg.name == "efficiency":
        eff = cfg.study.efficiency
        lines.append(f"intermediate data: {eff.task} in {len(eff.languages)} languages ({', '.join(eff.languages)}), "
                     f"repeats {eff.repeats} (+{eff.warmup_runs} warm-up run(s)), no target phase")
    else:
        lines.append(f"settings: {', '.join(s.name for s in study_settings(cfg))}")
        lines.append(f"targets: {', '.join(cfg.targets)}; seeds: {cfg.seeds}")
    lines.append(f"workdir: {cfg.workdir} (results.sqlite, phases/, studies/{cfg.name}/)")
    lines.append("")
    lines.append(grid.format_plan(grid.plan(cells)))
    lines.append("")
    lines.append("per model:")
    lines.append(f"{'model':<34} {'phase':<13} {'unique':>6} {'PFLOPs':>9} {'A100-h':>8} {'total GB':>9} {'80GB GPUs':>10}")
    fits = []
    for m in cfg.models:
        mine = [c for c in cells if c.model == m]
        p = grid.plan(mine)
        mem = {x["phase"]: x for x in p["memory"]}
        for kind, k in p["phases"].items():
            gpu_h = k["flops"] / (grid.A100_BF16_PEAK * grid.ASSUMED_MFU) / 3600
            mm = mem.get(kind, {})
            total = f"{mm['total_gb']:.1f}" if "total_gb" in mm else "-"
            gpus = (mm.get("gpus_80gb") or "no fit") if "total_gb" in mm else "-"
            lines.append(f"{m[-34:]:<34} {kind:<13} {k['total']:>6} {k['flops'] / 1e15:>9.2f} {gpu_h:>8.2f} {total:>9} "
                         f"{gpus:>10}")
        need = [x.get("gpus_80gb") for x in p["memory"] if "state_gb" in x]
        if need:
            fits.append(_fit_line(m, need))
    lines.append("")
    lines += fits
    if cfg.name == "latency":
        lat = cfg.study.latency
        lines.append(f"latency: {lat.examples} examples at batch 1 and {lat.batches} batches of {lat.batch_size} per model "
                     f"and device ({', '.join(lat.devices)}; cuda only when present), on the target model of the "
                     "setting picked by English dev (seconds to minutes; not counted above)")
    return "\n".join(lines)


def _params(p) -> str:
    if p is None:
        return "? params"
    if p >= 1e9:
        return f"{p / 1e9:.1f}B params"
    return f"{p / 1e6:.0f}M params" if p >= 1e6 else f"{p / 1e3:.0f}K params"


def _label(model: str) -> str:
    """A model's name for tables: a local folder's last part, else the hub name."""
    return Path(model).name if os.path.isabs(model) or Path(model).exists() else model


def _fit_line(model: str, need: list) -> str:
    if any(n is None for n in need):
        return (f"{model}: does not fit: activations alone exceed an 80 GB GPU at this batch size; lower "
                "batch_size or max_length, or set gradient_checkpointing: true")
    n = max(need)
    if n == 1:
        return f"{model}: fits on one 80 GB GPU"
    how = ("accelerate launch --config_file configs/accelerate/fsdp-8gpu.yaml -m xstilts.cli study ..."
           if n <= 8 else "more than 8 GPUs: raise num_processes / num_machines in the accelerate config")
    return f"{model}: needs {n} x 80 GB GPUs with FSDP full sharding ({how})"


# =========================================================================== running


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_study(cfg: StudyConfig, *, executor: str = "local", address: str | None = None, log=print) -> dict:
    """Run every cell not yet in the store; returns ``{"done": [...], "failed": {run_id: message}}``."""
    from . import grid
    from .store import Store

    cells = study_cells(cfg)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    store_path = cfg.workdir / "results.sqlite"
    store = Store(store_path)
    with_metrics, recorded = store.done_runs(), set(store.runs_frame()["run_id"])
    todo = [c for c in cells if c.run_id not in (with_metrics if c.cfg.target.tasks else recorded)]
    log(f"study {cfg.name}: {len(cells)} cells, {len(cells) - len(todo)} already in {store_path}, {len(todo)} to run")
    if executor == "ray":
        from .extras import require

        require("ray", "xstilts study --executor ray")
    return grid.execute(todo, store_path, executor=executor, retries=cfg.retries, resources=cfg.resources,
                        address=address, log=log, label=f"study {cfg.name}")


# =========================================================================== reading the store


def _target_info(cell: Cell) -> tuple[str, str]:
    """(primary metric, evaluation split) of a cell's target."""
    from .pipeline import register_config_tasks
    from .tasks import get

    register_config_tasks(cell.cfg)
    spec = get(cell.target)
    return spec.primary_metric, cell.cfg.eval.split or spec.eval_split


def cell_scores(store, cells: list[Cell]) -> dict[str, dict]:
    """Per run: ``{"langs": {lang: value}, "zero_shot", "en_dev", "metric", "split"}`` from the store."""
    mf = store.metrics_frame()
    mf = mf[mf["run_id"].isin({c.run_id for c in cells})]
    by_run = {rid: g for rid, g in mf.groupby("run_id")}
    out = {}
    for c in cells:
        g = by_run.get(c.run_id)
        if g is None or not c.target:
            continue
        metric, split = _target_info(c)
        rows = g[(g["task"] == c.target) & (g["metric"] == metric)]
        ev = rows[rows["split"] == split]
        langs = {r.lang: float(r.value) for r in ev.itertuples(index=False)}
        xx = [v for lang, v in langs.items() if lang != "en"] or list(langs.values())
        dev = rows[(rows["split"] == "dev") & (rows["lang"] == "en")]
        out[c.run_id] = {"langs": langs, "zero_shot": float(np.mean(xx)) if xx else None,
                         "en_dev": float(dev["value"].iloc[0]) if len(dev) else None, "metric": metric, "split": split}
    return out


def _index(cells: list[Cell]) -> dict[tuple, Cell]:
    return {(c.model, c.setting, c.target, c.seed): c for c in cells}


def _phase_rows(store, cells, kind: str) -> list[tuple[Cell, object]]:
    """(cell, phase row) for the study's cells. Labels come from the cell: a run shared with another study
    (same config, same run id) keeps the label that study gave it in the store."""
    tf = store.timings_frame()
    tf = tf[tf["run_id"].isin({c.run_id for c in cells}) & (tf["kind"] == kind)]
    rows = {}
    for r in tf.itertuples(index=False):
        rows.setdefault(r.run_id, r)
    return [(c, rows[c.run_id]) for c in cells if c.run_id in rows]


def _done_summary(path) -> dict:
    try:
        return json.loads((Path(path) / "done.json").read_text())
    except (OSError, TypeError, ValueError):
        return {}


# =========================================================================== analyses

QUESTIONS = {
    "model-scale": "does the gap between intermediate-then-target and direct target training persist as models grow?",
    "data-scale": "how much English intermediate data is needed, and do multilingual intermediate sets do better?",
    "latency": "accuracy vs inference latency (base vs large), with intermediate tasks picked by English dev",
    "efficiency": "training time per epoch of non-English vs English intermediate data at matched example counts",
}
TITLES = {"model-scale": "Study: model scale", "data-scale": "Study: intermediate data scale",
          "latency": "Study: accuracy vs inference latency", "efficiency": "Study: training efficiency by language"}


def analyze(cfg: StudyConfig, store=None) -> dict:
    """The study's section: ``{"name", "title", "question", "test", "conclusion", "tables", "plots",
    "notes", "data"}``; plots are drawn into :func:`section_dir` (created)."""
    from .store import Store

    store = store if store is not None else Store(cfg.workdir / "results.sqlite")
    out_dir = section_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = study_cells(cfg)
    fn = {"model-scale": _analyze_model_scale, "data-scale": _analyze_data_scale, "latency": _analyze_latency,
          "efficiency": _analyze_efficiency}[cfg.name]
    section = {"name": cfg.name, "title": TITLES[cfg.name], "question": QUESTIONS[cfg.name], "test": "",
               "conclusion": [], "tables": [], "plots": [], "notes": [], "data": {}}
    if not _is_main_process():
        return section  # under accelerate launch rank 0 alone analyses (plots, latency timings) and writes
    fn(cfg, store, cells, section, out_dir)
    _label_selection(section, cells)
    done = store.done_runs()
    missing = [c for c in cells if c.target and c.run_id not in done]
    if missing:
        section["notes"].append(f"{len(missing)} of {len(cells)} cells have no results yet (run the study again)")
    return section


def _label_selection(section: dict, cells: list[Cell]) -> None:
    """A study whose runs pick target checkpoints on target-language dev sets says so in its title, every
    table caption and its first note: those numbers are not zero-shot."""
    from .config import NOT_ZERO_SHOT

    rules = sorted({c.cfg.selection for c in cells} - {"en-dev"})
    if not rules:
        return
    section["title"] += f" [{NOT_ZERO_SHOT}]"
    for t in section["tables"]:
        t["caption"] += f" [{NOT_ZERO_SHOT}]"
    section["notes"].insert(0, f"NOT zero-shot: target checkpoints picked on target-language dev sets "
                               f"(selection: {', '.join(rules)}), not on English dev as the XTREME protocol does.")


def _gap_estimates(cfg, scores, idx, model, setting, target):
    """Per-seed language-mean gaps and per-language gaps of (setting - baseline)."""
    base_name = cfg.study.baseline
    per_seed, per_lang = [], {}
    paired = []
    for seed in cfg.seeds:
        a, b = idx.get((model, setting, target, seed)), idx.get((model, base_name, target, seed))
        if a is None or b is None or a.run_id not in scores or b.run_id not in scores:
            continue
        sa, sb = scores[a.run_id], scores[b.run_id]
        if sa["zero_shot"] is None or sb["zero_shot"] is None:
            continue
        paired.append((seed, a.run_id, b.run_id))
        per_seed.append(sa["zero_shot"] - sb["zero_shot"])
        for lang in sa["langs"]:
            if lang in sb["langs"]:
                per_lang.setdefault(lang, []).append(sa["langs"][lang] - sb["langs"][lang])
    return per_seed, per_lang, paired


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
    from .stats import paired_bootstrap

    return paired_bootstrap(cells, n_resamples=cfg.study.n_resamples, seed=0)


# ---------------------------------------------------------------- model-scale


def _analyze_model_scale(cfg, store, cells, section, out_dir):
    from . import grid

    scores = cell_scores(store, cells)
    idx = _index(cells)
    base_name = cfg.study.baseline
    settings = [s.name for s in study_settings(cfg) if s.name != base_name]
    params = {m: grid.model_params(m) for m in cfg.models}
    models = sorted(cfg.models, key=lambda m: (params[m] is None, params[m] or 0, cfg.models.index(m)))
    inter_s = {}
    for c, r in _phase_rows(store, cells, "intermediate"):
        inter_s.setdefault((c.model, c.setting), r.wall_s)
    ex_cache: dict = {}
    rows, lang_rows, data = [], [], []
    for target in cfg.targets:
        for setting in settings:
            for model in models:
                per_seed, per_lang, paired = _gap_estimates(cfg, scores, idx, model, setting, target)
                if not paired:
                    continue
                c0 = idx[(model, setting, target, paired[0][0])]
                metric, split = _target_info(c0)
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
                rows.append([_label(model), _params(params[model]), f"{target} ({metric}, {split})", setting,
                             _mean_sd(entry["direct"]), _mean_sd(entry["with_intermediate"]), _signed(est["mean"]),
                             format_ci(est), verdict(est["low"], est["high"]),
                             "n/a" if boot.get("p_value") is None else f"{boot['p_value']:.3f}", str(est["n"]),
                             "–" if entry["intermediate_s"] is None else f"{entry['intermediate_s']:.0f}"])
                for lang in langs:
                    e = entry["per_language"][lang]
                    lang_rows.append([_label(model), target, setting, lang, _signed(e["mean"]), format_ci(e),
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
            parts = [f"{_label(e['model'])}: {describe(e['gap'])}" for e in es]
            concl.append(f"{target}, {setting} vs direct training — gap at " + "; at ".join(parts) + ".")
            big = es[-1]
            v_big = verdict(big["gap"]["low"], big["gap"]["high"])
            at_largest.append((target, setting, _label(big["model"]), v_big))
            persists = {"positive": "persists (positive)", "negative": "reverses (negative)",
                        "inconclusive": "is inconclusive"}[v_big]
            line = f"At the largest model ({_label(big['model'])}, {_params(big['params'])}) the {target} gap {persists}"
            if len(es) > 1:
                small = es[0]
                pa = _per_seed_gaps(cfg, scores, idx, big["model"], setting, target)
                pb = _per_seed_gaps(cfg, scores, idx, small["model"], setting, target)
                ch = welch_interval(pa, pb, cfg.study.alpha)
                line += (f"; from {_label(small['model'])} to {_label(big['model'])} the gap changes by "
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


def _per_seed_gaps(cfg, scores, idx, model, setting, target):
    return _gap_estimates(cfg, scores, idx, model, setting, target)[0]


def _mean_sd(est: dict) -> str:
    if est.get("mean") is None:
        return "–"
    return f"{100 * est['mean']:.2f}" + (f" ± {100 * est['sd']:.2f}" if est.get("sd") is not None else "")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _errbar(est):
    m = est["mean"]
    if est.get("low") is None:
        return 0.0, 0.0
    return 100 * (m - est["low"]), 100 * (est["high"] - m)


def _plot_model_scale(data, cfg, path: Path) -> Path:
    plt = _plt()
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
        err = np.array([_errbar(e["gap"]) for e in es]).T
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{key[0]}: {key[1]}")
        for xi, yi, e in zip(x, y, es):
            ax.annotate(_label(e["model"])[-24:], (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if xs_known:
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
    else:
        ax.set_xticks(range(len(models)), [_label(m)[-20:] for m in models], fontsize=7)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"gap vs '{cfg.study.baseline}' (points)")
    ax.set_title("Intermediate-task gap vs model size", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- data-scale


def _analyze_data_scale(cfg, store, cells, section, out_dir):
    scores = cell_scores(store, cells)
    idx = _index(cells)
    sw = cfg.study.sweep
    base_name = cfg.study.baseline
    alpha = cfg.study.alpha
    examples = {}
    for c, r in _phase_rows(store, cells, "intermediate"):
        if (c.model, c.setting) not in examples:
            summ = _done_summary(r.path)
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
                per_seed, _, paired = _gap_estimates(cfg, scores, idx, model, s.name, target)
                if not paired:
                    continue
                by_seed = {seed: g for (seed, _, _), g in zip(paired, per_seed)}
                est = t_interval(per_seed, alpha)
                zs = t_interval([scores[a]["zero_shot"] for _, a, _ in paired])
                gains[s.name] = {"by_seed": by_seed, "gain": est, "zero_shot": zs}
                if s.name in sweep_settings:
                    per_fraction[sweep_settings[s.name]] = by_seed
                langs = ",".join(s.languages) if s.languages else "en"
                table.append([_label(model), target, s.name, ", ".join(s.tasks), langs, f"{s.fraction:g}",
                              str(examples.get((model, s.name)) or "–"), _mean_sd(zs), _signed(est["mean"]),
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
                fits_rows.append([_label(model), target, fit["formula"] + (" (best AIC)" if m == best else ""),
                                  _fit_params(fit), r2, aic, last])
            data[f"{model}|{target}"] = {"gains": {k: {"gain": v["gain"], "by_seed": v["by_seed"]}
                                                     for k, v in gains.items()},
                                         "fits": fits, "best": best, "noise": noise, "within_noise_fraction": f_emp,
                                         "diff_to_full": {str(f): d for f, d in diffs.items()}, "examples_full": n_full}
            full_name = sweep_name(sw.task, max(sw.fractions))
            head = f"{target} ({_label(model)}): English {sw.task} at 100% gives {describe(gains[full_name]['gain'])}" \
                if full_name in gains else f"{target} ({_label(model)}):"
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
                cmp_rows.append([_label(model), target, name, ref, _signed(gains[name]["gain"]["mean"]),
                                 _signed(gains[ref]["gain"]["mean"]), _signed(d["mean"]), format_ci(d),
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
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    inv = {f: s for s, f in sweep_settings.items()}
    for key, d in data.items():
        fs = sorted(f for f in inv if inv[f] in d["gains"])
        ests = [d["gains"][inv[f]]["gain"] for f in fs]
        err = np.array([_errbar(e) for e in ests]).T
        model, target = key.split("|", 1)
        ax.errorbar(fs, [100 * e["mean"] for e in ests], yerr=err, fmt="o", capsize=3,
                    label=f"{_label(model)}, {target}: English fractions")
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
                ax.errorbar([x], [100 * e["mean"]], yerr=np.array([_errbar(e)]).T, fmt="s", capsize=3, label=name)
    ax.set_xscale("log")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("English intermediate data fraction (multilingual sets: examples / full English set)")
    ax.set_ylabel(f"gain vs '{cfg.study.baseline}' (points)")
    ax.set_title("Gain vs intermediate data (95% t-interval over seeds)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- latency


def _analyze_latency(cfg, store, cells, section, out_dir):
    import torch

    scores = cell_scores(store, cells)
    idx = _index(cells)
    base_name = cfg.study.baseline
    alpha = cfg.study.alpha
    lat_opts = cfg.study.latency
    devices = [d for d in lat_opts.devices if not d.startswith("cuda") or torch.cuda.is_available()]
    cache_file = out_dir / "latency.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    target_path = {c.run_id: r.path for c, r in _phase_rows(store, cells, "target")}
    table, regret_rows, concl, data, points = [], [], [], {}, []
    for target in cfg.targets:
        records = []
        for c in cells:
            if c.target == target and c.run_id in scores and scores[c.run_id]["zero_shot"] is not None:
                records.append({"model": c.model, "setting": c.setting, "seed": c.seed,
                                "en_dev": scores[c.run_id]["en_dev"] if scores[c.run_id]["en_dev"] is not None
                                else float("nan"), "zero_shot": scores[c.run_id]["zero_shot"]})
        if not records:
            continue
        reg = selection_regret(records, base_name, alpha)
        lat = {}
        for model in cfg.models:
            r = reg.get(model)
            setting = (r or {}).get("chosen") or base_name
            cell = next((idx.get((model, setting, target, s)) for s in cfg.seeds
                         if idx.get((model, setting, target, s)) and idx[(model, setting, target, s)].run_id in target_path),
                        None)
            if cell is None:
                continue
            lat[model] = {}
            for device in devices:
                hw = [platform.node(), torch.get_num_threads(),
                      torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor()]
                key = json.dumps([target_path[cell.run_id], device, lat_opts.model_dump(), hw], sort_keys=True)
                if key not in cache:
                    cache[key] = _measure_cell(cell, target_path[cell.run_id], device, lat_opts)
                lat[model][device] = {**cache[key], "setting": setting}
        cache_file.write_text(json.dumps(cache, indent=1))
        data[target] = {"regret": reg, "latency": lat}
        for model in cfg.models:
            r = reg.get(model)
            if r is None:
                continue
            m_rows = [x for x in records if x["model"] == model]
            for setting in dict.fromkeys(x["setting"] for x in m_rows):
                zs = t_interval([x["zero_shot"] for x in m_rows if x["setting"] == setting])
                dev = [x["en_dev"] for x in m_rows if x["setting"] == setting]
                marks = []
                if setting == r["chosen"]:
                    marks.append("picked by en dev")
                if setting == r["oracle"]:
                    marks.append("best zero-shot")
                cpu = lat.get(model, {}).get("cpu", {})
                row = [target, _label(model), setting, _plain(float(np.nanmean(dev)) if np.isfinite(dev).any() else None),
                       _mean_sd(zs), ", ".join(marks)]
                for device in devices:
                    d = lat.get(model, {}).get(device)
                    row += [f"{d['p50_ms']:.2f} / {d['p95_ms']:.2f}" if d else "–",
                            f"{d['throughput']:.1f}" if d and d["throughput"] else "–"]
                table.append(row)
                if cpu or lat.get(model):
                    first = cpu or next(iter(lat[model].values()))
                    points.append({"target": target, "model": model, "setting": setting, "latency_ms": first["p50_ms"],
                                   "device": first["device"], "zero_shot": zs["mean"],
                                   "picked": setting == r["chosen"]})
            regret_rows.append([target, _label(model), r["chosen"] or "–", r["oracle"], _plain(r["chosen_zero_shot"]),
                                _plain(r["oracle_zero_shot"]), _signed(r["regret"]), format_ci(r["regret_ci"]),
                                _signed(r["gain"]["mean"]), format_ci(r["gain"])])
        # the headline: each model with its dev-picked setting
        picked = {m: reg[m] for m in cfg.models if m in reg and reg[m]["chosen"]}
        for m, r in picked.items():
            ld = lat.get(m, {})
            lat_txt = "; ".join(f"{d}: p50 {v['p50_ms']:.2f} ms, p95 {v['p95_ms']:.2f} ms per example at batch 1, "
                                f"{v['throughput']:.1f} examples/s at batch {v['batch_size']}" for d, v in ld.items())
            concl.append(f"{target}, {_label(m)}: English dev picks {r['chosen']} → zero-shot "
                         f"{100 * r['chosen_zero_shot']:.2f} (gain over direct training {describe(r['gain'])}); "
                         f"{lat_txt or 'latency not measured'}.")
            concl.append(f"Regret of picking by English dev instead of by zero-shot score ({r['oracle']}): "
                         f"{describe(r['regret_ci'])}. The oracle is chosen on the same test scores, so this regret "
                         "is biased upwards.")
        if len(picked) >= 2:
            ms = list(picked)
            small, big = ms[0], ms[-1]
            a = [x["zero_shot"] for x in records if x["model"] == big and x["setting"] == picked[big]["chosen"]]
            b = [x["zero_shot"] for x in records if x["model"] == small and x["setting"] == picked[small]["chosen"]]
            d = welch_interval(a, b, alpha)
            ls = lat.get(small, {}).get("cpu") or next(iter(lat.get(small, {}).values()), None)
            lb = lat.get(big, {}).get("cpu") or next(iter(lat.get(big, {}).values()), None)
            ratio = f" at {lb['p50_ms'] / ls['p50_ms']:.2f}x the p50 latency ({ls['device']})" if ls and lb else ""
            concl.append(f"{_label(big)} over {_label(small)} (each with its dev-picked setting): {describe(d)}{ratio}.")
    # Pareto flags
    for target in cfg.targets:
        pts = [p for p in points if p["target"] == target]
        for p, on in zip(pts, pareto_front([(p["latency_ms"], p["zero_shot"]) for p in pts])):
            p["pareto"] = on
        front = [f"{_label(p['model'])}/{p['setting']}" for p in pts if p.get("pareto")]
        if front:
            concl.append(f"{target}: Pareto-optimal (latency p50 vs zero-shot): {', '.join(front)}.")
    section["data"] = {"targets": data, "points": points, "devices": devices}
    section["test"] = (f"Selection: per model, the intermediate setting with the best mean English dev score (the "
                       f"paper's rule); oracle: the best mean zero-shot score. Regret = oracle − picked zero-shot score "
                       f"with a {round(100 * (1 - alpha))}% t-interval over seeds of the paired per-seed differences; "
                       "model comparison: Welch t-interval over seeds; 'inconclusive' when an interval contains zero. "
                       f"Latency: the trained target model of the picked setting (first seed) loaded from its phase "
                       f"folder; {lat_opts.examples} examples of the target's evaluation set timed one by one "
                       f"(p50/p95 per example, batch 1) and {lat_opts.batches} batches of {lat_opts.batch_size} "
                       f"(throughput), after {lat_opts.warmup} warm-up passes; devices: {', '.join(devices)}. Latency "
                       "depends on the architecture, not on the intermediate setting, so one measurement per model "
                       "serves all its settings. " + ZERO_SHOT_RULE + ".")
    header = ["target", "model", "setting", "en dev", "zero-shot", "marks"]
    for device in devices:
        header += [f"{device} p50 / p95 ms (batch 1)", f"{device} examples/s (batch {lat_opts.batch_size})"]
    section["tables"] += [
        {"caption": "Accuracy and latency (x100 scores; zero-shot mean ± sd over seeds)", "header": header,
         "rows": table},
        {"caption": "Regret of selecting by English dev (x100)",
         "header": ["target", "model", "picked by en dev", "best zero-shot", "picked zero-shot", "best zero-shot score",
                    "regret", "95% CI", "gain of picked vs direct", "95% CI"], "rows": regret_rows}]
    section["conclusion"] = concl or ["No results yet: run the study first."]
    if points:
        section["plots"].append({"caption": "Zero-shot score vs latency (Pareto front connected)",
                                 "file": _plot_pareto(points, out_dir / "pareto.png").name})


def _measure_cell(cell: Cell, phase_dir, device: str, opts: LatencyOptions) -> dict:
    from .data import load_examples, task_file
    from .families import get_family
    from .model import load_tokenizer
    from .pipeline import register_config_tasks
    from .tasks import get

    register_config_tasks(cell.cfg)
    spec = get(cell.target)
    _, split = _target_info(cell)
    data_dir = cell.cfg.data_dir
    langs = opts.language and [opts.language] or [x for x in (cell.cfg.eval.languages or spec.languages)
                                                  if x != "en" and task_file(spec, split, x, data_dir).exists()]
    if not langs:
        langs = ["en"]
    n = max(opts.examples, opts.batch_size)
    examples = load_examples(spec, split, langs[0], data_dir, limit=n)
    tokenizer = load_tokenizer(cell.cfg.model)
    cols = get_family(spec.family).featurize(examples, tokenizer, spec, cell.cfg.target.train.max_length,
                                             cell.cfg.target.train.doc_stride)
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    model = load_target_model(phase_dir, spec)
    out = measure_latency(model, spec.name, spec.family, rows, tokenizer, device=device, examples=opts.examples,
                          batch_size=opts.batch_size, batches=opts.batches, warmup=opts.warmup)
    out["language"] = langs[0]
    return out


def _plot_pareto(points, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for target in dict.fromkeys(p["target"] for p in points):
        pts = [p for p in points if p["target"] == target]
        for model in dict.fromkeys(p["model"] for p in pts):
            mp = [p for p in pts if p["model"] == model]
            ax.scatter([p["latency_ms"] for p in mp], [100 * p["zero_shot"] for p in mp],
                       label=f"{target}: {_label(model)[-24:]}")
            labels: dict = {}  # settings with the same score share one label
            for p in mp:
                xy = (p["latency_ms"], round(100 * p["zero_shot"], 6))
                labels.setdefault(xy, []).append(p["setting"] + (" *" if p["picked"] else ""))
            for xy, names in labels.items():
                ax.annotate(", ".join(names), xy, fontsize=6, xytext=(3, 2), textcoords="offset points")
        front = sorted((p for p in pts if p.get("pareto")), key=lambda p: p["latency_ms"])
        if front:
            ax.plot([p["latency_ms"] for p in front], [100 * p["zero_shot"] for p in front], "k--", lw=0.8)
            ax.scatter([p["latency_ms"] for p in front], [100 * p["zero_shot"] for p in front], s=120,
                       facecolors="none", edgecolors="black", linewidths=0.8)
    lat = [p["latency_ms"] for p in points]
    if max(lat) / max(min(lat), 1e-9) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(f"p50 latency per example, batch 1 (ms, {points[0]['device']})")
    ax.set_ylabel("zero-shot score (x100)")
    ax.set_title("Accuracy vs latency (* = picked by English dev; circled, dashed: Pareto front)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- efficiency


def language_fertility(cell: Cell, lang: str, char_languages=CHAR_LANGUAGES) -> dict:
    """Fertility of the model's tokenizer on the training examples a cell uses in ``lang``."""
    from .data import load_examples
    from .model import load_tokenizer
    from .pipeline import register_config_tasks
    from .tasks import get

    register_config_tasks(cell.cfg)
    spec = get(cell.cfg.intermediate.tasks[0])
    examples = load_examples(spec, "train", lang, cell.cfg.data_dir, limit=cell.cfg.intermediate.train.limit)
    tok = load_tokenizer(cell.cfg.model)
    texts = [t for e in examples for t in example_texts(e)]
    res = fertility(texts, lambda s: tok(s, add_special_tokens=False)["input_ids"], lang, char_languages)
    res["examples"] = len(examples)
    return res


def _analyze_efficiency(cfg, store, cells, section, out_dir):
    from scipy import stats

    eff = cfg.study.efficiency
    alpha = cfg.study.alpha
    by_run = {c.run_id: r for c, r in _phase_rows(store, cells, "intermediate")}
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
            table.append([_label(model), lang, str(fert[lang]["examples"]),
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
        fit_m = _linfit(x_m, y_m, stats)
        fit_all = _linfit(x_all, y_all, stats)
        for label, f in (("language means", fit_m), ("all runs", fit_all)):
            fit_rows.append([_label(model), label, str(f["n"]), "–" if f["slope"] is None else
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
                f"{_label(model)}, {n_ex} matched examples per language: time per epoch relative to {eff.reference} "
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


def _exp(x):
    return None if x is None else math.exp(x)


def _fmt(x):
    return "–" if x is None else f"{x:.2f}"


def _linfit(x, y, stats) -> dict:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3 or np.ptp(x) == 0:
        return {"n": int(x.size), "slope": None, "slope_se": None, "intercept": None, "r2": None, "p": None}
    r = stats.linregress(x, y)
    return {"n": int(x.size), "slope": float(r.slope), "slope_se": float(r.stderr), "intercept": float(r.intercept),
            "r2": float(r.rvalue ** 2), "p": float(r.pvalue)}


def _plot_efficiency(data, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for model, d in data.items():
        langs = d["languages"]
        x = [v["tokens_per_epoch"] for v in langs.values()]
        y = [v["s_per_epoch"] for v in langs.values()]
        ax.scatter(x, y, label=_label(model)[-30:])
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# =========================================================================== the section on disk


def write_section(section: dict, out_dir) -> dict:
    """Write ``section.json``, ``section.md`` and ``table.csv`` (the first table) into ``out_dir``."""
    import csv

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    if not _is_main_process():
        return paths
    js = out_dir / "section.json"
    js.write_text(json.dumps(section, indent=1, default=_json_default), encoding="utf-8")
    paths["json"] = js
    md = out_dir / "section.md"
    md.write_text(section_markdown(section, out_dir, out_dir), encoding="utf-8")
    paths["markdown"] = md
    if section["tables"]:
        t = section["tables"][0]
        csv_path = out_dir / "table.csv"
        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(t["header"])
            w.writerows(t["rows"])
        paths["csv"] = csv_path
    for p in section["plots"]:
        paths[f"plot:{p['file']}"] = out_dir / p["file"]
    return paths


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    return str(x)


def load_sections(root) -> list[tuple[dict, Path]]:
    """Every ``<root>/*/section.json`` as (section, its folder), in study order."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for js in sorted(root.glob("*/section.json")):
        try:
            out.append((json.loads(js.read_text(encoding="utf-8")), js.parent))
        except (OSError, ValueError):
            continue
    order = {n: i for i, n in enumerate(STUDIES)}
    return sorted(out, key=lambda x: (order.get(x[0].get("name"), 99), x[0].get("name", "")))


def section_markdown(section: dict, section_dir, out_dir, level: int = 2) -> str:
    """Markdown of a section; plot links relative to ``out_dir``."""
    h = "#" * level
    lines = [f"{h} {section['title']}", "", f"*Question:* {section['question']}", "", f"{h}# Conclusion", ""]
    lines += [f"- {c}" for c in section["conclusion"]] + ["", f"*Test:* {section['test']}", ""]
    for t in section["tables"]:
        lines += [f"{h}# {t['caption']}", "", md_table(t["header"], t["rows"]) if t["rows"] else "(none)", ""]
    for p in section["plots"]:
        rel = os.path.relpath(Path(section_dir) / p["file"], out_dir)
        lines += [f"![{p['caption']}]({rel})", ""]
    if section.get("notes"):
        lines += [f"{h}# Notes", ""] + [f"- {n}" for n in section["notes"]] + [""]
    return "\n".join(lines)


def section_html(section: dict, section_dir) -> str:
    """HTML of a section with its plots embedded (base64)."""
    import base64

    e = html.escape
    parts = [f"<h2>{e(section['title'])}</h2>", f"<p><em>Question:</em> {e(section['question'])}</p>",
             "<h3>Conclusion</h3><ul>"] + [f"<li>{e(c)}</li>" for c in section["conclusion"]]
    parts.append(f"</ul><p class='note'><em>Test:</em> {e(section['test'])}</p>")
    for t in section["tables"]:
        parts.append(f"<h3>{e(t['caption'])}</h3>")
        if not t["rows"]:
            parts.append("<p>(none)</p>")
            continue
        parts.append("<table><thead><tr>" + "".join(f"<th>{e(str(x))}</th>" for x in t["header"]) + "</tr></thead><tbody>")
        parts += ["<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in row) + "</tr>" for row in t["rows"]]
        parts.append("</tbody></table>")
    for p in section["plots"]:
        f = Path(section_dir) / p["file"]
        if f.exists():
            b64 = base64.b64encode(f.read_bytes()).decode("ascii")
            parts.append(f"<figure><img alt='{e(p['caption'])}' src='data:image/png;base64,{b64}'>"
                         f"<figcaption>{e(p['caption'])}</figcaption></figure>")
    if section.get("notes"):
        parts += ["<ul class='note'>"] + [f"<li>{e(n)}</li>" for n in section["notes"]] + ["</ul>"]
    return "\n".join(parts)


def format_section(section: dict) -> str:
    """Plain text for the terminal: conclusion, test, first table."""
    lines = [section["title"], "", "Conclusion:"] + [f"  - {c}" for c in section["conclusion"]]
    lines += ["", f"Test: {section['test']}", ""]
    if section["tables"]:
        t = section["tables"][0]
        widths = [max(len(str(x)) for x in col) for col in zip(t["header"], *t["rows"])] if t["rows"] else []
        lines.append(t["caption"])
        if widths:
            for row in [t["header"], *t["rows"]]:
                lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    return "\n".join(lines)
