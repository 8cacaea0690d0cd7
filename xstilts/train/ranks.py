"""The loop's multi-process bookkeeping (``accelerate launch``: DDP, FSDP); with one process every part is a no-op.

Each optimizer step draws ``world_size x grad_accum`` micro-batches from the one
deterministic sequence of :class:`xstilts.train.parts.Mixture` and rank r trains on
the r-th of each group: ranks see different data, every rank keeps the same
counters, and one process is the special case world_size 1. Dev evaluation is
sharded across ranks and rank 0's score decides for all. Process control (the
process group, broadcasts, barriers) is :mod:`xstilts.distributed`.
"""

from __future__ import annotations

import contextlib
import hashlib

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, DistributedType

from .. import distributed
from ..evaluate import evaluate_dev, predict
from ..families import get_family
from . import checkpoint
from .parts import resolve_precision


def make_accelerator(precision: str) -> Accelerator:
    """The Accelerator; under a launcher the process group is set up first, with xstilts' timeout."""
    distributed.state()
    # find_unused_parameters: a step's heads differ between ranks (multi-task), and encoders carry unused
    # parts (XLM-R's pooler); DDP would otherwise wait forever for their gradients.
    return Accelerator(mixed_precision=resolve_precision(precision),
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


class Ranks:
    """This process's place in the world, and what it trained on."""

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.fsdp = accelerator.distributed_type == DistributedType.FSDP
        self.fsdp2 = bool(getattr(accelerator, "is_fsdp2", False))
        self.ddp = False  # set by prepare_optimizer()
        self.digest, self.batches = hashlib.sha256(), 0

    @property
    def sharded(self) -> bool:
        return self.fsdp or self.fsdp2

    def prepare_model(self, model):
        """``accelerator.prepare`` the model first: FSDP (1) shards it in place, and the optimizer must then be
        built over the prepared model's parameters, as accelerate recommends. FSDP2: see :meth:`prepare_optimizer`."""
        return model if self.fsdp2 else self.accelerator.prepare(model)

    def prepare_optimizer(self, model, optimizer):
        """``accelerator.prepare`` the optimizer (FSDP2: model and optimizer together, as it wants)."""
        if self.fsdp2:
            model, optimizer = self.accelerator.prepare(model, optimizer)
        else:
            optimizer = self.accelerator.prepare(optimizer)
        self.ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
        return model, optimizer

    def draw(self, mixture, seed: int, step: int, micro: int, drawn: dict) -> tuple[str, int]:
        """This rank's task and that task's batch index for micro-batch ``micro`` of ``step``.

        The world draws ``world`` micro-batches here, in rank order, and this rank takes its own; every rank
        advances every stream alike, so ``drawn`` (hence a resume) is the same on all of them."""
        for r in range(self.world):
            task = mixture.task(seed, step, micro * self.world + r)
            if r == self.rank:
                name, k = task, drawn[task]
            drawn[task] += 1
        return name, k

    def saw(self, batch: dict) -> None:
        if self.world > 1:
            self.digest.update(batch["input_ids"].numpy().tobytes())
            self.batches += 1

    def accumulating(self, model, micro: int, grad_accum: int):
        """DDP: gradients are averaged once per optimizer step, not after every micro-batch."""
        if self.ddp and micro < grad_accum - 1:
            return self.accelerator.no_sync(model)
        return contextlib.nullcontext()

    def loss(self, loss, logits):
        """No labels in this batch: None in one process; a zero that takes part in the backward otherwise."""
        if loss is None and self.world > 1:
            return zero_loss(logits)
        return loss

    def reduce(self, loss_sum: float, examples: int, tokens: int) -> tuple[float, int, int]:
        """The step's loss averaged over ranks; the world's examples and tokens."""
        if self.world == 1:
            return loss_sum, examples, tokens
        acc = self.accelerator
        summed = acc.reduce(torch.tensor([loss_sum, examples, tokens], dtype=torch.float64, device=acc.device),
                            "sum").tolist()
        return summed[0] / self.world, int(summed[1]), int(summed[2])

    def per_rank(self, model) -> list[dict]:
        """Several processes: what each rank trained on, and a check that DDP kept the replicas equal."""
        if self.world == 1:
            return []
        mine = {"rank": self.rank, "batches": self.batches, "input_digest": self.digest.hexdigest()[:16]}
        if not self.fsdp:
            with torch.no_grad():
                mine["weights_sum"] = float(sum(p.double().sum() for p in model.parameters()))
        return distributed.all_gather(mine)

    def finish(self, model, best) -> None:
        """Leave the ``best`` checkpoint's weights (a folder, or None: keep the last) in the caller's model.

        FSDP: the weights stay sharded; the caller loads the checkpoint's full weights where needed."""
        if not self.fsdp:
            model = self.accelerator.unwrap_model(model)
            if best is not None:
                checkpoint.load(best, model)
        if self.world > 1:
            self.accelerator.free_memory()  # the DDP/FSDP wrappers and their buffers, before the next phase's model


def zero_loss(logits):
    """A zero that backpropagates through the whole forward pass (so DDP/FSDP gradient collectives match)."""
    parts = logits if isinstance(logits, (tuple, list)) else [logits]
    return sum(x.float().sum() for x in parts if torch.is_tensor(x) and x.is_floating_point()) * 0.0


def dev_score(accelerator, model, dev, tokenizer) -> float:
    """The dev score that selects the best checkpoint; identical on every rank.

    One process: :func:`evaluate.evaluate_dev`. Several: each rank predicts every world-th row (shards padded
    to one length, so FSDP's per-batch collectives line up), the logits are gathered to all ranks, decoded
    and scored, and rank 0's number is broadcast.
    """
    if accelerator.num_processes == 1:
        return evaluate_dev(accelerator.unwrap_model(model), dev, tokenizer)
    world, rank, n = accelerator.num_processes, accelerator.process_index, len(dev.rows)
    mine = list(range(rank, n, world))
    per = -(-n // world)
    padded = mine + [mine[-1] if mine else 0] * (per - len(mine))
    net = model if accelerator.distributed_type == DistributedType.FSDP else accelerator.unwrap_model(model)
    logits = predict(net, dev.spec.name, dev.spec.family, dev.rows.select(padded), tokenizer)[: len(mine)] if per else []
    full = [None] * n
    for part in distributed.all_gather(list(zip(mine, logits))):
        for i, x in part:
            full[i] = x
    spec, fam = dev.spec, get_family(dev.spec.family)
    rows = [dict(zip(dev.rows.column_names, v)) for v in zip(*dev.rows.to_dict().values())]
    scores = fam.score(fam.decode(full, rows, dev.examples, spec), dev.examples, spec, dev.lang)
    return float(distributed.broadcast(float(scores[spec.primary_metric])))
