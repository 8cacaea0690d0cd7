"""The latency study: zero-shot accuracy against inference latency (base vs large), with intermediate
tasks picked by English dev accuracy; the regret of that choice; a Pareto plot.

Option ``study.latency`` (examples timed at batch 1, throughput batches, devices). Timings are
cached in ``<section>/latency.json`` keyed by the target checkpoint, device, options and hardware.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from ..config import _Strict
from ..grid import Cell
from ..report.render import pyplot, save_figure
from ..stats import describe, format_ci, plain, signed, t_interval, welch_interval
from .base import (ZERO_SHOT_RULE, Study, cell_scores, index_cells, mean_sd, model_label, phase_rows,
                   register, target_info)


class LatencyOptions(_Strict):
    examples: int = Field(64, ge=1, description="examples timed one by one (batch 1)")
    batch_size: int = Field(32, ge=1, description="batch size of the throughput measurement")
    batches: int = Field(4, ge=1, description="batches timed for throughput")
    warmup: int = Field(3, ge=0)
    devices: list[str] = Field(default_factory=lambda: ["cpu", "cuda"], description="cuda is skipped when absent")
    language: str | None = Field(None, description="eval language the timed examples come from (default: "
                                                   "the first non-English one)")


class Latency(Study):
    name = "latency"
    title = "Study: accuracy vs inference latency"
    question = "accuracy vs inference latency (base vs large), with intermediate tasks picked by English dev"
    order = 30
    options = {"latency": (LatencyOptions, Field(default_factory=LatencyOptions))}

    def plan_notes(self, cfg) -> list[str]:
        lat = cfg.study.latency
        return [f"latency: {lat.examples} examples at batch 1 and {lat.batches} batches of {lat.batch_size} per model "
                f"and device ({', '.join(lat.devices)}; cuda only when present), on the target model of the "
                "setting picked by English dev (seconds to minutes; not counted above)"]

    def analyze(self, cfg, store, cells, section, out_dir):
        import torch

        scores = cell_scores(store, cells)
        idx = index_cells(cells)
        base_name = cfg.study.baseline
        alpha = cfg.study.alpha
        lat_opts = cfg.study.latency
        devices = [d for d in lat_opts.devices if not d.startswith("cuda") or torch.cuda.is_available()]
        cache_file = out_dir / "latency.json"
        cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        target_path = {c.run_id: r.path for c, r in phase_rows(store, cells, "target")}
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
                    row = [target, model_label(model), setting, plain(float(np.nanmean(dev)) if np.isfinite(dev).any() else None),
                           mean_sd(zs), ", ".join(marks)]
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
                regret_rows.append([target, model_label(model), r["chosen"] or "–", r["oracle"], plain(r["chosen_zero_shot"]),
                                    plain(r["oracle_zero_shot"]), signed(r["regret"]), format_ci(r["regret_ci"]),
                                    signed(r["gain"]["mean"]), format_ci(r["gain"])])
            # the headline: each model with its dev-picked setting
            picked = {m: reg[m] for m in cfg.models if m in reg and reg[m]["chosen"]}
            for m, r in picked.items():
                ld = lat.get(m, {})
                lat_txt = "; ".join(f"{d}: p50 {v['p50_ms']:.2f} ms, p95 {v['p95_ms']:.2f} ms per example at batch 1, "
                                    f"{v['throughput']:.1f} examples/s at batch {v['batch_size']}" for d, v in ld.items())
                concl.append(f"{target}, {model_label(m)}: English dev picks {r['chosen']} → zero-shot "
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
                concl.append(f"{model_label(big)} over {model_label(small)} (each with its dev-picked setting): {describe(d)}{ratio}.")
        # Pareto flags
        for target in cfg.targets:
            pts = [p for p in points if p["target"] == target]
            for p, on in zip(pts, pareto_front([(p["latency_ms"], p["zero_shot"]) for p in pts])):
                p["pareto"] = on
            front = [f"{model_label(p['model'])}/{p['setting']}" for p in pts if p.get("pareto")]
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


register(Latency())


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

    from ..data import TokenIds
    from ..families import get_family

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
    from ..model import MultiTaskModel, load_encoder

    phase_dir = Path(phase_dir)
    model = MultiTaskModel(load_encoder(str(phase_dir / "encoder")))
    model.add_task(spec)
    model.load_heads(phase_dir)
    return model.eval()


def _measure_cell(cell: Cell, phase_dir, device: str, opts: LatencyOptions) -> dict:
    from ..data import load_examples, task_file
    from ..families import get_family
    from ..model import load_tokenizer
    from ..pipeline import register_config_tasks
    from ..tasks import get

    register_config_tasks(cell.cfg)
    spec = get(cell.target)
    _, split = target_info(cell)
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
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for target in dict.fromkeys(p["target"] for p in points):
        pts = [p for p in points if p["target"] == target]
        for model in dict.fromkeys(p["model"] for p in pts):
            mp = [p for p in pts if p["model"] == model]
            ax.scatter([p["latency_ms"] for p in mp], [100 * p["zero_shot"] for p in mp],
                       label=f"{target}: {model_label(model)[-24:]}")
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
    return save_figure(fig, path)
