"""Task families: each module owns featurisation, head, loss, decoding and default metrics.

Every family module exposes the same functions:

* ``featurize(examples, tokenizer, spec, max_length, stride) -> dict[str, list]``:
  columns of model inputs, one row per model input (a QA or tagging example can
  give several windows; ``example_idx`` links a row back to its example).
* ``make_head(hidden_size, spec) -> nn.Module``.
* ``loss_and_logits(head, hidden, batch) -> (loss | None, logits)``.
* ``collate(rows, tok) -> dict[str, Tensor]`` (``tok``: :class:`xstilts.data.TokenIds`).
* ``COLLATE_COLUMNS``: the featurized columns ``collate`` reads; training and prediction
  read only these (:func:`xstilts.families.base.collate_view`).
* ``decode(logits_rows, rows, examples, spec) -> list`` one prediction per example.
* ``score(predictions, examples, spec, lang) -> dict[str, float]``.
* ``metric_names(spec) -> tuple[str, ...]``: the keys ``score`` returns for ``spec`` (what a task's
  ``metrics`` may name; :func:`xstilts.tasks.register` refuses others).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..tasks.spec import FAMILIES


def get_family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; families: {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{name}")
