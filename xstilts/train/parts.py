"""The training loop's parts: mixed precision, the optimizer, and each task's deterministic batch stream."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..config import MixtureConfig, TrainConfig
from ..data import length_grouped_batches, mixture_probabilities
from ..families import get_family
from ..families.base import collate_view, take


def resolve_precision(precision: str) -> str:
    """accelerate's mixed_precision value: bf16 where the hardware runs it natively."""
    if precision == "fp32":
        return "no"
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    cpu_bf16 = getattr(torch.backends.mkldnn, "is_bf16_supported", lambda: False)()
    return "bf16" if cpu_bf16 else "no"


def adamw(model, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters, no weight decay on biases and norms."""
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = lambda n: n.endswith("bias") or "norm" in n.lower()  # noqa: E731
    groups = [
        {"params": [p for n, p in params if not no_decay(n)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in params if no_decay(n)], "weight_decay": 0.0},
    ]
    return _adamw(groups, cfg.lr, device)


def _adamw(groups: list[dict], lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel wherever it has one for ``device`` (CUDA; CPU since torch 2.4: one
    kernel over every parameter instead of the for-loop default, as the Trainer's ``adamw_torch_fused``)."""
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices as fused_devices
    except ImportError:  # a private helper; without it, trust CUDA only
        fused = device.type == "cuda"
    else:
        fused = device.type in fused_devices()
    fused = fused and all(p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, fused=fused)


class Stream:
    """The k-th batch of a task: epoch k // n, position k % n of that epoch's shuffled order."""

    def __init__(self, rows, family, batch_size: int, seed: int, group: bool):
        self.batch_size, self.seed, self.group = batch_size, seed, group
        self.rows = collate_view(rows, family)  # only the columns collate reads (not span QA's offsets)
        self.lengths = np.asarray(rows["length"])
        self.per_epoch = max(1, math.ceil(len(self.lengths) / batch_size))
        self._epoch, self._order = None, None

    def batch(self, k: int) -> list[dict]:
        epoch, pos = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = length_grouped_batches(self.lengths, self.batch_size, self.seed, epoch, self.group)
        return take(self.rows, self._order[pos])


class Mixture:
    """What to draw: the tasks' probabilities, one :class:`Stream` per task, and how many steps make the run."""

    def __init__(self, tasks, cfg: TrainConfig, mixture: MixtureConfig | None, seed: int, world: int):
        sizes = {t.spec.name: len(t.rows) for t in tasks}
        mixture = mixture or MixtureConfig()
        self.probs = mixture_probabilities(sizes, mixture.rule, mixture.cap, mixture.temperature)
        self.names = list(sizes)
        self.p = np.array([self.probs[n] for n in self.names])
        self.families = {t.spec.name: get_family(t.spec.family) for t in tasks}
        self.streams = {t.spec.name: Stream(t.rows, self.families[t.spec.name], cfg.batch_size, seed + i,
                                            cfg.group_by_length) for i, t in enumerate(tasks)}
        self.steps_per_epoch = max(1, math.ceil(sum(sizes.values()) / (cfg.batch_size * cfg.grad_accum * world)))
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))

    def task(self, seed: int, step: int, slot: int) -> str:
        """The task of micro-batch ``slot`` of optimizer step ``step``: a pure function of (seed, step, slot)."""
        return self.names[np.random.default_rng([seed, step, slot]).choice(len(self.names), p=self.p)]

    def batch(self, name: str, k: int, tok) -> tuple[list[dict], dict]:
        """Task ``name``'s k-th batch: its rows and the collated tensors."""
        rows = self.streams[name].batch(k)
        return rows, self.families[name].collate(rows, tok)
