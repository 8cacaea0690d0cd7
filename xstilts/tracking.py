"""Experiment trackers (TensorBoard, Weights & Biases, MLflow, ...) through accelerate's tracker classes.

A run config's ``log_with: [tensorboard]`` (and ``logging_dir``, default ``<workdir>/logs``) opens one
tracker run per pipeline run, named by the run id, as ``Accelerator(log_with=...).init_trackers`` would:

* hyperparameters: the resolved run config flattened to dotted keys, plus every phase's key
  (``phase.00.intermediate``, ``phase.01.target.xnli``, ...);
* per optimizer step of each training phase: ``<phase>/loss`` and ``<phase>/lr``; at each dev evaluation
  ``<phase>/dev`` (``<phase>`` is ``mlm``, ``intermediate`` or ``target/<task>/s<seed>``); a reused phase
  replays its recorded loss and dev history;
* the zero-shot results: ``zero-shot/<task>/s<seed>/<metric>/<lang>`` (English dev rows under
  ``dev/...``), at the target phase's last step.

Only rank 0 logs. A tracker whose package is missing is a :class:`ConfigError` naming the package.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ConfigError


def tracker_names() -> list[str]:
    """Every tracker name accelerate knows (``log_with`` accepts these)."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    return sorted(LOGGER_TYPE_TO_CLASS)


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested config -> ``{"a.b": value}`` with the scalar types every tracker's hyperparameters accept
    (lists, dicts-in-lists and None become JSON text)."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v, default=str)
    return out


class Trackers:
    """The open trackers of one run; with no names, every call does nothing."""

    def __init__(self, names: list[str], logging_dir: str | Path, run_name: str, hyperparameters: dict):
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

        available = {str(t) for t in get_available_trackers()}
        self.trackers = []
        for name in names:
            if name not in available:
                raise ConfigError(f"log_with: the {name!r} tracker's package is not installed "
                                  f"(pip install {name.replace('_', '-')})")
            cls = LOGGER_TYPE_TO_CLASS[name]
            tracker = cls(run_name, str(logging_dir)) if cls.requires_logging_directory else cls(run_name)
            if hasattr(tracker, "start"):  # accelerate >= 1.6 opens the backend lazily
                tracker.start()
            tracker.store_init_configuration(hyperparameters)
            self.trackers.append(tracker)

    def log(self, values: dict, step: int) -> None:
        for t in self.trackers:
            t.log(values, step=step)

    def scoped(self, prefix: str):
        """``track(values, step)`` logging ``{prefix}/{key}`` (what :func:`xstilts.train.train` calls)."""
        return lambda values, step: self.log({f"{prefix}/{k}": v for k, v in values.items()}, step)

    def replay(self, prefix: str, history: list[dict]) -> None:
        """A reused phase's recorded loss (and dev) curve."""
        track = self.scoped(prefix)
        for h in history:
            track({k: v for k, v in h.items() if k != "step"}, h["step"])

    def results(self, prefix: str, rows: list[dict], step: int) -> None:
        """Zero-shot metric rows (task, lang, split, metric, value) as ``zero-shot/<prefix>/<metric>/<lang>``."""
        values = {f"{'dev' if r['split'] == 'dev' else 'zero-shot'}/{prefix}/{r['metric']}/{r['lang']}": r["value"]
                  for r in rows}
        if values:
            self.log(values, step)

    def finish(self) -> None:
        for t in self.trackers:
            t.finish()
        self.trackers = []
