"""Masked language modelling as a training objective (phase 1 / mixed into phase 2).

Text lines are tokenized and cut into chunks of ``max_length``; masking
(15 %: 80 % mask token, 10 % random token, 10 % unchanged) happens at collate
time so each epoch sees new masks.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import accept_example as check_example, as_list as prediction_record, batch_inputs
from .base import count_loaded as count_examples, keep_record as from_hub, keep_records as hub_records
from .base import keep_stride as effective_stride, no_labels as labels_used
from .base import no_per_example_scores as per_example_scores, no_reader_kwargs as reader_kwargs
from .base import not_encoder_scored as score_encoder, not_probed

TITLE = "masked LM"
REQUIRED_FIELDS = ("text",)
OPTIONAL_FIELDS: dict = {}
HUB_FIELDS = REQUIRED_FIELDS
NEEDS_LABELS = False
TRAINS = True
POOLED_HEAD = False
READS_EVERY_ROW = True  # the loss is a softmax over the whole vocabulary: no active-rows embedding path
TRANSLATION = None
TRANSLATABLE_FIELDS = ()
NOT_TRANSLATABLE_REASON = ""
FEATURIZE_VERSION = 1
MASK_PROB = 0.15


def featurize(examples, tokenizer, spec, max_length, stride=None):
    enc = tokenizer([e["text"] for e in examples], add_special_tokens=False)["input_ids"]
    body = max_length - 2
    cols = {"input_ids": [], "example_idx": []}
    for i, ids in enumerate(enc):
        for s in range(0, max(len(ids), 1), body):
            chunk = ids[s : s + body]
            if chunk:
                cols["input_ids"].append([tokenizer.cls_token_id] + chunk + [tokenizer.sep_token_id])
                cols["example_idx"].append(i)
    return cols


class MLMHead(nn.Module):
    """Transform + decoder; the decoder weight is the word-embedding table (tied in :func:`make_head`)."""

    def __init__(self, hidden: int, vocab: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.bias = nn.Parameter(torch.zeros(vocab))
        self.tied = []  # [word-embedding module], set by MultiTaskModel; a list so it is not saved twice

    def forward(self, hidden):
        x = self.norm(nn.functional.gelu(self.dense(hidden)))
        return x @ self.tied[0].weight.T + self.bias


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
    """The decoder is tied to ``input_embeddings`` (the encoder's word embeddings); ``vocab_size`` rows of output."""
    head = MLMHead(hidden_size, vocab_size)
    head.tied.append(input_embeddings)
    return head


COLLATE_COLUMNS = ("input_ids",)


def collate(rows, tok):
    batch = batch_inputs(rows, tok.pad_id)
    ids = batch["input_ids"]
    labels = ids.clone()
    special = (batch["attention_mask"] == 0) | torch.isin(ids, torch.as_tensor([tok.cls_id, tok.sep_id]))
    chosen = (torch.rand(ids.shape) < MASK_PROB) & ~special
    labels[~chosen] = -100
    roll = torch.rand(ids.shape)
    ids = ids.clone()
    ids[chosen & (roll < 0.8)] = tok.mask_id
    rand = chosen & (roll >= 0.8) & (roll < 0.9)
    ids[rand] = torch.randint(tok.vocab_size, ids.shape)[rand]
    batch["input_ids"], batch["labels"] = ids, labels
    return batch


probe_features = not_probed("masked LM is not a target: its labels are the text itself")


def loss_and_logits(head, hidden, batch):
    labels = batch["labels"]
    picked = labels != -100
    logits = head(hidden[picked])
    loss = nn.functional.cross_entropy(logits.float(), labels[picked]) if picked.any() else None
    return loss, logits


def decode(logits_rows, rows, examples, spec):
    raise NotImplementedError("masked LM is a training objective; it has no predictions to decode")


def metric_names(spec) -> tuple[str, ...]:
    return ()  # a training objective: nothing is scored


def score(predictions, examples, spec, lang):
    raise NotImplementedError("masked LM is a training objective; it is not scored")


def write_submission(preds, ids, dest_stem):
    raise NotImplementedError("masked LM is a training objective; it has no predictions to export")
