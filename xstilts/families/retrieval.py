"""Sentence retrieval (Tatoeba, BUCC, LAReQA): no head and no training.

Sentences are embedded by mean-pooling the hidden states of one encoder layer
(XTREME used a middle layer: 14 of 24 for XLM-R large) and compared by cosine
similarity. Scored straight on the phase-2 encoder.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from .base import batch_inputs

FEATURIZE_VERSION = 1


def featurize(examples, tokenizer, spec, max_length, stride=None):
    """``examples``: ``{"text": str}`` records, one per sentence to embed."""
    enc = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "example_idx": list(range(len(examples)))}


def make_head(hidden_size, spec):
    return None


def collate(rows, tok):
    return batch_inputs(rows, tok.pad_id)


def resolve_layer(layer, n_layers: int) -> int:
    """Index into ``hidden_states`` (0 = embeddings). ``"middle"`` is XTREME's choice."""
    if layer in (None, "middle"):
        return max(1, round(n_layers * 14 / 24))
    layer = int(layer)
    return layer if layer >= 0 else n_layers + 1 + layer


@torch.no_grad()
def mean_pool(hidden_states: tuple, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
    h = hidden_states[layer].float()
    m = attention_mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


def score_aligned(source_emb: np.ndarray, target_emb: np.ndarray) -> dict[str, float]:
    """Tatoeba: nearest target of each source by cosine; correct when it is the aligned one."""
    return {"accuracy": metrics.tatoeba_accuracy(source_emb, target_emb)}
