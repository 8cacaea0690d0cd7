"""Atomic checkpoints: weights in safetensors, optimizer/scheduler/RNG state, no pickle; and resuming from them.

A checkpoint folder is written under a temporary name and renamed into place,
so a crash or SIGKILL leaves either the old checkpoint or the new one, never
half of one. :func:`settle` finishes a swap a kill interrupted; :func:`resume`
loads a run's last checkpoint into the objects ``accelerate`` prepared.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_file, save_model

from .. import active_rows, distributed


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


def _torch_rng_state() -> dict:
    """torch's CPU generator and, when CUDA is available, every visible GPU's (one process drives them all)."""
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda_all"] = torch.cuda.get_rng_state_all()
    return out


def _set_torch_rng_state(state: dict) -> None:
    """Restore :func:`_torch_rng_state`; GPU states go to the devices they came from, as far as those exist."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda_all")
    if cuda and torch.cuda.is_available():
        n = torch.cuda.device_count()
        if len(cuda) == n:
            torch.cuda.set_rng_state_all(cuda)
        else:  # resumed on another number of GPUs: the devices both runs have continue their streams
            for i, s in enumerate(cuda[:n]):
                torch.cuda.set_rng_state(s, i)


def save(path: Path, model, optimizer=None, scheduler=None, trainer_state: dict | None = None, *,
         rng_ranks: list | None = None, tensors: dict[str, dict] | None = None) -> None:
    """Write a full training checkpoint atomically to ``path``.

    ``model`` is a module, or a full state dict (gathered from FSDP shards); ``optimizer``
    an optimizer, or a state dict. ``rng_ranks``: each process's torch RNG state (multi-process runs).
    ``tensors``: further named tensor sets, each written as ``<name>.safetensors`` (active embedding rows' ids).
    """
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if isinstance(model, dict):
        save_file(_unshared(model), str(tmp / "model.safetensors"))
    elif _frozen(model):  # LoRA, frozen embeddings: only what training changes; the rest comes from the phase's input
        trainable = _trainable(model)
        save_file(_unshared({k: v for k, v in model.state_dict().items() if k in trainable}),
                  str(tmp / "model.safetensors"))
        (tmp / "weights.json").write_text(json.dumps({"trainable_only": True, "tensors": len(trainable)}))
    else:
        save_model(model, str(tmp / "model.safetensors"))
    if optimizer is not None:
        # torch.save of tensors and plain containers; loaded back with weights_only=True.
        torch.save(optimizer if isinstance(optimizer, dict) else optimizer.state_dict(), tmp / "optimizer.pt")
    for name, group in (tensors or {}).items():
        save_file({k: v.detach().contiguous().cpu() for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
    if scheduler is not None:
        (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    torch.save(_torch_rng_state(), tmp / "rng_torch.pt")
    if rng_ranks is not None:
        torch.save(rng_ranks, tmp / "rng_ranks.pt")
    (tmp / "rng.json").write_text(json.dumps(_rng_state()))
    (tmp / "trainer_state.json").write_text(json.dumps(trainer_state or {}, indent=1))
    replace_dir(tmp, path)


def _frozen(model) -> bool:
    return any(not p.requires_grad for p in model.parameters())


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def load_weights(path: Path, model) -> None:
    """The checkpoint's weights into ``model``: all of them, or (``weights.json``) its trainable ones."""
    path = Path(path)
    file = path / "model.safetensors"
    if not (path / "weights.json").exists():
        load_model(model, str(file))
        return
    from safetensors.torch import load_file

    from ..errors import ConfigError

    tensors = load_file(str(file))
    trainable = _trainable(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k in trainable}
    differ = sorted(set(tensors) ^ trainable) or [k for k in tensors if tuple(tensors[k].shape) != shapes[k]]
    if differ:
        raise ConfigError(f"{file}: its trainable tensors do not match the model being resumed (names or shapes "
                          f"differ, e.g. {differ[:2]}); resume with the same LoRA/freezing settings, or delete the "
                          "folder to start the phase over")
    model.load_state_dict(tensors, strict=False)


def _unshared(state: dict) -> dict:
    """Tensors once each and contiguous on the CPU (safetensors refuses tensors that share memory)."""
    seen, out = set(), {}
    for k, v in state.items():
        ptr = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape))
        if v.numel() and ptr in seen:
            continue  # a tied weight: load_model restores it from the name kept
        seen.add(ptr)
        out[k] = v.detach().contiguous().cpu()
    return out


def recover(path: Path) -> bool:
    """Finish a swap that a kill interrupted (``final`` moved aside, ``tmp`` not yet in place)."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if not path.exists() and old.exists():
        os.replace(old, path)
    return path.exists()


def load(path: Path, model, optimizer=None, scheduler=None) -> dict:
    """Restore what :func:`save` wrote; returns the trainer state. ``model=None`` skips the weights."""
    path = Path(path)
    recover(path)
    if model is not None:
        load_weights(path, model)
    if optimizer is not None and (path / "optimizer.pt").exists():
        optimizer.load_state_dict(_optimizer_state(path, fsdp=False))
    if scheduler is not None and (path / "scheduler.json").exists():
        scheduler.load_state_dict(json.loads((path / "scheduler.json").read_text()))
    _set_torch_rng_state(torch.load(path / "rng_torch.pt", weights_only=True))
    _set_rng_state(json.loads((path / "rng.json").read_text()))
    return json.loads((path / "trainer_state.json").read_text())


def _optimizer_state(path: Path, fsdp: bool) -> dict:
    """The saved optimizer state; FSDP saves it keyed by parameter name, one process or DDP by position."""
    state = torch.load(path / "optimizer.pt", weights_only=True)
    by_name = any(isinstance(k, str) for k in state.get("state", {}))
    if state.get("state") and by_name != fsdp:
        from ..errors import ConfigError

        raise ConfigError(f"{path} was written {'under FSDP' if by_name else 'without FSDP'}; resume it with the "
                          "same launch setup (or delete the folder to start the phase over)")
    return state


# ---------------------------------------------------------------- models prepared by accelerate (1 or N processes)


def _is_fsdp(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.FSDP


def _rng_of_this_process() -> dict:
    out = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state()
    return out


def save_prepared(path: Path, accelerator, model, optimizer=None, scheduler=None,
                  trainer_state: dict | None = None, tensors: dict[str, dict] | None = None) -> None:
    """:func:`save` for a model (and optimizer) that went through ``accelerator.prepare``; every rank calls it.

    One process: exactly :func:`save`. Several: FSDP shards are gathered into full state dicts
    (a collective: every rank takes part), rank 0 alone writes, and all ranks leave together.
    """
    if accelerator.num_processes == 1:
        save(path, accelerator.unwrap_model(model), optimizer, scheduler, trainer_state, tensors=tensors)
        return
    from accelerate.utils import gather_object

    weights, optim = accelerator.unwrap_model(model), optimizer
    if _is_fsdp(accelerator):
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        weights = accelerator.get_state_dict(model)  # full on rank 0 (offloaded to its CPU), empty elsewhere
        if optimizer is not None:
            optim = get_optimizer_state_dict(model, optimizer.optimizer,
                                             options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    rng_ranks = gather_object([_rng_of_this_process()]) if trainer_state is not None else None
    if accelerator.is_main_process:
        save(path, weights, optim, scheduler, trainer_state, rng_ranks=rng_ranks, tensors=tensors)
    accelerator.wait_for_everyone()


def load_prepared(path: Path, accelerator, model, optimizer=None, scheduler=None) -> dict:
    """:func:`load` into a prepared model; every rank reads the same checkpoint (``path`` must be complete)."""
    path = Path(path)
    if accelerator.num_processes == 1:
        return load(path, accelerator.unwrap_model(model), optimizer, scheduler)
    if _is_fsdp(accelerator):
        from safetensors.torch import load_file
        from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                             set_optimizer_state_dict)

        full = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, load_file(str(path / "model.safetensors")), options=full)
        if optimizer is not None and (path / "optimizer.pt").exists():
            set_optimizer_state_dict(model, optimizer.optimizer, _optimizer_state(path, fsdp=True), options=full)
        state = load(path, None, None, scheduler)
    else:
        state = load(path, accelerator.unwrap_model(model), optimizer, scheduler)
    if (path / "rng_ranks.pt").exists():  # each process continues its own random stream (dropout, MLM masks)
        ranks = torch.load(path / "rng_ranks.pt", weights_only=True)
        if accelerator.process_index < len(ranks):
            torch.set_rng_state(ranks[accelerator.process_index]["torch"])
            if "cuda" in ranks[accelerator.process_index] and torch.cuda.is_available():
                torch.cuda.set_rng_state(ranks[accelerator.process_index]["cuda"])
    return state


def settle(accelerator, *paths: Path) -> None:
    """Rank 0 finishes the swaps a kill interrupted (:func:`recover`); then every rank sees the same folders."""
    if accelerator.is_main_process:
        for path in paths:
            recover(path)
    accelerator.wait_for_everyone()


def resume(path: Path, accelerator, model, optimizer, scheduler, rows_table=None) -> dict | None:
    """The trainer state of the checkpoint at ``path``, its weights and optimizer/scheduler/RNG state loaded
    into the prepared objects; None (nothing loaded) when there is no complete checkpoint there.
    ``rows_table``: the active embedding rows (:mod:`xstilts.active_rows`), checked against the checkpoint's."""
    path = Path(path)
    if not distributed.broadcast((path / "trainer_state.json").exists()):
        return None
    active_rows.check_resume(path, rows_table)
    with active_rows.dense(rows_table):
        return load_prepared(path, accelerator, model, optimizer, scheduler)
