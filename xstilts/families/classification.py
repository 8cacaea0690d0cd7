"""Sentence and sentence-pair classification (XNLI, PAWS-X, MNLI, QQP, ...)."""

from __future__ import annotations

import torch
from torch import nn

from .. import metrics
from .base import BadField, PooledHead, as_list as prediction_record, batch_inputs
from .base import count_loaded as count_examples, keep_records as hub_records, keep_stride as effective_stride
from .base import label_hits as per_example_scores, not_encoder_scored as score_encoder
from .base import one_per_line as write_submission, pooled_probe as probe_features

TITLE = "classification"
REQUIRED_FIELDS = ("text_a", "label")
OPTIONAL_FIELDS = {"text_b": None}
HUB_FIELDS = ("text_a", "text_b", "label")
NEEDS_LABELS = True  # a task without labels gets the set its training data uses
TRAINS = True
POOLED_HEAD = True
READS_EVERY_ROW = False
TRANSLATION = "fields"
TRANSLATABLE_FIELDS = ("text_a", "text_b")
NOT_TRANSLATABLE_REASON = ""
FEATURIZE_VERSION = 1


def reader_kwargs(spec) -> dict:
    return {"labels": spec.labels} if spec.labels else {}


def _check_label(label, spec) -> None:
    if spec.labels and label not in spec.labels:
        raise BadField("label", f"unknown label {label!r}; labels: {', '.join(spec.labels)}")


def check_example(example, spec) -> None:
    _check_label(example["label"], spec)


def from_hub(record, spec):
    if record["label"] == -1:
        return None  # no gold label (MNLI/SNLI, GLUE test sets)
    record["label"] = str(record["label"])
    _check_label(record["label"], spec)
    return record


def labels_used(examples) -> set:
    return {e["label"] for e in examples}


def featurize(examples, tokenizer, spec, max_length, stride=None):
    label_ids = {label: i for i, label in enumerate(spec.labels)}
    a = [e["text_a"] for e in examples]
    b = [e.get("text_b") for e in examples]
    if any(x is not None for x in b):
        enc = tokenizer(a, [x or "" for x in b], truncation="longest_first", max_length=max_length)
    else:
        enc = tokenizer(a, truncation=True, max_length=max_length)
    labels = [label_ids.get(e.get("label"), -100) for e in examples]
    return {
        "input_ids": enc["input_ids"],
        "label": labels,
        "example_idx": list(range(len(examples))),
    }


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
    return PooledHead(hidden_size, len(spec.labels))


COLLATE_COLUMNS = ("input_ids", "label")


def collate(rows, tok):
    batch = batch_inputs(rows, tok.pad_id)
    batch["label"] = torch.as_tensor([r["label"] for r in rows])
    return batch


def loss_and_logits(head, hidden, batch):
    logits = head(hidden)
    label = batch.get("label")
    loss = nn.functional.cross_entropy(logits.float(), label) if label is not None and (label >= 0).any() else None
    return loss, logits


def decode(logits_rows, rows, examples, spec):
    return [spec.labels[int(torch.as_tensor(x).argmax())] for x in logits_rows]


def metric_names(spec) -> tuple[str, ...]:
    return ("accuracy",)


def score(predictions, examples, spec, lang):
    return {"accuracy": metrics.accuracy(predictions, [e["label"] for e in examples])}
