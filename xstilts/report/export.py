"""Saved predictions copied into the google-research/xtreme submission layout.

:func:`export_predictions` reads the store (or a phase folder) and writes one file per task and
language as the XTREME leaderboard expects. (Exporting the store's metric rows as lm-eval JSON, CSV
or Parquet is :mod:`xstilts.export`.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..families import get_family
from .render import safe_name
from .summary import _isna, _open_store


def _eval_config(stored: dict | None, phase_dir: Path) -> dict:
    """The eval phase's resolved config: as the store recorded it, else the phase folder's ``config.json``.

    Both hold ``{"kind", "config", "input"}`` as the pipeline writes them; the eval config
    names the target, its family and the evaluated split. Neither: a :class:`ConfigError`.
    """
    from ..errors import ConfigError

    cfg = (stored or {}).get("config") or {}
    file = phase_dir / "config.json"
    if not {"target", "family", "split"} <= set(cfg) and file.is_file():
        cfg = json.loads(file.read_text(encoding="utf-8")).get("config") or {}
    missing = sorted({"target", "family", "split"} - set(cfg))
    if missing:
        raise ConfigError(f"{phase_dir}: no eval config names its {', '.join(missing)} (neither the results store "
                          f"nor {file.name}); not an eval phase written by xstilts")
    return cfg


def _write_predictions(phase_dir: Path, dest: Path, cfg: dict) -> list[dict]:
    task, split, family = cfg["target"], cfg["split"], cfg["family"]
    written = []
    pred_dir = phase_dir / "predictions"
    for f in sorted(pred_dir.glob("*.json")) if pred_dir.is_dir() else []:
        if f.stem.startswith("ids-"):
            continue
        lang = f.stem
        preds = json.loads(f.read_text(encoding="utf-8"))
        (dest / task).mkdir(parents=True, exist_ok=True)
        ids_file = pred_dir / f"ids-{lang}.json"
        ids = json.loads(ids_file.read_text(encoding="utf-8")) if ids_file.exists() else None
        out, warning = get_family(family).write_submission(preds, ids, dest / task / f"{split}-{lang}")
        written.append({"task": task, "lang": lang, "family": family, "path": str(out), "n": len(preds),
                        "warning": warning})
    return written


def export_predictions(source, out_dir: str | os.PathLike, *, setting: str | None = None,
                       seed: int | None = None) -> list[dict]:
    """Write saved predictions in the google-research/xtreme submission layout.

    Layout: ``<task>/test-<lang>.tsv`` with one label per line (classification),
    one label per token line and a blank line after each sentence (tagging,
    as xtreme's ``read_tag``), or ``<task>/test-<lang>.json`` mapping example
    id -> answer (QA). The split in the name is the eval phase's split.

    Args:
        source: a :class:`xstilts.store.Store` (or its path): the eval phases
            in its ``phases`` table with a ``path`` are read from
            ``<path>/predictions/<lang>.json``; or an iterable of eval phase
            folders (each with ``config.json`` as written by the pipeline).
        out_dir: output folder.
        setting, seed: with a store, only these runs. With a store and both
            given, files go straight under ``out_dir``; otherwise under
            ``out_dir/<setting>/seed<seed>/`` (one submission folder per
            setting and seed).

    Returns:
        One dict per written file: task, lang, family, path, n, warning.
    """
    out_dir = Path(out_dir)
    written: list[dict] = []
    if hasattr(source, "metrics_frame") or (isinstance(source, (str, os.PathLike)) and Path(source).is_file()):
        store = _open_store(source)
        ph = store.query(
            """SELECT p.run_id, p.phase_key, p.config, p.path, r.setting, COALESCE(p.seed, r.seed) AS seed
               FROM phases p JOIN runs r ON r.run_id = p.run_id WHERE p.kind = 'eval' AND p.path IS NOT NULL
               ORDER BY r.setting, seed, p.phase_key""")
        flat = setting is not None and seed is not None
        for r in ph.itertuples(index=False):
            if setting is not None and r.setting != setting:
                continue
            run_seed = None if _isna(r.seed) else int(r.seed)
            if seed is not None and run_seed != seed:
                continue
            cfg = _eval_config(json.loads(r.config) if r.config else None, Path(r.path))
            dest = out_dir if flat else out_dir / safe_name(r.setting) / f"seed{run_seed if run_seed is not None else 'none'}"
            written += _write_predictions(Path(r.path), dest, cfg)
    else:
        for folder in source:
            written += _write_predictions(Path(folder), out_dir, _eval_config(None, Path(folder)))
    return written
