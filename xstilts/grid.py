"""Experiment grids: models x intermediate settings x targets x seeds.

A grid expands into one :class:`~xstilts.config.RunConfig` per cell. Cells
share phase outputs through the pipeline's hashed phase keys, so an
intermediate checkpoint is trained once and reused by every target and seed
that starts from it. :func:`execute` is the one entry point to the two executors
(grids and studies both call it): :func:`run_local`, in-process (default), and
:func:`run_ray`, where each intermediate phase is a Ray task and every cell
depending on it waits for it. Every finished cell is written into the results store.

Example config::

    base: {data_dir: ../shared/data, workdir: runs/grid1, target: {train: {epochs: 3}}}
    models: [xlm-roberta-base, xlm-roberta-large]
    settings:
      - {name: none}
      - {name: siqa, tasks: [siqa]}
      - {name: anli_plus, tasks: [anli_plus], mixture: {rule: temperature, cap: 100000, temperature: 2}}
      - {name: siqa+mlm, tasks: [siqa], mlm: mix}
      - {name: mnli@10%, tasks: [mnli], fraction: 0.1}
      - {name: siqa[de], tasks: [siqa], languages: [de]}
    targets: [xcopa, xnli]
    seeds: [0, 1, 2]
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from . import pipeline
from .config import MixtureConfig, RunConfig, _Strict, invalid, merge, parse_overrides, read_yaml, validate
from .errors import ConfigError
from .store import Store


class Setting(_Strict):
    """One intermediate setting (a row of the paper's table)."""

    name: str
    tasks: list[str] = Field(default_factory=list, description="empty = no intermediate training (the baseline)")
    mixture: MixtureConfig | None = None
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the intermediate training data")
    languages: list[str] | None = Field(None, description="intermediate data languages (translated/native sets)")
    mlm: Literal["off", "phase", "mix"] = "off"
    train: dict = Field(default_factory=dict, description="overrides of intermediate.train")


class Resources(_Strict):
    cpus: float = 1
    gpus: float = 0


class GridConfig(_Strict):
    base: dict = Field(default_factory=dict, description="RunConfig fields shared by every cell")
    models: list[str] | None = Field(None, description="default: base.model")
    settings: list[Setting]
    targets: list[str]
    seeds: list[int] = Field(default_factory=lambda: [0])
    retries: int = Field(2, ge=0, description="re-tries of a failed cell")
    resources: Resources = Field(default_factory=Resources)


@dataclass
class Cell:
    run_id: str
    model: str
    setting: str
    target: str
    seed: int
    cfg: RunConfig


def load(path, overrides=()) -> GridConfig:
    path = Path(path)
    raw = read_yaml(path, "grid config")
    raw = merge(raw, parse_overrides(list(overrides)))
    base = raw.get("base", {})
    if base.get("data_dir") and not Path(base["data_dir"]).is_absolute():
        base["data_dir"] = str((path.parent / base["data_dir"]).resolve())
    try:
        return GridConfig.model_validate(raw)
    except ValidationError as e:
        raise invalid(e, str(path), "grid config") from None


def expand(grid: GridConfig) -> list[Cell]:
    """Every (model, setting, target, seed) cell as a validated RunConfig."""
    if len({s.name for s in grid.settings}) != len(grid.settings):
        raise ConfigError("settings: names must be unique")
    cells = []
    for model in grid.models or [grid.base.get("model", "me5-small")]:
        for s in grid.settings:
            inter = merge(grid.base.get("intermediate", {}), {"tasks": s.tasks, "languages": s.languages})
            inter["train"] = merge(inter.get("train", {}), {**s.train, "fraction": s.fraction})
            if s.mixture is not None:
                inter["mixture"] = s.mixture.model_dump()
            mlm = merge(grid.base.get("mlm", {}), {"mode": s.mlm})
            for target in grid.targets:
                for seed in grid.seeds:
                    raw = merge(grid.base, {"model": model, "intermediate": inter, "mlm": mlm,
                                            "target": {"tasks": [target], "seeds": [seed]}})
                    cfg = validate(raw, f"grid cell {model}/{s.name}/{target}/{seed}")
                    cells.append(Cell(pipeline.run_id_for(cfg), model, s.name, target, seed, cfg))
    return cells


# ---------------------------------------------------------------- planning and cost


# (parameters, hidden size, layers) of common encoders / decoders, for --dry-run estimates without downloads.
KNOWN_SHAPES = {
    "xlm-roberta-base": (278e6, 768, 12), "FacebookAI/xlm-roberta-base": (278e6, 768, 12),
    "xlm-roberta-large": (560e6, 1024, 24), "FacebookAI/xlm-roberta-large": (560e6, 1024, 24),
    "bert-base-multilingual-cased": (178e6, 768, 12), "me5-small": (117.5e6, 384, 12),
    "facebook/xlm-roberta-xl": (3.5e9, 2560, 36), "facebook/xlm-roberta-xxl": (10.7e9, 4096, 48),
    "meta-llama/Llama-2-7b-hf": (6.7e9, 4096, 32), "meta-llama/Llama-2-70b-hf": (69e9, 8192, 80),
    "meta-llama/Meta-Llama-3-8B": (8.0e9, 4096, 32), "meta-llama/Meta-Llama-3-70B": (70.6e9, 8192, 80),
    "meta-llama/Llama-3.1-8B": (8.0e9, 4096, 32), "meta-llama/Llama-3.1-70B": (70.6e9, 8192, 80),
}
KNOWN_PARAMS = {k: v[0] for k, v in KNOWN_SHAPES.items()}
GPU_MEMORY_GB = 80
# Training examples of the standard tasks (train splits), for estimates when the files are not local.
KNOWN_TRAIN_SIZES = {
    "mnli": 392702, "snli": 550152, "anli_r1": 16946, "anli_r2": 45460, "anli_r3": 100459, "qqp": 363846,
    "squad": 87599, "squad_v2": 130319, "hellaswag": 39905, "cosmosqa": 25262, "commonsenseqa": 9741,
    "siqa": 33410, "ccg": 38015, "copa": 400, "xnli": 392702, "pawsx": 49401, "udpos": 21253, "panx": 20000,
    "tydiqa": 3696, "xquad": 87599, "mlqa": 87599,
}
A100_BF16_PEAK = 312e12
ASSUMED_MFU = 0.4
TOKENS_PER_EXAMPLE = 0.6  # x max_length, after dynamic padding


def model_shape(name: str) -> tuple[float, int, int] | None:
    """(parameters, hidden, layers) from the table above or a local folder's config.json."""
    if name in KNOWN_SHAPES:
        return KNOWN_SHAPES[name]
    cfg_path = Path(name) / "config.json"
    if cfg_path.exists():
        c = json.loads(cfg_path.read_text())
        h, layers, v = c.get("hidden_size"), c.get("num_hidden_layers"), c.get("vocab_size")
        ffn = c.get("intermediate_size", 4 * (h or 0))
        if h and layers and v:
            return layers * (4 * h * h + 2 * h * ffn) + v * h, h, layers
    return None


def model_params(name: str) -> float | None:
    shape = model_shape(name)
    return shape[0] if shape else None


def memory_estimate(name: str, cfg: RunConfig, train) -> dict | None:
    """Training memory of one phase, in GB, and the 80 GB GPUs it needs with FSDP sharding.

    Full fine-tuning in mixed precision with AdamW keeps about 16 bytes per parameter (bf16 weights and
    grads, fp32 master weights, two fp32 Adam moments); LoRA keeps the frozen base in bf16 (2 bytes per
    parameter) and trains about 0.5 % adapters at 16 bytes. Activations: about 34 bytes x batch x tokens x
    hidden x layers (Korthikanti et al. 2022, no recomputation), 2 bytes with gradient checkpointing.
    FSDP shards the model state across GPUs; activations are per GPU.
    """
    shape = model_shape(name)
    if shape is None:
        return None
    params, hidden, layers = shape
    state = params * 2 + params * 0.005 * 16 if cfg.lora else params * 16
    per_token = 2 if cfg.gradient_checkpointing else 34
    activ = per_token * train.batch_size * train.max_length * hidden * layers
    usable = GPU_MEMORY_GB * 1e9 * 0.9 - activ
    gpus = None if usable <= 0 else max(1, -(-state // usable))
    return {"state_gb": state / 1e9, "activations_gb": activ / 1e9, "total_gb": (state + activ) / 1e9,
            "gpus_80gb": int(gpus) if gpus else None}


def _phase_flops(kind: str, cfg: RunConfig, params: float | None) -> float | None:
    """6 N T for training (forward + backward; 4 N T with LoRA), with T from steps or epochs x examples."""
    if params is None or kind not in ("intermediate", "target", "mlm"):
        return 0.0 if kind == "eval" else None
    split = "train"
    if kind == "intermediate":
        train, tasks = cfg.intermediate.train, [n for t in cfg.intermediate.tasks for n in _expand_names(t)]
    elif kind == "target":
        from .tasks import get

        target = cfg.target.tasks[0]
        train, split = cfg.target.train, cfg.target.train_split
        tasks = [cfg.target.train_task or get(target).train_task or target]
    else:
        train, tasks = cfg.mlm.train, []
    if train.max_steps:
        examples = train.max_steps * train.batch_size * train.grad_accum
    else:
        sizes = [min(_train_size(t, split, cfg.data_dir), train.limit or 10**12) * train.fraction for t in tasks]
        examples = train.epochs * (sum(sizes) or 10000)
    # LoRA skips the frozen weights' gradients: forward 2N + input-gradient 2N per token.
    per_token = 4 if cfg.lora else 6
    return per_token * params * examples * train.max_length * TOKENS_PER_EXAMPLE


@functools.lru_cache(maxsize=None)
def _train_size(task: str, split: str, data_dir: str | None) -> int:
    """Examples in the local training file, else the task's published size, else 10k."""
    from .data import load_examples, task_file
    from .errors import XstiltsError
    from .tasks import get

    spec = get(task)
    try:
        if split in spec.files and task_file(spec, split, spec.train_lang, data_dir).exists():
            return len(load_examples(spec, split, spec.train_lang, data_dir))
    except XstiltsError:
        pass
    return KNOWN_TRAIN_SIZES.get(task, 10000)


def _expand_names(name: str) -> list[str]:
    from .tasks import expand

    return expand(name)


def plan(cells: list[Cell]) -> dict:
    """Unique phases to train (and already done), estimated FLOPs and memory, and the naive cost without reuse."""
    unique, naive, memory = {}, 0.0, {}
    for c in cells:
        params = model_params(c.model)
        for p in pipeline.plan(c.cfg).phases:
            flops = _phase_flops(p.kind, c.cfg, params)
            naive += flops or 0.0
            unique.setdefault(p.key, {"kind": p.kind, "status": p.status, "flops": flops})
            if p.kind in ("intermediate", "target"):
                train = c.cfg.intermediate.train if p.kind == "intermediate" else c.cfg.target.train
                memory.setdefault((c.model, p.kind), memory_estimate(c.model, c.cfg, train))
    by_kind = {}
    for p in unique.values():
        k = by_kind.setdefault(p["kind"], {"total": 0, "done": 0, "flops": 0.0})
        k["total"] += 1
        k["done"] += p["status"] == "done"
        k["flops"] += p["flops"] or 0.0
    todo_flops = sum((p["flops"] or 0.0) for p in unique.values() if p["status"] != "done")
    total = sum((p["flops"] or 0.0) for p in unique.values())
    gpu_h = lambda f: f / (A100_BF16_PEAK * ASSUMED_MFU) / 3600  # noqa: E731
    return {"cells": len(cells), "phases": by_kind, "flops": total, "flops_todo": todo_flops, "flops_naive": naive,
            "gpu_hours": gpu_h(total), "gpu_hours_todo": gpu_h(todo_flops), "gpu_hours_naive": gpu_h(naive),
            "unknown_cost": sorted({c.model for c in cells if model_params(c.model) is None}),
            "memory": [{"model": m, "phase": k, **(v or {})} for (m, k), v in memory.items()]}


def format_plan(p: dict) -> str:
    lines = [f"{p['cells']} grid cells", f"{'phase':<14} {'unique':>7} {'done':>6} {'to run':>7} {'PFLOPs':>10}"]
    for kind, k in p["phases"].items():
        lines.append(f"{kind:<14} {k['total']:>7} {k['done']:>6} {k['total'] - k['done']:>7} {k['flops'] / 1e15:>10.2f}")
    lines.append(f"compute with reuse: {p['flops'] / 1e15:.2f} PFLOPs = {p['gpu_hours']:.2f} A100-hours "
                 f"(to run: {p['gpu_hours_todo']:.2f}); without reuse: {p['flops_naive'] / 1e15:.2f} PFLOPs = "
                 f"{p['gpu_hours_naive']:.2f} A100-hours")
    lines.append(f"(assumes 6*N*tokens training FLOPs (4*N*tokens with LoRA), {TOKENS_PER_EXAMPLE:g} x max_length tokens per example, "
                 f"A100 bf16 peak {A100_BF16_PEAK / 1e12:.0f} TFLOP/s at {ASSUMED_MFU:.0%} MFU)")
    if p["memory"]:
        lines.append(f"{'model':<34} {'phase':<13} {'state GB':>9} {'activ. GB':>10} {'total GB':>9} {'80GB GPUs':>10}")
        for m in p["memory"]:
            if "state_gb" in m:
                gpus = m["gpus_80gb"] if m["gpus_80gb"] else "no fit"
                lines.append(f"{m['model'][-34:]:<34} {m['phase']:<13} {m['state_gb']:>9.1f} {m['activations_gb']:>10.1f} "
                             f"{m['total_gb']:>9.1f} {gpus:>10}")
    if p["unknown_cost"]:
        lines.append(f"no parameter count known for: {', '.join(p['unknown_cost'])} (cost counted as 0)")
    return "\n".join(lines)


# ---------------------------------------------------------------- execution


def run_cell(cell: Cell, store_path: str, log=print) -> str:
    """Run one cell's pipeline (reusing done phases) and record it in the store."""
    result = pipeline.Pipeline(cell.cfg, log=log).run()
    pipeline.record(Store(store_path), cell.run_id, cell.cfg, result, setting=cell.setting, target=cell.target,
                    seed=cell.seed)
    return cell.run_id


def _intermediate_only(cell: Cell) -> RunConfig:
    return cell.cfg.model_copy(update={"target": cell.cfg.target.model_copy(update={"tasks": []})})


def run_grid(grid: GridConfig, *, executor: str = "local", address: str | None = None, log=print) -> dict:
    """Run every cell; returns {"done": [...], "failed": {run_id: message}}."""
    if executor == "ray":
        from .extras import require

        require("ray", "xstilts grid --executor ray")
    cells = expand(grid)
    workdir = Path(cells[0].cfg.workdir) if cells else Path("runs")
    workdir.mkdir(parents=True, exist_ok=True)
    store_path = str(workdir / "results.sqlite")
    done_before = Store(store_path).done_runs()
    todo = [c for c in cells if c.run_id not in done_before]
    log(f"{len(cells)} cells, {len(cells) - len(todo)} already in {store_path}, {len(todo)} to run")
    return execute(todo, store_path, executor=executor, retries=grid.retries, resources=grid.resources,
                   address=address, log=log)


def execute(cells: list[Cell], store_path, *, executor: str = "local", retries: int = 2,
            resources: Resources | None = None, address: str | None = None, log=print, label: str = "grid") -> dict:
    """Run ``cells`` with the local or the Ray executor (the one entry point grids and studies use).

    Returns ``{"done": [run_id, ...], "failed": {run_id: message}}``; a failing cell is retried
    ``retries`` times, then reported, never fatal to the others.
    """
    if executor == "local":
        return run_local(cells, str(store_path), retries=retries, log=log, label=label)
    if executor == "ray":
        return run_ray(cells, str(store_path), resources=resources or Resources(), retries=retries, address=address,
                       log=log)
    raise ConfigError(f"unknown executor {executor!r}; use local or ray")


def run_local(cells: list[Cell], store_path: str, *, retries: int = 2, log=print, label: str = "grid") -> dict:
    """The local executor: cells one after another in this process, each retried ``retries`` times."""
    from . import progress

    done, failed = [], {}
    bar = progress.bar(len(cells), label, unit="cell", log=log, show=bool(cells))
    for cell in cells:
        bar.update(1)
        for attempt in range(retries + 1):
            try:
                done.append(run_cell(cell, store_path, log=lambda m: None))
                break
            except Exception as e:  # noqa: BLE001 - a failed cell is retried, then reported, not fatal to the grid
                if attempt == retries:
                    failed[cell.run_id] = f"{cell.model}/{cell.setting}/{cell.target}/seed {cell.seed}: {e!r}"
                    bar.wrap(log)(f"failed after {retries + 1} attempts: {failed[cell.run_id]}")
    bar.close()
    return {"done": done, "failed": failed}


def run_ray(cells: list[Cell], store_path: str, *, resources: Resources, retries: int = 2,
            address: str | None = None, log=print) -> dict:
    """The Ray executor: each shared intermediate phase once, then every cell after the phase it needs."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    opts = {"num_cpus": resources.cpus, "num_gpus": resources.gpus,
            "max_retries": retries, "retry_exceptions": True}

    @ray.remote
    def train_intermediate(cfg_json: str) -> str:
        cfg = RunConfig.model_validate_json(cfg_json)
        pipeline.Pipeline(cfg, log=lambda m: None).run()
        return "ok"

    @ray.remote
    def cell_task(cell: Cell, store: str, _after) -> str:  # _after: the intermediate phase it needs
        return run_cell(cell, store, log=lambda m: None)

    inter_refs, refs = {}, {}
    for c in cells:
        if c.cfg.intermediate.tasks:
            key = pipeline.plan(_intermediate_only(c)).phases[-1].key
            if key not in inter_refs:
                inter_refs[key] = train_intermediate.options(**opts).remote(_intermediate_only(c).model_dump_json())
            dep = inter_refs[key]
        else:
            dep = None
        refs[c.run_id] = (c, cell_task.options(**opts).remote(c, store_path, dep))
    log(f"ray: {len(inter_refs)} intermediate phases, {len(refs)} cells submitted")
    done, failed = [], {}
    t0 = time.time()
    pending = {ref: rid for rid, (_, ref) in refs.items()}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        rid = pending.pop(ready[0])
        c = refs[rid][0]
        try:
            done.append(ray.get(ready[0]))
            log(f"[{len(done) + len(failed)}/{len(refs)}] {c.setting}/{c.target}/seed {c.seed} done ({time.time() - t0:.0f}s)")
        except Exception as e:  # noqa: BLE001 - report, keep collecting the rest
            failed[rid] = f"{c.model}/{c.setting}/{c.target}/seed {c.seed}: {e}"
            log(f"failed: {failed[rid]}")
    if started_here:
        ray.shutdown()
    return {"done": done, "failed": failed}
