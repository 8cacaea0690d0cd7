"""The one training loop, on accelerate. Read it top to bottom.

set up -> prepare -> (resume) -> loop { pick task, step, evaluate, checkpoint } -> best weights.

Multi-task training draws a task for each micro-batch with the mixture's
probabilities; which task and which batch are pure functions of (seed, step),
so a run resumed from a checkpoint replays exactly the batches an
uninterrupted run would have seen (:mod:`xstilts.train.parts`).

Several processes (``accelerate launch``: DDP, FSDP) change only the calls on
``ranks`` (:mod:`xstilts.train.ranks`): which micro-batch this rank takes, the
gradient sync, the reduced loss; all of them are no-ops in one process. Only
rank 0 writes checkpoints (:mod:`xstilts.train.checkpoint`).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import set_seed
from transformers import get_linear_schedule_with_warmup

from .. import active_rows, distributed, progress
from ..config import MixtureConfig, TrainConfig
from ..data import TokenIds
from ..tasks import TaskSpec
from . import checkpoint, fast_dropout
from .parts import Mixture, adamw
from .ranks import Ranks, dev_score, make_accelerator


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
    weights: Path | None = None  # the checkpoint folder holding the final weights (best, else last)
    sharded: bool = False  # FSDP: the model passed in is sharded in place; load ``weights`` into a fresh one
    per_rank: list[dict] = field(default_factory=list)  # several processes: what each rank trained on
    embedding: dict = field(default_factory=dict)  # the word-embedding path: active rows (how many) or dense (why)


def train(model, tasks: list[TrainTask], cfg: TrainConfig, out_dir: Path, *, tokenizer,
          seed: int = 0, mixture: MixtureConfig | None = None, log=print, desc: str = "train",
          track=None) -> TrainResult:
    """Train ``model`` on ``tasks`` and leave the best (or last) weights in it.

    Checkpoints go to ``out_dir/last`` and ``out_dir/best``; if ``out_dir/last``
    exists the run resumes from it.

    Args:
        desc: the progress bar's label (:mod:`xstilts.progress`).
        track: ``track(values, step)`` receives each step's loss and lr and each dev score
            (:class:`xstilts.tracking.Trackers`); rank 0 only.
    """
    out_dir = Path(out_dir)
    accelerator = make_accelerator(cfg.precision)
    ranks = Ranks(accelerator)
    fast_dropout.use(model.encoder, cfg.fast_dropout)  # CPU dropout masks from SFC64, or torch's
    set_seed(seed)
    tok = TokenIds.of(tokenizer)
    mix = Mixture(tasks, cfg, mixture, seed, ranks.world)  # task probabilities, one batch stream per task
    total_steps = mix.total_steps

    # --- prepare: AdamW (fused where torch has it), linear warmup then decay; exact active-row training of the
    # word-embedding table where the loss reads only the data's rows
    if cfg.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    model = ranks.prepare_model(model)
    embedding, rows_table = active_rows.install(accelerator.unwrap_model(model), tasks, cfg, pad_id=tok.pad_id,
                                                processes=ranks.world, sharded=ranks.sharded)
    log(embedding.describe())
    model, optimizer = ranks.prepare_optimizer(model, adamw(model, cfg, accelerator.device))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)

    # --- resume
    checkpoint.settle(accelerator, out_dir / "last", out_dir / "best")
    state = checkpoint.resume(out_dir / "last", accelerator, model, optimizer, scheduler, rows_table)
    if state is None:
        state = {"step": 0, "drawn": {n: 0 for n in mix.names}, "best": None, "bad_evals": 0, "history": [],
                 "train_s": 0.0, "examples": 0, "tokens": 0}
    else:
        log(f"resumed from {out_dir / 'last'} at step {state['step']}/{total_steps}")

    dev_sets = [d for t in tasks for d in (t.dev if isinstance(t.dev, list) else [t.dev]) if d is not None]
    track = track if track is not None and accelerator.is_main_process else (lambda values, step: None)
    t0 = time.perf_counter()
    model.train()
    step = state["step"]
    bar = progress.bar(total_steps, desc, unit="step", initial=step, log=log, show=accelerator.is_main_process)
    log = bar.wrap(log)
    while step < total_steps:
        # One optimizer step: grad_accum micro-batches, each from a task drawn for (seed, step, micro).
        loss_sum = 0.0
        examples = tokens = 0
        for micro in range(cfg.grad_accum):
            name, k = ranks.draw(mix, seed, step, micro, state["drawn"])
            rows, batch = mix.batch(name, k, tok)
            ranks.saw(batch)
            batch = {k_: v.to(accelerator.device) for k_, v in batch.items()}
            with ranks.accumulating(model, micro, cfg.grad_accum):
                with accelerator.autocast():
                    loss, logits = model(name, batch)
                loss = ranks.loss(loss, logits)
                if loss is not None:
                    accelerator.backward(loss / cfg.grad_accum)
                    loss_sum += loss.item() / cfg.grad_accum  # .item() syncs with the device; once per micro-batch is fine
            examples += len(rows)
            tokens += int(batch["attention_mask"].sum())
        loss_sum, examples, tokens = ranks.reduce(loss_sum, examples, tokens)
        state["examples"] += examples
        state["tokens"] += tokens
        accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        if rows_table is not None and not accelerator.optimizer_step_was_skipped:
            rows_table.stepped(optimizer)  # the decay the inactive rows owe, at this step's lr
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        state["step"] = step
        state["history"].append({"step": step, "loss": round(loss_sum, 6)})
        lr = scheduler.get_last_lr()[0]
        bar.update(1, examples=examples, loss=loss_sum, lr=lr)
        track({"loss": loss_sum, "lr": lr}, step)

        if step % cfg.eval_every == 0 or step == total_steps:
            state["train_s"] += time.perf_counter() - t0  # training time excludes evaluation and checkpointing
            _evaluate_and_save(accelerator, model, optimizer, scheduler, rows_table, state, dev_sets, tokenizer,
                               out_dir, log, track, f"step {step}/{total_steps} loss {loss_sum:.4f}")
            t0 = time.perf_counter()
            if cfg.patience and state["bad_evals"] >= cfg.patience:
                log(f"early stopping at step {step}: no dev improvement in {cfg.patience} evaluations")
                break

    if rows_table is not None:
        rows_table.finish()
    bar.close()
    checkpoint.settle(accelerator, out_dir / "best")
    has_best = distributed.broadcast((out_dir / "best").exists())
    per_rank = ranks.per_rank(model)
    ranks.finish(model, out_dir / "best" if has_best else None)
    return _result(state, mix, step, log, weights=out_dir / ("best" if has_best else "last"), sharded=ranks.fsdp,
                   per_rank=per_rank, embedding=embedding.summary(), processes=ranks.world)


def _evaluate_and_save(accelerator, model, optimizer, scheduler, rows_table, state, dev_sets, tokenizer, out_dir,
                       log, track, line: str) -> None:
    """Score the dev sets (their mean picks ``best``), then write the ``last`` checkpoint."""
    step = state["step"]
    active_rows.enter_dense(rows_table)  # the whole table, up to date, for evaluation and checkpoints
    if dev_sets:
        score = float(np.mean([dev_score(accelerator, model, d, tokenizer) for d in dev_sets]))
        state["history"][-1]["dev"] = score
        track({"dev": score}, step)
        log(f"{line} dev {score:.4f}")
        if state["best"] is None or score > state["best"]:
            state["best"], state["bad_evals"] = score, 0
            checkpoint.save_prepared(out_dir / "best", accelerator, model)
        else:
            state["bad_evals"] += 1
        model.train()
    else:
        log(line)
    checkpoint.save_prepared(out_dir / "last", accelerator, model, optimizer, scheduler, state,
                             tensors=rows_table and rows_table.checkpoint_tensors())
    active_rows.leave_dense(rows_table)


def _result(state: dict, mix: Mixture, step: int, log, processes: int, **fields) -> TrainResult:
    """The run's summary: steps, best dev score, history, the drawn task fractions and the timings."""
    total = sum(state["drawn"].values()) or 1
    if len(mix.names) > 1:
        log("drawn: " + ", ".join(f"{n} {c / total:.3f} (target {mix.probs[n]:.3f})" for n, c in state["drawn"].items()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    epochs_done = step / mix.steps_per_epoch
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
            **({"processes": processes} if processes > 1 else {}),
        },
        **fields,
    )
