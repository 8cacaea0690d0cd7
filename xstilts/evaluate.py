"""Predict -> decode -> score, per task and language."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import progress
from .data import TokenIds, eval_batches
from .families import get_family
from .families.base import batch_inputs, collate_view, take
from .families.retrieval import mean_pool, resolve_layer
from .tasks import TaskSpec


@dataclass
class EvalSet:
    spec: TaskSpec
    lang: str
    examples: list[dict]
    rows: object  # datasets.Dataset of featurized rows
    split: str = "dev"


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict(model, task: str, family: str, rows, tokenizer, batch_size: int = 64) -> list:
    """Per-row logits in row order; batches are sorted by length so padding is minimal."""
    model.eval()
    tok, fam, device = TokenIds.of(tokenizer), get_family(family), _device(model)
    out = [None] * len(rows)
    inputs = collate_view(rows, fam)  # decode-only columns (span QA's offsets) are read once, by evaluate
    batches = eval_batches(np.asarray(rows["length"]), batch_size)
    with progress.bar(len(batches), f"predict {task}", unit="batch", plain=False) as bar:  # a terminal only
        for idx in batches:
            batch = {k: v.to(device) for k, v in fam.collate(take(inputs, idx), tok).items()}
            _, logits = model(task, batch)
            for i, x in zip(idx.tolist(), logits):
                out[i] = (x.float() if x.is_floating_point() else x).cpu()
            bar.update(1)
    return out


def evaluate(model, eval_set: EvalSet, tokenizer, batch_size: int = 64, task: str | None = None):
    """Scores and per-example predictions of ``model`` on ``eval_set``.

    Args:
        task: the head to use (default: the eval set's task). Zero-shot evaluation
            passes the target task's own name: its head was trained on English.
    """
    spec = eval_set.spec
    fam = get_family(spec.family)
    logits = predict(model, task or spec.name, spec.family, eval_set.rows, tokenizer, batch_size)
    rows = [dict(zip(eval_set.rows.column_names, v)) for v in zip(*eval_set.rows.to_dict().values())]
    predictions = fam.decode(logits, rows, eval_set.examples, spec)
    return fam.score(predictions, eval_set.examples, spec, eval_set.lang), predictions


def evaluate_dev(model, eval_set: EvalSet, tokenizer) -> float:
    """The model-selection number: the task's primary metric on its English dev set."""
    scores, _ = evaluate(model, eval_set, tokenizer)
    return float(scores[eval_set.spec.primary_metric])


@torch.no_grad()
def embed(encoder, rows, tokenizer, layer="middle", batch_size: int = 64) -> np.ndarray:
    """Mean-pooled hidden states of ``layer`` for every row (its ``input_ids``), in row order."""
    encoder.eval()
    tok, device = TokenIds.of(tokenizer), _device(encoder)
    n_layers = encoder.config.num_hidden_layers
    li = resolve_layer(layer, n_layers)
    out = np.zeros((len(rows), encoder.config.hidden_size), dtype=np.float32)
    inputs = rows.select_columns(["input_ids"])
    for idx in eval_batches(np.asarray(rows["length"]), batch_size):
        batch = {k: v.to(device) for k, v in batch_inputs(take(inputs, idx), tok.pad_id).items()}
        hs = encoder(**batch, output_hidden_states=True).hidden_states
        out[idx] = mean_pool(hs, batch["attention_mask"], li).cpu().numpy()
    return out
