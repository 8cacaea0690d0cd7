"""Multiple choice (COPA/XCOPA, SocialIQA, CosmosQA, CommonsenseQA, HellaSwag).

Each choice is encoded together with the context (and question); the head gives
one score per choice and a softmax runs over the choices of an example.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import metrics
from .base import pad

FEATURIZE_VERSION = 1


def featurize(examples, tokenizer, spec, max_length, stride=None):
    firsts, seconds, owner = [], [], []
    for i, e in enumerate(examples):
        context = " ".join(x for x in (e.get("context"), e.get("question")) if x)
        for choice in e["choices"]:
            firsts.append(context)
            seconds.append(choice)
            owner.append(i)
    enc = tokenizer(firsts, seconds, truncation="only_first", max_length=max_length)
    choices = [[] for _ in examples]
    for ids, i in zip(enc["input_ids"], owner):
        choices[i].append(ids)
    return {
        "choice_ids": choices,
        "input_ids": [[t for ids in c for t in ids] for c in choices],  # for lengths and show-examples
        "label": [int(e.get("label", -100)) for e in examples],
        "example_idx": list(range(len(examples))),
    }


class ChoiceHead(nn.Module):
    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(hidden, 1)

    def forward(self, hidden):
        return self.score(self.dropout(hidden[:, 0])).squeeze(-1)


def make_head(hidden_size, spec):
    return ChoiceHead(hidden_size)


COLLATE_COLUMNS = ("choice_ids", "label")  # input_ids is only the flattened choices, for lengths


def collate(rows, tok):
    n = max(len(r["choice_ids"]) for r in rows)
    flat, valid = [], []
    for r in rows:
        for j in range(n):
            has = j < len(r["choice_ids"])
            flat.append(r["choice_ids"][j] if has else [tok.pad_id])
            valid.append(has)
    ids = pad(flat, tok.pad_id)
    lengths = torch.as_tensor([len(x) for x in flat])
    mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "choice_mask": torch.as_tensor(valid).view(len(rows), n),
        "label": torch.as_tensor([r["label"] for r in rows]),
    }


def loss_and_logits(head, hidden, batch):
    mask = batch["choice_mask"]
    logits = head(hidden).view(mask.shape).float().masked_fill(~mask, float("-inf"))
    label = batch.get("label")
    loss = nn.functional.cross_entropy(logits, label) if label is not None and (label >= 0).any() else None
    return loss, logits


def decode(logits_rows, rows, examples, spec):
    return [int(torch.as_tensor(x).argmax()) for x in logits_rows]


def score(predictions, examples, spec, lang):
    return {"accuracy": metrics.accuracy(predictions, [e["label"] for e in examples])}
