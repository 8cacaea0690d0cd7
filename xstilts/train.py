"""The one training loop, on accelerate. Read it top to bottom.

set up -> prepare -> (resume) -> loop { pick task, step, evaluate, checkpoint } -> best weights.

Multi-task training draws a task for each micro-batch with the mixture's
probabilities; which task and which batch are pure functions of (seed, step),
so a run resumed from a checkpoint replays exactly the batches an
uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import get_linear_schedule_with_warmup

from . import checkpoint
from .config import MixtureConfig, TrainConfig
from .data import TokenIds, length_grouped_batches, mixture_probabilities
from .families import get_family
from .tasks import TaskSpec


@dataclass
class TrainTask:
    """A task's training rows, plus its English dev set for model selection."""

    spec: TaskSpec
    rows: object  # datasets.Dataset of featurized rows (memory-mapped)
    dev: "object | None" = None  # evaluate.EvalSet


@dataclass
class TrainResult:
    steps: int
    best_score: float | None
    history: list[dict] = field(default_factory=list)
    drawn: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


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


class _Stream:
    """The k-th batch of a task: epoch k // n, position k % n of that epoch's shuffled order."""

    def __init__(self, rows, batch_size: int, seed: int, group: bool):
        self.rows, self.batch_size, self.seed, self.group = rows, batch_size, seed, group
        self.lengths = np.asarray(rows["length"])
        self.per_epoch = max(1, math.ceil(len(self.lengths) / batch_size))
        self._epoch, self._order = None, None

    def batch(self, k: int) -> list[dict]:
        epoch, pos = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = length_grouped_batches(self.lengths, self.batch_size, self.seed, epoch, self.group)
        cols = self.rows[self._order[pos].tolist()]
        return [dict(zip(cols, values)) for values in zip(*cols.values())]


def train(model, tasks: list[TrainTask], cfg: TrainConfig, out_dir: Path, *, tokenizer,
          seed: int = 0, mixture: MixtureConfig | None = None, log=print) -> TrainResult:
    """Train ``model`` on ``tasks`` and leave the best (or last) weights in it.

    Checkpoints go to ``out_dir/last`` and ``out_dir/best``; if ``out_dir/last``
    exists the run resumes from it.
    """
    from .evaluate import evaluate_dev  # evaluation imports training pieces; keep the cycle local

    out_dir = Path(out_dir)
    accelerator = Accelerator(mixed_precision=resolve_precision(cfg.precision))
    set_seed(seed)
    tok = TokenIds.of(tokenizer)

    # --- what to draw: task probabilities and one deterministic batch stream per task
    sizes = {t.spec.name: len(t.rows) for t in tasks}
    mixture = mixture or MixtureConfig()
    probs = mixture_probabilities(sizes, mixture.rule, mixture.cap, mixture.temperature)
    names = list(sizes)
    p = np.array([probs[n] for n in names])
    streams = {t.spec.name: _Stream(t.rows, cfg.batch_size, seed + i, cfg.group_by_length) for i, t in enumerate(tasks)}
    steps_per_epoch = max(1, math.ceil(sum(sizes.values()) / (cfg.batch_size * cfg.grad_accum)))
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    # --- optimizer: AdamW, no decay on biases and norms; linear warmup then decay
    if cfg.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    params = [(n, p_) for n, p_ in model.named_parameters() if p_.requires_grad]
    no_decay = lambda n: n.endswith("bias") or "norm" in n.lower()  # noqa: E731
    groups = [
        {"params": [p_ for n, p_ in params if not no_decay(n)], "weight_decay": cfg.weight_decay},
        {"params": [p_ for n, p_ in params if no_decay(n)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=accelerator.device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)

    # --- resume
    state = {"step": 0, "drawn": {n: 0 for n in names}, "best": None, "bad_evals": 0, "history": [],
             "train_s": 0.0, "examples": 0, "tokens": 0}
    if checkpoint.recover(out_dir / "last") and (out_dir / "last" / "trainer_state.json").exists():
        state = checkpoint.load(out_dir / "last", accelerator.unwrap_model(model), optimizer, scheduler)
        log(f"resumed from {out_dir / 'last'} at step {state['step']}/{total_steps}")

    dev_sets = [t.dev for t in tasks if t.dev is not None]
    t0 = time.perf_counter()
    model.train()
    step = state["step"]
    while step < total_steps:
        # One optimizer step: grad_accum micro-batches, each from a task drawn for (seed, step, micro).
        loss_sum = 0.0
        for micro in range(cfg.grad_accum):
            name = names[np.random.default_rng([seed, step, micro]).choice(len(names), p=p)]
            rows = streams[name].batch(state["drawn"][name])
            state["drawn"][name] += 1
            batch = {k: v.to(accelerator.device) for k, v in get_family(tasks[names.index(name)].spec.family).collate(rows, tok).items()}
            with accelerator.autocast():
                loss, _ = model(name, batch)
            if loss is not None:
                accelerator.backward(loss / cfg.grad_accum)
                loss_sum += loss.item() / cfg.grad_accum  # .item() syncs with the device; once per micro-batch is fine
            state["examples"] += len(rows)
            state["tokens"] += int(batch["attention_mask"].sum())
        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        state["step"] = step
        state["history"].append({"step": step, "loss": round(loss_sum, 6)})

        if step % cfg.eval_every == 0 or step == total_steps:
            state["train_s"] += time.perf_counter() - t0  # training time excludes evaluation and checkpointing
            if dev_sets:
                score = float(np.mean([evaluate_dev(accelerator.unwrap_model(model), d, tokenizer) for d in dev_sets]))
                state["history"][-1]["dev"] = score
                log(f"step {step}/{total_steps} loss {loss_sum:.4f} dev {score:.4f}")
                if state["best"] is None or score > state["best"]:
                    state["best"], state["bad_evals"] = score, 0
                    checkpoint.save(out_dir / "best", accelerator.unwrap_model(model))
                else:
                    state["bad_evals"] += 1
                model.train()
            else:
                log(f"step {step}/{total_steps} loss {loss_sum:.4f}")
            checkpoint.save(out_dir / "last", accelerator.unwrap_model(model), optimizer, scheduler, state)
            t0 = time.perf_counter()
            if cfg.patience and state["bad_evals"] >= cfg.patience:
                log(f"early stopping at step {step}: no dev improvement in {cfg.patience} evaluations")
                break

    model = accelerator.unwrap_model(model)
    if checkpoint.recover(out_dir / "best"):
        checkpoint.load(out_dir / "best", model)
    total = sum(state["drawn"].values()) or 1
    if len(names) > 1:
        log("drawn: " + ", ".join(f"{n} {c / total:.3f} (target {probs[n]:.3f})" for n, c in state["drawn"].items()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    epochs_done = step / steps_per_epoch
    train_s = state["train_s"]
    return TrainResult(
        steps=step,
        best_score=state["best"],
        history=state["history"],
        drawn={n: c / total for n, c in state["drawn"].items()},
        timings={
            "train_s": train_s,
            "s_per_epoch": train_s / epochs_done if epochs_done else 0.0,
            "examples_per_s": state["examples"] / train_s if train_s else 0.0,
            "tokens_per_s": state["tokens"] / train_s if train_s else 0.0,
            "peak_mem_mb": peak_mb,
        },
    )
