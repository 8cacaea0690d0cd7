"""Training: the loop and what it needs, one module each.

* :mod:`.loop`: :func:`train`, the single-process story on one screen;
* :mod:`.parts`: mixed precision, the optimizer, the deterministic task mixture and batch streams;
* :mod:`.ranks`: the loop's multi-process bookkeeping (DDP, FSDP), no-ops in one process;
* :mod:`.checkpoint`: atomic checkpoints and resuming from them;
* :mod:`.fast_dropout`: CPU dropout masks from SFC64 (the ``train.fast_dropout`` setting).

Process control under a launcher (rank 0 writes, broadcasts, barriers) is :mod:`xstilts.distributed`,
used by the pipeline and the data cache as well.
"""

from .loop import TrainResult, TrainTask, train
from .parts import resolve_precision

__all__ = ["TrainResult", "TrainTask", "resolve_precision", "train"]
