"""Multiple choice (COPA/XCOPA, SocialIQA, CosmosQA, CommonsenseQA, HellaSwag).

Each choice is encoded together with the context (and question); the head gives
one score per choice and a softmax runs over the choices of an example.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import metrics
from .base import accept_example as check_example, as_list as prediction_record, count_loaded as count_examples
from .base import keep_records as hub_records, keep_stride as effective_stride, label_hits as per_example_scores
from .base import no_labels as labels_used, no_reader_kwargs as reader_kwargs, not_encoder_scored as score_encoder
from .base import one_per_line as write_submission, pad

TITLE = "multiple choice"
REQUIRED_FIELDS = ("choices", "label")
OPTIONAL_FIELDS = {"context": "", "question": ""}
HUB_FIELDS = ("context", "question", "choices", "label")
NEEDS_LABELS = False  # the label is a choice index
TRAINS = True
POOLED_HEAD = True
READS_EVERY_ROW = False
TRANSLATION = "fields"
TRANSLATABLE_FIELDS = ("context", "question", "choices")
NOT_TRANSLATABLE_REASON = ""
FEATURIZE_VERSION = 2


def from_hub(record, spec):
    if record["label"] == -1 or record["label"] == "":
        return None  # unlabelled test rows
    record["label"], record["choices"] = int(record["label"]), list(record["choices"])
    return record


def featurize(examples, tokenizer, spec, max_length, stride=None):
    """One ``[context + question, choice]`` pair per choice, each fitting ``max_length``.

    Truncation as in transformers' multiple-choice examples, context first: a pair that is too long
    loses tokens from the end of its context; a choice that does not fit even with no context left
    is itself cut (its context then empty). Per example, ``truncated_context`` / ``truncated_choice``
    count the choices so cut (summed per phase by :func:`xstilts.data.truncation_summary`).
    """
    firsts, seconds, owner = [], [], []
    for i, e in enumerate(examples):
        context = " ".join(x for x in (e.get("context"), e.get("question")) if x)
        for choice in e["choices"]:
            firsts.append(context)
            seconds.append(choice)
            owner.append(i)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)  # tokens of context + choice
    n_first, n_second = _lengths(tokenizer, firsts), _lengths(tokenizer, seconds)
    context_cut = [a > 0 and a + b > budget for a, b in zip(n_first, n_second)]
    choice_cut = [b > budget for b in n_second]
    # no room left for one context token: the pair is (empty context, choice), the choice cut if it must be
    alone = [a > 0 and b >= budget or b > budget for a, b in zip(n_first, n_second)]
    ids = [None] * len(firsts)
    for only_choice in (False, True):
        idx = [j for j, x in enumerate(alone) if x == only_choice]
        if idx:
            enc = tokenizer(["" if only_choice else firsts[j] for j in idx], [seconds[j] for j in idx],
                            truncation="only_second" if only_choice else "only_first", max_length=max_length)
            for j, x in zip(idx, enc["input_ids"]):
                ids[j] = x
    choices = [[] for _ in examples]
    truncated = {"truncated_context": [0] * len(examples), "truncated_choice": [0] * len(examples)}
    for j, i in enumerate(owner):
        choices[i].append(ids[j])
        truncated["truncated_context"][i] += context_cut[j]
        truncated["truncated_choice"][i] += choice_cut[j]
    return {
        "choice_ids": choices,
        "input_ids": [[t for ids in c for t in ids] for c in choices],  # for lengths and show-examples
        "label": [int(e.get("label", -100)) for e in examples],
        "example_idx": list(range(len(examples))),
        **truncated,
    }


def _lengths(tokenizer, texts: list[str]) -> list[int]:
    """Token counts without special tokens (each distinct text tokenized once)."""
    unique = list(dict.fromkeys(texts))
    n = dict(zip(unique, map(len, tokenizer(unique, add_special_tokens=False)["input_ids"]))) if unique else {}
    return [n[t] for t in texts]


class ChoiceHead(nn.Module):
    def __init__(self, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.score = nn.Linear(hidden, 1)

    def forward(self, hidden):
        return self.score(self.dropout(hidden[:, 0])).squeeze(-1)


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
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


def probe_features(hidden, batch):
    """Each real choice's first-token state, labelled 1 for the right choice and 0 otherwise."""
    mask = batch["choice_mask"]
    gold = torch.zeros(mask.shape, dtype=torch.long)
    gold[torch.arange(mask.shape[0]), batch["label"].clamp(min=0)] = 1
    keep = mask & (batch["label"] >= 0)[:, None]
    return hidden[:, 0][keep.flatten()], gold[keep]


def decode(logits_rows, rows, examples, spec):
    return [int(torch.as_tensor(x).argmax()) for x in logits_rows]


def metric_names(spec) -> tuple[str, ...]:
    return ("accuracy",)


def score(predictions, examples, spec, lang):
    return {"accuracy": metrics.accuracy(predictions, [e["label"] for e in examples])}
