"""The one training loop, on accelerate. Read it top to bottom.

set up -> prepare -> (resume) -> loop { pick task, step, evaluate, checkpoint } -> best weights.

Multi-task training draws a task for each micro-batch with the mixture's
probabilities; which task and which batch are pure functions of (seed, step),
so a run resumed from a checkpoint replays exactly the batches an
uninterrupted run would have seen.

Under ``accelerate launch`` (DDP, FSDP) each optimizer step draws
``world_size x grad_accum`` micro-batches from that same deterministic sequence
and rank r trains on the r-th of each group: ranks see different data, every
rank keeps the same counters, and one process is the special case world_size 1.
Only rank 0 writes checkpoints (FSDP shards are gathered first); dev evaluation
is sharded across ranks and rank 0's score decides for all (see
:mod:`xstilts.distributed`).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, DistributedType, set_seed
from transformers import get_linear_schedule_with_warmup

from . import active_rows, checkpoint, distributed, progress
from .config import MixtureConfig, TrainConfig
from .data import TokenIds, length_grouped_batches, mixture_probabilities
from .families import get_family
from .families.base import collate_view, take
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
    weights: Path | None = None  # the checkpoint folder holding the final weights (best, else last)
    sharded: bool = False  # FSDP: the model passed in is sharded in place; load ``weights`` into a fresh one
    per_rank: list[dict] = field(default_factory=list)  # several processes: what each rank trained on
    embedding: dict = field(default_factory=dict)  # the word-embedding path: active rows (how many) or dense (why)


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


class _Stream:
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
    distributed.state()  # under a launcher: the process group, with xstilts' timeout, before the Accelerator
    # find_unused_parameters: a step's heads differ between ranks (multi-task), and encoders carry unused
    # parts (XLM-R's pooler); DDP would otherwise wait forever for their gradients.
    accelerator = Accelerator(mixed_precision=resolve_precision(cfg.precision),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    world, rank = accelerator.num_processes, accelerator.process_index
    fsdp = accelerator.distributed_type == DistributedType.FSDP
    set_seed(seed)
    tok = TokenIds.of(tokenizer)

    # --- what to draw: task probabilities and one deterministic batch stream per task
    sizes = {t.spec.name: len(t.rows) for t in tasks}
    mixture = mixture or MixtureConfig()
    probs = mixture_probabilities(sizes, mixture.rule, mixture.cap, mixture.temperature)
    names = list(sizes)
    p = np.array([probs[n] for n in names])
    streams = {t.spec.name: _Stream(t.rows, get_family(t.spec.family), cfg.batch_size, seed + i, cfg.group_by_length)
               for i, t in enumerate(tasks)}
    steps_per_epoch = max(1, math.ceil(sum(sizes.values()) / (cfg.batch_size * cfg.grad_accum * world)))
    total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    # --- optimizer: AdamW, no decay on biases and norms; linear warmup then decay
    if cfg.freeze_embeddings:
        model.encoder.get_input_embeddings().weight.requires_grad_(False)
    # FSDP (1) shards the model in place: build the optimizer over the prepared model's parameters, as
    # accelerate recommends; FSDP2 instead wants model and optimizer prepared together.
    fsdp2 = bool(getattr(accelerator, "is_fsdp2", False))
    if not fsdp2:
        model = accelerator.prepare(model)
    # exact active-row training of the word-embedding table where the loss reads only the data's rows
    embedding, rows_table = active_rows.install(accelerator.unwrap_model(model), tasks, cfg, pad_id=tok.pad_id,
                                                processes=world, sharded=fsdp or fsdp2)
    log(embedding.describe())
    params = [(n, p_) for n, p_ in model.named_parameters() if p_.requires_grad]
    no_decay = lambda n: n.endswith("bias") or "norm" in n.lower()  # noqa: E731
    groups = [
        {"params": [p_ for n, p_ in params if not no_decay(n)], "weight_decay": cfg.weight_decay},
        {"params": [p_ for n, p_ in params if no_decay(n)], "weight_decay": 0.0},
    ]
    optimizer = _adamw(groups, cfg.lr, accelerator.device)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
    if fsdp2:
        model, optimizer = accelerator.prepare(model, optimizer)
    else:
        optimizer = accelerator.prepare(optimizer)
    ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)

    # --- resume
    state = {"step": 0, "drawn": {n: 0 for n in names}, "best": None, "bad_evals": 0, "history": [],
             "train_s": 0.0, "examples": 0, "tokens": 0}
    if accelerator.is_main_process:  # one rank finishes a swap a kill interrupted; then all see the same folders
        checkpoint.recover(out_dir / "last")
        checkpoint.recover(out_dir / "best")
    accelerator.wait_for_everyone()
    if distributed.broadcast((out_dir / "last" / "trainer_state.json").exists()):
        active_rows.check_resume(out_dir / "last", rows_table)
        with active_rows.dense(rows_table):
            state = checkpoint.load_prepared(out_dir / "last", accelerator, model, optimizer, scheduler)
        log(f"resumed from {out_dir / 'last'} at step {state['step']}/{total_steps}")

    dev_sets = [d for t in tasks for d in (t.dev if isinstance(t.dev, list) else [t.dev]) if d is not None]
    track = track if track is not None and accelerator.is_main_process else (lambda values, step: None)
    t0 = time.perf_counter()
    model.train()
    step = state["step"]
    bar = progress.bar(total_steps, desc, unit="step", initial=step, log=log, show=accelerator.is_main_process)
    log = bar.wrap(log)
    digest, own_batches = hashlib.sha256(), 0  # several processes: what this rank trained on
    while step < total_steps:
        # One optimizer step: grad_accum micro-batches, each from a task drawn for (seed, step, micro).
        loss_sum = 0.0
        examples = tokens = 0
        for micro in range(cfg.grad_accum):
            # The world draws `world` micro-batches here, in rank order, and this rank takes its own; every rank
            # advances every stream alike, so `drawn` (hence a resume) is the same on all of them.
            for r in range(world):
                drawn = names[np.random.default_rng([seed, step, micro * world + r]).choice(len(names), p=p)]
                if r == rank:
                    name, k = drawn, state["drawn"][drawn]
                state["drawn"][drawn] += 1
            rows = streams[name].batch(k)
            batch = get_family(tasks[names.index(name)].spec.family).collate(rows, tok)
            if world > 1:
                digest.update(batch["input_ids"].numpy().tobytes())
                own_batches += 1
            batch = {k_: v.to(accelerator.device) for k_, v in batch.items()}
            # DDP: gradients are averaged once per optimizer step, not after every micro-batch
            sync = accelerator.no_sync(model) if ddp and micro < cfg.grad_accum - 1 else contextlib.nullcontext()
            with sync:
                with accelerator.autocast():
                    loss, logits = model(name, batch)
                if loss is None and world > 1:
                    loss = _zero_loss(logits)  # no labels here, but every rank must take part in the backward
                if loss is not None:
                    accelerator.backward(loss / cfg.grad_accum)
                    loss_sum += loss.item() / cfg.grad_accum  # .item() syncs with the device; once per micro-batch is fine
            examples += len(rows)
            tokens += int(batch["attention_mask"].sum())
        if world > 1:  # the step's loss averaged over ranks; the world's examples and tokens
            summed = accelerator.reduce(torch.tensor([loss_sum, examples, tokens], dtype=torch.float64,
                                                     device=accelerator.device), "sum").tolist()
            loss_sum, examples, tokens = summed[0] / world, int(summed[1]), int(summed[2])
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
            active_rows.enter_dense(rows_table)  # the whole table, up to date, for evaluation and checkpoints
            if dev_sets:
                score = float(np.mean([_dev_score(accelerator, model, d, tokenizer) for d in dev_sets]))
                state["history"][-1]["dev"] = score
                track({"dev": score}, step)
                log(f"step {step}/{total_steps} loss {loss_sum:.4f} dev {score:.4f}")
                if state["best"] is None or score > state["best"]:
                    state["best"], state["bad_evals"] = score, 0
                    checkpoint.save_prepared(out_dir / "best", accelerator, model)
                else:
                    state["bad_evals"] += 1
                model.train()
            else:
                log(f"step {step}/{total_steps} loss {loss_sum:.4f}")
            checkpoint.save_prepared(out_dir / "last", accelerator, model, optimizer, scheduler, state,
                                     tensors=rows_table and rows_table.checkpoint_tensors())
            active_rows.leave_dense(rows_table)
            t0 = time.perf_counter()
            if cfg.patience and state["bad_evals"] >= cfg.patience:
                log(f"early stopping at step {step}: no dev improvement in {cfg.patience} evaluations")
                break

    if rows_table is not None:
        rows_table.finish()
    bar.close()
    if accelerator.is_main_process:
        checkpoint.recover(out_dir / "best")
    accelerator.wait_for_everyone()
    has_best = distributed.broadcast((out_dir / "best").exists())
    per_rank = []
    if world > 1:  # what each rank trained on (this process's batches), and a check that DDP kept replicas equal
        mine = {"rank": rank, "batches": own_batches, "input_digest": digest.hexdigest()[:16]}
        if not fsdp:
            with torch.no_grad():
                mine["weights_sum"] = float(sum(p_.double().sum() for p_ in model.parameters()))
        per_rank = distributed.all_gather(mine)
    if not fsdp:  # FSDP: the weights stay sharded; the caller loads the checkpoint's full weights where needed
        model = accelerator.unwrap_model(model)
        if has_best:
            checkpoint.load(out_dir / "best", model)
    if world > 1:
        accelerator.free_memory()  # the DDP/FSDP wrappers and their buffers, before the next phase's model
    total = sum(state["drawn"].values()) or 1
    if len(names) > 1:
        log("drawn: " + ", ".join(f"{n} {c / total:.3f} (target {probs[n]:.3f})" for n, c in state["drawn"].items()))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if torch.cuda.is_available():
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    epochs_done = step / steps_per_epoch
    train_s = state["train_s"]
    timings_extra = {"processes": world} if world > 1 else {}
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
            **timings_extra,
        },
        weights=out_dir / ("best" if has_best else "last"),
        sharded=fsdp,
        per_rank=per_rank,
        embedding=embedding.summary(),
    )


def _zero_loss(logits):
    """A zero that backpropagates through the whole forward pass (so DDP/FSDP gradient collectives match)."""
    parts = logits if isinstance(logits, (tuple, list)) else [logits]
    return sum(x.float().sum() for x in parts if torch.is_tensor(x) and x.is_floating_point()) * 0.0


def _dev_score(accelerator, model, dev, tokenizer) -> float:
    """The dev score that selects the best checkpoint; identical on every rank.

    One process: :func:`evaluate.evaluate_dev`. Several: each rank predicts every world-th row (shards padded
    to one length, so FSDP's per-batch collectives line up), the logits are gathered to all ranks, decoded
    and scored, and rank 0's number is broadcast.
    """
    from .evaluate import evaluate_dev, predict  # evaluation imports training pieces; keep the cycle local

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
