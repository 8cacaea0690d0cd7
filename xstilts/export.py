"""Results export in formats other tools read: lm-evaluation-harness results JSON, CSV, Parquet.

``xstilts results export --format lm-eval-json | csv | parquet [--run ID]`` reads the results store
and writes, per task and language, each metric's value with its interval where one exists, the
task version, the resolved run config, the code version and the environment.

Intervals (``stderr``, ``ci_low``/``ci_high`` at 95%):

* several seeds of one (model, setting): the mean over seeds, its standard error
  ``std(ddof=1) / sqrt(k)`` and the t-interval with k - 1 degrees of freedom;
* one run with per-example scores (accuracy of classification / multiple choice, Tatoeba):
  lm-eval's ``mean_stderr`` (sample std over examples / sqrt(n)) and the normal interval;
* otherwise none (an F1 of one run): empty in CSV/Parquet, ``"N/A"`` in the lm-eval JSON,
  as the harness writes a stderr it did not compute.

The lm-eval JSON follows ``lm_eval/result_schema.py`` (``EvalResults``) of EleutherAI's
lm-evaluation-harness: ``results`` keyed by task (``<task>_<lang>``, e.g. ``xnli_de``, as the harness
names its per-language tasks; ``_<split>`` added for rows of another split, e.g. ``xnli_en_dev``)
with ``"<metric>,none"`` and ``"<metric>_stderr,none"`` keys (accuracy is ``acc``), ``groups`` (the
unweighted mean over each target's languages), ``group_subtasks``, ``configs``, ``versions``,
``n-shot`` (0: zero-shot), ``higher_is_better``, ``n-samples``, ``config``, ``git_hash``, ``date``
and the environment keys; xstilts' own provenance (settings, seeds, run ids, resolved config) goes
under an extra top-level ``"xstilts"`` key. One file holds one (model, intermediate setting), as one
harness results file holds one model.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .errors import ConfigError

FORMATS = ("lm-eval-json", "csv", "parquet")
FILTER = "none"  # the harness's filter name for unfiltered metrics
HARNESS_METRIC = {"accuracy": "acc"}
LOWER_IS_BETTER = {"threshold"}  # BUCC's tuned threshold is reported, not maximised
GROUP_KEYS = ["model", "setting", "task", "lang", "split", "metric"]
COLUMNS = ["model", "setting", "target", "task", "lang", "split", "metric", "value", "stderr", "ci_low", "ci_high",
           "interval", "n_seeds", "seeds", "n", "task_version", "config_hash", "xstilts_version", "git_rev", "run_ids"]


def _task_version(task: str, configs: list[dict]) -> int | None:
    """The task's version: from a run config's own ``tasks:`` definition, else the registry."""
    from . import tasks

    for cfg in configs:
        for t in cfg.get("tasks") or []:
            if t.get("name") == task:
                return t.get("version", 1)
    try:
        return tasks.get(task).version
    except ConfigError:
        return None


def _interval(values: np.ndarray, scores: np.ndarray | None) -> tuple[float | None, float | None, float | None, str]:
    """(stderr, ci_low, ci_high, kind) of a mean: over seeds, else over one run's examples, else none."""
    from .stats import normal_interval, t_interval

    mean = float(values.mean())
    if values.size >= 2:
        t = t_interval(values)
        return t["sd"] / math.sqrt(t["n"]), t["low"], t["high"], f"t over {values.size} seeds"
    if scores is not None and scores.size >= 2:
        z = normal_interval(scores)
        return z["se"], mean - z["half"], mean + z["half"], f"normal over {scores.size} examples"
    return None, None, None, ""


def rows(store, run: str | None = None) -> pd.DataFrame:
    """One row per (model, setting, task, language, split, metric), columns :data:`COLUMNS`.

    Args:
        run: only this run id (``runs`` table); None: every run, seeds of one (model, setting) pooled.

    Raises:
        ConfigError: ``run`` is not in the store, or the store holds no metrics.
    """
    mf = store.records_frame()
    if run is not None:
        if run not in set(store.runs_frame()["run_id"]):
            known = ", ".join(store.runs_frame()["run_id"].head(10))
            raise ConfigError(f"no run {run!r} in {store.path} (runs: {known or 'none'})")
        mf = mf[mf.run_id == run]
    if mf.empty:
        raise ConfigError(f"no metrics in {store.path}" + (f" for run {run!r}" if run else ""))
    runs = store.runs_frame().set_index("run_id")
    env = store.environment_frame().set_index("run_id")
    configs = {rid: json.loads(c) if c else {} for rid, c in runs["config"].items()}
    scores = {}
    for r in store.example_scores().itertuples():
        scores[(r.run_id, r.task, r.lang, r.split, r.metric)] = r.scores.astype(np.float64)
    out = []
    for key, g in mf.groupby(GROUP_KEYS, sort=True, dropna=False):
        fields = dict(zip(GROUP_KEYS, key))
        values = g["value"].to_numpy(dtype=np.float64)
        one = (g.run_id.iloc[0], fields["task"], fields["lang"], fields["split"], fields["metric"])
        se, lo, hi, kind = _interval(values, scores.get(one) if len(g) == 1 else None)
        run_ids = sorted(g.run_id)
        git = sorted({str(env.at[r, "git_rev"]) for r in run_ids if r in env.index and env.at[r, "git_rev"]})
        out.append({**fields, "target": ",".join(sorted(set(g.target.dropna()))), "value": float(values.mean()),
                    "stderr": se, "ci_low": lo, "ci_high": hi, "interval": kind, "n_seeds": len(g),
                    "seeds": ",".join(str(s) for s in sorted(g.seed.dropna().astype(int))),
                    "n": int(g.n.max()) if g.n.notna().any() else None,
                    "task_version": _task_version(fields["task"], [configs[r] for r in run_ids]),
                    "config_hash": ",".join(sorted(set(g.config_hash.dropna()))),
                    "xstilts_version": ",".join(sorted(set(g.xstilts_version.dropna()))),
                    "git_rev": ",".join(git), "run_ids": ",".join(run_ids)})
    frame = pd.DataFrame(out, columns=COLUMNS)
    for col in ("n_seeds", "n", "task_version"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _sanitize(name: str) -> str:
    """The harness's ``model_name_sanitized``: path separators -> ``__``."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def _eval_splits(configs: list[dict]) -> dict[str, str]:
    """Target task -> the split it was evaluated zero-shot on (config's eval.split, else the task's)."""
    from . import tasks

    out = {}
    for cfg in configs:
        for t in (cfg.get("target") or {}).get("tasks") or []:
            split = (cfg.get("eval") or {}).get("split")
            if split is None:
                try:
                    split = tasks.get(t).eval_split
                except ConfigError:
                    split = "test"
            out[t] = split
    return out


def lm_eval_results(store, run: str | None = None) -> dict[tuple[str, str], dict]:
    """lm-evaluation-harness results dicts, one per (model, setting) in the store (or of ``run``)."""
    frame = rows(store, run)
    runs = store.runs_frame().set_index("run_id")
    env = store.environment_frame().set_index("run_id")
    timings = store.timings_frame()
    out = {}
    for (model, setting), g in frame.groupby(["model", "setting"], sort=True):
        run_ids = sorted({r for ids in g.run_ids for r in ids.split(",")})
        configs = [json.loads(runs.at[r, "config"] or "{}") for r in run_ids]
        eval_split = _eval_splits(configs)
        results, configs_out, versions, n_shot, better, n_samples, subtasks = {}, {}, {}, {}, {}, {}, {}
        for (task, lang, split), t in g.groupby(["task", "lang", "split"], sort=True):
            name = f"{task}_{lang}" + ("" if eval_split.get(task, split) == split else f"_{split}")
            entry = {"name": name, "alias": name, "sample_len": int(t.n.max()) if t.n.notna().any() else 0}
            metric_list = []
            for r in t.itertuples():
                m = HARNESS_METRIC.get(r.metric, r.metric)
                entry[f"{m},{FILTER}"] = float(r.value)
                entry[f"{m}_stderr,{FILTER}"] = "N/A" if pd.isna(r.stderr) else float(r.stderr)
                metric_list.append({"metric": m, "aggregation": "mean", "higher_is_better": r.metric not in LOWER_IS_BETTER})
            results[name] = entry
            version = t.task_version.iloc[0]
            versions[name] = None if pd.isna(version) else float(version)
            n_shot[name] = 0
            better[name] = {x["metric"]: x["higher_is_better"] for x in metric_list}
            n = entry["sample_len"]
            n_samples[name] = {"original": n, "effective": n}
            configs_out[name] = {"task": name, "tag": [task], "dataset_path": _dataset_path(task, configs),
                                 "dataset_name": lang, "test_split": split, "num_fewshot": 0,
                                 "output_type": "xstilts", "metric_list": metric_list,
                                 "metadata": {"version": versions[name], "xstilts_task": task, "language": lang,
                                              "split": split, "seeds": t.seeds.iloc[0],
                                              "interval": t.interval.iloc[0] or None}}
            if eval_split.get(task, split) == split:
                subtasks.setdefault(task, []).append(name)
        groups = {}
        for task, names in subtasks.items():
            group = {"name": task, "alias": task, "sample_len": sum(results[n]["sample_len"] for n in names),
                     "sample_count": {}}
            keys = sorted({k for n in names for k in results[n] if "," in k and "_stderr," not in k})
            for k in keys:
                vals = [results[n][k] for n in names if k in results[n]]
                group[k] = float(np.mean(vals))
                group[k.replace(",", "_stderr,", 1)] = "N/A"
                group["sample_count"][k] = sum(results[n]["sample_len"] for n in names if k in results[n])
            groups[task] = group
        env_rows = [env.loc[r] for r in run_ids if r in env.index]
        info = json.loads(env_rows[0]["info"]) if env_rows and env_rows[0]["info"] else {}
        packages = info.get("packages") or {}
        git = sorted({str(e["git_rev"]) for e in env_rows if e["git_rev"]})
        created = [runs.at[r, "created"] for r in run_ids if runs.at[r, "created"]]
        seeds = sorted({int(s) for r in run_ids if not pd.isna(runs.at[r, "seed"]) for s in [runs.at[r, "seed"]]})
        ev = (configs[0].get("eval") or {}) if configs else {}
        eval_s = timings[timings.run_id.isin(run_ids) & (timings.kind == "eval")].wall_s.sum()
        out[(model, setting)] = {
            "results": results,
            **({"groups": groups} if groups else {}),
            "group_subtasks": {task: sorted(names) for task, names in sorted(subtasks.items())},
            "configs": dict(sorted(configs_out.items())),
            "versions": dict(sorted(versions.items())),
            "n-shot": dict(sorted(n_shot.items())),
            "higher_is_better": dict(sorted(better.items())),
            "n-samples": n_samples,
            "config": {"model": model, "model_args": None, "batch_size": str(ev.get("batch_size")),
                       "batch_sizes": [], "device": info.get("gpu") or "cpu", "use_cache": None,
                       "limit": ev.get("limit"), "bootstrap_iters": 0, "gen_kwargs": None,
                       "random_seed": seeds[0] if len(seeds) == 1 else None},
            "git_hash": ",".join(git) or None,
            "date": pd.Timestamp(min(created)).timestamp() if created else None,
            "pretty_env_info": f"Python {info.get('python')}; {info.get('platform')}; torch {packages.get('torch')}; "
                               f"GPU {info.get('gpu') or 'none'}; {info.get('cpu_count')} CPUs",
            "transformers_version": packages.get("transformers") or "N/A",
            "lm_eval_version": f"N/A (exported by xstilts {__version__})",
            "upper_git_hash": None,
            "model_source": "xstilts",
            "model_name": model,
            "model_name_sanitized": _sanitize(model),
            "total_evaluation_time_seconds": str(float(eval_s)),
            "xstilts": {"version": __version__, "setting": setting, "seeds": seeds, "run_ids": run_ids,
                        "environment": info, "resolved_config": configs[0] if len(configs) == 1 else configs},
        }
    return out


def _dataset_path(task: str, configs: list[dict]) -> str | None:
    """Where the task's data came from: the run's data folder, else its hub id."""
    from . import tasks

    data_dir = next((c.get("data_dir") for c in configs if c.get("data_dir")), None)
    if data_dir:
        return str(data_dir)
    try:
        hub = tasks.get(task).hub
    except ConfigError:
        return None
    return hub.dataset if hub else None


def export(store, fmt: str, out: str | Path, run: str | None = None) -> list[Path]:
    """Write the export; returns the files written.

    ``lm-eval-json`` writes ``out`` when the store (or ``run``) holds one (model, setting), else one
    file per pair beside it, named ``<stem>_<model>_<setting>.json``.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        rows(store, run).to_csv(out, index=False)
        return [out]
    if fmt == "parquet":
        rows(store, run).to_parquet(out, index=False)
        return [out]
    docs = lm_eval_results(store, run)
    written = []
    for (model, setting), doc in docs.items():
        path = out if len(docs) == 1 else out.with_name(f"{out.stem}_{_sanitize(model)}_{_sanitize(setting)}{out.suffix}")
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        written.append(path)
    return written


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a CSV/Parquet export back with its dtypes (language codes such as ``NA`` stay strings)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""],
                            dtype={"lang": str, "seeds": str, "run_ids": str, "git_rev": str, "interval": str})
    else:
        frame = pd.read_parquet(path)
    for col in ("n_seeds", "n", "task_version"):
        frame[col] = frame[col].astype("Int64")
    for col in ("seeds", "git_rev", "interval", "config_hash", "xstilts_version", "run_ids", "target"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame
