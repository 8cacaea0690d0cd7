"""Exact active-row training of the word-embedding table.

A training phase knows, before its first step, every token id its featurized training rows contain. Rows of
the word-embedding table outside that set never receive a gradient during the phase, so under AdamW their
moments stay zero and their only change is decoupled weight decay: after steps with learning rates lr_1..lr_n
a row is ``w * prod(1 - lr_t * wd)``. So the phase trains only the active rows, as a compact
``(n_active, hidden)`` parameter read through an id map, and applies the product to the full table (then
scatters the compact rows into it) whenever the model is needed whole: dev evaluation, checkpoints, the end
of the phase. The gradient, the AdamW moments and the optimizer's work shrink from the vocabulary (250,002
rows for XLM-R / mE5) to the rows the data uses, and the weights equal dense AdamW's within float rounding
(tests/test_active_rows.py).

Folding the product into the table at every evaluation/checkpoint (not only at the end) makes a run resumed
from a checkpoint do exactly the arithmetic of the uninterrupted run.

Phases whose loss reads every row (a family declaring READS_EVERY_ROW: masked LM; decoders tied to the table), frozen tables
(LoRA, ``freeze_embeddings``) and multi-process runs keep the dense path; :func:`install` decides and says why.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

CHECKPOINT_FILE = "active_rows.safetensors"  # the id map of the phase that wrote a checkpoint
TOKEN_COLUMNS = ("input_ids", "choice_ids")  # featurized columns holding token ids (multiple choice: choice_ids)


def token_ids(rows, columns) -> np.ndarray:
    """The sorted distinct token ids in the ``columns`` of a ``datasets.Dataset`` (lists, or lists of lists)."""
    import pyarrow.compute as pc

    table = rows.with_format("arrow")
    found = []
    for name in columns:
        col = table[name]
        col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
        while hasattr(col.type, "value_type"):  # list<...>: one level of nesting at a time
            col = pc.list_flatten(col)
        found.append(pc.unique(col).to_numpy(zero_copy_only=False))
    return np.unique(np.concatenate(found)).astype(np.int64) if found else np.zeros(0, np.int64)


class CompactEmbedding(nn.Module):
    """Stands in for the word-embedding ``nn.Embedding`` during training: the active rows only.

    ``rows[i]`` is row ``ids[i]`` of the full table; ``remap[id]`` is ``i`` (or -1 for an inactive id, which
    is refused: it would silently read a wrong row).
    """

    def __init__(self, full: nn.Embedding, ids: torch.Tensor):
        super().__init__()
        self.rows = nn.Parameter(full.weight.detach()[ids].clone())
        remap = torch.full((full.num_embeddings,), -1, dtype=torch.long, device=ids.device)
        remap[ids] = torch.arange(len(ids), device=ids.device)
        self.register_buffer("remap", remap, persistent=False)
        pad = full.padding_idx
        self.padding_idx = int(remap[pad]) if pad is not None and remap[pad] >= 0 else None
        self.num_embeddings, self.embedding_dim = full.num_embeddings, full.embedding_dim

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        local = self.remap[input_ids]
        if bool((local < 0).any()):
            bad = input_ids[local < 0].unique()[:5].tolist()
            raise RuntimeError(f"token ids {bad} are outside the phase's active embedding rows")
        return F.embedding(local, self.rows, self.padding_idx)


@dataclass
class Choice:
    """Which path a phase's word embeddings took, for the log and the phase summary."""

    path: str  # "active-rows", "dense" or "frozen"
    vocab: int
    active_rows: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.path == "active-rows":
            return (f"word embeddings: active rows {self.active_rows:,} of {self.vocab:,} "
                    f"({self.active_rows / self.vocab:.1%}), compact AdamW table")
        return f"word embeddings: {self.path} ({self.vocab:,} rows){': ' + self.reason if self.reason else ''}"

    def summary(self) -> dict:
        out = {"path": self.path, "vocab": self.vocab}
        if self.active_rows is not None:
            out["active_rows"] = self.active_rows
        if self.reason:
            out["reason"] = self.reason
        return out


class ActiveRows:
    """The compact table installed in a model, and the decay product its inactive rows owe."""

    def __init__(self, model: nn.Module, full: nn.Embedding, ids: np.ndarray):
        self.owner, self.attr = _owner_of(model, full)
        self.full = full
        self.ids = torch.as_tensor(ids, dtype=torch.long, device=full.weight.device)
        self.compact = CompactEmbedding(full, self.ids)
        self.decay = 1.0  # prod(1 - lr_t * wd) over the steps since the last fold
        full.weight.requires_grad_(False)
        setattr(self.owner, self.attr, self.compact)

    @property
    def parameter(self) -> nn.Parameter:
        return self.compact.rows

    def stepped(self, optimizer) -> None:
        """After an optimizer step (before the scheduler moves lr): the decay that step applied."""
        for group in optimizer.param_groups:
            if any(p is self.parameter for p in group["params"]):
                self.decay *= 1.0 - group["lr"] * group["weight_decay"]
                return

    def _fold(self) -> None:
        """The full table brought up to date: closed-form decay on every row, then the trained rows over it."""
        with torch.no_grad():
            w = self.full.weight
            if self.decay != 1.0:
                w.mul_(self.decay)
            w[self.ids] = self.parameter.detach().to(w.dtype)
        self.decay = 1.0

    def enter_dense(self) -> None:
        """The model with its ordinary, up-to-date ``nn.Embedding`` (for evaluation, saving and loading)."""
        self._fold()
        setattr(self.owner, self.attr, self.full)
        self.full.weight.requires_grad_(True)  # a normal model to checkpointing (which saves trainable tensors)

    def leave_dense(self) -> None:
        """Back to the compact table, its rows re-read from the full one (so weights loaded meanwhile are kept)."""
        self.full.weight.requires_grad_(False)
        with torch.no_grad():
            self.parameter.copy_(self.full.weight[self.ids])
        setattr(self.owner, self.attr, self.compact)

    def finish(self) -> None:
        """End of the phase: the ordinary embedding back in the model, up to date and trainable again."""
        self._fold()
        setattr(self.owner, self.attr, self.full)
        self.full.weight.requires_grad_(True)

    def checkpoint_tensors(self) -> dict[str, dict[str, torch.Tensor]]:
        return {CHECKPOINT_FILE.removesuffix(".safetensors"): {"ids": self.ids.cpu()}}


def _owner_of(model: nn.Module, target: nn.Module) -> tuple[nn.Module, str]:
    for module in model.modules():
        for name, child in module.named_children():
            if child is target:
                return module, name
    raise ValueError("the word-embedding module is not part of the model")


def choose(model, tasks, cfg, *, pad_id: int | None = None, processes: int = 1, sharded: bool = False,
           collect=token_ids) -> tuple[Choice, np.ndarray | None]:
    """The path for this phase's word embeddings, and (active rows) the ids its training data uses: those of its
    featurized rows, plus ``pad_id`` (what collate pads with; default: the model config's)."""
    from .families import get_family

    encoder = model.encoder
    emb = encoder.get_input_embeddings()
    vocab = int(emb.weight.shape[0])
    if not emb.weight.requires_grad:
        return Choice("frozen", vocab), None
    every_row = [f.TITLE for f in (get_family(n) for n in dict.fromkeys(t.spec.family for t in tasks)) if f.READS_EVERY_ROW]
    tied = sum(p is emb.weight for _, p in model.named_parameters(remove_duplicate=False)) > 1
    out = getattr(encoder, "get_output_embeddings", lambda: None)()
    reason = ("configured (embedding_rows: dense)" if getattr(cfg, "embedding_rows", "auto") == "dense"
              else f"{every_row[0]} reads every row" if every_row
              else "a decoder is tied to the table" if tied or out is not None
              else "several processes" if processes > 1
              else "FSDP" if sharded
              else "not a plain nn.Embedding" if type(emb) is not nn.Embedding or emb.max_norm is not None or emb.sparse
              else "")
    if reason:
        return Choice("dense", vocab, reason=reason), None
    parts = []
    for t in tasks:
        columns = [c for c in get_family(t.spec.family).COLLATE_COLUMNS if c in TOKEN_COLUMNS]
        parts.append(collect(t.rows, columns))
    pad = pad_id if pad_id is not None else getattr(encoder.config, "pad_token_id", None)
    ids = np.unique(np.concatenate(parts + ([np.array([pad])] if pad is not None else [])))
    if len(ids) and (ids[0] < 0 or ids[-1] >= vocab):
        raise ConfigError(f"training data holds token ids outside the model's vocabulary ({vocab:,} rows): "
                          f"e.g. {int(ids[-1])}; featurize with this model's tokenizer")
    if len(ids) >= vocab:
        return Choice("dense", vocab, reason="every row is active"), None
    return Choice("active-rows", vocab, active_rows=len(ids)), ids


def install(model, tasks, cfg, **kw) -> tuple[Choice, ActiveRows | None]:
    """Decide the path (:func:`choose`, which takes ``kw``) and, for active rows, swap the compact table into
    ``model``."""
    choice, ids = choose(model, tasks, cfg, **kw)
    if ids is None:
        return choice, None
    return choice, ActiveRows(model, model.encoder.get_input_embeddings(), ids)


def enter_dense(rows: ActiveRows | None) -> None:
    if rows is not None:
        rows.enter_dense()


def leave_dense(rows: ActiveRows | None) -> None:
    if rows is not None:
        rows.leave_dense()


@contextlib.contextmanager
def dense(rows: ActiveRows | None):
    """:meth:`ActiveRows.enter_dense` for the block, then back to the compact table (no-op on the dense path)."""
    enter_dense(rows)
    try:
        yield
    finally:
        leave_dense(rows)


def check_resume(path: Path, rows: ActiveRows | None) -> None:
    """A checkpoint resumes only on the path that wrote it, with the same active rows (the optimizer state of
    the compact table is row-for-row)."""
    file = Path(path) / CHECKPOINT_FILE
    if rows is None and not file.exists():
        return
    if rows is not None and file.exists():
        from safetensors.torch import load_file

        saved = load_file(str(file))["ids"]
        if torch.equal(saved, rows.ids.cpu()):
            return
        raise ConfigError(f"{file}: the checkpoint trained {len(saved):,} active embedding rows, this run's training "
                          f"data uses {len(rows.ids):,} different ones; resume with the same training data, or "
                          "delete the folder to start the phase over")
    written, now = ("active rows", "the dense table") if rows is None else ("the dense table", "active rows")
    raise ConfigError(f"{path}: the checkpoint was written training {written}, this run trains {now}; resume "
                      "with the same embedding_rows setting, or delete the folder to start the phase over")
