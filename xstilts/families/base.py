"""Pieces every family shares: padding and a small classification-style head."""

from __future__ import annotations

import torch
from torch import nn


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad integer sequences into a (N, max_len) tensor (dynamic padding)."""
    width = max(len(s) for s in seqs)
    out = torch.full((len(seqs), width), value, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return out


def attention_from_lengths(rows: list[dict], ids: torch.Tensor) -> torch.Tensor:
    lengths = torch.as_tensor([len(r["input_ids"]) for r in rows])
    return (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()


def batch_inputs(rows: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids padded to the longest row of the batch, and its attention mask."""
    ids = pad([r["input_ids"] for r in rows], pad_id)
    return {"input_ids": ids, "attention_mask": attention_from_lengths(rows, ids)}


class PooledHead(nn.Module):
    """RoBERTa-style head on the first token: dropout, dense, tanh, dropout, projection."""

    def __init__(self, hidden: int, n_out: int, dropout: float = 0.1):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, n_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.dropout(hidden[:, 0])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)
