"""The machinery every study shares: the :class:`Study` plug-in and its registry, the study config,
cells, dry run, running, reading the store, and writing a study's section.

A study is a :class:`Study` subclass in one module under ``xstilts/studies/`` that calls
:func:`register` at import; :func:`names` imports every module of the package (``pkgutil``) the
first time it is asked, so adding a study is one module plus its ``configs/studies/<name>.yaml``.
The study's options (its keys under ``study:``) are declared on the class and merged into the one
:class:`StudyOptions` model; its hooks (settings, cells, checks, plan lines) default to a grid
study; ``analyze`` fills the section.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import pkgutil
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field, ValidationError, create_model

from ..config import _Strict, invalid, merge, parse_overrides, read_yaml
from ..errors import ConfigError
from ..grid import Cell, GridConfig, Resources, Setting
from ..report.render import json_default, section_markdown, write_csv

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "studies"
MODEL_PRESETS = {
    "base": "xlm-roberta-base", "large": "xlm-roberta-large", "xl": "facebook/xlm-roberta-xl",
    "xxl": "facebook/xlm-roberta-xxl", "7b": "meta-llama/Llama-3.1-8B", "8b": "meta-llama/Llama-3.1-8B",
    "70b": "meta-llama/Llama-3.1-70B",
}
DECODER_NAME_HINTS = ("llama", "mistral", "mixtral", "qwen", "gemma", "phi-", "gpt", "falcon", "olmo", "bloom",
                      "granite", "stablelm", "deepseek")
DEFAULT_DECODER_OVERRIDES = {"lora": {"r": 16, "alpha": 32, "dropout": 0.05}, "gradient_checkpointing": True}
ZERO_SHOT_RULE = ("zero-shot score = the target's primary metric on its evaluation split, unweighted mean over the "
                  "evaluation languages other than English")

# =========================================================================== the plug-in and its registry


class Study:
    """One study. Subclass it, set the class attributes, override ``analyze`` (and any hook whose
    grid-study default does not fit), and ``register`` an instance at import."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    question: ClassVar[str] = ""
    order: ClassVar[int] = 100  # place in ``names()`` and in the report (built-ins: 10, 20, 30, 40)
    options: ClassVar[dict] = {}  # key under ``study:`` -> (type, default or pydantic Field)

    def settings(self, cfg: StudyConfig) -> list[Setting]:
        """The settings whose cells the study runs (default: the configured ones)."""
        return list(cfg.settings)

    def check(self, cfg: StudyConfig, path, names: list[str]) -> None:
        """Config errors beyond the schema's (default: a grid study's targets, baseline and settings)."""
        if not cfg.targets:
            raise ConfigError(f"{path}: targets: at least one target task")
        if cfg.study.baseline not in names:
            raise ConfigError(f"{path}: the baseline setting {cfg.study.baseline!r} is not among the settings ({names})")
        if len(names) < 2:
            raise ConfigError(f"{path}: settings: at least one setting besides the baseline")

    def cells(self, cfg: StudyConfig) -> list[Cell]:
        """Every cell (default: the grid over models x settings x targets x seeds)."""
        return grid_cells(cfg)

    def plan_lines(self, cfg: StudyConfig) -> list[str]:
        """What the dry run says the study trains (default: settings, targets and seeds)."""
        return [f"settings: {', '.join(s.name for s in study_settings(cfg))}",
                f"targets: {', '.join(cfg.targets)}; seeds: {cfg.seeds}"]

    def plan_notes(self, cfg: StudyConfig) -> list[str]:
        """Lines at the end of the dry run (default: none)."""
        return []

    def analyze(self, cfg: StudyConfig, store, cells: list[Cell], section: dict, out_dir: Path) -> None:
        """Fill ``section`` (test, conclusion, tables, plots, notes, data) from the store; plots into ``out_dir``."""
        raise NotImplementedError


_REGISTRY: dict[str, Study] = {}
_DISCOVERED = False


def register(study: Study) -> Study:
    """Add a study; a second, different study of the same name is an error."""
    if not study.name:
        raise ConfigError(f"{type(study).__name__}: a study needs a name")
    old = _REGISTRY.get(study.name)
    if old is not None and type(old) is not type(study):
        raise ConfigError(f"study {study.name!r} is registered twice ({type(old).__name__}, {type(study).__name__})")
    _REGISTRY[study.name] = study
    return study


def unregister(name: str) -> None:
    """Remove a study (tests, plug-ins replaced at run time)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import every module of the ``xstilts.studies`` package once: each registers its study."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = __name__.rsplit(".", 1)[0]
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{package}.{mod.name}")


def names() -> list[str]:
    """The registered studies, in report order."""
    _discover()
    return [s.name for s in sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))]


def get(name: str) -> Study:
    """The study called ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    _discover()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown study {name!r}{hint}; one of {', '.join(names())}")
    return _REGISTRY[name]


# =========================================================================== config


class StudyOptions(_Strict):
    """The ``study:`` block shared by every study; each registered study adds its own keys
    (:attr:`Study.options`) in :func:`config_model`."""

    name: str | None = Field(None, description="a registered study, xstilts.studies.names() (default: the CLI's NAME)")
    baseline: str = Field("none", description="the direct-training setting gaps are taken against")
    alpha: float = Field(0.05, gt=0, lt=1)
    n_resamples: int = Field(1000, ge=10, description="paired bootstrap resamples (model-scale)")
    decoder_overrides: dict = Field(default_factory=lambda: dict(DEFAULT_DECODER_OVERRIDES),
                                    description="RunConfig fields merged into base for decoder LLMs")
    model_overrides: dict[str, dict] = Field(default_factory=dict, description="model -> RunConfig fields")
    target_overrides: dict[str, dict] = Field(default_factory=dict, description="target -> RunConfig fields")


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

_MODELS: dict[tuple, type[StudyConfig]] = {}


def config_model() -> type[StudyConfig]:
    """:class:`StudyConfig` whose ``study:`` block holds the shared options plus every registered study's own."""
    key = tuple((n, id(get(n))) for n in names())
    if key not in _MODELS:
        fields = {k: v for n in names() for k, v in get(n).options.items()}
        options = create_model("StudyOptions", __base__=StudyOptions, **fields)
        _MODELS[key] = create_model("StudyConfig", __base__=StudyConfig,
                                    study=(options, Field(default_factory=options)))
    return _MODELS[key]


def resolve_model(name: str) -> str:
    return MODEL_PRESETS.get(name.lower(), name)


def is_decoder_model(name: str) -> bool:
    """Causal LM? From a local folder's config.json, else from the name (no download)."""
    cfg = Path(name) / "config.json"
    if cfg.exists():
        from ..model import DECODER_TYPES

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
        name: a registered study (:func:`names`).
        path: the YAML file.
        overrides: ``key=value`` strings (e.g. ``seeds=[0,1]``, ``base.target.train.epochs=2``).
        models: replaces ``models`` (presets: base, large, xl, xxl, 7b, 8b, 70b).
        update: a dict merged last (tests).

    Raises:
        ConfigError: unknown study, missing file, invalid YAML or key.
    """
    get(name)  # an unknown study is a ConfigError naming the known ones
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
        cfg = config_model().model_validate(raw)
    except ValidationError as e:
        raise invalid(e, str(path), "study config") from None
    cfg.models = [resolve_model(m) for m in (cfg.models or [cfg.base.get("model", "me5-small")])]
    _check(cfg, path)
    return cfg


def _check(cfg: StudyConfig, path) -> None:
    names_ = [x.name for x in study_settings(cfg)]
    if len(set(names_)) != len(names_):
        raise ConfigError(f"{path}: setting names must be unique (got {names_})")
    get(cfg.name).check(cfg, path, names_)


# =========================================================================== cells


def study_settings(cfg: StudyConfig) -> list[Setting]:
    """The settings of a study (:meth:`Study.settings`)."""
    return get(cfg.name).settings(cfg)


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
    """Every cell of the study (:meth:`Study.cells`: grid cells by default)."""
    return get(cfg.name).cells(cfg)


def grid_cells(cfg: StudyConfig) -> list[Cell]:
    """The grid cells of a study: models x settings x targets x seeds, with per-model and per-target overrides."""
    from .. import grid

    cells: list[Cell] = []
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
    from .. import grid

    cells = study_cells(cfg)
    study = get(cfg.name)
    lines = [f"study {cfg.name}: {study.question}"]
    kinds = []
    for m in cfg.models:
        params = grid.model_params(m)
        kind = "decoder" if is_decoder_model(m) else "encoder"
        mb = model_base(cfg, m)
        if mb.get("lora"):
            kind += f", LoRA r={mb['lora'].get('r', 8)}"
        if mb.get("gradient_checkpointing"):
            kind += ", gradient checkpointing"
        kinds.append(f"{m} ({params_text(params)}, {kind})")
    lines.append("models: " + "; ".join(kinds))
    lines += study.plan_lines(cfg)
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
    lines += study.plan_notes(cfg)
    return "\n".join(lines)


def params_text(p) -> str:
    if p is None:
        return "? params"
    if p >= 1e9:
        return f"{p / 1e9:.1f}B params"
    return f"{p / 1e6:.0f}M params" if p >= 1e6 else f"{p / 1e3:.0f}K params"


def model_label(model: str) -> str:
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


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_study(cfg: StudyConfig, *, executor: str = "local", address: str | None = None, log=print) -> dict:
    """Run every cell not yet in the store; returns ``{"done": [...], "failed": {run_id: message}}``."""
    from .. import grid
    from ..store import Store

    cells = study_cells(cfg)
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    store_path = cfg.workdir / "results.sqlite"
    store = Store(store_path)
    with_metrics, recorded = store.done_runs(), set(store.runs_frame()["run_id"])
    todo = [c for c in cells if c.run_id not in (with_metrics if c.cfg.target.tasks else recorded)]
    log(f"study {cfg.name}: {len(cells)} cells, {len(cells) - len(todo)} already in {store_path}, {len(todo)} to run")
    if executor == "ray":
        from ..extras import require

        require("ray", "xstilts study --executor ray")
    return grid.execute(todo, store_path, executor=executor, retries=cfg.retries, resources=cfg.resources,
                        address=address, log=log, label=f"study {cfg.name}")


# =========================================================================== reading the store


def target_info(cell: Cell) -> tuple[str, str]:
    """(primary metric, evaluation split) of a cell's target."""
    from ..pipeline import register_config_tasks
    from ..tasks import get

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
        metric, split = target_info(c)
        rows = g[(g["task"] == c.target) & (g["metric"] == metric)]
        ev = rows[rows["split"] == split]
        langs = {r.lang: float(r.value) for r in ev.itertuples(index=False)}
        xx = [v for lang, v in langs.items() if lang != "en"] or list(langs.values())
        dev = rows[(rows["split"] == "dev") & (rows["lang"] == "en")]
        out[c.run_id] = {"langs": langs, "zero_shot": float(np.mean(xx)) if xx else None,
                         "en_dev": float(dev["value"].iloc[0]) if len(dev) else None, "metric": metric, "split": split}
    return out


def index_cells(cells: list[Cell]) -> dict[tuple, Cell]:
    return {(c.model, c.setting, c.target, c.seed): c for c in cells}


def phase_rows(store, cells, kind: str) -> list[tuple[Cell, object]]:
    """(cell, phase row) for the study's cells. Labels come from the cell: a run shared with another study
    (same config, same run id) keeps the label that study gave it in the store."""
    tf = store.timings_frame()
    tf = tf[tf["run_id"].isin({c.run_id for c in cells}) & (tf["kind"] == kind)]
    rows = {}
    for r in tf.itertuples(index=False):
        rows.setdefault(r.run_id, r)
    return [(c, rows[c.run_id]) for c in cells if c.run_id in rows]


def done_summary(path) -> dict:
    try:
        return json.loads((Path(path) / "done.json").read_text())
    except (OSError, TypeError, ValueError):
        return {}


def gap_estimates(cfg, scores, idx, model, setting, target):
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


# =========================================================================== analysis


def analyze(cfg: StudyConfig, store=None) -> dict:
    """The study's section: ``{"name", "title", "question", "test", "conclusion", "tables", "plots",
    "notes", "data"}``; plots are drawn into :func:`section_dir` (created)."""
    from ..store import Store

    store = store if store is not None else Store(cfg.workdir / "results.sqlite")
    out_dir = section_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    cells = study_cells(cfg)
    study = get(cfg.name)
    section = {"name": cfg.name, "title": study.title, "question": study.question, "test": "",
               "conclusion": [], "tables": [], "plots": [], "notes": [], "data": {}}
    if not is_main_process():
        return section  # under accelerate launch rank 0 alone analyses (plots, latency timings) and writes
    study.analyze(cfg, store, cells, section, out_dir)
    _label_selection(section, cells)
    done = store.done_runs()
    missing = [c for c in cells if c.target and c.run_id not in done]
    if missing:
        section["notes"].append(f"{len(missing)} of {len(cells)} cells have no results yet (run the study again)")
    return section


def _label_selection(section: dict, cells: list[Cell]) -> None:
    """A study whose runs pick target checkpoints on target-language dev sets says so in its title, every
    table caption and its first note: those numbers are not zero-shot."""
    from ..config import NOT_ZERO_SHOT

    rules = sorted({c.cfg.selection for c in cells} - {"en-dev"})
    if not rules:
        return
    section["title"] += f" [{NOT_ZERO_SHOT}]"
    for t in section["tables"]:
        t["caption"] += f" [{NOT_ZERO_SHOT}]"
    section["notes"].insert(0, f"NOT zero-shot: target checkpoints picked on target-language dev sets "
                               f"(selection: {', '.join(rules)}), not on English dev as the XTREME protocol does.")


# ---------------------------------------------------------------- helpers for analyses (plots: xstilts.report.render.pyplot)


def mean_sd(est: dict) -> str:
    if est.get("mean") is None:
        return "–"
    return f"{100 * est['mean']:.2f}" + (f" ± {100 * est['sd']:.2f}" if est.get("sd") is not None else "")


def errbar(est):
    m = est["mean"]
    if est.get("low") is None:
        return 0.0, 0.0
    return 100 * (m - est["low"]), 100 * (est["high"] - m)


# =========================================================================== sections


def write_section(section: dict, out_dir) -> dict:
    """Write ``section.json``, ``section.md`` and ``table.csv`` (the first table) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    if not is_main_process():
        return paths
    js = out_dir / "section.json"
    js.write_text(json.dumps(section, indent=1, default=json_default), encoding="utf-8")
    paths["json"] = js
    md = out_dir / "section.md"
    md.write_text(section_markdown(section, out_dir, out_dir), encoding="utf-8")
    paths["markdown"] = md
    if section["tables"]:
        t = section["tables"][0]
        paths["csv"] = write_csv(out_dir / "table.csv", t["header"], t["rows"])
    for p in section["plots"]:
        paths[f"plot:{p['file']}"] = out_dir / p["file"]
    return paths


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
    order = {n: i for i, n in enumerate(names())}
    return sorted(out, key=lambda x: (order.get(x[0].get("name"), 99), x[0].get("name", "")))
