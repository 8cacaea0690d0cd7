"""Process control under ``accelerate launch`` (DDP, FSDP); all of it a no-op in one process.

Under a launcher every process runs the same pipeline. The rules that keep them
correct:

* only the main process (rank 0) writes files: checkpoints, ``done.json``,
  predictions, store rows, featurized caches (built by rank 0 while the others
  wait, then memory-mapped by all);
* every rank takes the same decisions (phase done or not, resume or not, best
  dev score): rank 0's view is broadcast;
* ranks meet at a barrier around every checkpoint save and phase completion, so
  no rank reads a half-written folder.

Without a launcher (``WORLD_SIZE`` unset or 1) nothing here touches
``torch.distributed``: single-process runs behave exactly as without this module.
Inside :func:`solo` (work that only rank 0 does, such as the zero-shot evaluation
phase) the helpers behave as in one process, so that work issues no collective.
"""

from __future__ import annotations

import contextlib
import datetime
import os

# A rank waits at most this long for the others (e.g. while rank 0 alone evaluates or writes a 70B checkpoint).
TIMEOUT_S = float(os.environ.get("XSTILTS_DIST_TIMEOUT_S", 4 * 3600))

_solo_depth = 0


def launched() -> bool:
    """Started by ``accelerate launch`` / ``torchrun`` / ``mpirun`` with more than one process."""
    for var in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        if int(os.environ.get(var, "1") or 1) > 1:
            return True
    return False


def state():
    """accelerate's ``PartialState`` (initialises the process group once); None in one process."""
    if not launched():
        return None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    # The first call sets the process group up, with a timeout long enough for rank-0-only work;
    # an Accelerator created later reuses this state. ACCELERATE_USE_CPU as Accelerator itself reads it.
    s = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"), timeout=datetime.timedelta(seconds=TIMEOUT_S))
    if s.num_processes == 1:
        # e.g. `accelerate launch --num_processes 2` on a machine without GPUs: every process would believe it
        # is alone, train the same batches and write the same files.
        from .errors import ConfigError

        raise ConfigError(f"started as one of {os.environ.get('WORLD_SIZE', 'several')} processes, but accelerate "
                          "set up no distributed backend for them (no GPUs?); on CPUs set ACCELERATE_USE_CPU=1")
    return s


def shutdown() -> None:
    """End of a launched command: the ranks leave together and the process group is destroyed. (A rank that
    exits with the group's threads still running can abort in teardown, "terminate called without an active
    exception", and the launcher then fails the whole command.)"""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _active():
    return None if _solo_depth else state()


def world_size() -> int:
    s = _active()
    return s.num_processes if s is not None else 1


def rank() -> int:
    s = _active()
    return s.process_index if s is not None else 0


def is_main() -> bool:
    """True in rank 0 (and in one process, and inside :func:`solo`)."""
    return rank() == 0


def barrier() -> None:
    s = _active()
    if s is not None and s.num_processes > 1:
        s.wait_for_everyone()


@contextlib.contextmanager
def main_process_first():
    """Rank 0 runs the block first (e.g. builds a cache); the others run it after rank 0 has finished."""
    s = _active()
    if s is None or s.num_processes == 1:
        yield
        return
    with s.main_process_first():
        yield


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (picklable objects)."""
    s = _active()
    if s is None or s.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    box = [obj if s.is_main_process else None]
    broadcast_object_list(box, from_process=0)
    return box[0]


def all_gather(obj) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    s = _active()
    if s is None or s.num_processes == 1:
        return [obj]
    import torch.distributed as dist

    out = [None] * s.num_processes
    dist.all_gather_object(out, obj)
    return out


@contextlib.contextmanager
def solo():
    """Work that rank 0 does alone: inside, every helper here acts as in one process (no collectives)."""
    global _solo_depth
    _solo_depth += 1
    try:
        yield
    finally:
        _solo_depth -= 1
