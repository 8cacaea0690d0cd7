"""Pieces every family shares: padding, reading batch rows, a classification-style head, protocol defaults."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np
import torch
from torch import nn


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    """Right-pad integer sequences into a (N, max_len) int64 tensor (dynamic padding).

    One numpy fill of every token at once (row-major boolean mask), not one tensor per row:
    about 6x faster for a 32 x 128 batch.
    """
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    out = np.full((len(seqs), int(lengths.max())), value, dtype=np.int64)
    out[np.arange(out.shape[1]) < lengths[:, None]] = np.fromiter(
        chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    return torch.from_numpy(out)


def collate_view(rows, family):
    """``rows`` (a ``datasets.Dataset``) narrowed to the columns ``family.collate`` reads.

    Each family declares them as ``COLLATE_COLUMNS``; decode-only columns (span QA's
    per-token ``offsets``, ``example_idx``, tagging's ``word_start``) are then never
    turned into Python objects while batching. Selecting is a view: nothing is copied.
    """
    return rows.select_columns(list(family.COLLATE_COLUMNS))


def take(rows, indices) -> list[dict]:
    """Rows ``indices`` of a ``datasets.Dataset`` as one dict per row (what ``collate`` takes)."""
    cols = rows[np.asarray(indices).tolist()]
    return [dict(zip(cols, values)) for values in zip(*cols.values())]


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


# ---------------------------------------------------------------- protocol defaults
# Families re-export the ones that fit them (``from .base import keep_stride as effective_stride``),
# so each module states its whole protocol (see :class:`xstilts.families.Family`).


class BadField(Exception):
    """A record's ``field`` holds a value the family cannot use; the caller names file/row (DataError)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def pooled_probe(hidden, batch):
    """The first token's hidden state and the example's label (what a pooled head reads)."""
    return hidden[:, 0], batch["label"]


def not_probed(reason: str):
    def probe_features(hidden, batch):
        from ..errors import ConfigError

        raise ConfigError(f"no linear-probe features: {reason}")
    return probe_features


def no_reader_kwargs(spec) -> dict:
    return {}


def accept_example(example: dict, spec) -> None:
    return None


def keep_record(record: dict, spec) -> dict | None:
    return record


def keep_records(records: list[dict]) -> list[dict]:
    return records


def count_loaded(spec, split, lang, path_of, load) -> int:
    return len(load())


def no_labels(examples) -> set:
    return set()


def keep_stride(examples, tokenizer, max_length, stride=None):
    return stride


def not_encoder_scored(spec, split, lang, path_of, embed, *, limit=None, per_example=None, aligned=None):
    from ..errors import XstiltsError

    raise XstiltsError(f"task {spec.name!r}: a {spec.family} task is scored through its trained head "
                       f"(decode + score), not straight on the encoder")


def no_per_example_scores(predictions, examples) -> None:
    return None


def label_hits(predictions, examples) -> list[float]:
    """1.0/0.0 per example: the prediction equals the gold ``label`` (for paired tests over examples)."""
    return [float(p == e["label"]) for p, e in zip(predictions, examples)]


def as_list(predictions, examples) -> list:
    return predictions


def one_per_line(preds, ids, dest_stem: Path) -> tuple[Path, None]:
    """XTREME submission layout: ``<stem>.tsv`` with one prediction per line."""
    out = Path(f"{dest_stem}.tsv")
    out.write_text("".join(f"{p}\n" for p in preds), encoding="utf-8")
    return out, None
