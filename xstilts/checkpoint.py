"""Atomic checkpoints: weights in safetensors, optimizer/scheduler/RNG state, no pickle.

A checkpoint folder is written under a temporary name and renamed into place,
so a crash or SIGKILL leaves either the old checkpoint or the new one, never
half of one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model


def write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def replace_dir(tmp: Path, final: Path) -> None:
    """Swap ``tmp`` into ``final``; the old folder is removed only after the swap."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    py = random.getstate()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }


def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    s = state["numpy"]
    np.random.set_state((s[0], np.asarray(s[1], dtype=np.uint32), *s[2:]))


def save(path: Path, model, optimizer=None, scheduler=None, trainer_state: dict | None = None) -> None:
    """Write a full training checkpoint atomically to ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    if optimizer is not None:
        # torch.save of tensors and plain containers; loaded back with weights_only=True.
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if scheduler is not None:
        (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    torch.save({"torch": torch.get_rng_state()}, tmp / "rng_torch.pt")
    (tmp / "rng.json").write_text(json.dumps(_rng_state()))
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state or {}, indent=1))
    replace_dir(tmp, path)


def recover(path: Path) -> bool:
    """Finish a swap that a kill interrupted (``final`` moved aside, ``tmp`` not yet in place)."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.exists():
        os.replace(old, path)
    return path.exists()


def load(path: Path, model, optimizer=None, scheduler=None) -> dict:
    """Restore what :func:`save` wrote; returns the trainer state."""
    path = Path(path)
    recover(path)
    load_model(model, str(path / "model.safetensors"))
    if optimizer is not None and (path / "optimizer.pt").exists():
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    if scheduler is not None and (path / "scheduler.json").exists():
        scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
    torch.set_rng_state(torch.load(path / "rng_torch.pt", weights_only=True)["torch"])
    _set_rng_state(json.loads((path / "rng.json").read_text()))
    return json.loads((path / "trainer_state.json").read_text())
